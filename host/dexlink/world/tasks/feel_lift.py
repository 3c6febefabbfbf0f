"""feel_lift: pinch and lift a block that always looks the same, but whose mass and
friction the seed draws: only touch tells how hard to squeeze before it slips."""
from __future__ import annotations

import numpy as np

from dexlink.world.tasks.pinch_lift import PinchLift

MASS_KG = (0.03, 0.40)  # drawn log-uniform: a hollow block or a lead one
FRICTION = (0.3, 1.0)  # from waxed to rubbery, uniform


class FeelLift(PinchLift):
    name = "feel_lift"
    description = ("pinch and lift a 3 cm block that looks the same every time; its mass "
                   "(30-400 g) and friction (0.3-1.0) vary by seed: the grip must be felt")
    target = "block"
    half = 0.015
    rgba = (0.2, 0.45, 0.8, 1.0)  # one look for every mass and friction

    def sample(self, rng):
        super().sample(rng)
        self.mass = float(np.exp(rng.uniform(*np.log(MASS_KG))))
        self.friction = float(rng.uniform(*FRICTION))

    def state(self, world):
        s = super().state(world)
        s.update(mass_kg=self.mass, friction=self.friction)  # the truth, for reports only
        return s
