"""Protocol benchmark: host decode throughput and board-side per-frame cost.

Prints, for a 22-joint TELEMETRY stream:
- host decode (dexproto.stream.StreamDecoder: cobs C extension + zlib) in frames/s and
  MB/s, beside a plain-Python decoder (pure-Python COBS and table CRC-32, same parsing)
  measured in the same run;
- the board's FrameWriter encode and FrameReader decode cost per frame under the real
  MicroPython interpreter, for viper COBS (+ binascii CRC), viper COBS + viper CRC (what a
  32-bit board runs), and the plain-Python fallback, in the same run.

    .venv/bin/python bench/protocol.py [--frames N]
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dexproto import catalog, cobsbuf, crcbuf, stream

ROOT = Path(__file__).resolve().parents[1]
MICROPYTHON = Path(sys.executable).parent / "micropython"
JOINTS = 22


def telemetry_stream(n: int) -> bytes:
    rng = random.Random(1)
    frames = []
    for k in range(n):
        items = [(rng.randint(-9000, 9000), rng.randint(-9000, 9000), rng.randint(-9000, 9000), 0)
                 for _ in range(JOINTS)]
        frames.append(stream.encode(stream.make(
            "TELEMETRY", cycle=k, board_us=1000 * k, cycle_us=1000, worst_cycle_us=1100,
            overruns=0, mode=catalog.MODE_TELEOP, items=items, seq=k & 0xFFFF)))
    return b"".join(frames)


class PlainPythonDecoder:
    """The baseline: the same frame rules in plain Python (no C COBS, no zlib)."""

    def __init__(self):
        self.table = crcbuf.make_table()
        self.pending = bytearray()
        self.frames = 0

    def crc32(self, data) -> int:
        crc = 0xFFFFFFFF
        t = self.table
        for b in data:
            crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF

    def feed(self, data: bytes) -> list:
        out = []
        for b in data:
            if b:
                self.pending.append(b)
                continue
            enc = self.pending
            raw = bytearray(len(enc))
            k = cobsbuf.decode_into_py(enc, len(enc), raw)
            self.pending = bytearray()
            if k < catalog.HEADER_SIZE + catalog.CRC_SIZE:
                continue
            n = k - catalog.CRC_SIZE
            if self.crc32(raw[:n]) != int.from_bytes(raw[n:k], "little"):
                continue
            out.append(stream.parse_payload(bytes(raw[:n])))
            self.frames += 1
        return out


def rate(make_decoder, wire: bytes, rounds: int, chunk: int = 4096) -> tuple[float, int]:
    """Best time of rounds to decode wire in chunk-byte reads, and the frames decoded."""
    best = float("inf")
    for _ in range(rounds):
        decoder = make_decoder()
        t0 = time.perf_counter()
        n = 0
        for i in range(0, len(wire), chunk):
            n += len(decoder.feed(wire[i:i + chunk]))
        best = min(best, time.perf_counter() - t0)
    return best, n


BOARD = """
import struct, time
MODE = %r
import dexproto.cobsbuf as cb
import dexproto.crcbuf as cr
if MODE == "plain Python":
    cb.encode_into, cb.decode_into = cb.encode_into_py, cb.decode_into_py
    cb.find_zero, cb.copy_into = cb.find_zero_py, cb.copy_into_py
if MODE == "viper COBS + viper CRC":
    _v = cr.ViperCRC()
    cr.append_crc, cr.check_crc = _v.append_crc, _v.check_crc
from dexproto import catalog, frame
HEAD = catalog.BY_TYPE[catalog.TELEMETRY][3]
ITEM = catalog.BY_TYPE[catalog.TELEMETRY][5]
HS = struct.calcsize(HEAD)
IS = struct.calcsize(ITEM)
N = %d

