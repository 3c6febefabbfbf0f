"""A teleop session recorded: `dexlink record --input` keeps, beside the telemetry, the
raw input frames, the retargeted goals and each goal's stage latencies, each on its own
channel of the episode (dexlink.record.schema.TELEOP_*), and the session's news as events.
"""
from __future__ import annotations

import json

import numpy as np

from dexlink.inputs import wire
from dexlink.inputs.frame import HandFrame
from dexlink.record import schema
from dexlink.teleop.latency import StageTimes
from dexlink.teleop.session import TeleopTaps


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class RecorderTaps(TeleopTaps):
    """Writes what the session does into the recorder's current episode (nothing between
    episodes); the episode writer queues, so none of this blocks the session."""

    def __init__(self, recorder):
        self.recorder = recorder

    def _add(self, topic: str, schema_name: str, t_ns: int, obj) -> None:
        w = self.recorder.current
        if w is not None:
            w.add_json(topic, schema_name, t_ns, _json(obj))

    def frame(self, frame: HandFrame) -> None:
        self._add(schema.TELEOP_INPUT, "dexlink.HandFrame", frame.t_ns, wire.frame_to_dict(frame))

    def target(self, t_ns: int, seq: int, goal_deg: np.ndarray) -> None:
        self._add(schema.TELEOP_TARGETS, "dexlink.TeleopTarget", t_ns,
                  {"seq": int(seq), "goal_deg": [round(float(v), 3) for v in goal_deg]})

    def latency(self, times: StageTimes) -> None:
        self._add(schema.TELEOP_LATENCY, "dexlink.TeleopLatency", times.on_servo_ns, times.as_dict())

    def event(self, text: str) -> None:
        self.recorder.event("teleop", text)
