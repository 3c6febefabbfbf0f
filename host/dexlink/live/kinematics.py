"""A URDF's joints as frame transforms: where each link is, given the joint angles.

Foxglove's 3D panel draws a URDF's links in the frames named after them; it moves them
with FrameTransforms (parent link -> child link), as ROS's robot_state_publisher would
give. This turns joint angles into those transforms: each joint's origin (xyz, then
roll-pitch-yaw about fixed axes), then its rotation about its axis.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

Quat = tuple[float, float, float, float]  # (x, y, z, w), as Foxglove's Quaternion


def quat_mul(a: Quat, b: Quat) -> Quat:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz)


def quat_axis_angle(axis, angle: float) -> Quat:
    n = math.sqrt(sum(c * c for c in axis)) or 1.0
    s = math.sin(angle / 2) / n
    return (axis[0] * s, axis[1] * s, axis[2] * s, math.cos(angle / 2))


def quat_rpy(roll: float, pitch: float, yaw: float) -> Quat:
    """URDF's rpy: about the fixed x, then y, then z axes (R = Rz Ry Rx)."""
    return quat_mul(quat_axis_angle((0, 0, 1), yaw),
                    quat_mul(quat_axis_angle((0, 1, 0), pitch), quat_axis_angle((1, 0, 0), roll)))


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    kind: str  # revolute, continuous, prismatic, fixed
    parent: str
    child: str
    xyz: tuple[float, float, float]
    rotation: Quat  # of the origin's rpy
    axis: tuple[float, float, float]


@dataclass(frozen=True)
class LinkTransform:
    parent: str
    child: str
    translation: tuple[float, float, float]
    rotation: Quat


def _floats(text: str | None, default: tuple) -> tuple:
    return tuple(float(x) for x in text.split()) if text else default


class HandKinematics:
    """The joints of a URDF text; `transforms(angles)` poses every link."""

    def __init__(self, urdf: str):
        robot = ET.fromstring(urdf)
        self.name = robot.get("name", "")
        self.joints: list[UrdfJoint] = []
        for j in robot.iter("joint"):
            origin = j.find("origin")
            axis = j.find("axis")
            self.joints.append(UrdfJoint(
                j.get("name"), j.get("type"), j.find("parent").get("link"),
                j.find("child").get("link"),
                _floats(origin.get("xyz") if origin is not None else None, (0.0, 0.0, 0.0)),
                quat_rpy(*_floats(origin.get("rpy") if origin is not None else None,
                                  (0.0, 0.0, 0.0))),
                _floats(axis.get("xyz") if axis is not None else None, (1.0, 0.0, 0.0))))
        children = {j.child for j in self.joints}
        roots = [
            link.get("name") for link in robot.iter("link") if link.get("name") not in children
        ]
        self.root = roots[0] if roots else ""
        self.moving = [j.name for j in self.joints if j.kind != "fixed"]

    def transforms(self, angles: dict[str, float]) -> list[LinkTransform]:
        """Every joint's child link in its parent's frame; angles in radians (metres for a
        prismatic joint) by joint name, 0 for a joint not given."""
        out = []
        for j in self.joints:
            q = angles.get(j.name, 0.0) if j.kind != "fixed" else 0.0
            xyz, rotation = j.xyz, j.rotation
            if j.kind in ("revolute", "continuous"):
                rotation = quat_mul(rotation, quat_axis_angle(j.axis, q))
            elif j.kind == "prismatic":  # along the axis, in the origin's orientation
                offset = rotate(rotation, tuple(a * q for a in j.axis))
                xyz = tuple(a + b for a, b in zip(xyz, offset))
            out.append(LinkTransform(j.parent, j.child, xyz, rotation))
        return out


def rotate(q: Quat, v) -> tuple[float, float, float]:
    x, y, z, _ = quat_mul(quat_mul(q, (v[0], v[1], v[2], 0.0)), (-q[0], -q[1], -q[2], q[3]))
    return x, y, z
