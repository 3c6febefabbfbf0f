"""Rokoko Studio's custom streaming: JSON (format v3) over UDP, default port 14043, optionally
LZ4-compressed (Studio's "Custom Streaming" receiver settings).

A message is {"version": 3, "fps": ..., "scene": {"timestamp": ..., "actors": [actor, ...]}};
an actor's "body" maps bone names to {"position": {x, y, z}, "rotation": {x, y, z, w}}, in
metres, Y up, Z forward, left-handed (Unity's axes). Each hand is 21 bones, "<side>Hand" and
per finger Proximal, Medial, Distal, Tip: the same joints in the same order as MediaPipe's 21
landmarks, so they map to the OpenXR joints the same way. A hand whose glove the actor's
"meta" says is absent is skipped.
"""
from __future__ import annotations

import json

import numpy as np

from dexlink.inputs.frame import (
    BadFrame,
    HandFrame,
    InputLimits,
    frame_from_world_joints,
    mediapipe_to_openxr,
)
from dexlink.inputs.udp import LOOPBACK, DatagramInput

ROKOKO_PORT = 14043
_FINGERS = ("Thumb", "Index", "Middle", "Ring", "Little")
_PARTS = ("Proximal", "Medial", "Distal", "Tip")
# Unity's left-handed axes -> right-handed: mirror Z.
_TO_RIGHT_HANDED = np.array([1.0, 1.0, -1.0])
MAX_DECOMPRESSED = 1 << 20
_LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"


def bone_names(side: str) -> tuple[str, ...]:
    """The 21 bone names of one hand in MediaPipe order."""
    return ("%sHand" % side,) + tuple("%s%s%s" % (side, f, p) for f in _FINGERS for p in _PARTS)


class RokokoInput(DatagramInput):
    source = "glove"

    def __init__(self, port: int = ROKOKO_PORT, bind: str = LOOPBACK,
                 limits: InputLimits | None = None, actor: int = 0):
        super().__init__(port, bind, limits)
        self.actor = actor

    def parse(self, data: bytes, received_ns: int) -> list[HandFrame]:
        return frames_from_rokoko(_decompress(data), actor=self.actor, received_ns=received_ns,
                                  next_seq=self.next_seq)


def frames_from_rokoko(data: bytes, *, actor: int, received_ns: int, next_seq) -> list[HandFrame]:
    try:
        message = json.loads(data)
        actors = message["scene"]["actors"]
        body = actors[actor]["body"]
        meta = actors[actor].get("meta", {})
    except (ValueError, RecursionError):
        raise BadFrame("not JSON") from None
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BadFrame("no scene.actors[%d].body (not Rokoko JSON v3?)" % actor) from None
    if not isinstance(body, dict) or not isinstance(meta, dict):
        raise BadFrame("scene.actors[%d].body is not an object" % actor)
    frames = []
    for side, has in (("right", "hasRightGlove"), ("left", "hasLeftGlove")):
        if meta.get(has) is False or "%sHand" % side not in body:
            continue
        points = np.array([_position(body, name) for name in bone_names(side)]) * _TO_RIGHT_HANDED
        frames.append(frame_from_world_joints(mediapipe_to_openxr(points), side, t_ns=received_ns,
                                              seq=next_seq(), source="glove"))
    if not frames:
        raise BadFrame("actor %d has no hand bones" % actor)
    return frames


def _position(body: dict, name: str):
    try:
        p = body[name]["position"]
        xyz = (p["x"], p["y"], p["z"])
    except (KeyError, TypeError):
        raise BadFrame("bone %s has no position" % name) from None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xyz):
        raise BadFrame("bone %s's position is not numbers" % name)
    return xyz


def _decompress(data: bytes) -> bytes:
    """Studio sends plain JSON, or LZ4 when compression is on; either way at most
    MAX_DECOMPRESSED bytes come out (a small packet cannot make a huge one)."""
    if data[:1] in (b"{", b" ", b"\n"):
        return data
    try:
        import lz4.block
        import lz4.frame
    except ImportError:
        raise BadFrame("LZ4-compressed packet: install lz4 or turn compression off in Studio") from None
    try:
        if data.startswith(_LZ4_FRAME_MAGIC):
            out = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=MAX_DECOMPRESSED)
        else:
            out = lz4.block.decompress(data, uncompressed_size=MAX_DECOMPRESSED)
    except (RuntimeError, ValueError, lz4.block.LZ4BlockError) as e:
        raise BadFrame("neither JSON nor LZ4 (%s)" % type(e).__name__) from None
    return out
