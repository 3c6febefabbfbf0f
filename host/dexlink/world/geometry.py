"""A hand file's body: its [geometry] table and the joints' axes, read and checked.

The hand file says, in millimetres and degrees, how big the palm is, where each finger
starts and how long its links are (see the comment above [geometry] in
hardware/hands/iso16.toml for the frames). `load_geometry` returns it in metres and
radians as a `HandGeometry`, with each finger's joints (in the hand file's order), the
motors that drive them and, for a tendon hand, the coupling matrix. Anything wrong is a
`GeometryError` naming the file and the field: "hardware/hands/iso16.toml:
geometry.fingers.index.links_mm[1]: must be > 0, got -3".

GeometryError is re-exported here: `from dexlink.world.geometry import GeometryError`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dexlink import hwconfig
from dexlink.world.fields import Fields, GeometryError  # noqa: F401 (re-exported)
from dexlink.world.servos import SERVO_MODELS, ServoModel

FLEX_AXIS = (0.0, 1.0, 0.0)  # a joint's axis unless it names one: curls the finger palm-wards
MOUNT_NAME = "wrist"  # the free body (and joint) the model hangs the palm from


@dataclass(frozen=True)
class JointGeometry:
    name: str
    finger: str
    index: int                 # place in the hand file's [[joints]]
    axis: tuple                # unit vector in the finger frame
    range_rad: tuple           # (lo, hi)
    link_m: float              # from this joint to the next one (the last: to the tip)


@dataclass(frozen=True)
class FingerGeometry:
    name: str
    joints: tuple              # JointGeometry, base to tip
    base_pos_m: tuple          # first joint, palm frame, all joints at zero
    base_quat: tuple           # finger frame in the palm frame (w, x, y, z)
    mount: str | None          # the joint whose link carries the finger; None: the palm
    fingertip: bool            # has a tip and a tactile pad
    tactile_at_m: float        # pad centre, along the last link from its joint


@dataclass(frozen=True)
class MotorGeometry:
    name: str                  # actuator name: the joint's name on a direct-drive hand
    servo: ServoModel
    range_rad: tuple           # goal range in the motor's own angle
    joint: str | None          # the joint it turns one to one; None when coupled


@dataclass(frozen=True)
class HandGeometry:
    name: str
    path: str
    hand_length_m: float
    palm_size_m: tuple         # length (wrist to knuckles), breadth, thickness
    capsule_radius_m: float
    tactile_pad_m: tuple       # along, across the finger
    density_kg_m3: float
    fingers: tuple             # FingerGeometry; a mounted finger after the one carrying it
    joints: tuple              # JointGeometry in the hand file's order
    motors: tuple              # MotorGeometry in the hand file's order
    coupling_a: tuple | None   # motor = A . q + b (rad), rows per motor; None: direct drive
    coupling_b_rad: tuple | None

    def finger(self, name: str) -> FingerGeometry:
        return next(f for f in self.fingers if f.name == name)


def rpy_quat(roll: float, pitch: float, yaw: float) -> tuple:
    """Quaternion (w, x, y, z) of URDF's rpy: about fixed x, then y, then z (radians)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy)


def _servo_model(f: Fields, servo: dict | None, field: str) -> ServoModel:
    if servo is None:
        f.fail(field, "missing")
    if not isinstance(servo, dict):
        f.fail(field, "must be a table")
    model = f.string(servo, "model", field + ".model")
    if model not in SERVO_MODELS:
        f.fail(field + ".model", "no physical parameters for %r (known: %s)"
               % (model, ", ".join(sorted(SERVO_MODELS))))
    return SERVO_MODELS[model]


def _joint_axis(f: Fields, j: dict, field: str) -> tuple:
    v = np.array(f.vector(j, "axis", field + ".axis", 3, FLEX_AXIS))
    norm = float(np.linalg.norm(v))
    if norm < 1e-9:
        f.fail(field + ".axis", "must not be [0, 0, 0]")
    return tuple(float(x) for x in v / norm)


