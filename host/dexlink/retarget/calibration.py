"""Per-operator calibration: how much bigger the robot hand is than the operator's.

A person's bones keep their length whatever the posture, so any tracked frame tells the
hand's size: for each long finger both hands share, wrist -> knuckle plus the finger's
bones to its tip, robot over human. Their mean is the scale the human fingertip vectors
are multiplied by before the optimiser matches them (dex-retargeting's `scaling_factor`,
here measured instead of typed in). The median over the first frames keeps one bad frame
from setting it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dexlink.inputs.frame import FINGER_CHAINS
from dexlink.retarget.skeleton import chain_length, human_finger

CALIBRATION_FRAMES = 30  # frames whose median scale is kept
SCALE_RANGE = (0.5, 2.0)  # a scale outside this is a tracking fault, not a hand


def robot_lengths(geometry) -> dict[str, float]:
    """Per OpenXR finger name, the robot finger's wrist -> knuckle + links length (m)."""
    out = {}
    for f in geometry.fingers:
        name = human_finger(f.name)
        if name and name != "thumb" and f.fingertip and f.mount is None:
            out[name] = float(np.linalg.norm(f.base_pos_m)) + sum(j.link_m for j in f.joints)
    return out


def frame_scale(points: np.ndarray, valid: np.ndarray, robot: dict[str, float]) -> float | None:
    """Robot over human size from one frame's joints (any frame; None when no finger is whole)."""
    ratios = []
    for name, length in robot.items():
        if valid[list(FINGER_CHAINS[name])].all():
            human = chain_length(points, name)
            if human > 1e-3:
                ratios.append(length / human)
    if not ratios:
        return None
    scale = float(np.mean(ratios))
    return scale if SCALE_RANGE[0] <= scale <= SCALE_RANGE[1] else None


@dataclass
class OperatorCalibration:
    """The scale for one operator; `fixed` once set by hand or after CALIBRATION_FRAMES."""

    scale: float = 1.0
    fixed: bool = False
    samples: list = field(default_factory=list)

    @classmethod
    def of_scale(cls, scale: float) -> "OperatorCalibration":
        return cls(scale=float(scale), fixed=True)

    def observe(self, points: np.ndarray, valid: np.ndarray, robot: dict[str, float]) -> None:
        """Take one frame's measure while still calibrating."""
        if self.fixed:
            return
        s = frame_scale(points, valid, robot)
        if s is None:
            return
        self.samples.append(s)
        self.scale = float(np.median(self.samples))
        if len(self.samples) >= CALIBRATION_FRAMES:
            self.fixed = True
            self.samples = []

    def as_dict(self) -> dict:
        return {"scale": self.scale, "fixed": self.fixed}
