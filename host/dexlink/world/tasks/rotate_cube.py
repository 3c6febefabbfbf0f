"""rotate_cube: turn a cube a quarter turn in a palm-up hand, without dropping it."""
from __future__ import annotations

import mujoco
import numpy as np

from dexlink.world.grasps import GraspPlanner
from dexlink.world.scene import TABLE_TOP_Z
from dexlink.world.tasks.base import FAILURE, Task, add_free_box, yaw_quat

QUARTER_TURN_TOLERANCE = np.radians(20)
STILL_SPEED = 0.05  # m/s: the cube has come to rest
STILL_SPIN = 1.0  # rad/s


class RotateCube(Task):
    name = "rotate_cube"
    description = ("turn a 4.4 cm, 60 g cube lying in a palm-up hand a quarter turn "
                   "(90 +- 20 degrees) and keep it in the hand, at rest, for 0.5 s")
    time_limit_s = 10.0
    target = "cube"
    grasp = "roll"
    palm_up = True
    hold_s = 0.5
    half = 0.022
    mass = 0.06
    friction = 0.6

    def sample(self, rng):
        # Where on the palm the cube lies and how it is turned: a few millimetres and
        # degrees either way of where a hand would set it down.
        self.offset = np.append(rng.uniform(-0.006, 0.006, 2), 0.0)
        self.yaw = rng.uniform(-np.radians(12), np.radians(12))
        self.object_half = self.half

    def wrist_start(self):
        return np.array([-0.08, 0.0, TABLE_TOP_Z + 0.14])

    def build(self, spec):
        add_free_box(spec, self.target, [self.half] * 3, [0, 0, TABLE_TOP_Z + 0.3],
                     [1, 0, 0, 0], self.mass, self.friction, (0.9, 0.75, 0.1, 1.0))

    def reset(self, world):
        """Lay the cube on the hand where the roll grasp wants it, touching the palm."""
        grasp = GraspPlanner(world.hand, world.hand_path).plan(self.grasp, self.half)
        wrist, wquat = world.wrist_pose()
        pos = np.empty(3)
        mujoco.mju_rotVecQuat(pos, grasp.object_in_hand, wquat)
        pos += wrist + self.offset + [0, 0, 0.001]
        quat = np.empty(4)
        mujoco.mju_mulQuat(quat, yaw_quat(self.yaw), wquat)
        a = world.model.jnt_qposadr[world.model.joint(self.target + "_free").id]
        world.data.qpos[a:a + 3] = pos
        world.data.qpos[a + 3:a + 7] = quat
        self.start_pos, self.start_quat = pos, quat

    def turned(self, quat) -> float:
        """The angle (rad) of the cube's rotation since the start."""
        rel = np.empty(4)
        inv = np.array([self.start_quat[0], *(-np.asarray(self.start_quat[1:]))])
        mujoco.mju_mulQuat(rel, inv, quat)
        return float(2 * np.arccos(min(1.0, abs(rel[0]))))

    best_turn = 0.0

    def shortfall(self):
        return "the cube turned %.0f degrees at most" % np.degrees(self.best_turn)

    def check(self, world):
        pos, quat = world.body_pose(self.target)
        self.best_turn = max(self.best_turn, self.turned(quat))
        wrist, _ = world.wrist_pose()
        if pos[2] < wrist[2] - 0.08 or pos[2] < TABLE_TOP_Z + self.half + 0.01:
            self.reason = "the cube fell out of the hand"
            return FAILURE
        dof = world.model.jnt_dofadr[world.model.joint(self.target + "_free").id]
        vel = world.data.qvel[dof:dof + 6]
        still = np.linalg.norm(vel[:3]) < STILL_SPEED and np.linalg.norm(vel[3:]) < STILL_SPIN
        quarter = abs(self.turned(quat) - np.pi / 2) < QUARTER_TURN_TOLERANCE
        return self.held(world, quarter and still, "turned a quarter turn and at rest in the hand")

    def state(self, world):
        s = super().state(world)
        s["turned_deg"] = float(np.degrees(self.turned(s["object_quat"])))
        return s
