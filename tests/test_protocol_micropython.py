"""The catalog and the board framing under the real MicroPython interpreter: the bytes
match CPython's for every message type, frames from CPython decode there, and after
warm-up neither FrameWriter nor FrameReader allocates. Each in three builds of the
framing: viper COBS (the Unix port's default), all plain Python, viper COBS + viper CRC
(what a 32-bit board runs), and a port without the viper emitter (the fallback must be
chosen by itself)."""
from __future__ import annotations

import json
import random
import shutil
import struct
import zlib

import pytest
from cobs import cobs

from conftest import ROOT, run_micropython
from dexproto import catalog, stream
from support.protocol_samples import fixed_messages

pytestmark = pytest.mark.micropython

MODES = ["viper", "py", "board32", "noviper"]
# A port built without the viper emitter refuses any module that uses @micropython.viper
# at compile time with exactly this error; an unknown emitter name raises it here.
NO_VIPER_MODULE = """
import micropython


@micropython.no_such_emitter
def cobs_encode_into(src, n, dst):
    pass
"""


@pytest.fixture(scope="module")
def no_viper_port(tmp_path_factory):
    """A copy of dexproto whose viper module fails to compile, as on a port without viper."""
    root = tmp_path_factory.mktemp("noviper")
    shutil.copytree(ROOT / "protocol" / "dexproto", root / "dexproto")
    (root / "dexproto" / "viperloops.py").write_text(NO_VIPER_MODULE)
    return root


def run_build(mode, source, no_viper_port, stdin=None):
    paths = [no_viper_port] if mode == "noviper" else []
    return run_micropython(PRELUDE % mode + source, paths=paths, stdin=stdin)

# Chooses the framing build, then imports frame (which binds the functions at import).
PRELUDE = """
MODE = %r
import dexproto.cobsbuf as cb
import dexproto.crcbuf as cr
if MODE == "py":
    cb.encode_into, cb.decode_into = cb.encode_into_py, cb.decode_into_py
    cb.find_zero, cb.copy_into = cb.find_zero_py, cb.copy_into_py
if MODE == "board32":
    _v = cr.ViperCRC()  # what a 32-bit board chooses by itself
    cr.append_crc, cr.check_crc = _v.append_crc, _v.check_crc
from dexproto import frame
BUILD = {"cobs_viper": frame.encode_into is not cb.encode_into_py,
         "crc_viper": frame.append_crc is not cr.append_crc_py,
         "viper_found": cb.VIPER}
"""

CODEC = """
import json, struct, sys
from dexproto import catalog
cases = json.loads(sys.stdin.read())

def body_of(w, row, head, items, tail):
    n = 0
    if row[3]:
        struct.pack_into(row[3], w.body, 0, *head)
        n = struct.calcsize(row[3])
    if row[5]:
        size = struct.calcsize(row[5])
        for it in items:
            struct.pack_into(row[5], w.body, n, *it)
            n += size
    if row[7]:
        t = bytes.fromhex(tail)
        w.body[n:n + len(t)] = t
        n += len(t)
    return n

w = frame.FrameWriter()
encoded = []
for t, seq, head, items, tail in cases["messages"]:
    w.seq = seq
    encoded.append(bytes(w.finish(t, body_of(w, catalog.BY_TYPE[t], head, items, tail))).hex())

r = frame.FrameReader()
wire = bytes.fromhex(cases["wire"])
decoded = []
i = 0
k = 0
while i < len(wire):
    n = 1 + k % 13  # odd chunk sizes, as a serial port might hand them over
    k += 1
    chunk = wire[i:i + n]
    i += n
    j = 0
    while True:
        j = r.feed(chunk, j, len(chunk))
        if j < 0:
            break
        row = catalog.BY_TYPE[r.msg_type]
        head = list(struct.unpack_from(row[3], r.payload, 3)) if row[3] else []
        items = []
        if row[5]:
            size = struct.calcsize(row[5])
            off = 3 + (struct.calcsize(row[3]) if row[3] else 0)
            while off < 3 + r.body_len:
                items.append(list(struct.unpack_from(row[5], r.payload, off)))
                off += size
        body = bytes(r.payload[3:3 + r.body_len]).hex()
        decoded.append([r.msg_type, r.seq, head, items, body])
print(json.dumps({"build": BUILD, "encoded": encoded, "decoded": decoded, "drops": r.drops}))
"""


def head_values(msg):
    return [msg.fields[f] for f in msg.spec.head_fields]


@pytest.fixture(scope="module")
def samples():
    return fixed_messages(seed=5)


