"""What the physics world costs here: a physics step, a tactile frame, an RGB-D frame.

For each hand and task, a skilled simulated operator does the task (goals fed straight
to the motors, no firmware) while every physics step is timed: mean and 95th
percentile of one step (2 ms of world time), and the physics' real-time factor. The
tactile sensors' own share is the step cost with sensors on less the cost with them
off, in the same held grasp, times the steps between two tactile frames (60 Hz). A
tactile image is the gel shading of one pad's depths (a pressed pad and an untouched
one, which is a copy). An RGB-D frame is an offscreen EGL render plus the read-back and
conversion to BGR + uint16 millimetres, at 640x480 and 320x240, and at 640x480 as the
world's RGB-D camera does it, in its render process (dexlink.world.renderproc).

The last table adds it up per second of world time, as the world would run beside the
board: physics at 500 steps/s, four tactile pads at 60 Hz, RGB-D at 30 Hz.

    .venv/bin/python bench/world_physics.py
    .venv/bin/python bench/world_physics.py --hands iso16 --tasks lift_cube --frames 50
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "protocol"))
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from dexlink import hwconfig  # noqa: E402
from dexlink.world import tasks  # noqa: E402
from dexlink.world.operator import Operator, motor_goals  # noqa: E402
from dexlink.world.renderproc import RenderProcess  # noqa: E402
from dexlink.world.scene import TACTILE_HZ  # noqa: E402
from dexlink.world.sensors import GelShader, RGBDRenderer  # noqa: E402
from dexlink.world.world import World  # noqa: E402


def timed_episode(hand, task, seed, seconds):
    """Step costs (s) over an operated episode, and the world at its end."""
    world = World(hwconfig.HANDS / (hand + ".toml"), task, seed=seed)
    op = Operator(world, skill=0.9, seed=seed)
    costs = []
    steps = round(0.01 / world.timestep)
    while world.time < seconds:
        cmd = op.command(world.time, world.task_state())
        world.set_motor_goals(motor_goals(world, cmd.joints_deg))
        world.set_wrist(cmd.wrist_pos, cmd.wrist_quat)
        for _ in range(steps):
            t0 = time.perf_counter()
            mujoco.mj_step(world.model, world.data)
            costs.append(time.perf_counter() - t0)
        world.task.observe(world)
    return np.array(costs), world


def sensor_cost(world, n=300):
    """The cost of evaluating every pad's tactile sensor once: the step cost with them
    evaluated at every step less with sensors off, in the same held grasp."""
    m, d = world.model, world.data
    snapshot = mujoco.MjData(m)
    mujoco.mj_copyData(snapshot, m, d)
    interval = m.sensor_interval.copy()
    flags = m.opt.disableflags

    def run(off):
        m.opt.disableflags = flags | (mujoco.mjtDisableBit.mjDSBL_SENSOR if off else 0)
        mujoco.mj_copyData(d, m, snapshot)
        t0 = time.perf_counter()
        for _ in range(n):
            mujoco.mj_step(m, d)
        return (time.perf_counter() - t0) / n

    m.sensor_interval[:] = 0  # every step
    on, off = [], []
    for _ in range(5):  # interleaved: the machine is shared
        on.append(run(False))
        off.append(run(True))
    m.sensor_interval[:] = interval
    m.opt.disableflags = flags
    mujoco.mj_copyData(d, m, snapshot)
    return min(on), min(off)


def best_ms(fn, n):
    fn()
    blocks = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        blocks.append((time.perf_counter() - t0) / n * 1e3)
    return min(blocks)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hands", nargs="+", default=["iso16", "iso22", "tendon16"])
    ap.add_argument("--tasks", nargs="+", default=tasks.names())
    ap.add_argument("--seconds", type=float, default=6.0, help="world seconds per episode")
    ap.add_argument("--frames", type=int, default=30, help="frames per camera timing block")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    print("physics step (timestep 2 ms; an operated episode of %.0f s of world time)" % a.seconds)
    print("%-9s %-12s %9s %9s %9s %9s" % ("hand", "task", "mean us", "p95 us", "max us", "x real"))
    held, all_costs = None, []
    for hand in a.hands:
        for task in a.tasks:
            costs, world = timed_episode(hand, task, a.seed, a.seconds)
            all_costs.append(costs)
            print("%-9s %-12s %9.0f %9.0f %9.0f %9.1f" % (
                hand, task, costs.mean() * 1e6, np.percentile(costs, 95) * 1e6,
                costs.max() * 1e6, world.timestep / costs.mean()))
            if held is None and any(world.tactile_depth(f).any() for f in world.fingers):
                held = world
    mean_step = np.concatenate(all_costs).mean()

    print("\ntactile")
    if held is not None:
        on, off = sensor_cost(held)
        per_frame = max(0.0, on - off)
        print("  sensors every step %.0f us/step, off %.0f us/step: %.3f ms per tactile "
              "frame (all %d pads; %s holding %s)" % (on * 1e6, off * 1e6, per_frame * 1e3,
                                                len(held.fingers), held.hand_path.stem,
                                                held.task.name))
        pressed = max(held.fingers, key=lambda f: held.tactile_depth(f).max())
        depth = held.tactile_depth(pressed)
    else:
        print("  no pad touched in these episodes: the shading of a pressed pad is not timed")
        held, depth, per_frame = world, None, 0.0
    shader = GelShader(held.pad_half_size(held.fingers[0]))
    shade_pressed = best_ms(lambda: shader.shade(depth), a.frames) if depth is not None else 0.0
    shade_idle = best_ms(lambda: shader.shade(np.zeros((24, 32))), a.frames)
    print("  gel image 320x240: pressed pad %.2f ms, untouched pad %.2f ms"
          % (shade_pressed, shade_idle))

    print("\nRGB-D (EGL offscreen, no shadows, no multisampling; BGR + uint16 mm)")
    rgbd = {}
    for w, h in ((640, 480), (320, 240)):
        r = RGBDRenderer(held, w, h)
        try:
            rgbd[(w, h)] = best_ms(r.render, a.frames)
        finally:
            r.close()
        print("  %dx%d: %.2f ms a frame (%.0f frames/s on one core)" % (w, h, rgbd[(w, h)],
                                                                      1e3 / rgbd[(w, h)]))

    proc = RenderProcess(held)  # as the world's RGB-D camera renders: in a child process
    try:
        round_trip = best_ms(proc.render, a.frames)
        t0 = time.thread_time()
        for _ in range(a.frames):
            proc.render()
        caller = (time.thread_time() - t0) / a.frames * 1e3
    finally:
        proc.close()
    print("  640x480 in the render process (SCHED_IDLE, one rasteriser thread): %.2f ms a "
          "frame, %.2f ms of it on the calling thread (state in, frame out)"
          % (round_trip, caller))

    fingers = len(held.fingers)
    physics = 500 * mean_step * 1e3
    tactile = TACTILE_HZ * (per_frame * 1e3 + fingers * shade_pressed)
    camera = 30 * rgbd[(640, 480)]
    print("\nper second of world time (ms of CPU; physics: the mean step above): "
          "physics %.0f, tactile x%d at 60 Hz %.0f "
          "(worst case: every pad pressed), RGB-D 640x480 at 30 Hz %.0f; total %.0f ms "
          "= %.0f%% of one core" % (physics, fingers, tactile, camera,
                                   physics + tactile + camera,
                                   (physics + tactile + camera) / 10))
    return 0


if __name__ == "__main__":
    sys.exit(main())
