"""A hand's geometry as a tree of rigid bodies: the one description both models are written
from (mjcf.py for MuJoCo, urdf.py for URDF), so the two agree on every frame and mass.

Bodies: "palm" (a box), then one body per joint named "<joint>_link", holding that joint
at its origin and a capsule along its x axis from the joint to the next one (the last
link's capsule ends a radius short of the tip, so its round end is the fingertip).
Zero-length links (abduction, rotation) have no capsule and a small explicit inertia.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dexlink.world.geometry import FingerGeometry, HandGeometry, JointGeometry

PALM = "palm"
# A zero-length link (the bracket between two crossed joints): its mass and radius of gyration.
BRACKET_MASS_KG = 0.002
BRACKET_GYRATION_M = 0.005
# The tactile pad's frame: x along the finger, z out of the pad (the finger's palm side).
PAD_QUAT = (0.0, 1.0, 0.0, 0.0)
PAD_THICKNESS_M = 0.0005


@dataclass(frozen=True)
class Site:
    name: str
    pos: tuple
    quat: tuple
    size: tuple                # box half sizes


@dataclass
class Body:
    name: str
    parent: str | None
    pos: tuple                 # in the parent's frame
    quat: tuple                # (w, x, y, z) in the parent's frame
    mass: float
    com: tuple                 # centre of mass in this body's frame
    inertia: tuple             # principal moments, axes along this body's frame
    joint: JointGeometry | None = None
    capsule: tuple | None = None   # (from xyz, to xyz) in this frame
    box: tuple | None = None       # (centre xyz, half sizes)
    sites: list = field(default_factory=list)


def link_name(joint: str) -> str:
    return joint + "_link"


def capsule_inertia(length: float, radius: float, density: float) -> tuple:
    """(mass, (Ixx, Iyy, Izz)) about the centre of a capsule along x: a cylinder and two
    hemispherical caps (each cap's centroid 3r/8 from its flat face)."""
    m_cyl = density * math.pi * radius ** 2 * length
    m_cap = density * 2.0 / 3.0 * math.pi * radius ** 3
    axial = m_cyl * radius ** 2 / 2 + 2 * (2.0 / 5.0) * m_cap * radius ** 2
    d = length / 2 + 3 * radius / 8
    cap_own = (83.0 / 320.0) * m_cap * radius ** 2   # a hemisphere about its centroid, across
    across = m_cyl * (length ** 2 / 12 + radius ** 2 / 4) + 2 * (cap_own + m_cap * d ** 2)
    return m_cyl + 2 * m_cap, (axial, across, across)


def box_inertia(half: tuple, density: float) -> tuple:
    a, b, c = (2 * h for h in half)
    m = density * a * b * c
    return m, (m * (b * b + c * c) / 12, m * (a * a + c * c) / 12, m * (a * a + b * b) / 12)


def _rot(q) -> np.ndarray:
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _qmul(a, b) -> tuple:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw)


def _qconj(q) -> tuple:
    return (q[0], -q[1], -q[2], -q[3])


def _rest_pose(finger: FingerGeometry, joint: str) -> tuple:
    """(position, quat) of a joint's link in the palm frame with every joint at zero."""
    along = 0.0
    for j in finger.joints:
        if j.name == joint:
            break
        along += j.link_m
    pos = np.array(finger.base_pos_m) + _rot(finger.base_quat) @ np.array([along, 0.0, 0.0])
    return pos, finger.base_quat


class HandTree:
    """The bodies of a hand (parents before children) and the body pairs whose contacts
    are excluded (a finger's first links overlap the palm by construction)."""

    def __init__(self, geometry: HandGeometry):
        self.geometry = geometry
        g = geometry
        half = (g.palm_size_m[0] / 2, g.palm_size_m[1] / 2, g.palm_size_m[2] / 2)
        mass, inertia = box_inertia(half, g.density_kg_m3)
        centre = (half[0], 0.0, 0.0)
        self.bodies = [Body(PALM, None, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), mass, centre,
                            inertia, box=(centre, half))]
        self.excludes = []
        finger_of = {j.name: f for f in g.fingers for j in f.joints}
        for finger in g.fingers:
            self._add_finger(finger, finger_of)

    def _add_finger(self, finger: FingerGeometry, finger_of: dict):
        g = self.geometry
        r = g.capsule_radius_m
        if finger.mount is None:
            parent, pos, quat = PALM, finger.base_pos_m, finger.base_quat
        else:
            parent = link_name(finger.mount)
            mpos, mquat = _rest_pose(finger_of[finger.mount], finger.mount)
            pos = tuple(_rot(mquat).T @ (np.array(finger.base_pos_m) - mpos))
            quat = _qmul(_qconj(mquat), finger.base_quat)
        overlapping = True  # links up to the first with a length start inside the palm
        last = len(finger.joints) - 1
        for k, j in enumerate(finger.joints):
            length = j.link_m
            if finger.fingertip and k == last:
                length -= r  # the round end reaches the tip
            if length > 0:
                mass, inertia = capsule_inertia(length, r, g.density_kg_m3)
                com, capsule = (length / 2, 0.0, 0.0), ((0.0, 0.0, 0.0), (length, 0.0, 0.0))
            else:
                mass = BRACKET_MASS_KG
                inertia = (mass * BRACKET_GYRATION_M ** 2,) * 3
                com, capsule = (0.0, 0.0, 0.0), None
            body = Body(link_name(j.name), parent, tuple(pos), tuple(quat), mass, com, inertia,
                        joint=j, capsule=capsule)
            self.bodies.append(body)
            if overlapping:
                self.excludes.append((PALM, body.name))
                if finger.mount is not None and parent != link_name(finger.mount):
                    self.excludes.append((link_name(finger.mount), body.name))
                overlapping = j.link_m <= 0
            parent, pos, quat = body.name, (j.link_m, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)
        if finger.fingertip:
            tip = self.bodies[-1]
            tip.sites.append(Site(finger.name + "_tip", (finger.joints[-1].link_m, 0.0, 0.0),
                                  (1.0, 0.0, 0.0, 0.0), (r / 4,) * 3))
            pad = g.tactile_pad_m
            tip.sites.append(Site(finger.name + "_tactile", (finger.tactile_at_m, 0.0, -r),
                                  PAD_QUAT, (pad[0] / 2, pad[1] / 2, PAD_THICKNESS_M)))