def run():
    w = frame.FrameWriter()
    r = frame.FrameReader()
    body = w.body
    t_pack = t_finish = t_read = 0
    k = 0
    while k < N:
        t0 = time.ticks_us()
        struct.pack_into(HEAD, body, 0, k, k * 1000, 1000, 1100, 0, 1)
        j = 0
        while j < 22:
            struct.pack_into(ITEM, body, HS + j * IS, j * 100, -j * 100, k & 0x7FFF, 0)
            j += 1
        t1 = time.ticks_us()
        f = w.finish(catalog.TELEMETRY, HS + 22 * IS)
        t2 = time.ticks_us()
        r.feed(f, 0, len(f))
        t3 = time.ticks_us()
        t_pack += time.ticks_diff(t1, t0)
        t_finish += time.ticks_diff(t2, t1)
        t_read += time.ticks_diff(t3, t2)
        k += 1
    print(t_pack / N, t_finish / N, t_read / N, r.frames, len(f))

run()
"""
BUILDS = ("viper COBS + binascii CRC", "viper COBS + viper CRC", "plain Python")


def board_costs(n: int, rounds: int) -> dict[str, list[float]]:
    """Per-frame µs (pack, finish, read) and frame size per build: the best of rounds,
    builds interleaved so a busy machine slows them alike."""
    env = dict(os.environ, MICROPYPATH=str(ROOT / "protocol"))
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for build in BUILDS * rounds:
            script = Path(tmp) / "bench.py"
            script.write_text(BOARD % (build, n))
            proc = subprocess.run([str(MICROPYTHON), str(script)], capture_output=True, text=True,
                                  env=env, timeout=120)
            if proc.returncode:
                raise SystemExit("MicroPython failed (%s):\n%s" % (build, proc.stderr))
            pack, finish, read, frames, size = proc.stdout.split()
            assert int(frames) == n, "the board reader lost frames"
            new = [float(pack), float(finish), float(read), int(size)]
            old = out.get(build)
            out[build] = new if old is None else [min(a, b) for a, b in zip(old, new)]
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: .venv/bin/python bench/protocol.py --frames 20000",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20000, help="frames for the host decoder (default 20000)")
    ap.add_argument("--board-frames", type=int, default=2000, help="frames per board build (default 2000)")
    ap.add_argument("--rounds", type=int, default=3, help="best of this many runs (default 3)")
    args = ap.parse_args(argv)

    wire = telemetry_stream(args.frames)
    size = len(wire) / args.frames
    print("22-joint TELEMETRY: %.0f bytes per frame on the wire" % size)
    print("host decode (4096-byte reads, best of %d)  frames/s     MB/s" % args.rounds)
    fast_t, fast_n = rate(stream.StreamDecoder, wire, args.rounds)
    base_frames = max(1, args.frames // 10)
    base_wire = wire[:int(size) * base_frames]
    base_t, base_n = rate(PlainPythonDecoder, base_wire, args.rounds)
    assert fast_n == args.frames and base_n == base_frames
    for name, t, n, nbytes in (("StreamDecoder (cobs C ext + zlib)", fast_t, fast_n, len(wire)),
                               ("plain-Python baseline", base_t, base_n, len(base_wire))):
        print("  %-36s %9.0f %8.2f" % (name, n / t, nbytes / t / 1e6))
    print("  speed-up: %.1fx" % ((fast_n / fast_t) / (base_n / base_t)))

    print("board side under the MicroPython Unix port, per frame (us, best of %d):" % args.rounds)
    print("  %-28s %8s %8s %8s" % ("build", "pack", "finish", "read"))
    costs = board_costs(args.board_frames, args.rounds)
    for build, (pack, finish, read, _) in costs.items():
        print("  %-28s %8.1f %8.1f %8.1f" % (build, pack, finish, read))
    base = costs["plain Python"]
    for build in BUILDS[:2]:
        c = costs[build]
        print("  %s vs plain Python: encode %.1fx, decode %.1fx faster"
              % (build, base[1] / c[1], base[2] / c[2]))
    print("  (pack: struct.pack_into of head and 22 items; finish: CRC + COBS + delimiter;"
          " read: FrameReader.feed of the whole frame)")


if __name__ == "__main__":
    main()
