"""The one hand frame every teleop input delivers, and what every input has in common.

Contract shared with dexlink.retarget (which codes against exactly these names):

- `HandFrame`: one tracked hand at one instant. `joints` are the 26 OpenXR hand joints
  (`OPENXR_JOINTS` order, XR_HAND_JOINT_PALM_EXT = 0 ... XR_HAND_JOINT_LITTLE_TIP_EXT = 25)
  as positions in the WRIST frame, metres. The wrist frame follows OpenXR's joint
  convention: origin at the wrist joint, -Z along the hand towards the middle finger's
  knuckle, +Y out of the back of the hand, +X = Y x Z (towards the thumb on a left hand,
  away from it on a right hand). `wrist` places that frame in the device's world frame.
- `mediapipe_to_openxr(landmarks21)`: MediaPipe Hands' 21 landmarks -> the 26 OpenXR
  joints, in the same frame as the input (see the function for what is interpolated).
- `wrist_pose_from_joints(joints26)`: the OpenXR wrist frame built from joint positions
  (for devices that report positions only: cameras, some gloves).
- `problem(frame)` -> a reason string or None; `validate(frame)` raises `BadFrame(reason)`.
- `HandInput`: the base of every adapter, a bounded queue of frames (the oldest dropped
  when full) with `start()`, `stop()`, `get(timeout)`, `latest(timeout)`, iteration, and
  counters (`received`, `dropped_malformed`, `dropped_stale`, `dropped_flood`).
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import numpy as np

OPENXR_JOINTS = (
    "palm", "wrist",
    "thumb_metacarpal", "thumb_proximal", "thumb_distal", "thumb_tip",
    "index_metacarpal", "index_proximal", "index_intermediate", "index_distal", "index_tip",
    "middle_metacarpal", "middle_proximal", "middle_intermediate", "middle_distal", "middle_tip",
    "ring_metacarpal", "ring_proximal", "ring_intermediate", "ring_distal", "ring_tip",
    "little_metacarpal", "little_proximal", "little_intermediate", "little_distal", "little_tip",
)
N_JOINTS = len(OPENXR_JOINTS)
JOINT_INDEX = {name: i for i, name in enumerate(OPENXR_JOINTS)}
FINGERS = ("thumb", "index", "middle", "ring", "little")
# Each finger's joints from the wrist out (the thumb has no intermediate joint).
FINGER_CHAINS = {
    "thumb": (1, 2, 3, 4, 5),
    "index": (1, 6, 7, 8, 9, 10),
    "middle": (1, 11, 12, 13, 14, 15),
    "ring": (1, 16, 17, 18, 19, 20),
    "little": (1, 21, 22, 23, 24, 25),
}
FINGERTIPS = tuple(chain[-1] for chain in FINGER_CHAINS.values())
SIDES = ("right", "left")

# MediaPipe Hands' landmark order: 0 wrist; thumb CMC, MCP, IP, tip (1-4); then index,
# middle, ring, pinky as MCP, PIP, DIP, tip (5-8, 9-12, 13-16, 17-20).
# OpenXR joint -> MediaPipe landmark where both name the same anatomical joint.
_MP_DIRECT = {
    1: 0,
    2: 1, 3: 2, 4: 3, 5: 4,
    7: 5, 8: 6, 9: 7, 10: 8,
    12: 9, 13: 10, 14: 11, 15: 12,
    17: 13, 18: 14, 19: 15, 20: 16,
    22: 17, 23: 18, 24: 19, 25: 20,
}
# OpenXR's index..little metacarpal joints sit at the carpometacarpal joints, which
# MediaPipe does not track: placed this fraction of the way from the wrist to the
# knuckle (MCP). Hand anatomy puts the CMC joints a quarter to a third of the way along.
METACARPAL_FRACTION = 0.25
# (OpenXR metacarpal joint, MediaPipe knuckle landmark) per finger.
_MP_METACARPALS = ((6, 5), (11, 9), (16, 13), (21, 17))

# Bones whose length would be far outside any human hand's: a length outside these
# bounds means a wrong unit, a swapped joint or a corrupted packet, not a small or large
# hand. Human phalanges are ~15-60 mm, metacarpals ~35-95 mm; the bounds leave a wide margin.
BONE_MIN_M = 0.003
BONE_MAX_M = 0.15
# The wrist joint is the wrist frame's origin; a device may put it a little off.
WRIST_JOINT_MAX_OFFSET_M = 0.05
# A wrist pose further than this from the device's origin is not a hand in a room.
WRIST_MAX_DISTANCE_M = 100.0
ROTATION_TOLERANCE = 1e-2


@dataclass(frozen=True)
class HandFrame:
    t_ns: int              # host time.monotonic_ns() when received (capture time mapped to the host clock
    #                        where the device gives one)
    seq: int               # the source's own sequence number (or a counter)
    source: str            # "avp", "xr", "glove", "camera", "file", ...
    side: str              # "right" | "left"
    wrist: np.ndarray      # (4, 4) float64 wrist pose in the device's world frame, metres
    joints: np.ndarray     # (26, 3) float64 OpenXR joint positions in the WRIST frame, metres
    valid: np.ndarray      # (26,) bool, False where the device lost the joint


class BadFrame(ValueError):
    """A frame no hand could have made; `reason` says what is wrong with it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _bones():
    for chain in FINGER_CHAINS.values():
        for parent, child in zip(chain[:-1], chain[1:]):
            yield parent, child


