"""Simulated cameras for the virtual board, rendered from the hand's joint angles.

`joints` is a callable returning the latest joint positions in cdeg (or None before the
first telemetry). Positive angles flex a finger.

- SimTactileCamera: one per fingertip. When the finger's mean flexion passes
  `contact_cdeg`, its tip presses a virtual object: a gel imprint appears, larger and
  brighter the deeper the press. Imprints are rendered once per depth level at start,
  so a frame costs a table look-up, not a render.
- SimRGBDCamera: a table, a cube and the hand's fingers seen from above; fingers
  come nearer the camera (smaller depth) and shorter in the image as they flex.

Both pace themselves to their frame rate on the host monotonic clock. A ClockedCamera
has no thread of its own: a FrameClock's one thread makes the frames of all the cameras
on its source, stamped when the source took them (the physics world's cameras,
dexlink.world.exposures).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from dexlink.capture.base import DISCONNECTED, RUNNING, STALLED, STARTING, STOPPED, Camera, Frame
from dexlink.capture.tactile import ContactMeter, TactileMeasure

JointSource = Callable[[], Sequence[int] | None]
LEVELS = 32  # imprint depth levels rendered ahead
FINGER_NAMES = ("thumb", "index", "middle", "ring", "little")


@dataclass(frozen=True)
class Fingertip:
    name: str
    joints: tuple[int, ...]  # joint indices of this finger, palm to tip


def default_fingertips(n_joints: int, n_fingers: int = 4) -> list[Fingertip]:
    """Split the joints evenly into fingers (thumb, index, ...), in joint order."""
    if n_joints < n_fingers:
        n_fingers = max(1, n_joints)
    per = n_joints // n_fingers
    return [Fingertip(FINGER_NAMES[i] if i < len(FINGER_NAMES) else "finger%d" % i,
                      tuple(range(i * per, (i + 1) * per if i < n_fingers - 1 else n_joints)))
            for i in range(n_fingers)]


class Pacer:
    """Sleeps until the next frame slot; a late thread skips the slots it missed."""

    def __init__(self, fps: float):
        self.period = int(1e9 / fps)
        self.next = 0

    def wait(self, stop) -> bool:
        now = time.monotonic_ns()
        if not self.next:
            self.next = now
        if self.next > now:
            stop.wait((self.next - now) / 1e9)
        self.next += self.period
        now = time.monotonic_ns()
        if now - self.next > self.period:  # fell behind: realign, the gap counts as missed
            self.next = now + self.period
        return not stop.is_set()


def finger_flexion(pos: Sequence[int] | None, joints: tuple[int, ...]) -> float:
    """Mean flexion of a finger in cdeg (0 when nothing is known yet)."""
    if pos is None or not joints or max(joints) >= len(pos):
        return 0.0
    return sum(pos[j] for j in joints) / len(joints)


class SimDevice:
    """What simulated cameras share: they pace themselves to their frame rate, and their
    cable can be pulled (tests): the next grab finds no device, as a USB camera's read
    fails once it is gone."""

    _unplugged = False

    def unplug(self) -> None:
        self._unplugged = True

    def _open(self):
        self._pacer = Pacer(self.fps)

    def _next_slot(self) -> bool:
        """Wait for the next frame slot: False when stopping; raises once unplugged."""
        if not self._pacer.wait(self._stop):
            return False
        if self._unplugged:
            raise OSError("the device is gone (unplugged)")
        return True


class FrameClock:
    """One thread that makes the frames of several simulated cameras from one source.

    Why not a thread each: in one Python process every frame is built from many short
    calls that release and retake the interpreter lock (each numpy or OpenCV call), and
    each retaking waits for the lock and then for a core. Four tactile threads waking
    at once on a busy 2-core host made about 40 such hand-overs a frame each; traced
    (bench/world.py, the lock's hand-overs probed), a late tactile frame had spent over
    half its lateness waiting to retake the lock, 1.4 ms of it computing.

    source.frames(cameras) waits for what is due and returns [(t_ns, [(color, depth) per
    camera]), ...]: every frame it has, oldest first, each stamped with when it was
    taken; source.close() is called when the last camera has left.
    """

    def __init__(self, source, name: str = "camera-clock"):
        self.source = source
        self.name = name
        self._cameras: list[ClockedCamera] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, camera: "ClockedCamera") -> threading.Thread:
        """Run this camera (opened already) from the next frame on; the clock's thread."""
        with self._lock:
            self._cameras.append(camera)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            return self._thread

    def _running(self) -> list:
        """The cameras to make frames for; the stopped ones leave (closed, told so)."""
        with self._lock:
            gone = [c for c in self._cameras if c._stop.is_set() or c.stats.state != RUNNING]
            self._cameras = [c for c in self._cameras if c not in gone]
            if not self._cameras:
                self._thread = None
                self.source.close()
            running = list(self._cameras)
        for c in gone:
            c._leave()
        return running

    def _run(self) -> None:
        while True:
            cameras = [c for c in self._running() if c._check_plugged()]
            if not cameras:
                if not self._running():
                    return
                continue
            try:
                ticks = self.source.frames(cameras)
            except Exception as e:  # the source failed: every camera on it says why
                for c in cameras:
                    c._fail(DISCONNECTED, e)
                continue
            for t_ns, frames in ticks:
                for c, got in zip(cameras, frames):
                    if c.stats.state != RUNNING:
                        continue
                    try:
                        c._deliver_made(got, t_ns)
                    except Exception as e:  # a sink that raises ends that camera only
                        c._fail(DISCONNECTED, e)


class ClockedCamera(SimDevice, Camera):
    """A simulated camera whose frames a FrameClock makes (no thread of its own)."""

    clock: FrameClock

    def start(self, sink: Callable[[Frame], bool]) -> "Camera":
        self._sink = sink
        self._left = threading.Event()
        if self._begin():
            self._thread = self.clock.add(self)
        else:
            self._left.set()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if getattr(self, "_left", None) is not None:
            self._left.wait(timeout)
        if self.stats.state in (STARTING, RUNNING, STALLED):
            self.stats.state = STOPPED

    def _deliver_made(self, made, t_ns: int) -> bool:
        """Hand on what the clock's source made for this camera (a (color, depth) grab)."""
        return self._deliver(made, t_ns)

    def _check_plugged(self) -> bool:
        if self._unplugged:
            self._fail(DISCONNECTED, "the device is gone (unplugged)")
            return False
        return True

    def _leave(self) -> None:
        try:
            self._close()
        finally:
            self._left.set()


class SimTactileCamera(SimDevice, TactileMeasure, Camera):
    def __init__(self, fingertip: Fingertip, joints: JointSource, fps: float = 60,
                 width: int = 320, height: int = 240, contact_cdeg: int = 3000,
                 full_cdeg: int = 6000, seed: int = 0):
        super().__init__(fingertip.name, fps, width, height)
        self.fingertip = fingertip
        self.joints = joints
        self.contact_cdeg = contact_cdeg
        self.full_cdeg = full_cdeg
        self._frames = self._render_levels(np.random.default_rng(seed))
        # A simulated gel knows its untouched look: no need to hope nothing presses at start.
        self.meter = ContactMeter()
        self.meter.set_reference(self._frames[0])

    def press(self) -> float:
        """How deep the fingertip presses, 0 (no contact) to 1 (full)."""
        flex = finger_flexion(self.joints(), self.fingertip.joints)
        span = self.full_cdeg - self.contact_cdeg
        return min(1.0, max(0.0, (flex - self.contact_cdeg) / span))

    def _render_levels(self, rng) -> list[np.ndarray]:
        w, h = self.width, self.height
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        # The lit gel: three coloured lights from three sides, and a grid of dark markers.
        base = np.empty((h, w, 3), np.float32)
        base[..., 0] = 90 + 60 * xx / w  # blue from the right
        base[..., 1] = 90 + 60 * yy / h  # green from below
        base[..., 2] = 150 - 60 * xx / w  # red from the left
        base += rng.normal(0, 2, base.shape).astype(np.float32)
        for y in range(h // 12, h, h // 6):
            for x in range(w // 16, w, w // 8):
                cv2.circle(base, (x, y), max(2, w // 80), (30, 30, 30), -1, cv2.LINE_AA)
        r2 = ((xx - w * 0.5) / w) ** 2 + ((yy - h * 0.55) / h) ** 2
        frames = []
        for level in range(LEVELS):
            depth = level / (LEVELS - 1)
            img = base.copy()
            if depth > 0:
                radius = 0.05 + 0.25 * depth  # in image widths: a deeper press spreads
                blob = np.exp(-r2 / (radius * radius))
                img += (blob * (40 + 110 * depth))[..., None]
            f = np.clip(img, 0, 255).astype(np.uint8)
            f.flags.writeable = False  # shared by every frame at this level
            frames.append(f)
        return frames

    def _grab(self):
        if not self._next_slot():
            return None
        level = int(round(self.press() * (LEVELS - 1)))
        return self._frames[level], None


class SimRGBDCamera(SimDevice, Camera):
    """A table with a cube, and the fingers seen from above; depth in millimetres."""

    kind = "rgbd"
    depth_scale = 0.001

    def __init__(self, joints: JointSource, fingertips: list[Fingertip], fps: float = 30,
                 width: int = 640, height: int = 480, name: str = "rgbd"):
        super().__init__(name, fps, width, height)
        self.joints = joints
        self.fingertips = fingertips
        self._bg_color, self._bg_depth = self._render_scene()
        self._color = np.empty_like(self._bg_color)
        self._depth = np.empty_like(self._bg_depth)

    def _render_scene(self):
        w, h = self.width, self.height
        yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
        depth = (700 + 200 * yy / h).astype(np.uint16)  # a table tilted away from the camera
        color = np.empty((h, w, 3), np.uint8)
        color[:] = (70, 110, 150)  # wood
        cube = (slice(h // 2, h // 2 + h // 5), slice(w // 2 - w // 10, w // 2 + w // 10))
        color[cube] = (40, 40, 200)
        depth[cube] = 620
        return color, depth

    def _grab(self):
        if not self._next_slot():
            return None
        np.copyto(self._color, self._bg_color)
        np.copyto(self._depth, self._bg_depth)
        self._draw_hand(self.joints())
        # Frames outlive this call (queued for the writer): hand out copies.
        return self._color.copy(), self._depth.copy()

    def _draw_hand(self, pos) -> None:
        w, h = self.width, self.height
        n = len(self.fingertips)
        palm_y = h // 8
        cv2.rectangle(self._color, (w // 4, 0), (3 * w // 4, palm_y), (150, 170, 200), -1)
        cv2.rectangle(self._depth, (w // 4, 0), (3 * w // 4, palm_y), 450, -1)
        for i, tip in enumerate(self.fingertips):
            flex = min(1.0, max(0.0, finger_flexion(pos, tip.joints) / 9000))
            x = int(w * (0.3 + 0.4 * i / max(1, n - 1)))
            length = int(h * 0.45 * (1 - 0.6 * flex))  # a flexed finger looks shorter
            end = (x, palm_y + length)
            cv2.line(self._color, (x, palm_y), end, (160, 180, 210), w // 40)
            # Flexing brings the fingertip down towards the table: larger depth.
            cv2.line(self._depth, (x, palm_y), end, int(460 + 180 * flex), w // 40)


def fingertips_from_hand(hand: dict) -> list[Fingertip]:
    """Fingertips of a parsed hand TOML: its joints grouped by `finger`, in order.

    Abduction joints (name containing "abd") spread the finger rather than press it, so
    they do not count towards the press.
    """
    fingers: dict[str, list[int]] = {}
    for i, joint in enumerate(hand.get("joints", [])):
        finger = joint.get("finger")
        if finger and "abd" not in str(joint.get("name", "")):
            fingers.setdefault(str(finger), []).append(i)
    return [Fingertip(name, tuple(js)) for name, js in fingers.items()]
