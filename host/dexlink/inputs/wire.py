"""dexlink's generic hand-frame JSON: what any glove or tracker (and the webcam worker) sends
over UDP or ZMQ, and what recordings store a line at a time. docs/interfaces.md describes it.

One message is one hand object or {"hands": [hand, ...]}. A hand object:

    side          "right" | "left" (required)
    seq           integer, the sender's frame counter (optional; the receiver counts otherwise)
    latency_ms    capture-to-send delay the sender knows (optional; subtracted from the receive time)
    units         "m" (default), "cm" or "mm": the unit of every position
    and one of
    joints        26 [x, y, z] in OpenXR order, in the wrist frame, with
    wrist         the wrist pose, 4x4 nested or 16 numbers row-major (optional; identity)
    joints_world  26 [x, y, z] in the device's frame (the wrist frame is made from them)
    landmarks21   21 [x, y, z] in MediaPipe Hands order, in the device's frame
    valid         26 booleans (optional; all true); a joint given as null is not valid either

Recordings add "t_ns" (the frame's host time) and "source".
"""
from __future__ import annotations

import json
import math

import numpy as np

from dexlink.inputs.frame import (
    N_JOINTS,
    SIDES,
    BadFrame,
    HandFrame,
    frame_from_world_joints,
    mediapipe_to_openxr,
)

FORMAT_VERSION = 1
MAX_HANDS_PER_MESSAGE = 4
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
MAX_LATENCY_MS = 10_000.0


def frame_to_dict(frame: HandFrame, *, with_time: bool = True) -> dict:
    """A frame as one hand object of the generic format (lost joints as null)."""
    joints = [None if not ok else [float(v) for v in p] for p, ok in zip(frame.joints, frame.valid)]
    out = {"side": frame.side, "seq": int(frame.seq), "joints": joints,
           "wrist": [float(v) for v in frame.wrist.ravel()]}
    if with_time:
        out["t_ns"] = int(frame.t_ns)
        out["source"] = frame.source
    return out


def encode(frames, *, with_time: bool = False) -> bytes:
    """A message of the generic format carrying `frames` (a frame or a list of them)."""
    if isinstance(frames, HandFrame):
        body = frame_to_dict(frames, with_time=with_time)
    else:
        body = {"hands": [frame_to_dict(f, with_time=with_time) for f in frames]}
    return json.dumps(body, separators=(",", ":")).encode()


def decode(data: bytes, *, source: str, received_ns: int, next_seq) -> list[HandFrame]:
    """The frames of one message; BadFrame names the field that is wrong."""
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadFrame("not JSON (%s)" % type(e).__name__) from None
    return frames_from_message(message, source=source, received_ns=received_ns, next_seq=next_seq)


def frames_from_message(message, *, source: str, received_ns: int, next_seq) -> list[HandFrame]:
    if isinstance(message, dict) and "hands" in message:
        hands = message["hands"]
        if not isinstance(hands, list) or not hands:
            raise BadFrame("'hands' is not a non-empty list")
        if len(hands) > MAX_HANDS_PER_MESSAGE:
            raise BadFrame("%d hands in one message (at most %d)" % (len(hands), MAX_HANDS_PER_MESSAGE))
    else:
        hands = [message]
    return [hand_from_dict(h, source=source, received_ns=received_ns, next_seq=next_seq)
            for h in hands]


def hand_from_dict(hand, *, source: str, received_ns: int, next_seq, t_ns: int | None = None) -> HandFrame:
    """One hand object -> a HandFrame (not yet validated as a pose: HandInput.offer does that)."""
    if not isinstance(hand, dict):
        raise BadFrame("a hand is %s, not an object" % type(hand).__name__)
    side = hand.get("side")
    if side not in SIDES:
        raise BadFrame("'side' is %r, not 'right' or 'left'" % (side,))
    scale = UNITS.get(hand.get("units", "m"))
    if scale is None:
        raise BadFrame("'units' is %r, not one of %s" % (hand.get("units"), ", ".join(UNITS)))
    seq = hand.get("seq")
    if seq is None:
        seq = next_seq()
    elif not isinstance(seq, int) or isinstance(seq, bool):
        raise BadFrame("'seq' is not an integer")
    if t_ns is None:
        t_ns = received_ns - int(_latency_ms(hand) * 1e6)
    given = [k for k in ("joints", "joints_world", "landmarks21") if k in hand]
    if len(given) != 1:
        raise BadFrame("a hand needs exactly one of 'joints', 'joints_world', 'landmarks21' (got %s)"
                       % (", ".join(given) or "none"))
    key = given[0]
    if key == "landmarks21":
        points, _ = _points(hand[key], 21, key)
        world = mediapipe_to_openxr(points * scale)
        return frame_from_world_joints(world, side, t_ns=t_ns, seq=seq, source=source)
    points, present = _points(hand[key], N_JOINTS, key)
    valid = present & _valid(hand.get("valid"))
    points = points * scale
    if key == "joints_world":
        if not valid[[1, 7, 12, 22]].all():
            raise BadFrame("'joints_world' needs the wrist and the index, middle and little knuckles")
        return frame_from_world_joints(points, side, t_ns=t_ns, seq=seq, source=source, valid=valid)
    wrist = _wrist(hand.get("wrist"), scale)
    return HandFrame(t_ns=t_ns, seq=seq, source=source, side=side, wrist=wrist,
                     joints=points, valid=valid)


def _latency_ms(hand: dict) -> float:
    latency = hand.get("latency_ms", 0.0)
    if not isinstance(latency, (int, float)) or isinstance(latency, bool) or \
            not math.isfinite(latency) or not 0.0 <= latency <= MAX_LATENCY_MS:
        raise BadFrame("'latency_ms' is %r, not a number of ms in 0..%g" % (latency, MAX_LATENCY_MS))
    return float(latency)


def _points(value, n: int, key: str):
    """(n, 3) float array and which rows were given (null rows are NaN, not present)."""
    if not isinstance(value, list) or len(value) != n:
        raise BadFrame("'%s' is not a list of %d points" % (key, n))
    out = np.full((n, 3), np.nan)
    present = np.zeros(n, dtype=bool)
    for i, p in enumerate(value):
        if p is None:
            continue
        if not isinstance(p, list) or len(p) != 3 or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p):
            raise BadFrame("'%s'[%d] is not [x, y, z]" % (key, i))
        out[i] = p
        present[i] = True
    return out, present


def _valid(value) -> np.ndarray:
    if value is None:
        return np.ones(N_JOINTS, dtype=bool)
    if not isinstance(value, list) or len(value) != N_JOINTS or \
            not all(isinstance(v, bool) for v in value):
        raise BadFrame("'valid' is not a list of %d booleans" % N_JOINTS)
    return np.array(value, dtype=bool)


def _wrist(value, scale: float) -> np.ndarray:
    if value is None:
        return np.eye(4)
    try:
        pose = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadFrame("'wrist' is not 16 numbers") from None
    if pose.size != 16 or pose.shape not in ((16,), (4, 4)):
        raise BadFrame("'wrist' is not a 4x4 matrix or 16 numbers")
    pose = pose.reshape(4, 4)
    pose[:3, 3] *= scale
    return pose
