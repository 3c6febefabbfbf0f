"""A human hand for the simulated teleop devices: the hand file's joint layout (the
exoskeleton is isomorphic to it: its joints are the operator's joints) carrying a
person's segment lengths, posed by the operator's joint angles and reported as the 26
OpenXR joints a tracker or glove would give (dexlink.inputs.frame).

Segment lengths are Buchholz, Armstrong & Goldstein 1992 ("Anthropometric data for
describing the kinematics of the human hand", Ergonomics 35:261) ratios times the
person's hand length, the same coefficients the hand files are built from (proximal
phalanges as the AnyBody hand model reproduces the table; docs/decisions.md, World). So a
person whose hand is 190 mm long has the iso16 hand's proportions; people differ in hand
length (drawn per operator) and by a few per cent per segment (a guess, of the order of
the spread Buchholz et al. report).
"""
from __future__ import annotations

import mujoco
import numpy as np

from dexlink.inputs.frame import JOINT_INDEX, METACARPAL_FRACTION, N_JOINTS
from dexlink.retarget.skeleton import human_finger, xr_points

# Segment length / hand length, base to tip: thumb metacarpal, proximal, distal; the
# fingers' proximal, middle, distal phalanges.
BUCHHOLZ = {
    "thumb": (0.251, 0.196, 0.158),
    "index": (0.245, 0.143, 0.097),
    "middle": (0.266, 0.170, 0.108),
    "ring": (0.244, 0.165, 0.107),
    "little": (0.204, 0.117, 0.093),
}
# Adult hand length (wrist crease to the middle fingertip), British adults 19-65
# (Pheasant & Haslegrave, Bodyspace): men ~190 mm, women ~175 mm, SD ~9-10 mm.
HAND_LENGTH_MEAN_M = 0.183
HAND_LENGTH_SD_M = 0.012  # both sexes pooled
SEGMENT_SPREAD = 0.03  # per-segment individual variation (fraction; a guess)
XR_FINGER_JOINTS = {  # OpenXR joints from the finger's base outwards
    "thumb": ("thumb_metacarpal", "thumb_proximal", "thumb_distal", "thumb_tip"),
    "index": ("index_proximal", "index_intermediate", "index_distal", "index_tip"),
    "middle": ("middle_proximal", "middle_intermediate", "middle_distal", "middle_tip"),
    "ring": ("ring_proximal", "ring_intermediate", "ring_distal", "ring_tip"),
    "little": ("little_proximal", "little_intermediate", "little_distal", "little_tip"),
}


def axis_rotation(axis, angle: float) -> np.ndarray:
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def quat_matrix(quat) -> np.ndarray:
    m = np.empty(9)
    mujoco.mju_quat2Mat(m, np.asarray(quat, dtype=float))
    return m.reshape(3, 3)