BONES = tuple(_bones())


def problem(frame: HandFrame) -> str | None:
    """Why `frame` cannot be a tracked hand, or None when it can."""
    if frame.side not in SIDES:
        return "side %r is not 'right' or 'left'" % (frame.side,)
    for name, shape in (("wrist", (4, 4)), ("joints", (N_JOINTS, 3)), ("valid", (N_JOINTS,))):
        value = getattr(frame, name)
        if not isinstance(value, np.ndarray) or value.shape != shape:
            got = getattr(value, "shape", type(value).__name__)
            return "%s has shape %s, not %s" % (name, got, shape)
    if frame.valid.dtype != np.bool_:
        return "valid is %s, not bool" % frame.valid.dtype
    if not np.isfinite(frame.wrist).all():
        return "wrist pose has NaN or infinite values"
    valid = frame.valid
    if not valid.any():
        return "no joint is valid"
    if not np.isfinite(frame.joints[valid]).all():
        bad = [OPENXR_JOINTS[i] for i in np.flatnonzero(valid) if not np.isfinite(frame.joints[i]).all()]
        return "joint %s has NaN or infinite values" % ", ".join(bad[:3])
    reason = _pose_problem(frame.wrist)
    if reason:
        return reason
    if valid[1] and np.linalg.norm(frame.joints[1]) > WRIST_JOINT_MAX_OFFSET_M:
        return "wrist joint %.3f m from the wrist frame's origin" % np.linalg.norm(frame.joints[1])
    for parent, child in BONES:
        if valid[parent] and valid[child]:
            length = float(np.linalg.norm(frame.joints[child] - frame.joints[parent]))
            if not BONE_MIN_M <= length <= BONE_MAX_M:
                return "bone %s-%s is %.4f m long (a human's is %.3f-%.2f m)" % (
                    OPENXR_JOINTS[parent], OPENXR_JOINTS[child], length, BONE_MIN_M, BONE_MAX_M)
    return None


def _pose_problem(pose: np.ndarray) -> str | None:
    if not np.allclose(pose[3], (0.0, 0.0, 0.0, 1.0), atol=1e-6):
        return "wrist pose's last row is %s, not [0 0 0 1]" % np.round(pose[3], 4).tolist()
    rot = pose[:3, :3]
    if not np.allclose(rot @ rot.T, np.eye(3), atol=ROTATION_TOLERANCE) or np.linalg.det(rot) < 0:
        return "wrist pose's rotation is not a rotation"
    if np.linalg.norm(pose[:3, 3]) > WRIST_MAX_DISTANCE_M:
        return "wrist is %.0f m from the device's origin" % np.linalg.norm(pose[:3, 3])
    return None


def validate(frame: HandFrame) -> HandFrame:
    """`frame` itself when it can be a tracked hand; raises BadFrame(reason) when not."""
    reason = problem(frame)
    if reason:
        raise BadFrame(reason)
    return frame


