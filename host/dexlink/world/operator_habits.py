"""How one attempt of the simulated operator goes (operator.Operator): habits drawn once
from the seed, spread by (1 - skill)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Habits:
    """How one attempt goes: drawn from the seed, spread by (1 - skill)."""

    aim_m: np.ndarray  # where they put the hand relative to where they mean to (x, y, z)
    yaw_rad: float  # how far they misjudge the object's faces
    squeeze: float  # pinch: metres past contact; power, roll: fraction of a full close
    reach_s: float
    close_s: float
    settle_s: float
    lift_s: float  # a brisk lift jerks the object out of a light grip
    watch: bool  # do they watch the object and grip harder when it slips?
    retries: int  # how often they try again after a miss
    tremor_deg: float

    @classmethod
    def draw(cls, rng: np.random.Generator, skill: float, grasp: str) -> "Habits":
        u = 1.0 - float(np.clip(skill, 0.0, 1.0))
        aim = rng.normal(0.0, 1.0, 3) * [0.002 + 0.016 * u, 0.002 + 0.016 * u, 0.001 + 0.004 * u]
        if grasp == "pinch":  # a small block looks light: a light pinch, whatever the skill
            squeeze = rng.uniform(0.001, 0.006)
        else:  # how completely they close or curl
            squeeze = 1.0 - u * rng.uniform(0.0, 0.6)
        return cls(aim_m=aim, yaw_rad=float(rng.normal(0.0, np.radians(2 + 14 * u))),
                   squeeze=float(squeeze), reach_s=float(rng.uniform(1.2, 1.8)),
                   close_s=float(rng.uniform(0.4, 0.7) + 0.3 * skill),
                   settle_s=float(0.1 + 0.4 * skill * rng.uniform(0.5, 1.0)),
                   lift_s=float(0.3 + 1.2 * skill * rng.uniform(0.7, 1.0)),
                   watch=bool(skill > rng.uniform(0.3, 0.7)), retries=int(round(2 * skill)),
                   tremor_deg=0.1 + 0.5 * u)
