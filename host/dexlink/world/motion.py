"""Smooth motions of a simulated person's hand and arm: minimum-jerk progress and
quaternion interpolation."""
from __future__ import annotations

import numpy as np


def min_jerk(x: float) -> float:
    """Progress (0..1) of a minimum-jerk movement at fraction x of its duration."""
    x = min(1.0, max(0.0, x))
    return x * x * x * (10 - 15 * x + 6 * x * x)


def slerp(a, b, s):
    """The unit quaternion s of the way from a to b, along the shorter arc."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    dot = float(a @ b)
    if dot < 0:
        b, dot = -b, -dot
    if dot > 0.9995:
        q = a + s * (b - a)
    else:
        th = np.arccos(dot)
        q = (np.sin((1 - s) * th) * a + np.sin(s * th) * b) / np.sin(th)
    return q / np.linalg.norm(q)