def mediapipe_to_openxr(landmarks21) -> np.ndarray:
    """MediaPipe Hands' 21 landmarks ((21, 3), any frame) -> the 26 OpenXR joints in that frame.

    18 joints are the same anatomical joint in both (wrist, the thumb's four, each finger's
    knuckle, middle and end joints and tip). The rest are interpolated: each non-thumb
    finger's metacarpal joint (its carpometacarpal joint) at METACARPAL_FRACTION of the way
    from the wrist to its knuckle, and the palm at the middle of the middle finger's
    metacarpal bone (OpenXR's definition), halfway from that joint to the knuckle.
    """
    lm = np.asarray(landmarks21, dtype=np.float64)
    if lm.shape != (21, 3):
        raise BadFrame("landmarks have shape %s, not (21, 3)" % (lm.shape,))
    out = np.empty((N_JOINTS, 3))
    for xr, mp in _MP_DIRECT.items():
        out[xr] = lm[mp]
    wrist = lm[0]
    for xr, knuckle in _MP_METACARPALS:
        out[xr] = wrist + METACARPAL_FRACTION * (lm[knuckle] - wrist)
    out[0] = 0.5 * (out[11] + out[12])
    return out


def wrist_pose_from_joints(joints26, side: str) -> np.ndarray:
    """The OpenXR wrist frame (4x4 in the joints' frame) from joint positions: origin at the
    wrist joint, -Z towards the middle knuckle, +Y out of the back of the hand (from the
    palm plane through the index and little knuckles and which hand it is)."""
    j = np.asarray(joints26, dtype=np.float64)
    origin = j[1]
    forward = j[12] - origin
    across = j[7] - j[22]  # little knuckle -> index knuckle
    z = -forward / max(np.linalg.norm(forward), 1e-9)
    # On a right hand, (fingers) x (little -> index) points out of the back of the hand; on
    # a left hand, out of the palm.
    normal = np.cross(forward, across)
    y = normal if side == "right" else -normal
    y = y - np.dot(y, z) * z
    y /= max(np.linalg.norm(y), 1e-9)
    x = np.cross(y, z)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, origin
    return pose


def to_wrist_frame(points, wrist_pose: np.ndarray) -> np.ndarray:
    """Points ((N, 3) in the device's frame) expressed in the wrist frame `wrist_pose`."""
    rot, origin = wrist_pose[:3, :3], wrist_pose[:3, 3]
    return (np.asarray(points, dtype=np.float64) - origin) @ rot


