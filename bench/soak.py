"""Soak: a long virtual-board session at 1 kHz in TELEOP, simulated tactile and RGB-D
cameras, recording back-to-back episodes, exactly as `dexlink record --sim` does (the
same board, link, recorder and cameras, through dexlink.record.recording.open_recording).

Prints, for the whole run: loop overruns (the firmware's STATS), link drops (the host
decoder's drops, sequence gaps, disconnects; the board's receive drops), telemetry lost
(gaps in the cycle numbers recorded in each episode), camera drops, memory of the host
process (RSS, its trend, and the trend of each episode's lowest RSS: what stays once a
backlog is written; the Python heap by tracemalloc, and what grew most between the end
of the first episode and the end of the run, by traceback), the host's CPU time and page
faults, memory of the board (interpreter heap from STATS heap_alloc / heap_free, and the
interpreter process's RSS), sampled along the way, and episode files written vs valid:
every file re-opened, complete, with as many messages per stream as the recorder wrote.
Loop figures come with a baseline from the same run (cameras on, not recording). The
goal is no growth and nothing lost.

    .venv/bin/python bench/soak.py                    # 30 minutes
    .venv/bin/python bench/soak.py --minutes 0.5      # a try
    .venv/bin/python bench/soak.py --minutes 2 --episode-seconds 20 --keep out/soak
    .venv/bin/python bench/soak.py --minutes 5 --tracemalloc 0   # no tracing's cost
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dexlink.board import BoardOptions
from dexlink.record.reader import read_episode
from dexlink.record.recording import RecordOptions, open_recording
from dexlink.record.schema import TELEMETRY
from dexproto import catalog
from dexproto.stream import make

STATS_TIMEOUT_S = 2.0  # a host that falls behind (tracing, a loaded machine) answers late

MB_PER_MINUTE = 300  # what the simulated cameras and telemetry write (measured: ~270)


def rss_mb(pid: int | str | None = "self") -> float:
    """Resident memory of a process (MB), from /proc; nan when it is gone."""
    try:
        for line in Path("/proc/%s/status" % pid).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, TypeError):
        pass
    return float("nan")


class PythonHeap:
    """What the host's Python code holds, by tracemalloc: its size over time, and two
    snapshots (after the first episode is written, and at the end) compared by traceback,
    to name whatever grew between them."""

    IGNORED = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>",
               "<unknown>", tracemalloc.__file__)

    def __init__(self, frames: int):
        self.frames = frames
        self.first: tracemalloc.Snapshot | None = None
        self.last: tracemalloc.Snapshot | None = None
        self.first_t = self.last_t = 0.0
        if frames:
            tracemalloc.start(frames)

    def traced_mb(self) -> float:
        return tracemalloc.get_traced_memory()[0] / 1e6 if self.frames else float("nan")

    def snapshot(self, t_s: float) -> None:
        """A snapshot: the first one kept, and the latest one."""
        if not self.frames:
            return
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, f) for f in self.IGNORED])
        if self.first is None:
            self.first, self.first_t = snap, t_s
        else:
            self.last, self.last_t = snap, t_s

    def growth(self, top: int = 8) -> list[tracemalloc.StatisticDiff]:
        """What grew most between the first and the latest snapshot, by traceback."""
        if self.first is None or self.last is None:
            return []
        diffs = self.last.compare_to(self.first, "traceback")
        return sorted((d for d in diffs if d.size_diff > 0), key=lambda d: -d.size_diff)[:top]

    def stop(self) -> None:
        if self.frames:
            tracemalloc.stop()


@dataclass
class Sample:
    t_s: float
    host_mb: float
    traced_mb: float
    board_mb: float
    heap_alloc: int
    heap_free: int
    cycles: int
    overruns: int
    episode: int = 0  # episodes started when it was taken


def board_stats(link) -> dict:
    return link.request(make("GET_STATS"), timeout=STATS_TIMEOUT_S).fields


def take_sample(t0: float, board, link, heap: PythonHeap, episode: int = 0) -> Sample:
    s = board_stats(link)
    return Sample(time.monotonic() - t0, rss_mb(), heap.traced_mb(), rss_mb(board.interpreter_pid),
                  s["heap_alloc"], s["heap_free"], s["cycles"], s["overruns"], episode)


def slope_per_hour(samples: list[Sample], key: str) -> float:
    """Least-squares growth of a sampled quantity, per hour (0 with fewer than 3 samples)."""
    if len(samples) < 3:
        return 0.0
    t = np.array([s.t_s for s in samples]) / 3600
    y = np.array([getattr(s, key) for s in samples], dtype=float)
    return float(np.polyfit(t, y, 1)[0])


def floors(samples: list[Sample], key: str) -> list[Sample]:
    """Each episode's lowest sample: what the host comes back down to once a backlog (a
    queue filled while the machine was busy) is written. Growth of these is kept memory."""
    lowest: dict[int, Sample] = {}
    for s in samples:
        if s.episode not in lowest or getattr(s, key) < getattr(lowest[s.episode], key):
            lowest[s.episode] = s
    return sorted(lowest.values(), key=lambda s: s.t_s)


def run(args, out: Path):
    """Record back to back until the time is up; returns what the report needs."""
    options = RecordOptions(task="soak", out=out, duration_s=args.episode_seconds,
                            mode=catalog.MODE_TELEOP, sim_cameras=True,
                            board=BoardOptions(hand=Path(args.hand) if args.hand else None))
    samples, writers = [], []
    heap = PythonHeap(args.tracemalloc)
    with open_recording(options) as rec:
        board, link, recorder, session = rec.virtual, rec.link, rec.recorder, rec.session
        t0 = time.monotonic()
        decimation = link.get_config().fields["telemetry_decimation"]
        stats0, link0 = board_stats(link), link.stats_snapshot()
        cams0 = {c.name: (c.stats.captured, c.stats.missed, c.stats.refused)
                 for c in recorder.cameras}
        samples.append(take_sample(t0, board, link, heap))
        # Baseline, same run: the loop with cameras running, nothing recorded.
        baseline_s = min(10.0, args.minutes * 6)
        time.sleep(baseline_s)
        samples.append(take_sample(t0, board, link, heap))
        t_rec = time.monotonic()
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        deadline = t_rec + args.minutes * 60
        next_sample = t_rec + args.every
        while time.monotonic() < deadline - 1:  # no episode shorter than a second
            if len(writers) == 1:  # the first episode warmed up arenas, queues, caches:
                recorder.wait_finished()  # compare from here, no episode being written, ...
                heap.snapshot(time.monotonic() - t0)
            recorder.start_episode()
            writers.append(recorder.current)
            end = min(deadline, time.monotonic() + args.episode_seconds)
            while time.monotonic() < end and not recorder.write_error():
                time.sleep(max(0.0, min(0.5, end - time.monotonic())))
                recorder.check_cameras()
                if time.monotonic() >= next_sample:
                    next_sample += args.every
                    samples.append(take_sample(t0, board, link, heap, len(writers)))
                    print_progress(samples[-1], len(writers), recorder)
            recorder.stop_episode(keep=True)
        recorder.wait_finished()
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        heap.snapshot(time.monotonic() - t0)  # ... to here, none either
        samples.append(take_sample(t0, board, link, heap, len(writers) + 1))
        stats1, link1 = board_stats(link), link.stats_snapshot()
        load = os.getloadavg()
        cams = {c.name: tuple(now - then for now, then in zip(
            (c.stats.captured, c.stats.missed, c.stats.refused), cams0[c.name]))
            for c in recorder.cameras}
        problems = recorder.check_cameras()
        vb_stats = dict(board.stats)
    heap.stop()
    return dict(heap=heap, usage=(usage0, usage1), samples=samples, writers=writers,
                session=session, stats=(stats0, stats1),
                link=(link0, link1), cams=cams, problems=problems, vboard=vb_stats,
                decimation=decimation, errors=list(recorder.errors), load=load,
                wall_s=time.monotonic() - t_rec, baseline_s=baseline_s)


def print_progress(s: Sample, episodes: int, recorder) -> None:
    print("  %6.0f s  episode %3d  host RSS %6.1f MB (Python %5.1f MB)  board RSS %5.1f MB  heap "
          "%7d used %7d free  overruns %d  | %s"
          % (s.t_s, episodes, s.host_mb, s.traced_mb, s.board_mb, s.heap_alloc, s.heap_free,
             s.overruns, recorder.status_line()), flush=True)


def check_files(session, writers, decimation: int):
    """(files, valid, problems, telemetry rows, telemetry rows missing by cycle number).

    Valid: indexed, complete, telemetry present, and every stream the writer counted as
    written (telemetry, images, events) has exactly that many messages in the file."""
    indexed = {e["file"] for e in session.episodes}
    written = {w.path.name: w.counts for w in writers}
    files = sorted(session.dir.glob("episode_*.mcap*"))
    valid, problems, rows, missing = 0, [], 0, 0
    for path in files:
        if path.name not in indexed:
            problems.append("%s: not in the index" % path.name)
            continue
        ep = read_episode(path, keep=lambda topic: topic == TELEMETRY)
        tel = ep.streams.get(TELEMETRY)
        cycles = np.array([json.loads(d)["cycle"] for d in tel.data]) if tel else np.array([])
        steps = np.diff(np.sort(cycles))
        missing += int(np.sum(np.maximum(steps // decimation - 1, 0)))
        rows += len(cycles)
        short = ["%s %d of %d" % (t, len(ep.streams.get(t, ())), c.written)
                 for t, c in written.get(path.name, {}).items()
                 if c.written and len(ep.streams.get(t, ())) != c.written]
        if not ep.complete:
            problems.append("%s: incomplete (%s)" % (path.name, ep.error))
        elif short:
            problems.append("%s: messages in the file vs written: %s" % (path.name,
                                                                         ", ".join(short)))
        elif not len(cycles):
            problems.append("%s: no telemetry" % path.name)
        else:
            valid += 1
    return files, valid, problems, rows, missing


def loop_figures(a: Sample, b: Sample) -> str:
    cycles, overruns = b.cycles - a.cycles, b.overruns - a.overruns
    return "%d cycles at %.0f Hz, %d overruns (%.2f%%)" % (
        cycles, cycles / max(b.t_s - a.t_s, 1e-9), overruns, 100 * overruns / max(cycles, 1))


def report(r: dict, args) -> None:
    samples, (s0, s1), (l0, l1) = r["samples"], r["stats"], r["link"]
    base0, base1 = samples[0], samples[1]  # the baseline: recording off
    print("\nsoak: %.1f min recording on a virtual board at 1 kHz (TELEOP), %d episodes of up "
          "to %g s, session %s; %d-core host, load average %.1f at the end"
          % (r["wall_s"] / 60, len(r["writers"]), args.episode_seconds, r["session"].dir,
             os.cpu_count(), r["load"][0]))
    worst = s1["worst_cycle_us"]
    print("loop:       recording: %s; baseline (%.0f s, cameras on, not recording): %s; worst "
          "cycle since boot %s%d us" % (loop_figures(base1, samples[-1]), r["baseline_s"],
                                        loop_figures(base0, base1),
                                        ">= " if worst == 0xFFFF else "", worst))
    rx_drops = sum(s1[k] - s0[k] for k in s1 if k.startswith("rx_") and k != "rx_frames")
    print("link:       host decoder dropped %d frames (%s), %d sequence gaps, %d frames lost, "
          "%d disconnects, %d reconnects; board dropped %d received frames, %d sent frames "
          "not taken whole; virtual USB host overflow %d bytes"
          % (l1["dropped"] - l0["dropped"], ", ".join("%s %d" % kv for kv in l1["drops"].items()
                                                      if kv[1]) or "none",
             l1["seq_gaps"] - l0["seq_gaps"], l1["lost_frames"] - l0["lost_frames"],
             l1["disconnects"] - l0["disconnects"], l1["reconnects"] - l0["reconnects"],
             rx_drops, s1["tx_dropped"] - s0["tx_dropped"], r["vboard"].get("host_overflow", 0)))
    files, valid, problems, rows, missing = check_files(r["session"], r["writers"],
                                                        r["decimation"])
    written = {}
    for w in r["writers"]:
        for topic, c in w.counts.items():
            a = written.setdefault(topic, [0, 0])
            a[0] += c.written
            a[1] += c.dropped
    print("telemetry:  %d rows recorded, %d missing by cycle number inside episodes, %d refused "
          "by a full writer queue" % (rows, missing, written.get(TELEMETRY, [0, 0])[1]))
    for name, (captured, missed, refused) in r["cams"].items():
        print("camera %-9s captured %7d, missed %5d (due, never came), refused %5d (queue full)%s"
              % (name, captured, missed, refused,
                 "; " + r["problems"][name] if name in r["problems"] else ""))
    stream_drops = {t: d for t, (_, d) in written.items() if d}
    print("writer:     %d messages written; dropped by stream: %s"
          % (sum(w for w, _ in written.values()),
             ", ".join("%s %d" % kv for kv in stream_drops.items()) or "none"))
    # Warm-up: the first episode (allocator arenas, queues and caches reach their size).
    warm = [s for s in samples if s.episode >= 2]
    if len(warm) < 3:  # a short try: the second half
        warm = [s for s in samples if s.t_s >= (samples[1].t_s + samples[-1].t_s) / 2]
    first, last = samples[0], samples[-1]
    kept = floors(warm, "host_mb")
    print("host RSS:   %.1f MB at start, %.1f MB at end; after warm-up (%.0f s) %.1f -> %.1f MB "
          "(min %.1f, max %.1f), trend %+.1f MB/h; each episode's lowest %.1f -> %.1f MB, "
          "trend %+.1f MB/h (what stays once backlogs are written)"
          % (first.host_mb, last.host_mb, warm[0].t_s, warm[0].host_mb, last.host_mb,
             min(s.host_mb for s in warm), max(s.host_mb for s in warm),
             slope_per_hour(warm, "host_mb"), kept[0].host_mb, kept[-1].host_mb,
             slope_per_hour(kept, "host_mb")))
    u0, u1 = r["usage"]
    print("host CPU:   %.2f s a second, user and system, all threads; %.0f minor page faults a "
          "second" % ((u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime) / r["wall_s"],
                      (u1.ru_minflt - u0.ru_minflt) / r["wall_s"]))
    print_python_heap(r["heap"], warm)
    print("board:      heap used %d -> %d bytes (min %d, max %d), free %d -> %d; trend %+.0f "
          "bytes/h; interpreter RSS %.1f -> %.1f MB (trend %+.1f MB/h)"
          % (first.heap_alloc, last.heap_alloc, min(s.heap_alloc for s in samples),
             max(s.heap_alloc for s in samples), first.heap_free, last.heap_free,
             slope_per_hour(warm, "heap_alloc"), first.board_mb, last.board_mb,
             slope_per_hour(warm, "board_mb")))
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print("files:      %d written, %d valid (re-opened: complete, telemetry present, every "
          "stream holding what the recorder wrote); %.0f MB, %.0f MB per minute recorded"
          % (len(files), valid, size_mb, size_mb / (r["wall_s"] / 60)))
    for p in problems + r["errors"]:
        print("  problem: " + p)


def print_python_heap(heap: PythonHeap, warm: list[Sample]) -> None:
    """The Python heap's trend, and what grew most between the two snapshots."""
    if not heap.frames:
        print("python:     not traced (--tracemalloc 0)")
        return
    kept = floors(warm, "traced_mb")
    print("python:     traced by tracemalloc %.1f -> %.1f MB after warm-up, trend %+.1f MB/h; "
          "each episode's lowest %.1f -> %.1f MB, trend %+.1f MB/h"
          % (warm[0].traced_mb, warm[-1].traced_mb, slope_per_hour(warm, "traced_mb"),
             kept[0].traced_mb, kept[-1].traced_mb, slope_per_hour(kept, "traced_mb")))
    growth = heap.growth()
    if not growth:
        print("            nothing grew between the snapshots compared")
        return
    print("            grew most from %.0f s to %.0f s, no episode being written at either (by traceback):"
          % (heap.first_t, heap.last_t))
    for d in growth:
        where = " <- ".join("%s:%d" % (Path(f.filename).name, f.lineno)
                            for f in reversed(d.traceback[-4:]))
        print("            %+9.1f kB %+7d blocks  %s" % (d.size_diff / 1e3, d.count_diff, where))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: .venv/bin/python bench/soak.py --minutes 0.5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="how long (default 30; 0.5 is fine)")
    p.add_argument("--episode-seconds", type=float, default=60.0, metavar="S",
                   help="length of each episode (default 60)")
    p.add_argument("--every", type=float, default=10.0, metavar="S",
                   help="seconds between memory samples (default 10)")
    p.add_argument("--tracemalloc", type=int, default=1, metavar="FRAMES",
                   help="trace the host's Python allocations with this many frames a traceback "
                        "(default 1: by line; 0: off, for loop and loss figures without "
                        "tracing's cost to the host)")
    p.add_argument("--hand", metavar="HAND.toml", help="hand to simulate (default iso16)")
    p.add_argument("--keep", type=Path, metavar="DIR", help="keep the session here (default: "
                   "a temporary directory, removed at the end)")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.episode_seconds <= 0 or args.every <= 0:
        p.error("--minutes, --episode-seconds and --every must be positive")
    if args.tracemalloc < 0:
        p.error("--tracemalloc must be 0 (off) or a number of frames")
    where = args.keep or Path(tempfile.gettempdir())
    while not where.exists():  # a directory yet to be made: its nearest parent
        where = where.parent
    need_gb = MB_PER_MINUTE * args.minutes / 1000
    free_gb = shutil.disk_usage(where).free / 1e9
    if free_gb < need_gb:
        p.error("%s: %.1f GB free, the run writes about %.1f GB (%d MB a minute)"
                % (where, free_gb, need_gb, MB_PER_MINUTE))
    out = args.keep or Path(tempfile.mkdtemp(prefix="dexlink-soak-"))
    try:
        r = run(args, out)
        report(r, args)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
