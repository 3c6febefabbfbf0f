"""A plausible adult human hand in the OpenXR wrist frame: tests, demos and simulated
operators start from it. Lengths are typical adult values (phalanges 20-50 mm,
metacarpals ~65-90 mm), not any one person's.
"""
from __future__ import annotations

import numpy as np

from dexlink.inputs.frame import METACARPAL_FRACTION, N_JOINTS

# Right hand, open and flat: fingers along -Z, back of the hand +Y, thumb towards -X.
# (knuckle x, knuckle z, proximal, intermediate, distal phalanx lengths) per finger.
_FINGERS = {
    7: (-0.022, -0.088, 0.043, 0.025, 0.020),   # index
    12: (0.000, -0.090, 0.047, 0.029, 0.021),   # middle
    17: (0.019, -0.085, 0.044, 0.027, 0.021),   # ring
    22: (0.036, -0.077, 0.035, 0.020, 0.019),   # little
}
_THUMB = ((-0.020, -0.010, -0.030), (-0.042, -0.015, -0.062),
          (-0.055, -0.016, -0.092), (-0.064, -0.016, -0.115))


def reference_joints(side: str = "right") -> np.ndarray:
    """(26, 3) joint positions of an open flat hand in its wrist frame, metres."""
    j = np.zeros((N_JOINTS, 3))
    j[2:6] = _THUMB
    for knuckle, (x, z, *bones) in _FINGERS.items():
        j[knuckle] = (x, 0.0, z)
        j[knuckle - 1] = METACARPAL_FRACTION * j[knuckle]
        for k, length in enumerate(bones, start=1):
            j[knuckle + k] = j[knuckle + k - 1] + (0.0, 0.0, -length)
    j[0] = 0.5 * (j[11] + j[12])
    if side == "left":
        j[:, 0] *= -1.0
    return j


def curl(joints: np.ndarray, amount: float) -> np.ndarray:
    """The hand with each non-thumb finger bent by `amount` (0 open .. 1 a fist, ~90 deg at
    each finger joint) towards the palm (-Y); the thumb swings across the palm."""
    j = np.array(joints, dtype=np.float64)
    angle = amount * np.pi / 2
    for knuckle in _FINGERS:
        for k in range(1, 4):
            base = j[knuckle + k - 1]
            rot = _about_x(-angle)
            j[knuckle + k:knuckle + 4] = (j[knuckle + k:knuckle + 4] - base) @ rot.T + base
    base = j[3]
    j[4:6] = (j[4:6] - base) @ _about_x(-0.6 * angle).T + base
    return j


def _about_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