def frame_from_world_joints(joints_world, side: str, *, t_ns: int, seq: int, source: str,
                            valid=None) -> HandFrame:
    """A frame from 26 joint positions in the device's world frame (the wrist pose made
    from them): what position-only devices report."""
    joints_world = np.asarray(joints_world, dtype=np.float64)
    wrist = wrist_pose_from_joints(joints_world, side)
    valid = np.ones(N_JOINTS, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    return HandFrame(t_ns=t_ns, seq=seq, source=source, side=side, wrist=wrist,
                     joints=to_wrist_frame(joints_world, wrist), valid=valid)


@dataclass
class InputCounters:
    """What an input did with what arrived. Every message counts in `received`; each one
    dropped counts in exactly one `dropped_*` (malformed: unreadable or not a hand; stale:
    too old or out of order; flood: over the rate limit, or pushed out of a full queue)."""

    received: int = 0
    dropped_malformed: int = 0
    dropped_stale: int = 0
    dropped_flood: int = 0
    last_problem: str = ""

    @property
    def dropped(self) -> int:
        return self.dropped_malformed + self.dropped_stale + self.dropped_flood

    def as_dict(self) -> dict:
        return {"received": self.received, "dropped_malformed": self.dropped_malformed,
                "dropped_stale": self.dropped_stale, "dropped_flood": self.dropped_flood,
                "last_problem": self.last_problem}


@dataclass
class InputLimits:
    queue_size: int = 32          # frames held for the consumer; the oldest goes first
    max_rate_hz: float = 2000.0   # messages admitted per second (a burst of `burst` allowed)
    burst: int = 200
    stale_after_s: float = 0.5    # a frame captured longer ago than this is not a hand now
    max_message_bytes: int = 65536


class HandInput:
    """A source of HandFrames behind a bounded queue. Subclasses receive messages (on their
    own thread, from `start()` until `stop()`), call `admit()` before parsing one, and hand
    each parsed frame to `offer()`, or report what was wrong with `reject()`."""

    source = "input"

    def __init__(self, limits: InputLimits | None = None):
        self.limits = limits or InputLimits()
        self.counters = InputCounters()
        self._queue: collections.deque[HandFrame] = collections.deque(maxlen=self.limits.queue_size)
        self._cond = threading.Condition()
        self._tokens = float(self.limits.burst)
        self._refilled = time.monotonic()
        self._last_seq: dict[str, int] = {}
        self._last_frame_ns = 0
        self._running = False
        self._seq = 0

    # -- the adapter's side --------------------------------------------------------------
    def start(self) -> HandInput:
        self._running = True
        return self

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        return self._running

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def admit(self, nbytes: int = 0) -> bool:
        """Count one arriving message; False (counted as dropped) when it is over the size
        or rate limit, so that a flood costs no parsing."""
        with self._cond:
            self.counters.received += 1
            if nbytes > self.limits.max_message_bytes:
                self._count("dropped_malformed", "message over %d bytes"
                            % self.limits.max_message_bytes)
                return False
            now = time.monotonic()
            self._tokens = min(float(self.limits.burst),
                               self._tokens + (now - self._refilled) * self.limits.max_rate_hz)
            self._refilled = now
            if self._tokens < 1.0:
                self._count("dropped_flood", "over %g messages/s" % self.limits.max_rate_hz)
                return False
            self._tokens -= 1.0
            return True

    def reject(self, reason: str) -> None:
        with self._cond:
            self._count("dropped_malformed", reason)

    def offer(self, frame: HandFrame) -> bool:
        """Queue a parsed frame if it can be a hand and is new; False when dropped (counted)."""
        reason = problem(frame)
        with self._cond:
            if reason:
                self._count("dropped_malformed", reason)
                return False
            now = time.monotonic_ns()
            if now - frame.t_ns > self.limits.stale_after_s * 1e9:
                self._count("dropped_stale", "frame %.0f ms old" % ((now - frame.t_ns) / 1e6))
                return False
            last = self._last_seq.get(frame.side)
            if last is not None and frame.seq <= last:
                self._count("dropped_stale", "seq %d after %d" % (frame.seq, last))
                return False
            self._last_seq[frame.side] = frame.seq
            if len(self._queue) == self._queue.maxlen:
                self._count("dropped_flood", "queue full; oldest frame dropped")
            self._queue.append(frame)
            self._last_frame_ns = now
            self._cond.notify_all()
            return True

    def forget_sequence(self) -> None:
        """Accept any seq next (a device that restarted counts from zero again)."""
        with self._cond:
            self._last_seq.clear()

    def _count(self, counter: str, reason: str) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.counters.last_problem = reason

    # -- the consumer's side -------------------------------------------------------------
    def get(self, timeout: float | None = None) -> HandFrame | None:
        """The oldest queued frame, waiting up to `timeout` s; None if none came or stopped."""
        with self._cond:
            if not self._queue and self._running:
                self._cond.wait_for(lambda: self._queue or not self._running, timeout)
            return self._queue.popleft() if self._queue else None

    def latest(self, timeout: float | None = 0.0) -> HandFrame | None:
        """The newest queued frame (older ones discarded, not counted: they were delivered
        late, not dropped by the input), waiting up to `timeout` s for one."""
        with self._cond:
            if not self._queue and self._running and timeout:
                self._cond.wait_for(lambda: self._queue or not self._running, timeout)
            if not self._queue:
                return None
            frame = self._queue[-1]
            self._queue.clear()
            return frame

    def since_last_frame_s(self) -> float:
        """Seconds since a frame was last queued (infinite before the first): the watchdog's input."""
        if not self._last_frame_ns:
            return float("inf")
        return (time.monotonic_ns() - self._last_frame_ns) / 1e9

    def __iter__(self):
        while self._running or self._queue:
            frame = self.get(timeout=0.1)
            if frame is not None:
                yield frame

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def make_frame(joints, side: str = "right", *, wrist=None, t_ns: int | None = None, seq: int = 0,
               source: str = "file", valid=None) -> HandFrame:
    """A frame from wrist-frame joints with defaults (identity wrist, all valid, now)."""
    return HandFrame(
        t_ns=time.monotonic_ns() if t_ns is None else int(t_ns), seq=int(seq), source=source,
        side=side, wrist=np.eye(4) if wrist is None else np.asarray(wrist, dtype=np.float64),
        joints=np.asarray(joints, dtype=np.float64),
        valid=np.ones(N_JOINTS, dtype=bool) if valid is None else np.asarray(valid, dtype=bool))


__all__ = [
    "BONES", "BadFrame", "FINGERS", "FINGERTIPS", "FINGER_CHAINS", "HandFrame", "HandInput",
    "InputCounters", "InputLimits", "JOINT_INDEX", "N_JOINTS", "OPENXR_JOINTS", "SIDES",
    "frame_from_world_joints", "make_frame", "mediapipe_to_openxr", "problem", "to_wrist_frame",
    "validate", "wrist_pose_from_joints",
]
