"""The hand's physical model (`dexlink model`, dexlink.world): every shipped hand file
becomes a MuJoCo model and a URDF that load, the two agree on where the fingertips are,
servos hold their goals, a tendon hand's motors move its joints through its coupling
matrix, and a bad [geometry] is refused naming the file and the field."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest

from dexlink import cli
from dexlink.world.geometry import GeometryError, load_geometry
from dexlink.world.mjcf import hand_mjcf, hand_spec
from dexlink.world.urdf import hand_urdf

ROOT = Path(__file__).resolve().parents[1]
HANDS = ROOT / "hardware" / "hands"
DEXLINK = Path(sys.executable).parent / "dexlink"
SHIPPED = ["iso16", "iso22", "tendon16"]


def hand(name: str) -> Path:
    return HANDS / ("%s.toml" % name)


def settle(m, d, seconds: float):
    for _ in range(round(seconds / m.opt.timestep)):
        mujoco.mj_step(m, d)


def joint_q(m, d, names) -> np.ndarray:
    return np.array([d.joint(n).qpos[0] for n in names])


@pytest.mark.parametrize("name", SHIPPED)
def test_hand_builds_and_loads(name):
    g = load_geometry(hand(name))
    m = mujoco.MjModel.from_xml_string(hand_mjcf(hand(name)))
    hinge_names = [m.joint(i).name for i in range(m.njnt)
                   if m.jnt_type[i] == mujoco.mjtJoint.mjJNT_HINGE]
    assert sorted(hinge_names) == sorted(j.name for j in g.joints)  # in tree order, not file order
    assert [m.actuator(i).name for i in range(m.nu)] == [mt.name for mt in g.motors]
    tips = [f.name for f in g.fingers if f.fingertip]
    assert tips and all(m.site(f + "_tip") and m.site(f + "_tactile") for f in tips)
    assert m.opt.timestep == 0.002 and m.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    # The world attaches the hand by its free-floating wrist, which carries the palm.
    spec_model = hand_spec(hand(name)).compile()
    wrist = spec_model.body("wrist")
    assert spec_model.jnt_type[wrist.jntadr[0]] == mujoco.mjtJoint.mjJNT_FREE
    assert spec_model.body_parentid[spec_model.body("palm").id] == wrist.id
    # Nothing overlaps at rest: fingers start clear of each other and of the palm.
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    hand_contacts = [c for c in d.contact[:d.ncon] if "floor" not in
                     (m.geom(c.geom1).name, m.geom(c.geom2).name)]
    assert hand_contacts == []


def test_servo_model_sets_gain_and_torque_limit():
    m = mujoco.MjModel.from_xml_string(hand_mjcf(hand("iso16")))
    a = m.actuator("index_mcp")
    assert a.gainprm[0] == pytest.approx(6.0, rel=0.01)          # STS3215: kp 6
    assert a.forcerange[1] == pytest.approx(1.9, rel=0.02)       # its stall torque


@pytest.mark.parametrize("name", SHIPPED)
def test_urdf_loads_and_agrees_with_mjcf(name):
    parser = pytest.importorskip("urdf_parser_py.urdf", reason="pip install urdf-parser-py")
    text = hand_urdf(hand(name))
    g = load_geometry(hand(name))
    robot = parser.URDF.from_xml_string(text.encode())
    assert robot.get_root() == "palm"
    revolute = [j.name for j in robot.joints if j.type == "revolute"]
    assert sorted(revolute) == sorted(j.name for j in g.joints)
    # MuJoCo reads the same URDF; kept fixed links give the tip frames as bodies, which must
    # sit where the MJCF puts its tip sites, in a bent pose as well as at rest.
    urdf_model = mujoco.MjModel.from_xml_string(
        text.replace("<robot name=\"%s\">" % g.name, "<robot name=\"%s\"><mujoco><compiler "
                     "fusestatic=\"false\" discardvisual=\"true\"/></mujoco>" % g.name, 1))
    mjcf_model = hand_spec(hand(name)).compile()  # its wrist at rest: at the origin, as the URDF
    du, dm = mujoco.MjData(urdf_model), mujoco.MjData(mjcf_model)
    pose = {j.name: 0.6 * j.range_rad[1] for j in g.joints}
    for model, data in ((urdf_model, du), (mjcf_model, dm)):
        for joint, q in pose.items():
            data.joint(joint).qpos[0] = q
        mujoco.mj_kinematics(model, data)
    for f in (f for f in g.fingers if f.fingertip):
        np.testing.assert_allclose(du.body(f.name + "_tip").xpos, dm.site(f.name + "_tip").xpos,
                                   atol=1e-6)
    assert urdf_model.nu == 0 and urdf_model.njnt == len(g.joints)


def test_position_servo_holds_its_goal():
    m = mujoco.MjModel.from_xml_string(hand_mjcf(hand("iso16")))
    d = mujoco.MjData(m)
    goals = {"index_mcp": 0.7, "index_pip": 0.5, "thumb_cmc_abd": 0.4, "index_abd": 0.2}
    for name, q in goals.items():
        d.ctrl[m.actuator(name).id] = q
    settle(m, d, 1.0)
    np.testing.assert_allclose(joint_q(m, d, goals), list(goals.values()), atol=np.radians(2))
    assert np.all(np.abs(d.qvel[6:]) < 0.05)  # settled, not oscillating


def test_tendon_motors_follow_the_coupling():
    g = load_geometry(hand("tendon16"))
    names = [j.name for j in g.joints]
    a = np.array(g.coupling_a)
    m = mujoco.MjModel.from_xml_string(hand_mjcf(hand("tendon16")))
    d = mujoco.MjData(m)
    target = np.zeros(len(names))
    for name, deg in {"index_mcp": 40, "index_pip": 50, "index_dip": 30, "middle_abd": 10,
                      "ring_mcp": 30}.items():
        target[names.index(name)] = np.radians(deg)
    d.ctrl[:] = a @ target  # each motor at its angle for that pose: motor = A.q
    settle(m, d, 1.5)
    fingers = [i for i, n in enumerate(names) if not n.startswith("thumb")]  # thumb sags
    np.testing.assert_allclose(joint_q(m, d, names)[fingers], target[fingers],
                               atol=np.radians(2))

    # One motor alone (the others relaxed, no gravity): its tendon pulls every joint it
    # crosses the way its coupling row says, and nothing else moves.
    m.opt.gravity[:] = 0
    mujoco.mj_resetData(m, d)
    driven = m.actuator("index_m2").id
    for i in range(m.nu):
        if i != driven:
            m.actuator_gainprm[i, 0] = 0
            m.actuator_biasprm[i, :3] = 0
    d.ctrl[driven] = 0.6
    settle(m, d, 1.5)
    q = joint_q(m, d, names)
    row = a[driven]
    crossed = row != 0
    assert np.all(np.sign(q[crossed]) == np.sign(row[crossed]))
    assert np.all(np.abs(q[crossed]) > np.radians(3))
    assert np.all(np.abs(q[~crossed]) < np.radians(0.5))
    assert row @ q == pytest.approx(0.6, abs=0.01)  # the tendon reached its goal length
    assert m.actuator_gainprm[driven, 0] == pytest.approx(
        load_geometry(hand("tendon16")).motors[driven].servo.kp_nm_per_rad / 1.5 ** 2)


def with_geometry(tmp_path, old: str, new: str, name="iso16") -> Path:
    text = hand(name).read_text()
    assert old in text
    path = tmp_path / ("%s.toml" % name)
    path.write_text(text.replace(old, new, 1))
    return path


BAD = [
    ("links_mm = [0.0, 46.6, 27.2, 18.4]", "links_mm = [0.0, -3.0, 27.2, 18.4]",
     "geometry.fingers.index.links_mm[1]: must be > 0"),
    ("links_mm = [0.0, 46.6, 27.2, 18.4]", "links_mm = [0.0, 50.4, 27.2]",
     "geometry.fingers.index.links_mm: must be a list of 4 numbers"),
    ("links_mm = [0.0, 46.6, 27.2, 18.4]", "links_mm = [0.0, 50.4, 27.2, 5.0]",
     "geometry.fingers.index.links_mm[3]: the last link (to the tip) must be longer"),
    ("capsule_radius_mm = 8.5", "capsule_radius_mm = 0", "geometry.capsule_radius_mm: must be > 0"),
    ("[geometry.fingers.ring]", "[geometry.fingers.ringg]", "geometry.fingers.ring: missing"),
    ("base_mm = [85.0, 0.0, 0.0]", 'base_mm = "middle"', "geometry.fingers.middle.base_mm: must be"),
    ("axis = [0.0, 0.0, 1.0]", "axis = [0.0, 0.0, 0.0]", "joints[0].axis: must not be [0, 0, 0]"),
    ('model = "sts3215"', 'model = "sts9999"', "joints[0].servo.model: no physical parameters"),
]


@pytest.mark.parametrize("old,new,message", BAD, ids=[b[2].split(":")[0] for b in BAD])
def test_bad_geometry_names_file_and_field(tmp_path, old, new, message):
    path = with_geometry(tmp_path, old, new)
    with pytest.raises(GeometryError) as e:
        load_geometry(path)
    assert str(e.value).startswith("%s: %s" % (path, message))


def test_hand_without_geometry_is_refused(tmp_path):
    path = tmp_path / "bare.toml"
    path.write_text(hand("iso16").read_text().split("\n# ---- Body")[0])
    with pytest.raises(GeometryError, match=r"bare\.toml: geometry: missing$"):
        load_geometry(path)


def test_mount_on_own_finger_is_refused(tmp_path):
    path = with_geometry(tmp_path, '\nmount = "palm_arch"', '\nmount = "pinky_mcp"', "iso22")
    with pytest.raises(GeometryError, match=r"geometry\.fingers\.pinky\.mount: 'pinky_mcp' is a "
                                            r"joint of this finger"):
        load_geometry(path)


def test_model_command_writes_both_formats_and_refuses_bad_geometry(tmp_path):
    bad = with_geometry(tmp_path, "links_mm = [0.0, 46.6, 27.2, 18.4]",
                        "links_mm = [0.0, -3.0, 27.2, 18.4]")
    out = tmp_path / "hand.xml"
    proc = subprocess.run([str(DEXLINK), "model", "--hand", str(bad), "--format", "mjcf",
                           "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "dexlink model: %s: geometry.fingers.index.links_mm[1]: must be > 0, got -3" % bad]
    assert not out.exists()
    proc = subprocess.run([str(DEXLINK), "model", "--hand", "tendon16", "--format", "urdf",
                           "--out", str(tmp_path / "tendon16.urdf")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert mujoco.MjModel.from_xml_path(str(tmp_path / "tendon16.urdf")).njnt == 16
    # The same entry point in-process (the subprocess above proves the installed script).
    assert cli.main(["model", "--hand", str(hand("tendon16")), "--out",
                     str(tmp_path / "tendon16.xml")]) == 0
    assert mujoco.MjModel.from_xml_path(str(tmp_path / "tendon16.xml")).ntendon == 16
