"""Smoothness at chunk boundaries: the servo goal's largest step between 1 ms cycles while
the firmware plays a policy's action chunks (TARGET_POINTS), interpolated versus stepwise.

The real firmware loop (dexfw) on the simulated rig (the real drivers, the simulated
devices, a manual clock) under `.venv/bin/micropython`. A policy is played as a reference
motion (a slow sine per joint, 20 degrees, 0.5 Hz: about 60 degrees a second at its fastest)
predicted in chunks: every `execute` actions an observation is taken, and `latency_ms` later
a chunk of `horizon` points at `fps` arrives, each chunk off the reference by its own random
offset of up to `disagree_deg` (two predictions never agree exactly). The board replaces the
queued points from the chunk's time on, as Link.send_points makes it do.

Per shape of interpolation (the board's cubic; linear; stepwise = each point held until the
next, what TARGETS streamed at the action rate give) it reports the largest step of the
goal between cycles (cdeg) over the run and within one action period after each chunk
arrives, the largest step of the target before the speed limit, and the cycles the speed
limit had to act in. Goal: no goal step at a boundary larger than the speed limit allows
(the interpolated target stays under it, so the limit never has to act).

    .venv/bin/python bench/points.py
    .venv/bin/python bench/points.py --fps 20 --horizon 16 --execute 8 --seconds 6

`boundary_steps(...)` returns the same figures as a dict, for bench/policy.py, and
`sample_cost(...)` what playing points adds to a cycle: the µs of one Trajectory.sample()
(segment, weights, blend of every joint, clip) on this host's CPU, viper and plain (a
133 MHz RP2040 is tens of times slower: bench/firmware.py's caveat).
"""
from __future__ import annotations

import argparse
import json
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
SHAPES = ("cubic", "linear", "stepwise")

# The real firmware on the simulated rig behind a BufferConsole, in HOST mode, and the
# host's side of TARGET_POINTS framed by the board's own FrameWriter (the host's encoder
# is CPython's): `fw`, `jm`, `con`, send_points(), heartbeat(), board_now(). Shared with
# tests/test_trajectory.py (rig_script).
RIG = r'''
import json, struct, math, random, vworld, vmachine
vworld.manual_clock()
cfg = json.loads(%r)
vmachine.load_rig(cfg)
from dexfw import build, trajectory
from dexfw.bufconsole import BufferConsole
from dexfw.loop import Firmware
from dexproto.frame import FrameWriter
from dexproto import catalog as C
enc, srv = build.build(vmachine, cfg)
con = BufferConsole()
fw = Firmware(vmachine, con, cfg, enc, srv, 0, b"virtual")
jm = fw.jm
n = jm.n
host = FrameWriter()
PER_FRAME = (C.MAX_PAYLOAD - C.HEADER_SIZE - 9) // (2 * n)
def send_points(t0, step, rows, flags=C.POINTS_REPLACE, extra=0):
    """A chunk as Link.send_points sends it: frames of PER_FRAME points, the later ones
    appended. extra: bytes past the points (a malformed frame)."""
    for first in range(0, len(rows), PER_FRAME):
        struct.pack_into("<IIB", host.body, 0, t0 + first * step, step,
                         flags if first == 0 else 0)
        at = 9
        for r in rows[first:first + PER_FRAME]:
            for v in r:
                struct.pack_into("<h", host.body, at, v)
                at += 2
        con.feed(bytes(host.finish(C.TARGET_POINTS, at + extra)))
def heartbeat():
    con.feed(bytes(host.finish(C.HEARTBEAT, 0)))
def board_now():
    return vmachine.ticks_us()
fw.run(300)
while not fw.set_mode(C.MODE_HOST):
    fw.run(1)
'''


def rig_script(cfg: dict, body: str) -> str:
    """A MicroPython script: the rig for cfg in HOST mode (RIG), then body."""
    return RIG % dumps(cfg) + body


SCRIPT = r'''
FPS, HORIZON, EXECUTE = %(fps)d, %(horizon)d, %(execute)d
STEP_US = 1000000 // FPS
LATENCY_US = %(latency_us)d
DISAGREE = %(disagree_cdeg)d
CYCLES = %(cycles)d
WARMUP = 1000
mid = [(jm.lo[j] + jm.hi[j]) // 2 for j in range(n)]
amp = [min(2000, (jm.hi[j] - jm.lo[j]) // 3) for j in range(n)]
def ref(t, j):
    return mid[j] + int(amp[j] * math.sin(2 * math.pi * 0.5 * t / 1000000 + j))
def play(shape):
    random.seed(1)
    fw.points.shape = shape
    start = vmachine.ticks_us()
    period = EXECUTE * STEP_US
    next_obs = start
    pending = None
    prev_goal = [jm.goal[j] for j in range(n)]
    prev_host = [jm.host[j] for j in range(n)]
    worst = worst_edge = worst_target = limited = 0
    edge_until = -1
    for c in range(CYCLES):
        now = vmachine.ticks_us()
        if now >= next_obs:
            off = [random.randint(-DISAGREE, DISAGREE) for j in range(n)]
            rows = [[ref(next_obs + i * STEP_US, j) + off[j] for j in range(n)]
                    for i in range(HORIZON)]
            pending = (next_obs, rows, next_obs + LATENCY_US)
            next_obs += period
        if pending is not None and now >= pending[2]:
            send_points(pending[0], STEP_US, pending[1])
            pending = None
            edge_until = now + STEP_US
        if c %% 50 == 0:
            heartbeat()
        fw.run(1)
        con.take()
        if c < WARMUP:
            prev_goal = [jm.goal[j] for j in range(n)]
            prev_host = [jm.host[j] for j in range(n)]
            continue
        step = max(abs(jm.goal[j] - prev_goal[j]) for j in range(n))
        worst = max(worst, step)
        if now <= edge_until:
            worst_edge = max(worst_edge, step)
        worst_target = max(worst_target, max(abs(jm.host[j] - prev_host[j]) for j in range(n)))
        limited += any(jm.flags[j] & C.ST_LIMITED for j in range(n))
        prev_goal = [jm.goal[j] for j in range(n)]
        prev_host = [jm.host[j] for j in range(n)]
    return {"max_goal_step_cdeg": worst, "max_boundary_step_cdeg": worst_edge,
            "max_target_step_cdeg": worst_target, "limited_cycles": limited,
            "cycles": CYCLES - WARMUP, "dropped_points": fw.points.dropped}
out = {"speed_limit_step_cdeg": min(jm.step[j] for j in range(n)), "loop_hz": fw.hz,
       "viper": trajectory.VIPER}
for name, shape in (("cubic", trajectory.SHAPE_CUBIC), ("linear", trajectory.SHAPE_LINEAR),
                    ("stepwise", trajectory.SHAPE_STEP)):
    out[name] = play(shape)
print("RESULT " + json.dumps(out))
'''