def expected_build(mode):
    return {"viper": {"cobs_viper": True, "crc_viper": False, "viper_found": True},
            "py": {"cobs_viper": False, "crc_viper": False, "viper_found": True},
            "board32": {"cobs_viper": True, "crc_viper": True, "viper_found": True},
            "noviper": {"cobs_viper": False, "crc_viper": False, "viper_found": False}}[mode]


@pytest.mark.parametrize("mode", MODES)
def test_every_message_type_matches_cpython_bytes_both_ways(mode, samples, no_viper_port):
    garbage = [b"\x05\x01\x00", b"\x55" * (catalog.MAX_FRAME + 3) + b"\x00",
               stream.encode(stream.make("HEARTBEAT"))[:-3] + b"\x00"]
    wire = b"".join(stream.encode(m) + garbage[i % len(garbage)] * (i % 5 == 0)
                    for i, m in enumerate(samples))
    cases = {"messages": [[m.spec.type, m.seq, head_values(m), [list(i) for i in m.items], m.tail.hex()]
                          for m in samples],
             "wire": wire.hex()}
    proc = run_build(mode, CODEC, no_viper_port, stdin=json.dumps(cases).encode())
    out = json.loads(proc.stdout)
    assert out["build"] == expected_build(mode)
    for m, got in zip(samples, out["encoded"], strict=True):
        assert got == stream.encode(m).hex(), m
    assert len(out["decoded"]) == len(samples)
    for m, (t, seq, head, items, body) in zip(samples, out["decoded"]):
        assert (t, seq, head, items) == (m.spec.type, m.seq, head_values(m), [list(i) for i in m.items])
        assert bytes.fromhex(body) == stream.encode_payload(m)[catalog.HEADER_SIZE:]
    # The same damaged input gives the same counts on the host.
    dec = stream.StreamDecoder()
    dec.feed(wire)
    assert dict(zip(dec.drops, out["drops"])) == dec.drops and sum(out["drops"]) > 0


ALLOC = """
import gc, struct
from dexproto import catalog
JOINTS = 22
HEAD = catalog.BY_TYPE[catalog.TELEMETRY][3]
ITEM = catalog.BY_TYPE[catalog.TELEMETRY][5]
HEAD_SIZE = struct.calcsize(HEAD)
ITEM_SIZE = struct.calcsize(ITEM)
N_BODY = HEAD_SIZE + JOINTS * ITEM_SIZE
CHUNK = 16

def loop(w, r, bad, frames):
    got = 0
    k = 0
    while k < frames:
        struct.pack_into(HEAD, w.body, 0, k, 1000 * k, 1000, 1200, 0, 1)
        j = 0
        while j < JOINTS:
            struct.pack_into(ITEM, w.body, HEAD_SIZE + j * ITEM_SIZE, j * 100 - k, -j, k & 0x7FFF, j & 0xFF)
            j += 1
        f = w.finish(catalog.TELEMETRY, N_BODY)
        n = len(f)
        start = 0
        while start < n:  # in CHUNK-byte pieces, as a UART would hand them over
            end = start + CHUNK
            if end > n:
                end = n
            i = start
            while i < end:
                i = r.feed(f, i, end)
                if i < 0:
                    break
                got += 1
            start = end
        if k % 10 == 0:
            r.feed(bad, 0, len(bad))  # a bad CRC: counted, no allocation either
        k += 1
    return got

def measure():
    w = frame.FrameWriter()
    r = frame.FrameReader()
    bad = bytearray(BAD_FRAME)
    loop(w, r, bad, 50)  # warm-up: memoryviews of each frame length are made once
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    got = loop(w, r, bad, 3000)
    after = gc.mem_alloc()
    gc.enable()
    print(after - before, got, r.drops[frame.DROP_BAD_CRC], BUILD["cobs_viper"], BUILD["crc_viper"])

measure()
"""


@pytest.mark.parametrize("mode", MODES)
def test_writer_and_reader_allocate_nothing_after_warm_up(mode, no_viper_port):
    payload = stream.encode_payload(stream.make("TIME_SYNC", token=7))
    bad = cobs.encode(payload + struct.pack("<I", zlib.crc32(payload) ^ 1)) + b"\x00"
    proc = run_build(mode, ALLOC.replace("BAD_FRAME", repr(bad)), no_viper_port)
    allocated, frames, bad_crc, cobs_viper, crc_viper = proc.stdout.decode().split()
    build = expected_build(mode)
    assert (cobs_viper == "True", crc_viper == "True") == (build["cobs_viper"], build["crc_viper"])
    assert int(frames) == 3000 and int(bad_crc) == 300 + 5
    assert int(allocated) == 0, "%s bytes allocated over 3000 frames (%s build)" % (allocated, mode)


