"""The human hand as the retargeting sees it: a HandFrame's joints turned into the robot
hand's palm frame, and the finger names both sides share.

The robot's palm frame (dexlink.world): x towards the fingertips, y towards the thumb,
z out of the back of the hand: a right hand. A HandFrame's wrist frame is OpenXR's:
-Z towards the middle knuckle, +Y out of the back of the hand, +X = Y x Z. So on a right
hand palm x = -Z, palm y = -X, palm z = +Y; a left hand is mirrored (palm y = +X) so that
it drives the same right robot hand as its mirror image.

Devices disagree by a few degrees on where their wrist frame points, so when the wrist and
the index, middle and little knuckles are tracked the frame is rebuilt from them (the
OpenXR definition, `wrist_pose_from_joints`) before the turn. That definition points -Z
at the middle knuckle, which need not lie on the robot palm's x axis (iso22's is 5 mm off
it): `frame_correction` is the turn from the robot's own OpenXR-defined frame to its palm
frame, applied to every hand alike.
"""
from __future__ import annotations

import numpy as np

from dexlink.inputs.frame import (
    FINGER_CHAINS,
    JOINT_INDEX,
    HandFrame,
    to_wrist_frame,
    wrist_pose_from_joints,
)

# palm coordinates = XR_TO_PALM[side] @ OpenXR wrist-frame coordinates
XR_TO_PALM = {
    "right": np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    "left": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
}
# robot finger name -> OpenXR finger name, where they differ
HUMAN_FINGER = {"pinky": "little", "little": "little"}
WRIST = JOINT_INDEX["wrist"]
_FRAME_JOINTS = (WRIST, JOINT_INDEX["index_proximal"], JOINT_INDEX["middle_proximal"],
                 JOINT_INDEX["little_proximal"])


def human_finger(robot_finger: str) -> str | None:
    """The OpenXR finger a robot finger follows (None: no human counterpart)."""
    name = HUMAN_FINGER.get(robot_finger, robot_finger)
    return name if name in FINGER_CHAINS else None


def palm_points(frame: HandFrame, correction: np.ndarray | None = None) -> np.ndarray:
    """(26, 3) joint positions in the robot's palm frame (metres; invalid joints as they came)."""
    joints = frame.joints
    if frame.valid[list(_FRAME_JOINTS)].all():
        joints = to_wrist_frame(joints, wrist_pose_from_joints(joints, frame.side))
    turn = XR_TO_PALM[frame.side]
    if correction is not None:
        turn = correction @ turn
    return joints @ turn.T


def frame_correction(robot_xr_joints: np.ndarray) -> np.ndarray:
    """The rotation from the palm frame as rebuilt from the robot's own knuckles (its OpenXR
    joints at rest, right hand) to its true palm frame."""
    pose = wrist_pose_from_joints(robot_xr_joints, "right")
    m = XR_TO_PALM["right"]
    return m @ pose[:3, :3] @ m.T


def xr_points(palm_xyz, side: str = "right") -> np.ndarray:
    """Palm-frame points back in the OpenXR wrist frame (what a device would report)."""
    return np.asarray(palm_xyz, dtype=float) @ XR_TO_PALM[side]


def chain_length(points: np.ndarray, finger: str) -> float:
    """Wrist -> knuckle straight, then along the finger's bones to its tip (posture-free)."""
    chain = FINGER_CHAINS[finger]
    knuckle = 1 if finger == "thumb" else 2  # the thumb's base is its metacarpal joint
    length = float(np.linalg.norm(points[chain[knuckle]] - points[chain[0]]))
    for a, b in zip(chain[knuckle:-1], chain[knuckle + 1:]):
        length += float(np.linalg.norm(points[b] - points[a]))
    return length
