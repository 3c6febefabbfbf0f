"""The scene a World steps: the hand on its wrist, the arm that carries it, a table, a
camera, lights, the fingertip tactile pads and the task's objects, as one MuJoCo model.

The hand comes from `dexlink.world.mjcf.hand_spec` (generated from the hand TOML). Its
mount body `wrist` (on a free joint) is held by a weld to a mocap body, `wrist_target`: the
operator (or a policy) moves the target, and the weld pulls the hand after it like a stiff
arm. A hand pushed against the table is stopped by the table instead of passing through
it, as a kinematic (mocap) wrist would. The hand's own weight is carried by the arm
(gravity compensation on the hand's bodies), so the weld only bears what the hand holds.

Each fingertip's tactile site `<finger>_tactile` gets a non-colliding plate mesh of
TAXELS taxels in its body, read by MuJoCo's `tactile` sensor (penetration depth per
taxel), evaluated only at the tactile cameras' rate (TACTILE_HZ) to keep steps cheap.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from dexlink import hwconfig
from dexlink.errors import UserError

TABLE_TOP_Z = 0.0  # the table's top surface; objects rest on it
TABLE_HALF = (0.30, 0.30, 0.02)
TAXELS = (32, 24)  # columns (along the finger), rows (across): ~0.02 ms a frame here
TACTILE_HZ = 60.0  # the tactile cameras' rate; the sensor is evaluated this often
# The gel stands this far proud of the fingertip's capsule (along the site's z, out of
# the pad): a touch that dents the capsule by a fraction of a millimetre (soft contacts)
# presses the gel about this much more, as a real gel bulges over its mount.
GEL_PROUD_M = 0.0005
PAD_HALF = (0.0085, 0.0065)  # gel half-size when the tactile site does not give one (m)
CAMERA_NAME = "rgbd"
CAMERA_POS = (0.30, -0.26, 0.28)  # a RealSense on a tripod, in front of and above the table
CAMERA_LOOK_AT = (0.0, 0.0, 0.06)
CAMERA_FOVY = 45.0  # degrees (vertical)
IMAGE_SIZE = (640, 480)
# Contact settings measured to hold a grasp at 2 ms steps (facts file, MuJoCo section).
CONTACT = dict(condim=4, friction=(1.0, 0.02, 0.0005), solref=(0.005, 1.0),
               solimp=(0.95, 0.99, 0.001, 0.5, 2.0))
WRIST_WELD_SOLREF = (0.01, 1.0)  # the arm's stiffness: a 10 ms time constant


@dataclass
class TactilePad:
    """One fingertip's taxel grid: sensordata[adr + order] reshaped to (rows, cols) is the
    depth image, row 0 at the pad's +y edge, column 0 at its -x end (x points along the
    finger)."""

    finger: str
    sensor_adr: int
    order: np.ndarray  # taxel index of each pixel, row-major
    rows: int
    cols: int
    half_size: tuple[float, float]


@dataclass
class Scene:
    """A compiled scene and where each of its parts lives in the model."""

    model: mujoco.MjModel
    joint_names: list[str]
    motor_names: list[str]
    fingers: list[str]
    joint_qpos: np.ndarray  # qpos address of each hand joint, TOML order
    joint_dof: np.ndarray
    actuators: np.ndarray  # actuator id of each motor, TOML order
    pads: list[TactilePad]
    wrist_body: int
    wrist_mocap: int
    wrist_qpos: int  # address of the wrist's free joint (7 values)
    hand_bodies: np.ndarray  # ids of the wrist and every body below it
    coupling: np.ndarray | None  # motor = A q + b (rad), tendon hands only
    coupling_b: np.ndarray | None


def hand_names(hand_path: str | Path) -> tuple[list[str], list[str], list[str]]:
    """(joint names, motor names, fingers) of a hand file, in the file's order."""
    t = hwconfig.load_hand(hand_path)
    joints = [str(j["name"]) for j in t["joints"]]
    motors = [str(m.get("name")) for m in t.get("motors", [])] or list(joints)
    fingers = []
    for j in t["joints"]:
        f = str(j.get("finger", ""))
        if f and f not in fingers:
            fingers.append(f)
    return joints, motors, fingers


