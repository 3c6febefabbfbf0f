"""feel_lift: lift a cube whose mass and friction only touch can tell."""
from __future__ import annotations

from dexlink.world.tasks.lift_cube import LiftCube


class FeelLift(LiftCube):
    name = "feel_lift"
    description = "(in progress)"