def _range_rad(f: Fields, t: dict, field: str) -> tuple:
    lo, hi = f.vector(t, "range_deg", field, 2)
    if lo >= hi:
        f.fail(field, "min %g must be below max %g" % (lo, hi))
    return (math.radians(lo), math.radians(hi))


def _finger(f: Fields, name: str, t: dict, joints: list, radius: float,
            by_name: dict) -> FingerGeometry:
    field = "geometry.fingers.%s" % name
    if not isinstance(t, dict):
        f.fail(field, "must be a table")
    links = f.vector(t, "links_mm", field + ".links_mm", len(joints))
    fingertip = t.get("fingertip", True)
    if not isinstance(fingertip, bool):
        f.fail(field + ".fingertip", "must be true or false, got %r" % (fingertip,))
    for i, mm in enumerate(links):
        # A joint may sit where the next one does (length 0) when the two cross, as
        # abduction under flexion does; otherwise a link has a length.
        crossed = i + 1 < len(joints) and joints[i].axis != joints[i + 1].axis
        if mm < 0 or (mm == 0 and not crossed):
            f.fail("%s.links_mm[%d]" % (field, i), "must be %s, got %g"
                   % (">= 0" if crossed else "> 0", mm))
    if fingertip and links[-1] / 1000 <= radius:
        f.fail("%s.links_mm[%d]" % (field, len(links) - 1),
               "the last link (to the tip) must be longer than capsule_radius_mm (%g), got %g"
               % (radius * 1000, links[-1]))
    base = f.vector(t, "base_mm", field + ".base_mm", 3)
    rpy = f.vector(t, "base_rpy_deg", field + ".base_rpy_deg", 3, (0.0, 0.0, 0.0))
    mount = t.get("mount")
    if mount is not None:
        if not isinstance(mount, str) or mount not in by_name:
            f.fail(field + ".mount", "must name one of the hand's joints, got %r" % (mount,))
        if by_name[mount].finger == name:
            f.fail(field + ".mount", "%r is a joint of this finger" % mount)
    last = links[-1] / 1000
    # Default: halfway along the straight part of the last capsule, so the flat pad stays
    # on the finger's surface rather than under its round tip.
    halfway_mm = max(last - radius, 0.0) / 2 * 1000
    pad_at = f.get_number(t, "tactile_at_mm", field + ".tactile_at_mm", halfway_mm,
                          nonneg=True) / 1000
    if fingertip and pad_at > last:
        f.fail(field + ".tactile_at_mm", "must lie on the last link (<= %g)" % (last * 1000))
    joints = tuple(JointGeometry(j.name, j.finger, j.index, j.axis, j.range_rad, mm / 1000)
                   for j, mm in zip(joints, links))
    return FingerGeometry(name, joints, tuple(x / 1000 for x in base),
                          rpy_quat(*(math.radians(a) for a in rpy)), mount, fingertip, pad_at)


def _mount_order(f: Fields, fingers: dict, by_name: dict) -> list:
    """Fingers ordered so that each comes after the finger its mount joint belongs to."""
    order, placing = [], set()

    def place(name):
        if name in order:
            return
        if name in placing:
            f.fail("geometry.fingers.%s.mount" % name, "fingers mount on each other in a circle")
        placing.add(name)
        mount = fingers[name].mount
        if mount is not None:
            place(by_name[mount].finger)
        order.append(name)

    for name in fingers:
        place(name)
    return [fingers[n] for n in order]