def test_the_catalog_imports_unchanged_under_micropython():
    """The very catalog file: every row, format size and lookup as CPython sees them."""
    rows = run_micropython("""
import struct
from dexproto import catalog
for row in catalog.MESSAGES:
    h = struct.calcsize(row[3]) if row[3] else 0
    i = struct.calcsize(row[5]) if row[5] else 0
    assert catalog.BY_TYPE[row[0]] is row and catalog.BY_NAME[row[1]] is row
    print(row[0], row[1], h, i, catalog.unit_of(row[4][0]) if row[4] else '-')
""").stdout.decode().splitlines()
    expect = []
    for spec in stream.SPECS.values():
        unit = catalog.unit_of(spec.head_fields[0]) if spec.head_fields else "-"
        expect.append("%d %s %d %d %s" % (spec.type, spec.name, spec.head.size,
                                          spec.item.size if spec.item else 0, unit))
    assert [r.strip() for r in rows] == [e.strip() for e in expect]


def test_viper_crc_matches_zlib_on_the_unix_port():
    """crcbuf's viper CRC runs only on 32-bit boards; call it directly here."""
    rng = random.Random(3)
    datas = [b"", b"a", b"123456789", bytes(range(256)) * 2] + [
        bytes(rng.randrange(256) for _ in range(rng.randrange(520))) for _ in range(40)]
    out = run_micropython("""
import sys
import dexproto.crcbuf as cr
v = cr.ViperCRC()
print(cr.VIPER)
for line in sys.stdin:
    data = bytes.fromhex(line.strip())
    n = len(data)
    buf = bytearray(data + bytes(4))
    v.append_crc(buf, n, None)
    ok = v.check_crc(buf, n, None)
    buf[n + 3] ^= 0x80
    print(bytes(buf[n:n + 4]).hex(), ok, v.check_crc(buf, n, None),
          cr.check_crc_py(buf, n, memoryview(buf)[:n]))
""", stdin="\n".join(d.hex() for d in datas).encode()).stdout.decode().split("\n")
    assert out[0] == "False"  # 64-bit port: small ints hold a CRC, binascii is chosen
    for data, line in zip(datas, out[1:], strict=False):
        crc_hex, ok, ok_after_flip, py_after_flip = line.split()
        crc = zlib.crc32(data) ^ 0x80000000
        assert bytes.fromhex(crc_hex) == crc.to_bytes(4, "little")
        assert (ok, ok_after_flip, py_after_flip) == ("True", "False", "False")


def signed_sample(code: str, i: int) -> int:
    """A value of struct code `code`, distinct per field index i (negative where signed)."""
    return -(i + 1) if code.islower() else i + 1


def test_head_packer_follows_the_catalog_under_micropython():
    """HeadPacker puts every field of every head where the row's struct format has it, and
    counters at COUNTER_MASK wrap to 0 (small ints on a 32-bit port) instead of growing."""
    rows = [r for r in catalog.MESSAGES if r[4]]
    cases = [[r[0], [signed_sample(c, i) for i, c in enumerate(r[3][1:])]] for r in rows]
    good = stream.encode(stream.make("HEARTBEAT", seq=4))
    out = run_micropython("""
import json, struct, sys
from dexproto import catalog, frame
got = {}
for t, values in json.loads(sys.stdin.read()):
    row = catalog.BY_TYPE[t]
    p = frame.HeadPacker(t)
    body = bytearray(b"\\xaa" * (p.size + 4))
    p.clear(body)
    for i in range(len(values)):
        p.put(body, row[4][i], values[i])
    got[row[1]] = [p.size, list(struct.unpack_from(row[3], body, 0)), list(body[p.size:])]
r = frame.FrameReader()
r.frames = catalog.COUNTER_MASK
r.drops[frame.DROP_BAD_CRC] = catalog.COUNTER_MASK
bad = bytearray(GOOD)
bad[2] ^= 0x40
r.feed(bad, 0, len(bad))
end = r.feed(GOOD, 0, len(GOOD))
print(json.dumps({"heads": got, "frames": r.frames, "bad_crc": r.drops[frame.DROP_BAD_CRC],
                  "end": end}))
""".replace("GOOD", repr(good)), stdin=json.dumps(cases).encode()).stdout
    res = json.loads(out)
    for row, (_, values) in zip(rows, cases):
        size, unpacked, after = res["heads"][row[1]]
        assert size == struct.calcsize(row[3]) and unpacked == values, row[1]
        assert after == [0xAA] * 4  # nothing written past the head
    assert (res["frames"], res["bad_crc"], res["end"]) == (0, 0, len(good))