def hand_coupling(hand_path: str | Path):
    """(A, b in rad) of a tendon hand as the firmware applies it (its Q12 coefficients), or
    (None, None) for a hand whose joints each have their own servo."""
    cfg = hwconfig.compile_config(hand_path, "virtual", calibration=False)
    c = cfg.get("coupling")
    if not c:
        return None, None
    a = np.array(c["a_q12"], dtype=float) / 4096.0
    b = np.radians(np.array(c["b_cdeg"], dtype=float) / 100.0)
    return a, b


def build_scene(hand_path: str | Path, task, timestep: float = 0.002) -> Scene:
    """The hand of hand_path in the task's scene, compiled."""
    joints, motors, fingers = hand_names(hand_path)
    spec = _hand_spec(hand_path)
    _set_options(spec, timestep)
    _add_world(spec)
    wrist = _mount_wrist(spec, hand_path)
    pads = _add_tactile_pads(spec, fingers)
    task.build(spec)
    try:
        model = spec.compile()
    except ValueError as e:
        raise UserError("%s: the world for task %s does not compile: %s"
                        % (hand_path, task.name, e)) from None
    a, b = hand_coupling(hand_path)
    return Scene(
        model=model, joint_names=joints, motor_names=motors, fingers=fingers,
        joint_qpos=_ids(model, mujoco.mjtObj.mjOBJ_JOINT, joints, hand_path,
                        lambda i: model.jnt_qposadr[i]),
        joint_dof=_ids(model, mujoco.mjtObj.mjOBJ_JOINT, joints, hand_path,
                       lambda i: model.jnt_dofadr[i]),
        actuators=_ids(model, mujoco.mjtObj.mjOBJ_ACTUATOR, motors, hand_path, lambda i: i),
        pads=[_bind_pad(model, p) for p in pads],
        wrist_body=model.body(wrist).id,
        wrist_mocap=model.body_mocapid[model.body("wrist_target").id],
        wrist_qpos=model.jnt_qposadr[model.body_jntadr[model.body(wrist).id]],
        hand_bodies=_subtree(model, model.body(wrist).id),
        coupling=a, coupling_b=b)


def _hand_spec(hand_path):
    from dexlink.world.mjcf import hand_spec
    return hand_spec(hand_path)


def _ids(model, objtype, names, hand_path, pick):
    out = []
    for n in names:
        i = mujoco.mj_name2id(model, objtype, n)
        if i < 0:
            raise UserError("%s: the generated hand model has no %s named %r"
                            % (hand_path, objtype.name[6:].lower(), n))
        out.append(pick(i))
    return np.array(out, dtype=int)


def _subtree(model, root):
    ids = [b for b in range(model.nbody) if b == root or _descends(model, b, root)]
    return np.array(ids, dtype=int)


def _descends(model, b, root):
    while b > 0:
        b = model.body_parentid[b]
        if b == root:
            return True
    return False


def _set_options(spec, timestep):
    o = spec.option
    o.timestep = timestep
    o.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    o.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    o.impratio = 10
    spec.visual.quality.shadowsize = 0  # ~1-3 ms a frame without shadows, ~36 ms with
    # No multisampling: reading back a multisampled depth buffer costs ~15 ms a 640x480
    # frame on a software renderer, against ~1 ms without.
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth, spec.visual.global_.offheight = IMAGE_SIZE


def _add_world(spec):
    wb = spec.worldbody
    table = wb.add_body(name="table", pos=[0, 0, TABLE_TOP_Z - TABLE_HALF[2]])
    table.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(TABLE_HALF),
                   rgba=[0.55, 0.42, 0.28, 1], **CONTACT)
    directional = mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
    wb.add_light(name="key", pos=[0.2, -0.2, 1.0], dir=[-0.2, 0.2, -1.0], type=directional,
                 castshadow=False, diffuse=[0.7, 0.7, 0.7])
    wb.add_light(name="fill", pos=[-0.4, 0.4, 0.8], dir=[0.4, -0.4, -0.8], type=directional,
                 castshadow=False, diffuse=[0.3, 0.3, 0.3])
    wb.add_camera(name=CAMERA_NAME, pos=list(CAMERA_POS), fovy=CAMERA_FOVY,
                  quat=list(look_at_quat(CAMERA_POS, CAMERA_LOOK_AT)))


def look_at_quat(eye, target):
    """The quaternion of a MuJoCo camera at eye looking at target, world z up in the image.
    (A camera looks along its -z, with +y up in the image.)"""
    back = np.subtract(eye, target).astype(float)
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([right, up, back]).ravel())
    return quat