def _motors(f: Fields, t: dict, joints: list) -> tuple:
    """(motors, coupling A, coupling b) of a hand file; A and b None for direct drive."""
    tables = t["joints"]
    if "motors" not in t:
        motors = tuple(MotorGeometry(j.name, _servo_model(f, tables[j.index].get("servo"),
                                                          "joints[%d].servo" % j.index),
                                     j.range_rad, j.name) for j in joints)
        return motors, None, None
    if not isinstance(t["motors"], list) or not t["motors"]:
        f.fail("motors", "must be a list of [[motors]] tables")
    motors = []
    for m, mt in enumerate(t["motors"]):
        field = "motors[%d]" % m
        if not isinstance(mt, dict):
            f.fail(field, "must be a table")
        servo = mt.get("servo")
        model = _servo_model(f, servo, field + ".servo")
        name = f.string(mt, "name", field + ".name")
        if any(other.name == name for other in motors):
            f.fail(field + ".name", "%r names another motor too" % name)
        motors.append(MotorGeometry(name, model,
                                    _range_rad(f, servo, field + ".servo.range_deg"), None))
    coupling = f.table(t, "coupling", "coupling")
    a = coupling.get("a")
    if not isinstance(a, list) or len(a) != len(motors):
        f.fail("coupling.a", "needs one row per motor (%d)" % len(motors))
    rows = []
    for m, row in enumerate(a):
        if not isinstance(row, list) or len(row) != len(joints):
            f.fail("coupling.a[%d]" % m, "needs one column per joint (%d)" % len(joints))
        rows.append(tuple(f.number(x, "coupling.a[%d][%d]" % (m, j)) for j, x in enumerate(row)))
        if not any(rows[-1]):
            f.fail("coupling.a[%d]" % m, "motor %s is driven by no joint" % motors[m].name)
    b = f.vector(coupling, "b_deg", "coupling.b_deg", len(motors), [0.0] * len(motors))
    return tuple(motors), tuple(rows), tuple(math.radians(x) for x in b)


def load_geometry(hand_path: str | Path) -> HandGeometry:
    """The body of a hand file, checked; GeometryError (or HwConfigError for an unreadable
    file) names the file and the field."""
    path = Path(hand_path)
    t = hwconfig.load_hand(path)
    f = Fields(path)
    g = f.table(t, "geometry", "geometry")
    radius = f.get_number(g, "capsule_radius_mm", "geometry.capsule_radius_mm", positive=True) / 1000
    joints, by_name, per_finger = [], {}, {}
    for i, jt in enumerate(t["joints"]):
        field = "joints[%d]" % i
        j = JointGeometry(jt["name"], f.string(jt, "finger", field + ".finger"), i,
                          _joint_axis(f, jt, field), _range_rad(f, jt, field + ".range_deg"), 0.0)
        if j.name in by_name:
            f.fail(field + ".name", "%r is already joints[%d]" % (j.name, by_name[j.name].index))
        if j.name == MOUNT_NAME:
            f.fail(field + ".name", "%r is the name of the hand's mount in its model" % j.name)
        joints.append(j)
        by_name[j.name] = j
        per_finger.setdefault(j.finger, []).append(j)
    tables = f.table(g, "fingers", "geometry.fingers")
    for name in per_finger:
        if name not in tables:
            f.fail("geometry.fingers.%s" % name, "missing (joints name finger %r)" % name)
    for name in tables:
        if name not in per_finger:
            f.fail("geometry.fingers.%s" % name, "no joint has finger = %r" % name)
    fingers = {n: _finger(f, n, tables[n], per_finger[n], radius, by_name) for n in per_finger}
    fingers = _mount_order(f, fingers, by_name)
    link_of = {j.name: j for fg in fingers for j in fg.joints}
    joints = [link_of[j.name] for j in joints]
    motors, a, b = _motors(f, t, joints)
    return HandGeometry(
        name=f.string(t, "name", "name"), path=str(path),
        hand_length_m=f.get_number(g, "hand_length_mm", "geometry.hand_length_mm",
                                   positive=True) / 1000,
        palm_size_m=tuple(x / 1000 for x in f.vector(g, "palm_mm", "geometry.palm_mm", 3,
                                                     positive=True)),
        capsule_radius_m=radius,
        tactile_pad_m=tuple(x / 1000 for x in f.vector(g, "tactile_pad_mm",
                                                       "geometry.tactile_pad_mm", 2,
                                                       positive=True)),
        density_kg_m3=f.get_number(g, "density_kg_m3", "geometry.density_kg_m3", 1000.0,
                                   positive=True),
        fingers=tuple(fingers), joints=tuple(joints), motors=motors,
        coupling_a=a, coupling_b_rad=b)
