"""A hand file as a MuJoCo model (MjSpec, or standalone MJCF text).

The settings are the ones measured to grasp and lift here (see the MuJoCo facts in the
project's design notes): 2 ms steps, implicitfast, elliptic friction cones with
impratio 10; soft-but-stiff contacts (solref 0.005 1, solimp 0.95 0.99 0.001) with
torsional and rolling friction (condim 4); a little joint damping, armature and
friction loss, which keep position-controlled capsule fingers from chattering.

Actuators are position servos named after the hand's motors. A direct-drive hand's
motor is its joint (ctrl = joint angle, rad). A tendon hand's motor m pulls a fixed
tendon of length sum_j A[m][j] q_j, so ctrl = the motor's angle A.q + b (rad); its
gain is the servo's kp over the row's largest coefficient squared, so a joint is as
stiff under its tendon as under a direct servo.
"""
from __future__ import annotations

from pathlib import Path

import mujoco

from dexlink.world.geometry import MOUNT_NAME, HandGeometry, load_geometry
from dexlink.world.tree import PALM, HandTree

TIMESTEP_S = 0.002
IMPRATIO = 10.0
GEOM_CONTACT = dict(condim=4, friction=[1.0, 0.02, 0.0005], solref=[0.005, 1.0],
                    solimp=[0.95, 0.99, 0.001, 0.5, 2.0])
JOINT_DAMPING = 0.05
JOINT_ARMATURE = 0.001
JOINT_FRICTIONLOSS = 0.005
WRIST = MOUNT_NAME
WRIST_MASS_KG = 0.01  # the mount's own mass: the arm is the world's business
HAND_RGBA = [0.85, 0.72, 0.6, 1.0]
PAD_RGBA = [0.2, 0.5, 0.9, 0.5]
STANDALONE_WRIST_HEIGHT_M = 0.25


def _add_body(spec_parent, body, radius):
    b = spec_parent.add_body(name=body.name, pos=list(body.pos), quat=list(body.quat))
    b.explicitinertial = True
    b.mass = body.mass
    b.ipos = list(body.com)
    b.inertia = list(body.inertia)
    if body.joint is not None:
        j = body.joint
        b.add_joint(name=j.name, type=mujoco.mjtJoint.mjJNT_HINGE, axis=list(j.axis),
                    range=list(j.range_rad), limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                    damping=JOINT_DAMPING, armature=JOINT_ARMATURE,
                    frictionloss=JOINT_FRICTIONLOSS)
    if body.capsule is not None:
        a, z = body.capsule
        b.add_geom(name=body.name, type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=list(a) + list(z),
                   size=[radius, 0, 0], rgba=HAND_RGBA, **GEOM_CONTACT)
    if body.box is not None:
        centre, half = body.box
        b.add_geom(name=body.name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=list(centre),
                   size=list(half), rgba=HAND_RGBA, **GEOM_CONTACT)
    for s in body.sites:
        b.add_site(name=s.name, pos=list(s.pos), quat=list(s.quat), size=list(s.size),
                   type=mujoco.mjtGeom.mjGEOM_BOX, group=3,
                   rgba=PAD_RGBA if s.name.endswith("_tactile") else [0.9, 0.2, 0.2, 1.0])
    return b


def _add_actuators(spec: mujoco.MjSpec, g: HandGeometry):
    joint_names = [j.name for j in g.joints]
    for m, motor in enumerate(g.motors):
        kp = motor.servo.kp_nm_per_rad
        torque = motor.servo.stall_torque_nm
        if motor.joint is not None:
            target, trn, offset = motor.joint, mujoco.mjtTrn.mjTRN_JOINT, 0.0
        else:
            row = g.coupling_a[m]
            tendon = spec.add_tendon(name=motor.name + "_tendon")
            for name, coef in zip(joint_names, row):
                if coef:
                    tendon.wrap_joint(name, coef)
            kp /= max(abs(c) for c in row) ** 2
            target, trn, offset = tendon.name, mujoco.mjtTrn.mjTRN_TENDON, g.coupling_b_rad[m]
        act = spec.add_actuator(name=motor.name, target=target, trntype=trn)
        act.set_to_position(kp=kp)
        # force = kp (ctrl - length - b): the motor angle includes the coupling's offset.
        act.biasprm[0] = -kp * offset
        act.ctrlrange = list(motor.range_rad)
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-torque, torque]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE


def geometry_spec(g: HandGeometry) -> mujoco.MjSpec:
    """The hand of a loaded geometry as an MjSpec (see hand_spec)."""
    tree = HandTree(g)
    spec = mujoco.MjSpec()
    spec.modelname = g.name
    spec.compiler.degree = False
    spec.compiler.autolimits = True
    spec.option.timestep = TIMESTEP_S
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = IMPRATIO
    wrist = spec.worldbody.add_body(name=WRIST)
    wrist.explicitinertial = True
    wrist.mass = WRIST_MASS_KG
    wrist.inertia = [1e-5, 1e-5, 1e-5]
    wrist.add_freejoint(name=WRIST)
    made = {None: wrist}
    for body in tree.bodies:
        made[body.name] = _add_body(made[body.parent] if body.parent else wrist, body,
                                    g.capsule_radius_m)
    for a, b in tree.excludes:
        spec.add_exclude(bodyname1=a, bodyname2=b)
    _add_actuators(spec, g)
    return spec


def hand_spec(hand_path: str | Path) -> mujoco.MjSpec:
    """The hand as an MjSpec: body "palm" under a free mount body "wrist" (free joint
    "wrist"), joints named as in the hand file, one position actuator per motor (named
    after it), sites "<finger>_tip" and "<finger>_tactile" (the pad: z out of the pad,
    size = half extents). Options are the measured working settings."""
    return geometry_spec(load_geometry(hand_path))


def add_stage(spec: mujoco.MjSpec, wrist_height_m: float = STANDALONE_WRIST_HEIGHT_M):
    """Make a hand spec stand alone: a floor, a light, and the wrist welded to a mocap body
    "wrist_target" (palm down, `wrist_height_m` up) so the hand hangs where it is put."""
    world = spec.worldbody
    world.add_light(name="light", pos=[0, 0, 1.5], dir=[0, 0, -1],
                    type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL, castshadow=False)
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1, 1, 0.05],
                   rgba=[0.8, 0.8, 0.8, 1], **GEOM_CONTACT)
    spec.body(WRIST).pos = [0, 0, wrist_height_m]
    target = world.add_body(name="wrist_target", mocap=True, pos=[0, 0, wrist_height_m])
    weld = spec.add_equality(name="wrist_mount", type=mujoco.mjtEq.mjEQ_WELD,
                             objtype=mujoco.mjtObj.mjOBJ_BODY, name1=WRIST, name2=target.name)
    # anchor, relative position, relative quaternion, torque scale: the two coincide
    weld.data[:11] = [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    weld.solref = [0.005, 1.0]  # stiff: the default lets a 0.35 kg hand sag by a degree
    spec.visual.quality.shadowsize = 0  # shadows cost 10x a frame on a software renderer


def hand_mjcf(hand_path: str | Path) -> str:
    """A standalone MJCF of the hand (hand_spec plus add_stage): loads with
    mujoco.MjModel.from_xml_string."""
    spec = hand_spec(hand_path)
    add_stage(spec)
    spec.compile()
    return spec.to_xml()


__all__ = ["hand_spec", "hand_mjcf", "geometry_spec", "add_stage", "PALM", "WRIST"]
