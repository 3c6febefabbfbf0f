"""Channels of an episode file: topics, schemas and how each message is encoded.

Everything is JSON (Foxglove plots JSON fields and shows `foxglove.CompressedImage`
images, whose `data` is base64 in JSON encoding). Every message's log time is its
capture time on the host monotonic clock, in ns.
"""
from __future__ import annotations

import base64
import json

from dexproto import catalog

TELEMETRY = "/telemetry"
EVENTS = "/events"
# Teleop from a host input (dexlink record --input): the raw hand frames, the retargeted
# goals sent, and each goal's stage times (dexlink.teleop.latency), logged at on_servo_ns.
TELEOP_INPUT = "/teleop/input"
TELEOP_TARGETS = "/teleop/targets"
TELEOP_LATENCY = "/teleop/latency"
IMAGE_SCHEMA = "foxglove.CompressedImage"


def image_topic(camera: str, kind: str) -> str:
    return "/rgbd/color" if kind == "rgbd" else "/tactile/%s/image" % camera


def depth_topic(camera: str) -> str:
    return "/rgbd/depth"


def contact_topic(camera: str) -> str:
    return "/tactile/%s/contact" % camera


def camera_of(topic: str) -> str:
    """The camera name a topic belongs to ('rgbd' for /rgbd/*)."""
    parts = topic.strip("/").split("/")
    return parts[1] if parts[0] == "tactile" else parts[0]


def _obj(props: dict, title: str) -> bytes:
    return json.dumps({"title": title, "type": "object", "properties": props}).encode()


_INT_ARRAY = {"type": "array", "items": {"type": "integer"}}
SCHEMAS = {
    "dexlink.Telemetry": _obj({
        "cycle": {"type": "integer"}, "board_us": {"type": "integer"},
        "cycle_us": {"type": "integer"}, "overruns": {"type": "integer"},
        "mode": {"type": "string", "enum": list(catalog.MODE_NAMES)},
        "exo_cdeg": _INT_ARRAY, "goal_cdeg": _INT_ARRAY, "present_cdeg": _INT_ARRAY,
        "status": _INT_ARRAY}, "dexlink.Telemetry"),
    IMAGE_SCHEMA: _obj({
        "timestamp": {"type": "object", "properties": {
            "sec": {"type": "integer"}, "nsec": {"type": "integer"}}},
        "frame_id": {"type": "string"},
        "data": {"type": "string", "contentEncoding": "base64"},
        "format": {"type": "string"}}, IMAGE_SCHEMA),
    "dexlink.Contact": _obj({
        "area": {"type": "number"}, "intensity": {"type": "number"}}, "dexlink.Contact"),
    "dexlink.Event": _obj({
        "kind": {"type": "string", "enum": ["mode", "fault", "mark", "log", "camera", "link",
                                            "teleop"]},
        "text": {"type": "string"}}, "dexlink.Event"),
    # One hand as dexlink's generic hand-frame JSON (dexlink.inputs.wire): OpenXR's 26 joints
    # in the wrist frame (null: lost), the wrist pose row-major, the source's seq and t_ns.
    "dexlink.HandFrame": _obj({
        "side": {"type": "string", "enum": ["right", "left"]}, "seq": {"type": "integer"},
        "t_ns": {"type": "integer"}, "source": {"type": "string"},
        "joints": {"type": "array", "items": {"type": ["array", "null"], "items": {"type": "number"}}},
        "wrist": {"type": "array", "items": {"type": "number"}}}, "dexlink.HandFrame"),
    "dexlink.TeleopTarget": _obj({
        "seq": {"type": "integer"}, "goal_deg": {"type": "array", "items": {"type": "number"}}},
        "dexlink.TeleopTarget"),
    "dexlink.TeleopLatency": _obj({
        "seq": {"type": "integer"}, "captured_ns": {"type": "integer"},
        "retargeted_ns": {"type": "integer"}, "sent_ns": {"type": "integer"},
        "on_servo_ns": {"type": "integer"}, "retarget_ms": {"type": "number"},
        "send_ms": {"type": "number"}, "servo_ms": {"type": "number"},
        "end_to_end_ms": {"type": "number"}}, "dexlink.TeleopLatency"),
}


def telemetry_json(msg) -> bytes:
    """A TELEMETRY message (dexproto.stream.Message) as the JSON Foxglove plots."""
    f = msg.fields
    items = msg.items
    return json.dumps({
        "cycle": f["cycle"], "board_us": f["board_us"], "cycle_us": f["cycle_us"],
        "overruns": f["overruns"],
        "mode": catalog.MODE_NAMES[f["mode"]] if f["mode"] < len(catalog.MODE_NAMES) else str(f["mode"]),
        "exo_cdeg": [it[0] for it in items], "goal_cdeg": [it[1] for it in items],
        "present_cdeg": [it[2] for it in items], "status": [it[3] for it in items],
    }, separators=(",", ":")).encode()


def image_json(camera: str, t_ns: int, fmt: str, data: bytes) -> bytes:
    return json.dumps({
        "timestamp": {"sec": t_ns // 1_000_000_000, "nsec": t_ns % 1_000_000_000},
        "frame_id": camera, "format": fmt,
        "data": base64.b64encode(data).decode("ascii")}, separators=(",", ":")).encode()


def image_bytes(message_data: bytes) -> tuple[str, bytes]:
    """(format, encoded image) from a CompressedImage message."""
    d = json.loads(message_data)
    return d["format"], base64.b64decode(d["data"])


def small_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