COST = r'''
import time
tr = fw.points
n = fw.jm.n
def fill():
    tr.clear()
    tr.first = 0
    for i in range(16):
        tr._push(i * 20000)
        for j in range(n):
            tr.q[i * n + j] = (i * 97 + j * 13) % 3000
out = {}
for name, viper in (("viper", True), ("plain", False)):
    trajectory.select(viper)
    best = 1 << 30
    for rep in range(5):
        fill()
        t = 20000
        start = time.ticks_us()
        for k in range(2000):
            tr.sample(t)
            t += 100  # 2000 cycles over 10 points: segment changes included
        best = min(best, time.ticks_diff(time.ticks_us(), start))
    out[name] = best / 2000
trajectory.select(True)
print("RESULT " + json.dumps(out))
'''


def _micropython(source: str) -> dict:
    """Run a script on the simulated rig's paths; its RESULT line as a dict."""
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(str(p) for p in (
        ROOT / "host" / "dexlink" / "sim" / "board", ROOT / "protocol", ROOT / "firmware"))
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "points.py"
        script.write_text(source)
        proc = subprocess.run([str(MICROPYTHON), str(script)], capture_output=True, text=True,
                              env=env, cwd=tmp, timeout=600)
    if proc.returncode != 0:
        raise SystemExit("bench/points.py: MicroPython failed:\n%s%s" % (proc.stdout, proc.stderr))
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][0]
    return json.loads(line[len("RESULT "):])


def sample_cost(hand: str = "iso16") -> dict:
    """µs per Trajectory.sample() on this host: {"viper": ..., "plain": ...}."""
    cfg = compile_config(ROOT / "hardware" / "hands" / ("%s.toml" % hand), "virtual")
    return _micropython(rig_script(cfg, COST))


def boundary_steps(fps: int = 10, horizon: int = 16, execute: int = 8, seconds: float = 5.0,
                   latency_ms: float = 30.0, disagree_deg: float = 1.5,
                   hand: str = "iso16") -> dict:
    """The figures above for one policy timing; {"speed_limit_step_cdeg", "loop_hz",
    "viper", "cubic": {...}, "linear": {...}, "stepwise": {...}}."""
    cfg = compile_config(ROOT / "hardware" / "hands" / ("%s.toml" % hand), "virtual")
    cycles = int(seconds * cfg["loop"]["hz"]) + 1000
    source = rig_script(cfg, SCRIPT % {"fps": fps, "horizon": horizon, "execute": execute,
                       "latency_us": int(latency_ms * 1000),
                       "disagree_cdeg": int(disagree_deg * 100), "cycles": cycles})
    return _micropython(source)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: .venv/bin/python bench/points.py --fps 20")
    ap.add_argument("--fps", type=int, default=10, help="actions per second (default 10)")
    ap.add_argument("--horizon", type=int, default=16, help="points per chunk (default 16)")
    ap.add_argument("--execute", type=int, default=8,
                    help="actions played before the next chunk (default 8)")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured time (default 5)")
    ap.add_argument("--latency-ms", type=float, default=30.0,
                    help="observation to chunk on the board (default 30)")
    ap.add_argument("--disagree-deg", type=float, default=1.5,
                    help="largest offset of a chunk from the motion (default 1.5)")
    ap.add_argument("--hand", default="iso16", help="hand file in hardware/hands (default iso16)")
    args = ap.parse_args()
    r = boundary_steps(args.fps, args.horizon, args.execute, args.seconds, args.latency_ms,
                       args.disagree_deg, args.hand)
    limit = r["speed_limit_step_cdeg"]
    print("%s at %d Hz, %d-point chunks at %d fps, a new one every %d actions (viper %s); "
          "speed limit %d cdeg per cycle" % (args.hand, r["loop_hz"], args.horizon, args.fps,
                                             args.execute, r["viper"], limit))
    print("%-9s %16s %16s %16s %14s" % ("shape", "max goal step", "at boundaries",
                                        "target step", "limited"))
    for shape in SHAPES:
        s = r[shape]
        print("%-9s %11d cdeg %11d cdeg %11d cdeg %7d/%d %s" % (
            shape, s["max_goal_step_cdeg"], s["max_boundary_step_cdeg"],
            s["max_target_step_cdeg"], s["limited_cycles"], s["cycles"],
            "ok" if s["max_target_step_cdeg"] <= limit else "over the limit"))
    cost = sample_cost(args.hand)
    print("Trajectory.sample() per cycle on this host: %.1f µs viper, %.1f µs plain"
          % (cost["viper"], cost["plain"]))


if __name__ == "__main__":
    main()
