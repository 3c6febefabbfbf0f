"""Export throughput: a LeRobot v3.0 export of recorded data, timed, and scaled to an hour.

The recording is synthesised quickly with the recorder's own writer (EpisodeWriter: JPEG
for colour, 16-bit PNG for depth, JSON telemetry, MCAP), as `dexlink record --sim` would
write it: telemetry of every cycle at 1 kHz (16 joints, iso16), four tactile cameras at
320x240 60 fps with contact measures, an RGB-D camera at 640x480 30 fps, in episodes of
--episode-seconds. The images are synthetic (a gradient, a moving blob and noise), not
rendered, so writing is quick; their JPEGs are about the size of the simulated cameras'.

By default a few minutes are recorded and the hour's figures are scaled from them
(export time grows linearly with the recorded time: episodes are exported one by one);
`--minutes 60` records and exports a real hour (about 23 GB of MCAP, written in about
8 minutes on a 2-core host).

Prints: what was recorded (minutes, MB, telemetry rows), then for the export at --fps
(every camera resized to one shape, the default) the time to read and align the
episodes alone (and what decoding every telemetry row would cost), the whole export's
wall and CPU time, the dataset's size, and the throughput as recorded seconds per second
and as time for an hour.

    .venv/bin/python bench/export.py                 # 3 minutes, scaled to an hour
    .venv/bin/python bench/export.py --minutes 60    # the real hour
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dexlink.capture.base import Contact, Frame
from dexlink.record.align import TelemetryRows, aligned_episodes
from dexlink.record.episode import EpisodeWriter
from dexlink.record.export import export_lerobot
from dexlink.record.reader import read_episode
from dexlink.record.session import Session
from dexproto.stream import make

N_JOINTS = 16
TEL_HZ = 1000
TACTILE = ("thumb", "index", "middle", "ring")
TACTILE_SIZE, TACTILE_FPS = (320, 240), 60
RGB_SIZE, RGB_FPS = (640, 480), 30


class Cam:
    """A camera as EpisodeWriter knows one: its name and kind."""

    def __init__(self, name, kind):
        self.name, self.kind = name, kind


def image_pool(size, count: int, seed: int) -> list[np.ndarray]:
    """`count` distinct frames: a gradient, a blob that moves, some noise (JPEG-realistic)."""
    w, h = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h)], -1).astype(np.int16)
    out = []
    for k in range(count):
        cx, cy = w * (0.3 + 0.4 * k / count), h * 0.5
        blob = 90 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (w / 8) ** 2))
        img = base + blob[..., None] + rng.integers(-6, 7, (h, w, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def telemetry(cycle: int):
    items = [((cycle * 3 + 100 * j) % 9000, (cycle * 3 + 100 * j + 5) % 9000,
              (cycle * 3 + 100 * j) % 9000, 0) for j in range(N_JOINTS)]
    return make("TELEMETRY", cycle=cycle, board_us=(cycle * 1000) & 0xFFFFFFFF, cycle_us=300,
                worst_cycle_us=450, overruns=0, mode=1, items=items)


def put(w: EpisodeWriter, add) -> None:
    """Add an item, waiting while the writer's queue is full (nothing may be dropped)."""
    while w.pending() > 1500:
        time.sleep(0.002)
    assert add()


