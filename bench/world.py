"""Recording in a physics world: what the MuJoCo world costs the firmware's 1 kHz loop.

Run A records one world episode (lift_cube, seed 3, skill 0.9 by default; --seconds
from the hand's power-on, past the world's verdict) from a virtual board running the real
firmware, with the world's four tactile cameras (60 fps) and its RGB-D camera (30 fps).
Prints the world's real-time factor (world time / wall time since the hand was powered),
the mean MuJoCo step cost, each camera's frame cost (the world's cameras make a frame
of each of the physics' exposures on their schedule: the round trip to their render or
tactile process), achieved rate and dropped frames (late: a frame slot went by without
a frame; refused: the recorder's queue was full), and the loop's rate and overruns (the
firmware's STATS), each with its 95 % interval. With --cpu, per thread of the host, the
interpreter and the render and tactile processes: CPU used and time spent waiting for a
core.
Run B, the baseline, records as long from the kinematic rig with its simulated cameras
and prints the loop's rate and overruns. Then a table of the goals, result, met or not:
real time (RTF >= 0.98), every sensor at its rate (>= 95 %), no camera frame dropped,
overruns with the world at most twice those without (over every run with --runs).

    python bench/world.py                 # 10 s from power-on (the verdict comes earlier)
    python bench/world.py --seconds 20
    python bench/world.py --cpu           # and who used the cores, who waited for one
    python bench/world.py --runs 5        # five A/B pairs, the goals judged on them all
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from dexlink.board import BoardOptions
from dexlink.learn.evaluate import Z95, wilson
from dexlink.record.recording import RecordOptions, open_recording
from dexlink.sim.worldbridge import WorldOptions
from dexlink.world.exposures import ExposureSource

RTF_GOAL = 0.98  # world time per wall second counted as real time
RATE_GOAL = 0.95  # achieved / nominal frame rate counted as "at its rate"
OVERRUN_RATIO_GOAL = 2.0
WORLD_START_S = 30.0  # how long the world may wait for the board to power the hand


class Timer:
    """Accumulated wall time of calls (thread-safe enough: one thread per timer)."""

    def __init__(self):
        self.n, self.total_s = 0, 0.0

    @property
    def mean_us(self) -> float:
        return 1e6 * self.total_s / max(1, self.n)


def time_calls(obj, name: str, timer: Timer) -> None:
    """Wrap obj.name (an instance attribute from now on) so each call adds to timer."""
    inner = getattr(obj, name)

    def timed(*a, **kw):
        t = time.perf_counter()
        try:
            return inner(*a, **kw)
        finally:
            timer.total_s += time.perf_counter() - t
            timer.n += 1
    setattr(obj, name, timed)


def on_exposures(cam) -> bool:
    """A world camera whose frames its ExposureSource makes (and times)."""
    return isinstance(getattr(cam, "source", None), ExposureSource)


def time_frames(cam, timer: Timer) -> None:
    """A camera's frame cost: from its pacer's slot to the frame made (waits excluded)."""
    slot = threading.local()
    next_slot, grab = cam._next_slot, cam._grab

    def timed_slot():
        ok = next_slot()
        slot.t = time.perf_counter()
        return ok

    def timed_grab():
        slot.t = None
        frame = grab()
        if frame is not None and getattr(slot, "t", None) is not None:
            timer.total_s += time.perf_counter() - slot.t
            timer.n += 1
        return frame
    cam._next_slot, cam._grab = timed_slot, timed_grab


class CpuUse:
    """CPU time and run-queue wait (the kernel's schedstat, ns) of every thread of this
    process and of its child processes (the board's interpreter, the render process):
    who uses the cores, and who waits for one."""

    def __init__(self, interpreter_pid: int | None):
        self.interpreter_pid = interpreter_pid
        self.start = self._sample()

    def _pids(self) -> list[int]:
        pids, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for tid in self._listdir("/proc/%d/task" % pid):
                todo += [int(c) for c in self._read("/proc/%d/task/%s/children" % (pid, tid)).split()]
        return pids

    @staticmethod
    def _listdir(path):
        try:
            return os.listdir(path)
        except OSError:
            return []

    @staticmethod
    def _read(path) -> str:
        try:
            with open(path) as f:
                return f.read()
        except OSError:  # the thread or process ended meanwhile
            return ""

    def _label(self, pid: int, tid: int, names: dict) -> str:
        if pid == os.getpid():
            return "host " + names.get(tid, self._read("/proc/%d/task/%d/comm" % (pid, tid)).strip())
        if pid == self.interpreter_pid:
            return "interpreter"
        argv = self._read("/proc/%d/cmdline" % pid).split("\0")
        module = argv[argv.index("-m") + 1].rsplit(".", 1)[-1] if "-m" in argv else argv[0]
        return "%s %s" % (module, self._read("/proc/%d/task/%d/comm" % (pid, tid)).strip())

    def _sample(self) -> dict:
        names = {t.native_id: t.name for t in threading.enumerate()}
        out = {}
        for pid in self._pids():
            for tid in map(int, self._listdir("/proc/%d/task" % pid)):
                fields = self._read("/proc/%d/task/%d/schedstat" % (pid, tid)).split()
                if len(fields) == 3:
                    out[(pid, tid)] = (self._label(pid, tid, names), int(fields[0]), int(fields[1]))
        return out

    def rows(self, wall_s: float) -> list[tuple[str, float, float]]:
        """(thread, CPU ms/s, run-queue wait ms/s), threads of one name summed, by CPU."""
        per: dict[str, list[float]] = {}
        for key, (label, run, wait) in self._sample().items():
            _, run0, wait0 = self.start.get(key, (label, 0, 0))
            row = per.setdefault(label, [0.0, 0.0])
            row[0] += (run - run0) / wall_s / 1e6
            row[1] += (wait - wait0) / wall_s / 1e6
        return sorted(((k, v[0], v[1]) for k, v in per.items()), key=lambda r: -r[1])


def cpu_lines(rows, min_ms: float = 5.0) -> list[str]:
    total = sum(r[1] for r in rows)
    lines = ["  %-30s %9s %15s" % ("thread (ms per second)", "CPU", "waiting for CPU")]
    lines += ["  %-30s %9.0f %15.0f" % r for r in rows if r[1] >= min_ms]
    lines.append("  %-30s %9.0f" % ("all", total))
    return lines


def loop_figures(link, s0, s1, wall_s: float) -> dict:
    cycles, over = s1.cycles - s0.cycles, s1.overruns - s0.overruns
    return dict(hz=cycles / wall_s, cycles=cycles, overruns=over,
                pct=100 * over / max(1, cycles), worst=s1.worst_cycle_us)


def camera_counts(rec) -> dict:
    return {c.name: (c.stats.captured, c.stats.missed, c.stats.refused) for c in rec.recorder.cameras}


def camera_rows(rec, c0, c1, wall_s: float) -> list[dict]:
    rows = []
    for c in rec.recorder.cameras:
        cap, missed, refused = (b - a for a, b in zip(c0[c.name], c1[c.name]))
        rows.append(dict(name=c.name, kind=c.kind, fps=c.fps, size="%dx%d" % (c.width, c.height),
                         captured=cap, rate=cap / wall_s, dropped=missed + refused,
                         late=missed, refused=refused))
    return rows


def run_world(args, out: Path) -> dict:
    world_opts = WorldOptions(args.task, seed=args.seed, skill=args.skill)
    options = RecordOptions(task=args.task, out=out / "world", board=BoardOptions(world=world_opts))
    with open_recording(options) as rec:
        vb = rec.virtual
        world, bridge = vb.world, vb.world_link
        step_t = Timer()
        time_calls(world, "step", step_t)
        frame_t = {c.name: Timer() for c in rec.recorder.cameras}
        for c in rec.recorder.cameras:
            if not on_exposures(c):
                time_frames(c, frame_t[c.name])
        sources = {id(c.source): c.source for c in rec.recorder.cameras if on_exposures(c)}
        rec.recorder.start_episode()
        give_up = time.monotonic() + WORLD_START_S
        while bridge.started_at is None and time.monotonic() < give_up:
            time.sleep(0.01)
        if bridge.started_at is None:
            raise SystemExit("the board never powered the hand: the world did not start")
        # from the hand's power-on: the world's clock and the loop's, side by side
        s0, c0, h0, steps0 = rec.link.get_stats(), camera_counts(rec), time.monotonic(), \
            bridge.stats["steps"]
        cpu = CpuUse(vb.interpreter_pid)
        sched = scheduling(vb.interpreter_pid)
        wt0 = world.time
        step_t.n, step_t.total_s = 0, 0.0
        for t in frame_t.values():
            t.n, t.total_s = 0, 0.0
        made0 = {k: (src.made, src.made_s) for k, src in sources.items()}
        while time.monotonic() - h0 < args.seconds:  # past the verdict: the world goes on
            time.sleep(0.02)
        s1, c1, h1 = rec.link.get_stats(), camera_counts(rec), time.monotonic()
        wt1, steps1 = world.time, bridge.stats["steps"]
        cpu_rows = cpu.rows(h1 - h0)
        for c in rec.recorder.cameras:  # the world's frames' cost: shared by their source
            if on_exposures(c):
                n0, s0_ = made0[id(c.source)]
                frame_t[c.name].n = c.source.made - n0
                frame_t[c.name].total_s = c.source.made_s - s0_
        verdict = world.judge()
        rec.recorder.stop_episode(keep=True)
        wall = h1 - h0
        result = dict(wall=wall, world_s=wt1 - wt0, rtf=(wt1 - wt0) / wall,
                      steps=steps1 - steps0, step_us=step_t.mean_us, verdict=verdict,
                      states_dropped=bridge.stats["states_dropped"],
                      loop=loop_figures(rec.link, s0, s1, wall),
                      cams=camera_rows(rec, c0, c1, wall),
                      frame_us={n: t.mean_us for n, t in frame_t.items()}, cpu=cpu_rows,
                      sched=sched)
    res = rec.result()
    result["errors"] = res.errors
    return result


def run_baseline(args, out: Path, seconds: float) -> dict:
    options = RecordOptions(task="baseline", out=out / "baseline", board=BoardOptions())
    with open_recording(options) as rec:
        rec.recorder.start_episode()
        s0, c0, h0 = rec.link.get_stats(), camera_counts(rec), time.monotonic()
        cpu = CpuUse(rec.virtual.interpreter_pid)
        time.sleep(seconds)
        s1, c1, h1 = rec.link.get_stats(), camera_counts(rec), time.monotonic()
        cpu_rows = cpu.rows(h1 - h0)
        rec.recorder.stop_episode(keep=True)
        wall = h1 - h0
        result = dict(wall=wall, loop=loop_figures(rec.link, s0, s1, wall),
                      cams=camera_rows(rec, c0, c1, wall), cpu=cpu_rows)
    result["errors"] = rec.result().errors
    return result


def scheduling(pid: int) -> str:
    """How the board's interpreter is scheduled (sim.interpreter.favour_board: real-time
    where the host may, else nice -5, else as it is): the overrun figures depend on it."""
    try:
        if os.sched_getscheduler(pid) == os.SCHED_FIFO:
            return "SCHED_FIFO"
        return "nice %d" % os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return "unknown"


def loop_line(lp: dict) -> str:
    lo, hi = wilson(lp["overruns"], lp["cycles"])
    return "%.1f Hz, %d overruns of %d cycles (%.2f %%, 95 %% interval %.2f-%.2f %%), " \
        "worst cycle %d us" % (lp["hz"], lp["overruns"], lp["cycles"], lp["pct"], 100 * lo,
                               100 * hi, lp["worst"])


def ratio_interval(a: dict, b: dict) -> tuple[float, float]:
    """95 % interval of the ratio of two overrun rates (Katz's log method): how far the
    ratio of a few dozen overruns can move by chance alone. (0, inf) when either is 0."""
    x, n, y, m = a["overruns"], a["cycles"], b["overruns"], b["cycles"]
    if not (x and y):
        return 0.0, float("inf")
    ratio = (x / n) / (y / m)
    se = math.sqrt(1 / x - 1 / n + 1 / y - 1 / m)
    return ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example: python bench/world.py --seconds 20 --cpu")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="how long to measure from the hand's power-on (default 10), past the "
                        "world's verdict (the world goes on); the baseline records as long")
    p.add_argument("--task", default="lift_cube", help="world task (default lift_cube)")
    p.add_argument("--seed", type=int, default=3, help="world seed (default 3)")
    p.add_argument("--skill", type=float, default=0.9, help="operator skill 0..1 (default 0.9)")
    p.add_argument("--cpu", action="store_true",
                   help="per thread (and child process): CPU used and time spent waiting "
                        "for a core, in ms per second of each run")
    p.add_argument("--runs", type=int, default=1,
                   help="runs of A then B (default 1); the goals are judged on them all, "
                        "drops and overruns summed: a few overruns a run say little alone")
    args = p.parse_args(argv)
    if args.seconds <= 0:
        p.error("--seconds must be positive")
    if args.runs < 1:
        p.error("--runs must be at least 1")

    runs = []
    for i in range(args.runs):
        out = Path(tempfile.mkdtemp(prefix="dexlink-bench-world-"))
        try:
            a = run_world(args, out)
            b = run_baseline(args, out, a["wall"])
        finally:
            shutil.rmtree(out, ignore_errors=True)
        if args.runs > 1:
            print("run %d of %d" % (i + 1, args.runs))
        print_run(args, a, b)
        runs.append((a, b))
    if args.runs > 1:
        print("goals over the %d runs (drops and overruns summed)" % args.runs)
    print("%-50s %-56s %s" % ("goal", "result", "met?"))
    for name, result, met in goal_rows(runs):
        print("%-50s %-56s %s" % (name, result, "met" if met else "MISSED"))
    for a, b in runs:
        for err in a["errors"] + b["errors"]:
            print("recording error: " + err)
    return 0


def overrun_ratio(a: dict, b: dict) -> float:
    if b["pct"] > 0:
        return a["pct"] / b["pct"]
    return 0.0 if a["pct"] == 0 else float("inf")


def print_run(args, a: dict, b: dict) -> None:
    print("A: world %s seed %d skill %g, %.1f s wall from power-on, verdict %s"
          % (args.task, args.seed, args.skill, a["wall"], a["verdict"] or "none yet"))
    print("  real-time factor %.3f (%.2f s of world in %.2f s), %d physics steps, "
          "mean step %.0f us, states dropped %d"
          % (a["rtf"], a["world_s"], a["wall"], a["steps"], a["step_us"], a["states_dropped"]))
    print("  %-8s %-8s %6s %9s %9s %9s %8s %6s %8s" % (
        "camera", "size", "fps", "frame us", "captured", "achieved", "dropped", "late",
        "refused"))
    for c in a["cams"]:
        print("  %-8s %-8s %6g %9.0f %9d %8.1f %8d %6d %8d"
              % (c["name"], c["size"], c["fps"], a["frame_us"][c["name"]], c["captured"],
                 c["rate"], c["dropped"], c["late"], c["refused"]))
    print("  loop with the world:    " + loop_line(a["loop"]))
    print("  board interpreter scheduled: %s" % a["sched"])
    if args.cpu:
        print("\n".join(cpu_lines(a["cpu"])))
    print("B: kinematic rig, simulated cameras, %.1f s" % b["wall"])
    print("  loop without the world: " + loop_line(b["loop"]))
    if args.cpu:
        print("\n".join(cpu_lines(b["cpu"])))
    r_lo, r_hi = ratio_interval(a["loop"], b["loop"])
    print("overruns with / without the world: %.2f %% / %.2f %% = %.2fx (goal <= %gx; "
          "95 %% interval of the ratio %.2f-%.2fx: longer runs narrow it)"
          % (a["loop"]["pct"], b["loop"]["pct"], overrun_ratio(a["loop"], b["loop"]),
             OVERRUN_RATIO_GOAL, r_lo, r_hi))


def pooled_loop(loops: list[dict]) -> dict:
    over, cycles = sum(lp["overruns"] for lp in loops), sum(lp["cycles"] for lp in loops)
    return dict(overruns=over, cycles=cycles, pct=100 * over / max(1, cycles))


def goal_rows(runs: list) -> list[tuple[str, str, bool]]:
    """The goals over every run: the worst RTF and rate, drops and overruns summed."""
    rtf = min(a["rtf"] for a, _ in runs)
    cams = [c for a, _ in runs for c in a["cams"]]
    slowest = min(cams, key=lambda c: c["rate"] / c["fps"])
    dropped = {}
    for c in cams:
        dropped[c["name"]] = dropped.get(c["name"], 0) + c["dropped"]
    with_w = pooled_loop([a["loop"] for a, _ in runs])
    without = pooled_loop([b["loop"] for _, b in runs])
    ratio = overrun_ratio(with_w, without)
    r_lo, r_hi = ratio_interval(with_w, without)
    return [
        ("real time (RTF >= %.2f)" % RTF_GOAL, "RTF %.3f" % rtf, rtf >= RTF_GOAL),
        ("every sensor at its rate (>= %d %% of nominal)" % (100 * RATE_GOAL),
         "slowest %s %.1f of %g fps" % (slowest["name"], slowest["rate"], slowest["fps"]),
         all(c["rate"] >= RATE_GOAL * c["fps"] for c in cams)),
        ("no camera frames dropped", "%d dropped (%s)" % (sum(dropped.values()), ", ".join(
            "%s %d" % kv for kv in dropped.items())), not any(dropped.values())),
        ("loop overruns at most %gx those without the world" % OVERRUN_RATIO_GOAL,
         "%.2fx (%d / %d overruns; 95 %% %.2f-%.2fx)" % (
             ratio, with_w["overruns"], without["overruns"], r_lo, r_hi),
         ratio <= OVERRUN_RATIO_GOAL),
    ]


if __name__ == "__main__":
    sys.exit(main())