class HumanHand:
    """Forward kinematics of a hand with the hand file's joints and `links` (per finger,
    metres per joint, the hand file's layout) from knuckles at `scale` x the hand's."""

    def __init__(self, geometry, links: dict, scale: float = 1.0):
        self.geometry = geometry
        self.links = links
        self.scale = float(scale)
        self.index = {j.name: i for i, j in enumerate(geometry.joints)}
        self._rest = self._frames(np.zeros(len(geometry.joints)), rest=None)

    @classmethod
    def robot(cls, geometry) -> "HumanHand":
        """The robot hand itself posing as the human (retargeting's best case)."""
        return cls(geometry, {f.name: [j.link_m for j in f.joints] for f in geometry.fingers})

    @classmethod
    def person(cls, geometry, hand_length_m: float, rng: np.random.Generator | None = None):
        """A person of that hand length: Buchholz's segments, each off by a few per cent."""
        links = {}
        for f in geometry.fingers:
            lengths = [j.link_m for j in f.joints]
            ratios = BUCHHOLZ.get(human_finger(f.name) or "")
            segments = [k for k, length in enumerate(lengths) if length > 0]
            if ratios is None or len(segments) != len(ratios):
                ratios = [lengths[k] / geometry.hand_length_m for k in segments]
            for k, r in zip(segments, ratios):
                spread = 1.0 + (SEGMENT_SPREAD * rng.standard_normal() if rng is not None else 0.0)
                lengths[k] = r * hand_length_m * spread
            links[f.name] = lengths
        return cls(geometry, links, hand_length_m / geometry.hand_length_m)

    def _frames(self, q, rest):
        """Per joint name, its link's (rotation, origin) in the palm frame at angles q; and
        per finger the points base, each joint after a link, tip."""
        frames, points = {}, {}
        for f in self.geometry.fingers:
            rot, pos = quat_matrix(f.base_quat), np.asarray(f.base_pos_m) * self.scale
            if f.mount is not None and rest is not None:
                r0, p0 = rest[0][f.mount]
                rm, pm = frames[f.mount]
                rel_rot, rel_pos = r0.T @ rot, r0.T @ (pos - p0)
                rot, pos = rm @ rel_rot, pm + rm @ rel_pos
            chain = [pos]
            for j, length in zip(f.joints, self.links[f.name]):
                rot = rot @ axis_rotation(j.axis, q[self.index[j.name]])
                frames[j.name] = (rot, pos)
                if length > 0:
                    pos = pos + rot[:, 0] * length
                    chain.append(pos)
            points[f.name] = chain
        return frames, points

    def palm_points(self, q_rad) -> dict:
        """Per robot finger, its points (base, after each link, tip) in the palm frame."""
        return self._frames(np.asarray(q_rad, dtype=float), self._rest)[1]

    def fingertip_jacobians(self, q_rad) -> list[tuple[list[int], np.ndarray]]:
        """Per finger, its joints' indices and the (3, n) Jacobian of its fingertip in the
        palm frame against those joints' angles at q_rad (m/rad): a revolute joint moves the
        tip at axis x (tip - joint)."""
        frames, points = self._frames(np.asarray(q_rad, dtype=float), self._rest)
        out = []
        for f in self.geometry.fingers:
            tip = points[f.name][-1]
            # rot is the link's frame after the joint turned: the axis is the same before
            cols = [np.cross(rot @ np.asarray(j.axis, dtype=float), tip - origin)
                    for j in f.joints for rot, origin in (frames[j.name],)]
            out.append(([self.index[j.name] for j in f.joints], np.array(cols).T))
        return out

    def openxr(self, q_rad, side: str = "right") -> np.ndarray:
        """(26, 3) OpenXR joints in the wrist frame for the hand file's joint angles q_rad.
        A finger the robot lacks (the little finger of a four-finger hand) follows the ring
        finger one knuckle spacing further out, Buchholz-long, bent as the ring finger is."""
        chains = self.palm_points(q_rad)
        out = np.zeros((N_JOINTS, 3))
        seen = set()
        for name, chain in chains.items():
            finger = human_finger(name)
            if finger is None or len(chain) < 4:
                continue
            for joint, p in zip(XR_FINGER_JOINTS[finger], chain[-4:]):
                out[JOINT_INDEX[joint]] = p
            seen.add(finger)
        if "little" not in seen and {"ring", "middle"} <= seen:
            self._little_from_ring(out)
        for finger in ("index", "middle", "ring", "little"):
            knuckle = JOINT_INDEX[finger + "_proximal"]
            out[knuckle - 1] = METACARPAL_FRACTION * out[knuckle]
        out[JOINT_INDEX["palm"]] = 0.5 * (out[JOINT_INDEX["middle_metacarpal"]]
                                          + out[JOINT_INDEX["middle_proximal"]])
        return xr_points(out, side)

    def _little_from_ring(self, out):
        ring = [out[JOINT_INDEX[n]] for n in XR_FINGER_JOINTS["ring"]]
        middle = out[JOINT_INDEX["middle_proximal"]]
        base = ring[0] + (ring[0] - middle)
        ratio = np.array(BUCHHOLZ["little"]) / np.array(BUCHHOLZ["ring"])
        p = base
        out[JOINT_INDEX["little_proximal"]] = base
        for k, joint in enumerate(XR_FINGER_JOINTS["little"][1:]):
            p = p + (ring[k + 1] - ring[k]) * ratio[k]
            out[JOINT_INDEX[joint]] = p
