"""What a person knows of their own hand: where the fingertips go for a posture, which way
the palm faces, which way the fingers point. Forward kinematics of the scene's hand alone,
the wrist at the origin, on a scratch copy of the state (the world's is not touched).

The palm frame is the hand files' (x towards the fingertips, z out of the back of the
hand); where fingertips go is measured on the model, never assumed.
"""
from __future__ import annotations

import mujoco
import numpy as np


class HandPose:
    def __init__(self, scene):
        self.scene = scene
        self.model = scene.model
        self.data = mujoco.MjData(self.model)
        self.tip_sites = {}
        for f in scene.fingers:
            i = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, f + "_tip")
            if i >= 0:
                self.tip_sites[f] = i
        self.finger_dir, self.palm_normal = self._axes()

    def tips(self, q_rad) -> dict[str, np.ndarray]:
        """Each fingertip's position in the wrist frame for joint angles q_rad (TOML order)."""
        d = self.data
        a = self.scene.wrist_qpos
        d.qpos[a:a + 7] = (0, 0, 0, 1, 0, 0, 0)
        d.qpos[self.scene.joint_qpos] = q_rad
        mujoco.mj_kinematics(self.model, d)
        return {f: d.site_xpos[i].copy() for f, i in self.tip_sites.items()}

    def _axes(self):
        """(fingers' direction, palm normal out of the palm side) in the wrist frame: the
        hand files' palm frame has x towards the fingertips and z out of the back."""
        self.tips(np.zeros(len(self.scene.joint_names)))
        rot = self.data.xmat[self.model.body("palm").id].reshape(3, 3)
        return rot[:, 0].copy(), -rot[:, 2]

    def orientation(self, yaw: float = 0.0, palm_up: bool = False,
                    pitch: float = 0.0) -> np.ndarray:
        """The wrist quaternion that points the fingers along yaw (about world z, tilted
        down by pitch) with the palm facing down (or up)."""
        e1 = self.finger_dir
        e2 = self.palm_normal
        hand = np.column_stack([e1, e2, np.cross(e1, e2)])
        c, s = np.cos(yaw), np.sin(yaw)
        cp, sp = np.cos(pitch), np.sin(pitch)
        along = np.array([c * cp, s * cp, -sp])
        down = np.array([c * sp, s * sp, cp]) * (1.0 if palm_up else -1.0)
        world = np.column_stack([along, down, np.cross(along, down)])
        rot = world @ hand.T
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, rot.ravel())
        return quat


def rotate(quat, v) -> np.ndarray:
    out = np.empty(3)
    mujoco.mju_rotVecQuat(out, np.asarray(v, dtype=float), np.asarray(quat, dtype=float))
    return out
