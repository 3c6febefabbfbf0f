"""lift_cube: grasp a cube from the table with the whole hand and lift it."""
from __future__ import annotations

import numpy as np

from dexlink.world.scene import TABLE_TOP_Z
from dexlink.world.tasks.base import FAILURE, Task, add_free_box, yaw_quat


class LiftCube(Task):
    name = "lift_cube"
    description = "grasp a 5 cm, 100 g cube on the table and hold it 5 cm up for 1 s"
    time_limit_s = 15.0
    target = "cube"
    grasp = "power"
    lift_m = 0.05
    hold_s = 1.0
    half = 0.025
    mass = 0.10
    friction = 0.8
    rgba = (0.8, 0.15, 0.1, 1.0)

    def sample(self, rng):
        # Where the cube lies: within 3 cm of the table's centre, any way round.
        xy = rng.uniform(-0.03, 0.03, 2)
        self.start_pos = np.array([xy[0], xy[1], TABLE_TOP_Z + self.half])
        self.start_quat = yaw_quat(rng.uniform(-np.pi, np.pi))
        self.object_half = self.half

    def build(self, spec):
        add_free_box(spec, self.target, [self.half] * 3, self.start_pos, self.start_quat,
                     self.mass, self.friction, self.rgba)

    best_lift = 0.0

    def shortfall(self):
        return "the %s rose %.1f cm at most" % (self.target, 100 * self.best_lift)

    def check(self, world):
        pos, _ = world.body_pose(self.target)
        self.best_lift = max(self.best_lift, float(pos[2] - self.start_pos[2]))
        if self.fell_off(pos):
            self.reason = "the cube fell off the table"
            return FAILURE
        return self.held(world, pos[2] - self.start_pos[2] >= self.lift_m,
                         "held %.0f cm up for %.1f s" % (self.lift_m * 100, self.hold_s))
