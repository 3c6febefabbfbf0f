"""What a teleoperator sees of the robot hand they drive (operator_pinch acts on it).

A person teleoperating watches the robot hand (in the room, on the video, in the headset's
scene): where its pinch fingertips are, how far apart, whether they are on the object or
on the table, and how much they shake. Only such visible things are read here, from the
robot's present joint angles (forward kinematics) and the world's contacts; never forces,
never the device's error itself. A shaking hand is perceived as its average over a moment.
"""
from __future__ import annotations

import mujoco
import numpy as np

SEEN_M = 0.003  # a fingertip off by less than this is not seen (video; a guess)
PINCH_FINGERS = ("thumb", "index")
TABLE = "table"  # the scene's table geom
PERCEPTION_S = 0.3  # a jittering hand is perceived as its average over about this long


class HandSight:
    """The robot hand as the operator sees it: the pinch opening at its joints' present
    angles, and which fingertips are on the object."""

    def __init__(self, world, hand, axis_in_hand, finger_radius_m: float):
        self.world = world
        self.radius = finger_radius_m
        self.hand = hand  # HandPose: kinematics on a scratch state
        self.axis = np.asarray(axis_in_hand, dtype=float)
        self.mean_gap: float | None = None
        self.shake_var = 0.0  # m^2
        self.held_share = 0.0  # of the last moments, how much both fingertips were on it

    def watch(self, dt: float, target: str) -> None:
        """Look once a tick: how much the robot's pinch opening wobbles about where it is
        on average (a device's noise through the retargeting) and how much of the time
        both its fingertips are on the object, perceived over PERCEPTION_S."""
        gap = self.seen()[0]
        k = min(1.0, dt / PERCEPTION_S)
        if self.mean_gap is None:
            self.mean_gap = gap
        self.mean_gap += k * (gap - self.mean_gap)
        self.shake_var += k * ((gap - self.mean_gap) ** 2 - self.shake_var)
        self.held_share += k * (float(self.landed(target)) - self.held_share)

    @property
    def shake_m(self) -> float:
        return float(np.sqrt(self.shake_var))

    def pinch(self, q_rad) -> tuple[float, np.ndarray]:
        """For joint angles q_rad: the pinch opening (index tip minus thumb tip along the
        grasp axis, m) and the point midway between the tips (wrist frame, m). The tips are
        what is seen meeting the object: retargeting matches them to the person's, while
        the finger postures behind them (and so the pads) may differ."""
        tips = self.hand.tips(q_rad)
        thumb, index = tips[PINCH_FINGERS[0]], tips[PINCH_FINGERS[1]]
        return float((index - thumb) @ self.axis), (thumb + index) / 2

    def seen(self) -> tuple[float, np.ndarray]:
        """The robot's pinch as it is now."""
        return self.pinch(self.world.joint_positions())

    def _wrist(self) -> tuple[np.ndarray, np.ndarray]:
        wrist, quat = self.world.wrist_pose()
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, quat)
        return wrist, rot.reshape(3, 3)

    def lowest_tip(self) -> float:
        """How high (world z, m) the lowest point of the robot's pinch fingertips is, now."""
        tips = self.hand.tips(self.world.joint_positions())
        wrist, rot = self._wrist()
        return min(float((wrist + rot @ tips[f])[2]) for f in PINCH_FINGERS) - self.radius

    def from_centre(self, target: str) -> tuple[np.ndarray, np.ndarray]:
        """The object's centre less the robot's pinch centre, and the pinch axis (thumb to
        index), world frame, now."""
        wrist, rot = self._wrist()
        centre = wrist + rot @ self.seen()[1]
        return self.world.body_pose(target)[0] - centre, rot @ self.axis

    def off_centre(self, target: str) -> float:
        """How far (m) the object is from the robot's pinch centre across the table, now
        (the height differs by how the fingertips curl, and says nothing of a push)."""
        return float(np.linalg.norm(self.from_centre(target)[0][:2]))

    def fingers_on(self, target: str) -> set[str]:
        """The pinch fingers touching the object now."""
        on = set()
        for touch in self.world.contacts:
            if touch.other_geom == target:
                on.update(f for f in PINCH_FINGERS if touch.hand_geom.startswith(f + "_"))
        return on

    def on_table(self) -> bool:
        """A pinch fingertip pressed on the table (the hand is too low for the fingers)."""
        return bool(self.fingers_on(TABLE))

    def landed(self, target: str) -> bool:
        """Both pinch fingertips on the object."""
        return self.fingers_on(target) >= set(PINCH_FINGERS)
