"""pinch_lift: pinch a small object between two fingertips and lift it."""
from __future__ import annotations

from dexlink.world.tasks.lift_cube import LiftCube


class PinchLift(LiftCube):
    name = "pinch_lift"
    description = ("pinch a 2.4 cm, 20 g block between thumb and index tips and hold it "
                   "4 cm up for 1 s")
    target = "block"
    grasp = "pinch"
    lift_m = 0.04
    half = 0.012
    mass = 0.02
    friction = 0.8
