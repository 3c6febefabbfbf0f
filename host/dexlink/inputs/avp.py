"""Apple Vision Pro through `avp-stream`, the Python client of the Tracking Streamer app
(gRPC, the headset's port 12345). Optional: `pip install 'dexlink[avp]'`.

The streamer keeps its newest sample in a dict: "<side>_wrist" (1, 4, 4) in the headset's
world frame and "<side>_fingers" (25, 4, 4) (27 in newer app versions: + forearm wrist and
arm, ignored here) in the wrist frame, in ARKit's HandSkeleton order: wrist; thumb knuckle
(carpometacarpal), intermediate base, intermediate tip, tip; then index, middle, ring and
little as metacarpal, knuckle, intermediate base, intermediate tip, tip. That is OpenXR's
order without the palm. ARKit's joint axes differ from OpenXR's, so the OpenXR wrist frame
is made from the joint positions rather than taken from ARKit's matrices.
"""
from __future__ import annotations

import time

import numpy as np

from dexlink.errors import UserError
from dexlink.inputs.frame import (
    N_JOINTS,
    BadFrame,
    HandFrame,
    InputLimits,
    frame_from_world_joints,
)
from dexlink.inputs.threaded import ThreadedInput

AVP_PORT = 12345
POLL_HZ = 250.0  # the app streams at ~90 Hz; polling faster only bounds the added delay


def frames_from_avp(sample: dict, *, received_ns: int, next_seq, sides=("right", "left")) -> list[HandFrame]:
    """The hands in one avp-stream sample (`VisionProStreamer.latest`)."""
    frames = []
    for side in sides:
        wrist = sample.get("%s_wrist" % side)
        fingers = sample.get("%s_fingers" % side)
        if wrist is None or fingers is None:
            continue
        wrist = np.asarray(wrist, dtype=np.float64).reshape(-1, 4, 4)[0]
        fingers = np.asarray(fingers, dtype=np.float64)
        if fingers.ndim != 3 or fingers.shape[1:] != (4, 4) or fingers.shape[0] < 25:
            raise BadFrame("%s_fingers has shape %s, not (25, 4, 4)" % (side, fingers.shape))
        in_wrist = fingers[:25, :3, 3]
        world = np.empty((N_JOINTS, 3))
        world[1:] = in_wrist @ wrist[:3, :3].T + wrist[:3, 3]
        world[0] = 0.5 * (world[11] + world[12])
        frames.append(frame_from_world_joints(world, side, t_ns=received_ns, seq=next_seq(),
                                              source="avp"))
    return frames


class AvpInput(ThreadedInput):
    """Polls an avp-stream VisionProStreamer connected to the headset at `ip`."""

    source = "avp"

    def __init__(self, ip: str, limits: InputLimits | None = None):
        super().__init__(limits)
        try:
            from avp_stream import VisionProStreamer
        except ImportError:
            raise UserError("--input avp needs avp-stream (the Vision Pro Tracking Streamer client): "
                            "pip install 'dexlink[avp]'") from None
        self.ip = ip
        self._streamer_class = VisionProStreamer
        self._streamer = None

    def describe(self) -> str:
        return "Apple Vision Pro at %s:%d" % (self.ip, AVP_PORT)

    def start(self) -> AvpInput:
        try:
            self._streamer = self._streamer_class(ip=self.ip, record=False)
        except Exception as e:  # noqa: BLE001 - avp-stream raises whatever gRPC raised
            raise UserError("cannot reach the Vision Pro at %s: %s" % (self.ip, e)) from None
        self.start_worker(self._poll, "avp")
        return self

    def _poll(self) -> None:
        last = None
        while self.running:
            sample = getattr(self._streamer, "latest", None)
            if sample is not None and sample is not last:
                last = sample
                self.admit()
                try:
                    frames = frames_from_avp(sample, received_ns=time.monotonic_ns(),
                                             next_seq=self.next_seq)
                except BadFrame as e:
                    self.reject(e.reason)
                    frames = []
                except Exception as e:  # noqa: BLE001 - a malformed sample must not end the input
                    self.reject("unreadable sample (%s)" % type(e).__name__)
                    frames = []
                for frame in frames:
                    self.offer(frame)
            time.sleep(1.0 / POLL_HZ)
