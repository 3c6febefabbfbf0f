"""Fuzz the protocol decoders with atheris: the host's StreamDecoder and the board's
FrameReader (run under CPython), fed the same bytes in the same chunking.

    .venv/bin/python tests/fuzz/fuzz_decoder.py -max_total_time=60     (or: make fuzz)

Invariants checked on every input:
- neither decoder raises;
- both yield the same frames and count the same drops, by reason;
- every yielded message re-encodes to exactly the frame that carried it, and that frame
  decodes again to the same message.

The first input byte picks how the rest is used: as raw line bytes, or as a payload that
is framed with a correct CRC first (so the fuzzer reaches the type and length checks
without having to guess CRCs).
"""
from __future__ import annotations

import os
import struct
import sys
import zlib

from cobs import cobs

CHUNKS = (1, 3, 7, 64, 4096)


def frame_payload(payload: bytes) -> bytes:
    """Any payload framed with its true CRC (no length checks: oversize is allowed)."""
    return cobs.encode(payload + struct.pack("<I", zlib.crc32(payload))) + b"\x00"


def wire_of(data: bytes) -> tuple[bytes, int]:
    """The line bytes and the chunk size an input stands for."""
    if not data:
        return b"", 1
    mode, chunk = data[0] & 1, CHUNKS[(data[0] >> 1) % len(CHUNKS)]
    rest = data[1:]
    if mode:
        # Payloads separated by 0xFE 0xFE in the input, each framed with a correct CRC.
        return b"".join(frame_payload(p) for p in rest.split(b"\xfe\xfe")), chunk
    return rest, chunk


def check(data: bytes) -> None:
    """Run both decoders over one input and assert the invariants."""
    from dexproto import catalog, frame, stream

    wire, chunk = wire_of(data)
    host = stream.StreamDecoder()
    board = frame.FrameReader()
    got_host, got_board = [], []
    for i in range(0, len(wire), chunk):
        piece = wire[i:i + chunk]
        got_host.extend(host.feed(piece))
        j = 0
        while True:
            j = board.feed(piece, j, len(piece))
            if j < 0:
                break
            got_board.append(bytes(board.payload[:catalog.HEADER_SIZE + board.body_len]))
    assert host.drops == dict(zip(frame.DROP_NAMES, board.drops)), (host.drops, board.drops)
    assert host.frames == board.frames == len(got_host) == len(got_board)
    segments = set(wire.split(b"\x00"))
    for msg, payload in zip(got_host, got_board):
        assert stream.encode_payload(msg) == payload
        encoded = stream.encode(msg)
        assert encoded[:-1] in segments, "a message came out that no frame on the line carries"
        again = stream.StreamDecoder().feed(encoded)
        assert len(again) == 1 and stream.encode(again[0]) == encoded


def seeds() -> list[bytes]:
    """Valid traffic to start from: one frame of each type, as raw line bytes."""
    from dexproto import stream
    out = []
    for spec in stream.SPECS.values():
        fields = {f: 1 for f in spec.head_fields}
        items = [tuple(1 for _ in spec.item_fields)] * 3 if spec.item else []
        msg = stream.make(spec.name, items=items, tail=b"hi" if spec.tail_field else b"", **fields)
        out.append(b"\x00" + stream.encode(msg) * 2)
        out.append(b"\x01" + stream.encode_payload(msg))
    return out


def main(argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports():
        import dexproto.catalog  # noqa: F401
        import dexproto.cobsbuf  # noqa: F401
        import dexproto.crcbuf  # noqa: F401
        import dexproto.frame  # noqa: F401
        import dexproto.stream  # noqa: F401
    run_fuzzer(argv, check, seeds())


def run_fuzzer(argv: list[str], check, seed_inputs, target: str = "") -> None:
    """atheris on check(data). Unless argv names others, the corpus is build/fuzz-corpus-
    TARGET, seeded with valid traffic, and crash files go to build/fuzz-TARGET-* (build/
    is ignored by git); "" is this file's target."""
    import atheris

    build = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                          "build"))
    tag = "-" + target if target else ""
    corpus = os.path.join(build, "fuzz-corpus" + tag)
    os.makedirs(corpus, exist_ok=True)
    for i, seed in enumerate(seed_inputs):
        with open(os.path.join(corpus, "seed-%02d" % i), "wb") as f:
            f.write(seed)
    if not any(a.startswith("-artifact_prefix") for a in argv):
        argv = argv + ["-artifact_prefix=" + build + os.sep + "fuzz" + tag + "-"]
    if not any(not a.startswith("-") for a in argv[1:]):
        argv = argv + [corpus]
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
