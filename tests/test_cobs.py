"""COBS: the host's `cobs` C extension and the board's cobsbuf (plain Python and viper)
produce and accept the same bytes, on known vectors and on anything hypothesis draws."""
from __future__ import annotations

import json
import random

import pytest
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_micropython
from dexproto import cobsbuf

pytestmark = pytest.mark.micropython

# (decoded, encoded): the published examples, and the 254/255-byte block edges.
VECTORS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),                   # 254 non-zero
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),               # zero, then 254
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),     # 255 non-zero
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
    (b"\x01" * 508, (b"\xff" + b"\x01" * 254) * 2),                         # two full blocks
    (b"\x00" * 254, b"\x01" * 255),
]
# Encoded strings no decoder may accept: a zero inside, a code that runs past the end.
MALFORMED = [b"\x00", b"\x02", b"\x03\x11", b"\x02\x00", b"\x05\x11\x22\x00\x44", b"\xff" + b"\x01" * 253,
             b"\x01\x00\x01"]


def encode_py(data: bytes) -> bytes:
    dst = bytearray(len(data) + len(data) // 254 + 2)
    return bytes(dst[:cobsbuf.encode_into_py(data, len(data), dst)])


def decode_py(encoded: bytes) -> bytes | None:
    dst = bytearray(len(encoded))
    k = cobsbuf.decode_into_py(encoded, len(encoded), dst)
    return None if k < 0 else bytes(dst[:k])


def cobs_decode(encoded: bytes) -> bytes | None:
    try:
        return cobs.decode(encoded)
    except cobs.DecodeError:
        return None


@pytest.mark.parametrize("decoded,encoded", VECTORS, ids=range(len(VECTORS)))
def test_known_vectors_on_the_host(decoded, encoded):
    assert cobs.encode(decoded) == encoded
    assert cobs.decode(encoded) == decoded
    assert encode_py(decoded) == encoded
    assert decode_py(encoded) == decoded


@pytest.mark.parametrize("encoded", MALFORMED)
def test_malformed_is_refused_by_both(encoded):
    assert cobs_decode(encoded) is None
    assert decode_py(encoded) is None


@settings(deadline=None)
@given(st.binary(max_size=1100))
def test_board_encoder_matches_the_c_extension(data):
    assert encode_py(data) == cobs.encode(data)
    assert decode_py(cobs.encode(data)) == data


@settings(deadline=None)
@given(st.binary(max_size=600))
def test_board_decoder_agrees_with_the_c_extension_on_any_input(encoded):
    assert decode_py(encoded) == cobs_decode(encoded)


def test_find_zero_and_copy_into():
    buf = b"\x01\x02\x00\x03\x00"
    assert cobsbuf.find_zero_py(buf, 0, 5) == 2
    assert cobsbuf.find_zero_py(buf, 3, 5) == 4
    assert cobsbuf.find_zero_py(buf, 0, 2) == -1
    dst = bytearray(6)
    assert cobsbuf.copy_into_py(buf, 1, 4, dst, 2) == 5
    assert dst == b"\x00\x00\x02\x00\x03\x00"


# Under MicroPython: the viper functions and the plain fallback, on the vectors above,
# malformed input, and a seeded random set compared with the C extension's answers.
MP_SCRIPT = """
import json, sys
from dexproto import cobsbuf
cases = json.loads(sys.stdin.read())
impls = {"viper": (cobsbuf._encode_into_viper, cobsbuf._decode_into_viper,
                   cobsbuf._find_zero_viper, cobsbuf._copy_into_viper),
         "py": (cobsbuf.encode_into_py, cobsbuf.decode_into_py,
                cobsbuf.find_zero_py, cobsbuf.copy_into_py)}
out = {"VIPER": cobsbuf.VIPER, "selected_viper": cobsbuf.encode_into is cobsbuf._encode_into_viper}
for name, (enc, dec, find, copy) in impls.items():
    res = []
    for raw_hex, enc_hex in cases:
        raw = bytes.fromhex(raw_hex)
        dst = bytearray(len(raw) + len(raw) // 254 + 2)
        k = enc(raw, len(raw), dst)
        src = bytes.fromhex(enc_hex)
        ddst = bytearray(len(src) + 1)
        j = dec(src, len(src), ddst)
        z = find(src, 0, len(src))
        cdst = bytearray(len(src) + 2)
        c = copy(src, 0, len(src), cdst, 2)
        res.append([dst[:k].hex(), ddst[:j].hex() if j >= 0 else None, z, c, cdst[2:c].hex()])
    out[name] = res
print(json.dumps(out))
"""


def test_viper_and_fallback_under_micropython():
    rng = random.Random(7)
    raws = [v[0] for v in VECTORS] + [
        bytes(rng.choice((0, 1, 255, rng.randrange(256))) for _ in range(rng.randrange(600)))
        for _ in range(150)]
    encodeds = [v[1] for v in VECTORS] + MALFORMED + [
        bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        for _ in range(150 + len(VECTORS) - len(MALFORMED))]
    cases = [[r.hex(), e.hex()] for r, e in zip(raws, encodeds)]
    proc = run_micropython(MP_SCRIPT, stdin=json.dumps(cases).encode())
    out = json.loads(proc.stdout)
    assert out["VIPER"] and out["selected_viper"], "the Unix port has viper: it must be chosen"
    for impl in ("viper", "py"):
        for (raw_hex, enc_hex), (enc, dec, z, c, copied) in zip(cases, out[impl]):
            raw, encoded = bytes.fromhex(raw_hex), bytes.fromhex(enc_hex)
            assert enc == cobs.encode(raw).hex(), (impl, raw_hex)
            expect = cobs_decode(encoded)
            assert dec == (None if expect is None else expect.hex()), (impl, enc_hex)
            assert z == encoded.find(0)
            assert c == 2 + len(encoded) and copied == enc_hex