def _mount_wrist(spec, hand_path):
    wrist = spec.body("wrist")
    if wrist is None or wrist.parent.name != spec.worldbody.name:
        raise UserError("%s: the generated hand model has no body 'wrist' at the top" % hand_path)
    if not wrist.joints:
        wrist.add_freejoint(name="wrist")
    for b in [wrist, *wrist.find_all(mujoco.mjtObj.mjOBJ_BODY)]:
        b.gravcomp = 1.0  # the arm holds the hand up; the weld carries only the load
    spec.worldbody.add_body(name="wrist_target", mocap=True, pos=list(wrist.pos),
                            quat=list(wrist.quat))
    # A weld between the arm's target and the wrist: the hand follows the operator's arm
    # stiffly, yet a table or an object in the way stops it.
    weld = spec.add_equality(type=mujoco.mjtEq.mjEQ_WELD, name="arm",
                             objtype=mujoco.mjtObj.mjOBJ_BODY, name1="wrist_target",
                             name2="wrist", solref=list(WRIST_WELD_SOLREF))
    # anchor, relative position, relative quaternion, torque scale: the two coincide
    weld.data[:11] = [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    return wrist.name


def _add_tactile_pads(spec, fingers):
    """A plate mesh in each fingertip body at its tactile site, and a tactile sensor."""
    pads = []
    for finger in fingers:
        site = spec.site(finger + "_tactile")
        if site is None:
            continue
        half = tuple(float(x) for x in site.size[:2]) if site.size[1] > 0 else PAD_HALF
        mesh = spec.add_mesh(name=finger + "_plate")
        mesh.make_plate(list(TAXELS))
        mesh.scale = [half[0], half[1], 1e-6]  # flat: its taxels lie on the plate
        body = site.parent
        out = np.empty(3)
        mujoco.mju_rotVecQuat(out, np.array([0.0, 0.0, GEL_PROUD_M]), np.array(site.quat))
        body.add_geom(name=finger + "_gel", type=mujoco.mjtGeom.mjGEOM_MESH,
                      meshname=finger + "_plate", pos=list(site.pos + out), quat=list(site.quat),
                      contype=0, conaffinity=0, group=3, mass=0, rgba=[0.2, 0.8, 0.2, 0.3])
        sensor = spec.add_sensor(name=finger + "_tactile", type=mujoco.mjtSensor.mjSENS_TACTILE,
                                 objtype=mujoco.mjtObj.mjOBJ_MESH, objname=finger + "_plate",
                                 reftype=mujoco.mjtObj.mjOBJ_GEOM, refname=finger + "_gel")
        sensor.nsample = 1
        sensor.interval = [1.0 / TACTILE_HZ, 0.0]
        pads.append((finger, half))
    return pads


def _bind_pad(model, pad):
    """Find where a pad's taxels sit on its plate, to lay the depths out as an image."""
    finger, half = pad
    sensor = model.sensor(finger + "_tactile")
    gel = model.geom(finger + "_gel")
    mesh = model.mesh(finger + "_plate")
    verts = model.mesh_vert[mesh.vertadr[0]:mesh.vertadr[0] + mesh.vertnum[0]]
    # Vertices in the gel geom's frame, then in the site's frame (the compiler may have
    # moved the mesh to its centre of mass and principal axes).
    site = model.site(finger + "_tactile")
    rot_g = np.empty(9)
    mujoco.mju_quat2Mat(rot_g, gel.quat)
    rot_s = np.empty(9)
    mujoco.mju_quat2Mat(rot_s, site.quat)
    in_body = verts @ rot_g.reshape(3, 3).T + gel.pos
    local = (in_body - site.pos) @ rot_s.reshape(3, 3)
    cols, rows = TAXELS
    col = np.clip(np.round((local[:, 0] / half[0] + 1) * cols / 2 - 0.5), 0, cols - 1).astype(int)
    row = np.clip(np.round((1 - local[:, 1] / half[1]) * rows / 2 - 0.5), 0, rows - 1).astype(int)
    order = np.empty(rows * cols, dtype=int)
    order[row * cols + col] = np.arange(len(verts))
    return TactilePad(finger, int(sensor.adr[0]), order, rows, cols, half)
