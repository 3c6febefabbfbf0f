"""Camera frames on the physics' schedule: a FrameClock's source for cameras on a World.

The World keeps what its sensors see at every tactile exposure of the physics (every
1/60 s of world time: the pads' depths and the state a picture is drawn from, see
World.exposures), stamped with its world time on the host's clock. A source turns the
exposures on its camera's schedule (every one at 60 fps, every other at 30) into frames.
A thread held up by the host (a long hold of the interpreter lock, a wait for a core)
catches up on the exposures kept and loses none; paced by their own threads, the world's
cameras lost the frame slots of such a pause (1-3 frames per 10 s on a quiet 2-core
machine, one per tactile camera at once). While the world is not stepped (before the
hand is powered) the source paces itself and shows the still world.

A camera counts a frame slot that went by without a frame as lost; when the schedule
changes (the world starts or stops stepping) its count starts again from there.
"""
from __future__ import annotations

import threading
import time

from dexlink.capture.sim import Pacer

# A world that made no exposure for this long has stopped stepping (its thread may be held
# up for tens of ms on a busy host: that is no reason to leave its schedule).
STOPPED_S = 0.5


class ExposureSource:
    """Subclasses make the frames of one exposure (None: the world as it is now)."""

    def __init__(self, fps: float):
        self.fps = fps
        self._pacer = Pacer(fps)
        self._seq: int | None = None  # the last exposure seen
        self._slot = -1  # the last frame slot of this source's schedule filled
        self._stepping = False
        self._last_t_ns = 0  # the last frame's stamp: frames go out in time order
        self.made, self.made_s = 0, 0.0  # frames made and the time it took (bench/world.py)

    @staticmethod
    def open(world) -> None:
        """A camera on this source opens: the world keeps its exposures from now on."""
        world.exposing = True

    def make(self, world, exposure, cameras) -> list:
        """[(color, depth) per camera] of the exposure (None: the world now)."""
        raise NotImplementedError

    def close(self) -> None:
        """The clock ran out of cameras."""

    def frames(self, cameras) -> list:
        world = cameras[0].world
        if self._seq is None:  # what was made before the cameras ran is not theirs
            self._seq = world.exposures[-1].seq if world.exposures else 0
        wait_s = STOPPED_S if self._stepping else \
            max(0.0, (self._pacer.next - time.monotonic_ns()) / 1e9)
        exposures = world.exposures_after(self._seq, wait_s)
        if exposures:
            stepping = True
            self._seq = exposures[-1].seq
            shots = [(e.t_ns, e) for e in exposures
                     if e.t_ns > self._last_t_ns and self._on_schedule(e.t)]
        else:  # the world is not stepped: as it is, paced here
            stepping = False
            if not self._pacer.wait(threading.Event()):
                return []
            shots = [(time.monotonic_ns(), None)]
        if stepping != self._stepping:
            self._stepping = stepping
            for c in cameras:
                c.count_from_here()
        if shots:
            self._last_t_ns = shots[-1][0]
        start = time.perf_counter()
        out = [(t_ns, self.make(world, e, cameras)) for t_ns, e in shots]
        self.made_s += time.perf_counter() - start
        self.made += len(shots) * len(cameras)
        return out

    def _on_schedule(self, t: float) -> bool:
        slot = int(t * self.fps + 1e-6)
        if slot > self._slot:
            self._slot = slot
            return True
        return False
