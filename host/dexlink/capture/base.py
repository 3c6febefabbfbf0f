"""The camera interface: every backend is a Camera that runs in its own thread.

A camera grabs frames, stamps each with the host's `time.monotonic_ns()` the moment it
has it (capture time, the clock every stream of an episode shares), and hands it to a
sink. It counts what it captured, what it missed (frame slots that went by without a
frame: the camera or its thread fell behind) and what the sink refused (a full queue).
A camera that fails to open, disconnects or stalls says so by name in `.health()`;
the others are not affected.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# States a camera reports.
STARTING, RUNNING, FAILED, DISCONNECTED, STALLED, STOPPED = (
    "starting", "running", "failed to open", "disconnected", "stalled", "stopped")


@dataclass
class Contact:
    """How much a tactile frame differs from its no-contact reference."""

    area: float  # fraction of the pixels that changed (0..1)
    intensity: float  # mean change of those pixels (0..255)


@dataclass
class Frame:
    """One captured frame. `color` is BGR uint8 (OpenCV order); `depth` is uint16."""

    camera: str
    seq: int
    t_ns: int  # capture time, host time.monotonic_ns()
    color: np.ndarray
    depth: np.ndarray | None = None
    depth_scale: float = 0.0  # metres per depth unit
    contact: Contact | None = None


@dataclass
class CameraStats:
    captured: int = 0
    missed: int = 0  # frames due at the nominal rate that never came (stalls, lag)
    refused: int = 0  # frames the sink could not take (queue full)
    state: str = STARTING
    error: str = ""
    last_t_ns: int = 0
    first_t_ns: int = 0
    deficit: int = 0  # frames due minus frames come, at the last frame
    counted_from: int = 0  # frames captured before the count of due slots (re)started
    recent: list = field(default_factory=list)  # capture times of the last frames, for rates

    @property
    def dropped(self) -> int:
        return self.missed + self.refused


class Camera:
    """Base class: subclasses implement _open, _grab and _close.

    _grab() blocks until the next frame and returns (color, depth) or None when the
    device is gone. Subclasses that pace themselves (simulated cameras) do so in _grab.
    """

    kind = "camera"  # "tactile" or "rgbd"
    depth_scale = 0.0

    def __init__(self, name: str, fps: float, width: int, height: int, stall_s: float = 1.0):
        self.name = name
        self.fps = float(fps)
        self.width = width
        self.height = height
        self.stall_ns = int(stall_s * 1e9)
        self.stats = CameraStats()
        self._sink: Callable[[Frame], bool] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- backends implement these -------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _grab(self):
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def _measure(self, color: np.ndarray) -> Contact | None:
        return None

    # --- the thread -------------------------------------------------------------------
    def start(self, sink: Callable[[Frame], bool]) -> "Camera":
        """Open the camera and stream frames to sink(frame) -> accepted, in a thread."""
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name="camera-" + self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.stats.state in (STARTING, RUNNING, STALLED):
            self.stats.state = STOPPED

    def _run(self) -> None:
        if not self._begin():
            return
        try:
            while not self._stop.is_set():
                if not self._deliver(self._grab()):
                    return
        except Exception as e:
            self._fail(DISCONNECTED, e)
        finally:
            self._close()

    def _begin(self) -> bool:
        """Open the device; False (and the camera failed, by name) when it cannot be."""
        try:
            self._open()
        except Exception as e:  # any backend error: report it by name and stop this camera
            self._fail(FAILED, e)
            return False
        self.stats.state = RUNNING
        self._period_ns = int(1e9 / self.fps)
        self._seq = 0
        return True

    def _deliver(self, got, t_ns: int | None = None) -> bool:
        """Stamp (now, or t_ns: when the frame was taken), count, measure and hand on what
        a grab gave; False when the camera ends (stopping, or no frame: disconnected)."""
        t_ns = time.monotonic_ns() if t_ns is None else t_ns
        if got is None:
            if not self._stop.is_set():
                self._fail(DISCONNECTED, "the device returned no frame")
            return False
        self._count_missed(t_ns, self._period_ns)
        color, depth = got
        frame = Frame(self.name, self._seq, t_ns, color, depth, self.depth_scale,
                      self._measure(color))
        self._seq += 1
        self.stats.captured += 1
        if not self._sink(frame):
            self.stats.refused += 1
        return True

    def _count_missed(self, t_ns: int, period_ns: int) -> None:
        # Frames due since the first one, at the nominal rate, minus frames that came:
        # a late frame followed by on-time ones is jitter, not a loss; a stall is.
        s = self.stats
        if not s.first_t_ns:
            s.first_t_ns = t_ns
        # A frame's deficit (slots due minus frames come) counts once the next frame shows
        # it too: one late by more than half a period, then on time, was jitter (counting
        # its deficit at once made every such frame a loss that never happened).
        due = (t_ns - s.first_t_ns + period_ns // 2) // period_ns + 1
        deficit = due - (s.captured - s.counted_from + 1)
        s.missed = max(s.missed, min(deficit, s.deficit))
        s.deficit = deficit
        s.last_t_ns = t_ns
        s.recent.append(t_ns)
        if len(s.recent) > 64:
            del s.recent[:32]

    def count_from_here(self) -> None:
        """The frames' schedule changed (a simulated world started or stopped stepping):
        count due frame slots from the next frame on, not across the change."""
        s = self.stats
        s.first_t_ns, s.deficit, s.counted_from = 0, 0, s.captured

    def _fail(self, state: str, error) -> None:
        self.stats.state = state
        self.stats.error = str(error) or type(error).__name__
        try:
            self._close()
        except Exception:
            pass

    # --- what a session asks ------------------------------------------------------------
    def health(self, now_ns: int | None = None) -> str:
        """The camera's state, with 'stalled' when no frame came for stall_s."""
        s = self.stats
        if s.state == RUNNING:
            now_ns = time.monotonic_ns() if now_ns is None else now_ns
            if s.last_t_ns and now_ns - s.last_t_ns > self.stall_ns:
                return STALLED
        return s.state

    def rate(self) -> float:
        """Measured frame rate over the last frames (0 before two frames)."""
        r = self.stats.recent[-32:]
        if len(r) < 2:
            return 0.0
        return (len(r) - 1) * 1e9 / (r[-1] - r[0])


class CameraSet:
    """The cameras of a session, started together; a failing one never stops the others."""

    def __init__(self, cameras: list[Camera]):
        names = [c.name for c in cameras]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError("camera names must be unique; repeated: %s" % ", ".join(sorted(dup)))
        self.cameras = list(cameras)

    def __iter__(self):
        return iter(self.cameras)

    def __len__(self):
        return len(self.cameras)

    def start(self, sink: Callable[[Frame], bool]) -> "CameraSet":
        for c in self.cameras:
            c.start(sink)
        return self

    def stop(self) -> None:
        for c in self.cameras:
            c._stop.set()
        for c in self.cameras:
            c.stop()

    def wait_running(self, timeout: float = 5.0) -> None:
        """Wait until every camera has either its first frame or a failure."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(c.stats.captured or c.stats.state not in (STARTING, RUNNING)
                   for c in self.cameras):
                return
            time.sleep(0.01)

    def problems(self) -> dict[str, str]:
        """{camera name: what is wrong} for every camera that is not running well."""
        out = {}
        now = time.monotonic_ns()
        for c in self.cameras:
            h = c.health(now)
            if h not in (RUNNING, STARTING, STOPPED):
                out[c.name] = h + (": " + c.stats.error if c.stats.error else "")
        return out
