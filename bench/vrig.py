"""What one cycle of the virtual board costs, part by part, and which hot functions get a
heap frame.

Part 1 builds each hand's simulated rig (vmachine.load_rig) and the real firmware
(dexfw.build) in the MicroPython Unix port, on the world's manual clock (1000 us per
cycle: deterministic), in TELEOP, and times: a whole cycle, the encoder sweep (drivers +
I2C/SPI dispatch + register models + operator), the servo bus (sync write + poll:
drivers + packet parsing + servo dynamics), the operator alone (raw_turn16 of every
joint) and the board clock (vmachine.ticks_us). Each figure is the best mean over
blocks of 20 calls: this host is shared, and the best block is the least disturbed.
It also prints a fingerprint of what the firmware read (raws and present positions of
500 cycles): equal fingerprints mean the drivers saw the same bytes (`--exact` turns
the operator's 100 us tick off, so a tree from before that change compares too).

Part 2 compiles the rig's and the drivers' modules with mpy-cross and lists functions
whose frame MicroPython puts on the heap (n_state * 8 + n_exc_stack * 24 > 88 bytes:
a gc_alloc + gc_free per call, ~18k instructions on a used heap). In a per-cycle path
that is the rig's main cost after the bytecode itself.

    .venv/bin/python bench/vrig.py
    .venv/bin/python bench/vrig.py --hands iso16 --against /tmp/old/board --exact
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "protocol"))
from dexlink.hwconfig import compile_config, dumps  # noqa: E402

MICROPYTHON = Path(sys.executable).parent / "micropython"
MPY_CROSS = Path(sys.executable).parent / "mpy-cross"
BOARD = ROOT / "host" / "dexlink" / "sim" / "board"
HANDS = ("iso16", "iso22", "tendon16")
RIG_MODULES = ("vmachine", "vi2c", "vspi", "vservo", "voperator", "vworld")
DRIVERS = ("i2cmux", "as5600", "mt6701", "as5048a", "servobus", "feetech", "dynamixel")

SCRIPT = '''
import json, time, vworld, vmachine, voperator
cfg = json.loads(%r)
vworld.manual_clock()
if %r:
    voperator.TICK_US = 1
vmachine.load_rig(cfg)
from dexfw.bufconsole import BufferConsole
from dexfw import build
from dexfw.loop import Firmware
enc, srv = build.build(vmachine, cfg)
con = BufferConsole()
fw = Firmware(vmachine, con, cfg, enc, srv, 0, b"virtual")
jm = fw.jm
op = vworld.operator
def cycle():
    fw.cycle(vmachine.ticks_us())
    con.tx_len = 0
def encoders():
    for e in enc:
        e.sample(jm.raw, jm.enc_status)
def servos():
    for b in srv:
        b.write_goals(jm.servo_goal)
    for b in srv:
        b.poll(jm.present, jm.servo_status)
def operator():
    now = vworld.now_us()
    for j in range(jm.n):
        op.raw_turn16(j, now)
def run(f, n):
    for i in range(n):
        vworld.advance_us(1000)
        f()
def best_us(f, blocks=%d, per=20):
    best = 1 << 30
    for b in range(blocks):
        t0 = time.ticks_us()
        run(f, per)
        best = min(best, time.ticks_diff(time.ticks_us(), t0))
    return best / per
run(cycle, 300)
fw.set_mode(1)
run(cycle, 300)
for name, f in (("cycle", cycle), ("encoders", encoders), ("servos", servos),
                ("operator", operator), ("ticks_us", vmachine.ticks_us)):
    print(name, best_us(f))
h = 0
for i in range(500):
    vworld.advance_us(1000)
    cycle()
    for j in range(jm.n):
        h = (h * 31 + jm.raw[j] + 7 * jm.present[j]) & 0xFFFFFFFF
print("fingerprint", h)
'''
PARTS = ("cycle", "encoders", "servos", "operator", "ticks_us")


def run_rig(hand: str, board: Path, exact: bool, blocks: int) -> dict:
    cfg = compile_config(ROOT / "hardware" / "hands" / (hand + ".toml"), "virtual")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "rig.py")
        script.write_text(SCRIPT % (dumps(cfg), exact, blocks))
        paths = [board, ROOT / "protocol", ROOT / "firmware", ".frozen"]
        env = dict(os.environ, MICROPYPATH=":".join(str(p) for p in paths))
        proc = subprocess.run([str(MICROPYTHON), str(script)], env=env, cwd=tmp,
                              capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise SystemExit("micropython failed (%s, %s):\n%s%s"
                         % (hand, board, proc.stdout, proc.stderr))
    out = {}
    for line in proc.stdout.split("\n"):
        if line.strip():
            name, value = line.split()
            out[name] = float(value) if name != "fingerprint" else value
    return out


# ---- part 2: frames on the heap, from the .mpy prelude (format 6) --------------------
def _vuint(b: bytes, i: int) -> tuple[int, int]:
    v = 0
    while True:
        c = b[i]
        i += 1
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            return v, i


def _skip_obj(b: bytes, i: int) -> int:
    kind = b[i]  # 0..4: no payload; 5 str, 6 bytes (NUL-ended); 7-9 numbers; 10 tuple
    i += 1
    if kind <= 4:
        return i
    n, i = _vuint(b, i)
    if kind == 10:
        for _ in range(n):
            i = _skip_obj(b, i)
        return i
    return i + n + (1 if kind in (5, 6) else 0)


def heap_frames(source: Path) -> list[tuple[str, int, int]]:
    """(function, n_state, n_exc_stack) of every bytecode function whose frame is heap."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "m.mpy")
        subprocess.run([str(MPY_CROSS), str(source), "-o", str(out)], check=True)
        b = out.read_bytes()
    if b[:2] != b"M\x06":
        raise SystemExit("%s: mpy-cross wrote format %r, this reads 6" % (source, b[:2]))
    n_qstr, i = _vuint(b, 4)
    n_obj, i = _vuint(b, i)
    names = []
    for _ in range(n_qstr):
        n, i = _vuint(b, i)
        if n & 1:
            names.append("<static qstr %d>" % (n >> 1))
            continue
        names.append(b[i:i + (n >> 1)].decode())
        i += (n >> 1) + 1
    for _ in range(n_obj):
        i = _skip_obj(b, i)
    found = []

    def raw_code(i: int) -> int:
        kind_len, i = _vuint(b, i)
        data, i = b[i:i + (kind_len >> 3)], i + (kind_len >> 3)
        if (kind_len & 3) == 0:  # bytecode (kind - MP_CODE_BYTECODE): n_state, n_exc
            z, j = data[0], 1
            state, exc, n = (z >> 3) & 0xF, (z >> 2) & 1, 0
            while z & 0x80:
                z, j = data[j], j + 1
                state |= (z & 0x30) << (2 * n)
                exc |= (z & 0x02) << n
                n += 1
            state += 1
            z, j = data[j], j + 1  # the prelude's size, then the function's name
            while z & 0x80:
                z, j = data[j], j + 1
            name, _ = _vuint(data, j)
            if state * 8 + exc * 24 > 88:
                found.append((names[name] if name < len(names) else "?", state, exc))
        if kind_len & 4:
            children, i = _vuint(b, i)
            for _ in range(children):
                i = raw_code(i)
        return i

    raw_code(i)
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: .venv/bin/python bench/vrig.py --hands iso16 iso22",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hands", nargs="+", default=list(HANDS), help="hands (all three)")
    ap.add_argument("--against", type=Path,
                    help="another copy of host/dexlink/sim/board to measure in the same run")
    ap.add_argument("--exact", action="store_true",
                    help="operator evaluated at every read (tick off): fingerprints compare")
    ap.add_argument("--blocks", type=int, default=150, help="blocks of 20 calls (150)")
    args = ap.parse_args(argv)
    if args.against is not None and not (args.against / "vmachine.py").is_file():
        raise SystemExit("--against %s: no vmachine.py there" % args.against)

    trees = [("now", BOARD)] + ([("against", args.against)] if args.against else [])
    print("Virtual-board cycle by part, MicroPython Unix port, manual clock, us "
          "(best block mean)")
    print("%-9s %-8s" % ("hand", "tree") + "".join("%10s" % p for p in PARTS) + "  fingerprint")
    for hand in args.hands:
        for label, board in trees:
            r = run_rig(hand, board, args.exact, args.blocks)
            print("%-9s %-8s" % (hand, label) + "".join("%10.1f" % r[p] for p in PARTS)
                  + "  " + r["fingerprint"])

    print("\nFunctions with a heap frame (a gc_alloc + gc_free per call):")
    sources = [BOARD / (m + ".py") for m in RIG_MODULES]
    sources += [ROOT / "firmware" / "dexfw" / "drivers" / (m + ".py") for m in DRIVERS]
    for source in sources:
        frames = [f for f in heap_frames(source) if not f[0].startswith("<")]
        if frames:
            print("  %-22s %s" % (source.name, ", ".join(
                "%s (%d%s)" % (n, s, " +%d exc" % e if e else "") for n, s, e in frames)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
