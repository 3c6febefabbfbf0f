"""Shared by the capture/record/inspect/export tests: episodes with known contents.

`write_episode` feeds the real EpisodeWriter with TELEMETRY messages built by
dexproto.stream.make and frames with chosen capture times, so tests know exactly what
every stream holds and when.
"""
from __future__ import annotations

import numpy as np

from dexlink.capture.base import Contact, Frame
from dexlink.record.episode import EpisodeWriter
from dexlink.record.session import Session
from dexproto.stream import make

N_JOINTS = 4
T0 = 5_000_000_000  # capture times start here (host monotonic ns)


def telemetry(cycle: int, mode: int = 1, n_joints: int = N_JOINTS):
    """Joint j: exo = 10 * cycle + j, goal = exo + 1, present = exo + 2 (cdeg)."""
    items = [((10 * cycle + j) % 30000, (10 * cycle + j + 1) % 30000,
              (10 * cycle + j + 2) % 30000, 0) for j in range(n_joints)]
    return make("TELEMETRY", cycle=cycle, board_us=cycle * 1000, cycle_us=250,
                worst_cycle_us=400, overruns=0, mode=mode, items=items)


class FakeCam:
    """What EpisodeWriter needs to know of a camera (name and kind) to open its channels."""

    def __init__(self, name, kind):
        self.name, self.kind = name, kind


def tactile_image(seq: int, w: int = 64, h: int = 48) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (seq * 7) % 256  # the frame number, readable back from a lossy JPEG
    return img


def write_episode(session: Session, seconds: float = 1.0, tel_hz: int = 100, tactile=("index",),
                  tactile_fps: int = 60, rgbd_fps: int = 30, task: str = "test task",
                  mark: str = "success", skip_cycles=(), t0: int = T0, size=(64, 48),
                  rgbd_size=None):
    """Write one finished episode with known streams (tactile images of `size`, RGB-D of
    `rgbd_size`, default the same); returns its path."""
    path = session.next_path()
    cams = [FakeCam(n, "tactile") for n in tactile] + (
        [FakeCam("rgbd", "rgbd")] if rgbd_fps else []
    )
    w = EpisodeWriter(
        path, {"task": task, "dexlink_version": "test"}, cams, queue_size=100_000, chunk_size=32_000
    )
    n_tel = int(seconds * tel_hz)
    for c in range(n_tel):
        if c not in skip_cycles:
            w.add_telemetry(telemetry(c), t0 + c * 1_000_000_000 // tel_hz)
    for name in tactile:
        for i in range(int(seconds * tactile_fps)):
            t = t0 + i * 1_000_000_000 // tactile_fps + 1000
            frame = Frame(name, i, t, tactile_image(i, *size), contact=Contact(i / 1000, 20.0))
            assert w.add_frame(frame, "tactile")
    if rgbd_fps:
        for i in range(int(seconds * rgbd_fps)):
            t = t0 + i * 1_000_000_000 // rgbd_fps + 2000
            width, height = rgbd_size or size
            depth = np.full((height, width), 500 + i, np.uint16)
            frame = Frame("rgbd", i, t, tactile_image(i, width, height), depth, 0.001)
            assert w.add_frame(frame, "rgbd")
    w.add_event("mark", mark, t0)
    w.finish({"mark": mark, "duration_s": seconds})
    session.add(path, task=task, mark=mark, duration_s=seconds, messages=w.message_count())
    return path