def write_episode(session: Session, seconds: float, t0: int, pools: dict) -> None:
    path = session.next_path()
    cams = [Cam(n, "tactile") for n in TACTILE] + [Cam("rgbd", "rgbd")]
    w = EpisodeWriter(path, {"task": "bench", "dexlink_version": "bench",
                             "joint_names": ",".join("j%d" % j for j in range(N_JOINTS))}, cams)
    events = []  # (t_ns, kind, payload) of every stream, in capture order
    events += [(t0 + c * 1_000_000, 0, c) for c in range(int(seconds * TEL_HZ))]
    events += [(t0 + i * 1_000_000_000 // TACTILE_FPS + 100 + k, 1, (name, i))
               for k, name in enumerate(TACTILE) for i in range(int(seconds * TACTILE_FPS))]
    events += [(t0 + i * 1_000_000_000 // RGB_FPS + 200, 2, i)
               for i in range(int(seconds * RGB_FPS))]
    events.sort(key=lambda e: e[0])
    for t, kind, what in events:
        if kind == 0:
            put(w, lambda what=what, t=t: w.add_telemetry(telemetry(what), t))
        elif kind == 1:
            name, i = what
            pool = pools[name]
            frame = Frame(name, i, t, pool[i % len(pool)], contact=Contact(0.01 * (i % 50), 30.0))
            put(w, lambda frame=frame: w.add_frame(frame, "tactile"))
        else:
            pool = pools["rgbd"]
            depth = np.full(RGB_SIZE[::-1], 400 + what % 200, np.uint16)
            frame = Frame("rgbd", what, t, pool[what % len(pool)], depth, 0.001)
            put(w, lambda frame=frame: w.add_frame(frame, "rgbd"))
    w.finish({"mark": "", "duration_s": seconds})
    session.add(path, task="bench", mark="", duration_s=seconds, messages=w.message_count())


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example: .venv/bin/python bench/export.py --minutes 5")
    p.add_argument("--minutes", type=float, default=3.0,
                   help="minutes of recording to synthesise and export (default 3; 60: an hour)")
    p.add_argument("--episode-seconds", type=float, default=60.0,
                   help="episode length (default 60)")
    p.add_argument("--fps", type=int, default=30, help="the dataset's frame rate (default 30)")
    p.add_argument("--keep", type=Path, help="keep the session and dataset under this directory")
    args = p.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="dexlink-bench-export-"))
    try:
        pools = {n: image_pool(TACTILE_SIZE, 30, k) for k, n in enumerate(TACTILE)}
        pools["rgbd"] = image_pool(RGB_SIZE, 30, 9)
        session = Session(root / "session", "bench")
        t_write = time.monotonic()
        total_s, t0 = args.minutes * 60, 5_000_000_000
        while total_s > 0.5:
            seconds = min(args.episode_seconds, total_s)
            write_episode(session, seconds, t0, pools)
            total_s -= seconds
            t0 += int((seconds + 1) * 1e9)
        write_s = time.monotonic() - t_write
        recorded_s = args.minutes * 60
        size = sum(p.stat().st_size for p in session.episode_paths())
        print("recorded (synthesised in %.0f s): %.1f min in %d episodes, %.0f MB of MCAP; "
              "telemetry %d rows (1 kHz, %d joints), 4 tactile 320x240@60, RGB-D 640x480@30"
              % (write_s, recorded_s / 60, len(session.episode_paths()), size / 1e6,
                 int(recorded_s * TEL_HZ), N_JOINTS))

        c0, w0 = cpu_s(), time.monotonic()
        episodes, _ = aligned_episodes(session.dir, args.fps, depth=False)
        frames = sum(len(ep) for ep in episodes)
        align_s, align_cpu = time.monotonic() - w0, cpu_s() - c0
        print("read and align alone: %.1f s (%.1f s CPU) for %d frames at %d fps: %.0f recorded "
              "s per s" % (align_s, align_cpu, frames, args.fps, recorded_s / align_s))

        # Telemetry of every cycle: the frames need 30 rows a second of the 1000.
        ep = read_episode(session.episode_paths()[0])
        tel = ep.streams["/telemetry"]
        w0 = time.monotonic()
        ep.telemetry()
        full_s = time.monotonic() - w0
        w0 = time.monotonic()
        TelemetryRows(tel.times, tel.data).at(np.arange(tel.times[0], tel.times[-1],
                                                         1_000_000_000 // args.fps))
        print("telemetry of one episode (%d rows): every row decoded %.2f s, the frames' rows "
              "only (what export does) %.3f s" % (len(tel), full_s, time.monotonic() - w0))

        out = root / "dataset"
        c0, w0 = cpu_s(), time.monotonic()
        n, frames, skipped = export_lerobot(session.dir, out, fps=args.fps)
        wall, cpu = time.monotonic() - w0, cpu_s() - c0
        ds_size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print("export to LeRobot v3.0: %d episodes, %d frames, %.0f MB; %.1f s wall, %.1f s CPU "
              "(%.0f%% of one core, %d-core host)" % (n, frames, ds_size / 1e6, wall, cpu,
                                                       100 * cpu / wall, os.cpu_count() or 1))
        scale = 3600 / recorded_s
        print("throughput: %.2f recorded s per s (%.1fx real time); an hour of recording "
              "exports in %.1f min%s" % (recorded_s / wall, recorded_s / wall, wall * scale / 60,
                                        "" if scale == 1 else " (scaled from %.1f min)"
                                        % (recorded_s / 60)))
        if skipped:
            print("skipped: %s" % skipped)
            return 1
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
