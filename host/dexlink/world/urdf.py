"""A hand file as URDF, for ROS, retargeting libraries and visualisers.

Written from the same body tree as the MuJoCo model (tree.py), so frames, masses and
inertias agree. URDF has no capsule: each link's capsule is a cylinder and a sphere at
each end. The root link is "palm". Fingertips and tactile pads are fixed links
"<finger>_tip" and "<finger>_tactile" (the pad's z axis out of the pad). URDF cannot
say that motors pull several joints through tendons: a tendon hand's joints appear as
independent revolute joints (the coupling is noted in a comment), each with the torque
its tendons can give.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from dexlink.world.geometry import HandGeometry, load_geometry
from dexlink.world.mjcf import JOINT_DAMPING, JOINT_FRICTIONLOSS
from dexlink.world.tree import Body, HandTree


def _num(x: float) -> str:
    return "%.6g" % (0.0 if abs(x) < 1e-12 else x)


def _vec(v) -> str:
    return " ".join(_num(x) for x in v)


def quat_rpy(q) -> tuple:
    """URDF rpy (fixed-axis x, y, z) of a quaternion (w, x, y, z)."""
    w, x, y, z = q
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return roll, pitch, yaw


def _origin(parent, xyz, rpy=(0.0, 0.0, 0.0)):
    ET.SubElement(parent, "origin", xyz=_vec(xyz), rpy=_vec(rpy))


def _shapes(link, body: Body, radius: float):
    """Visual and collision elements of a body: its palm box or its capsule."""
    shapes = []
    if body.box is not None:
        centre, half = body.box
        shapes.append((centre, (0.0, 0.0, 0.0), "box", {"size": _vec(2 * h for h in half)}))
    if body.capsule is not None:
        a, b = body.capsule
        length = b[0] - a[0]
        cyl = {"radius": _num(radius), "length": _num(length)}
        # a URDF cylinder lies along z: turn it onto the link's x axis
        shapes.append(((a[0] + length / 2, 0.0, 0.0), (0.0, math.pi / 2, 0.0), "cylinder", cyl))
        for end in (a, b):
            shapes.append((end, (0.0, 0.0, 0.0), "sphere", {"radius": _num(radius)}))
    for kind in ("visual", "collision"):
        for xyz, rpy, shape, attrs in shapes:
            el = ET.SubElement(link, kind)
            _origin(el, xyz, rpy)
            ET.SubElement(ET.SubElement(el, "geometry"), shape, **attrs)
            if kind == "visual":
                ET.SubElement(el, "material", name="skin")


def _link(robot, body: Body, radius: float):
    link = ET.SubElement(robot, "link", name=body.name)
    inertial = ET.SubElement(link, "inertial")
    _origin(inertial, body.com)
    ET.SubElement(inertial, "mass", value=_num(body.mass))
    ixx, iyy, izz = body.inertia
    ET.SubElement(inertial, "inertia", ixx=_num(ixx), iyy=_num(iyy), izz=_num(izz),
                  ixy="0", ixz="0", iyz="0")
    _shapes(link, body, radius)


def _joint_limits(g: HandGeometry) -> dict:
    """Joint name -> (effort N m, velocity rad/s) from the motors that drive it."""
    limits = {}
    for j, joint in enumerate(g.joints):
        if g.coupling_a is None:
            motor = next(m for m in g.motors if m.joint == joint.name)
            limits[joint.name] = (motor.servo.stall_torque_nm, motor.servo.max_speed_rad_s)
            continue
        pulls = [(abs(row[j]), m) for row, m in zip(g.coupling_a, g.motors) if row[j]]
        effort = sum(c * m.servo.stall_torque_nm for c, m in pulls)
        speed = min((m.servo.max_speed_rad_s / c for c, m in pulls), default=1.0)
        limits[joint.name] = (effort, speed)
    return limits


def geometry_urdf(g: HandGeometry) -> str:
    tree = HandTree(g)
    radius = g.capsule_radius_m
    robot = ET.Element("robot", name=g.name)
    robot.append(ET.Comment(" written by `dexlink model` from %s " % Path(g.path).name))
    if g.coupling_a is not None:
        robot.append(ET.Comment(" tendon hand: motors pull joints through the [coupling] matrix "
                                "of the hand file (motor = A.q + b); URDF lists the joints only "))
    material = ET.SubElement(robot, "material", name="skin")
    ET.SubElement(material, "color", rgba="0.85 0.72 0.6 1")
    limits = _joint_limits(g)
    for body in tree.bodies:
        _link(robot, body, radius)
        if body.joint is not None:
            j = body.joint
            joint = ET.SubElement(robot, "joint", name=j.name, type="revolute")
            ET.SubElement(joint, "parent", link=body.parent)
            ET.SubElement(joint, "child", link=body.name)
            _origin(joint, body.pos, quat_rpy(body.quat))
            ET.SubElement(joint, "axis", xyz=_vec(j.axis))
            effort, velocity = limits[j.name]
            ET.SubElement(joint, "limit", lower=_num(j.range_rad[0]), upper=_num(j.range_rad[1]),
                          effort=_num(effort), velocity=_num(velocity))
            ET.SubElement(joint, "dynamics", damping=_num(JOINT_DAMPING),
                          friction=_num(JOINT_FRICTIONLOSS))
        for site in body.sites:
            ET.SubElement(robot, "link", name=site.name)
            joint = ET.SubElement(robot, "joint", name=site.name + "_frame", type="fixed")
            ET.SubElement(joint, "parent", link=body.name)
            ET.SubElement(joint, "child", link=site.name)
            _origin(joint, site.pos, quat_rpy(site.quat))
    ET.indent(robot)
    return '<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n"


def hand_urdf(hand_path: str | Path) -> str:
    """The hand file's hand as URDF text (root link "palm")."""
    return geometry_urdf(load_geometry(hand_path))
