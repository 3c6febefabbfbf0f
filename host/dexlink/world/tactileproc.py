"""The world's tactile images shaded, and their contact measured, in a child process; and
the tactile cameras' source on the physics' schedule (TactileSource, see exposures.py).

Why: in the host process a pressed pad's frame (GelShader.shade, then the recorder's
ContactMeter) is a chain of about 25 numpy and OpenCV calls, each of which lets go of
the interpreter lock and must take it back. Traced on the 2-core machine (bench/world.py
with the lock's take/drop probed): a tactile frame took about 40 lock hand-overs, and a
late one had spent over half its lateness waiting to take the lock back (each return
waits for the holder and then for a core), 1.4 ms of it computing. Four camera threads
doing this at once during a grasp were late together, by a frame slot or more. Here the
host's side of a tick is one hand-over to this process and back, and a copy per pressed
pad; the shading and measuring run under this process's own lock.

Per tick, through one shared memory block (renderproc.ChildProcess):

    host   depth per taxel of every pad, a flag per pad that presses     then b"r"
    child  each flagged pad: shade -> image, measure -> area, intensity  then b"k"
    host   copies the flagged pads' images out; the others show the background

The set-up (each pad's half size and shading seed, the image size) is sent once; the
child builds the same GelShader and ContactMeter as the host's camera would.
"""
from __future__ import annotations

import mmap
import sys
import threading
import weakref

import numpy as np

from dexlink.capture.base import Contact
from dexlink.capture.sim import FrameClock
from dexlink.world.exposures import ExposureSource
from dexlink.world.renderproc import ChildProcess, run_child, serve_requests


class TactileBlock:
    """The block's layout, the same on both sides: depths (float64), a pressed flag per
    pad, images (BGR uint8), contact (area, intensity) per pad."""

    def __init__(self, buf, pads: int, taxels: tuple[int, int], size: tuple[int, int]):
        rows, cols = taxels
        width, height = size
        at = 0
        self.depth = np.ndarray((pads, rows, cols), np.float64, buf, at)
        at += self.depth.nbytes
        self.contact = np.ndarray((pads, 2), np.float64, buf, at)
        at += self.contact.nbytes
        self.pressed = np.ndarray((pads,), np.uint8, buf, at)
        at += pads
        self.image = np.ndarray((pads, height, width, 3), np.uint8, buf, at)

    @staticmethod
    def nbytes(pads: int, taxels: tuple[int, int], size: tuple[int, int]) -> int:
        return pads * (8 * taxels[0] * taxels[1] + 16 + 1 + size[0] * size[1] * 3)


class TactileProcess(ChildProcess):
    """Shades pads in a child process: shade(depths) -> [(image, Contact)], the image the
    host's shader would give (its background, not copied, for a pad that does not press)."""

    module = __name__
    what = "tactile"

    def __init__(self, shaders: list, taxels: tuple[int, int]):
        self.shaders = shaders
        size = (shaders[0].width, shaders[0].height)
        setup = ([s.setup for s in shaders], taxels, size)
        super().__init__(TactileBlock.nbytes(len(shaders), taxels, size), setup)
        self.block = TactileBlock(self._mem, len(shaders), taxels, size)

    def shade(self, depths: list[np.ndarray]) -> list[tuple[np.ndarray, Contact]]:
        b = self.block
        pressed = [bool(d.any()) for d in depths]
        if any(pressed):
            for i, d in enumerate(depths):
                if pressed[i]:
                    b.depth[i] = d
            b.pressed[:] = pressed
            self.request()
        out = []
        for i, s in enumerate(self.shaders):
            if pressed[i]:  # frames outlive this call (queued for the writer): copies
                out.append((b.image[i].copy(), Contact(*b.contact[i].tolist())))
            else:
                out.append((s.background, Contact(0.0, 0.0)))
        return out


class TactileSource(ExposureSource):
    """The frames of a world's tactile cameras (exposures.ExposureSource): each exposure's
    pressed pads shaded in a TactileProcess with the shaders of the cameras registered.
    The process starts when a camera opens (again if the shaders changed since) and
    ends when the clock runs out of cameras."""

    def __init__(self, fps: float):
        super().__init__(fps)
        self._shaders: dict = {}
        self._process: TactileProcess | None = None
        self._started_with: dict = {}
        self._lock = threading.Lock()

    def register(self, camera) -> None:
        with self._lock:
            self._shaders[camera.name] = camera.shader

    def open(self, world) -> None:
        super().open(world)
        with self._lock:
            if self._process is not None and self._started_with == self._shaders:
                return
            self._close()
            self._started_with = dict(self._shaders)
            taxels = world.tactile_depth(next(iter(self._shaders))).shape
            self._process = TactileProcess(list(self._started_with.values()), taxels)

    def make(self, world, exposure, cameras) -> list:
        depths = world.tactile_depths(world.tactile_fingers) if exposure is None \
            else exposure.depths
        pads = dict(zip(world.tactile_fingers, depths))
        with self._lock:
            shaded = dict(zip(self._started_with, self._process.shade(
                [pads[n] for n in self._started_with])))
        return [shaded[c.name] for c in cameras]

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None


_clocks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # world -> {fps: ...}


def tactile_clock(world, fps: float) -> tuple[FrameClock, TactileSource]:
    """The FrameClock of a world's tactile cameras at fps and its source (made on first
    use; neither refers to the world, so it can be freed)."""
    clocks = _clocks.setdefault(world, {})
    if fps not in clocks:
        source = TactileSource(fps)
        clocks[fps] = (FrameClock(source, name="tactile-clock"), source)
    return clocks[fps]


def serve(conn, mem_fd: int) -> None:
    from dexlink.capture.tactile import ContactMeter
    from dexlink.world.sensors import GelShader
    setups, taxels, size = conn.recv()
    block = TactileBlock(mmap.mmap(mem_fd, TactileBlock.nbytes(len(setups), taxels, size)),
                         len(setups), taxels, size)
    shaders = [GelShader(half, size, seed) for half, seed in setups]
    meters = []
    press = np.zeros(taxels)
    press[taxels[0] // 2, taxels[1] // 2] = 1e-3
    for s in shaders:
        meters.append(ContactMeter())
        meters[-1].set_reference(s.background)
        meters[-1].measure(s.shade(press))  # first calls are slow (OpenCV's set-up): not in a tick

    def shade():
        for i, (shader, meter) in enumerate(zip(shaders, meters)):
            if block.pressed[i]:
                image = shader.shade(block.depth[i])
                block.image[i] = image
                c = meter.measure(image)
                block.contact[i] = (c.area, c.intensity)
    serve_requests(conn, shade)


def main(argv) -> int:
    return run_child(argv, serve)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
