"""Retargeting human hand frames onto the hand with dex-retargeting on the generated URDF:
the error it leaves even when the "human" is the robot itself (what the exoskeleton does
not have), joint limits, per-operator calibration, lost joints, left hands, timing."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("dex_retargeting")

from dexlink import hwconfig  # noqa: E402
from dexlink.errors import UserError  # noqa: E402
from dexlink.inputs.frame import JOINT_INDEX, make_frame  # noqa: E402
from dexlink.retarget import OperatorCalibration, make_retargeter  # noqa: E402
from dexlink.world import grasps  # noqa: E402
from dexlink.world.geometry import load_geometry  # noqa: E402
from dexlink.world.interfaces_hand import HumanHand  # noqa: E402

ISO16 = hwconfig.HANDS / "iso16.toml"


@pytest.fixture(scope="module")
def geometry():
    return load_geometry(ISO16)


@pytest.fixture(scope="module")
def vector():
    return make_retargeter(ISO16, "vector", operator=1.0)


def grasp_sweep(geometry, steps=25):
    """Postures an operator goes through: open <-> power grasp, flat <-> curled, across."""
    p = [grasps.posture(geometry, t) for t in (grasps.POWER_OPEN, grasps.POWER_CLOSED,
                                               grasps.ROLL_FLAT, grasps.ROLL_CURLED)]
    rng = np.random.default_rng(0)
    lo = np.array([j.range_rad[0] for j in geometry.joints])
    hi = np.array([j.range_rad[1] for j in geometry.joints])
    for a, b in ((0, 1), (1, 0), (2, 3), (3, 2), (0, 3)):
        for s in np.linspace(0, 1, steps):
            yield p[a] + s * (p[b] - p[a])
    q = (lo + hi) / 2  # and a wander through the whole range
    for _ in range(3 * steps):
        q = np.clip(q + rng.normal(0, 0.04, q.size), lo, hi)
        yield q


def test_the_robots_own_fingertips_leave_degrees_of_joint_error(geometry, vector):
    robot = HumanHand.robot(geometry)
    vector.reset()
    errors, out = [], None
    for q in grasp_sweep(geometry):
        out = vector.retarget(make_frame(robot.openxr(q)))
        assert (out >= vector.lo_deg - 1e-6).all() and (out <= vector.hi_deg + 1e-6).all()
        errors.append(np.abs(out - np.degrees(q)).mean())
    mean = float(np.mean(errors[5:]))
    print("vector retargeting, robot's own fingertips: %.1f deg mean joint error, %.2f ms/frame"
          % (mean, vector.stats.mean_ms))
    # Four fingertip vectors cannot pin sixteen joints: several degrees off (~5 measured
    # elsewhere; 4.5 here), where the exoskeleton's joint i is the hand's joint i.
    assert 1.5 < mean < 5.0
    assert vector.stats.frames == len(errors) and vector.stats.mean_ms > 0


@pytest.mark.parametrize("method", ["vector", "position", "dexpilot"])
def test_the_numpy_objective_is_dex_retargetings_own(method):
    """Each evaluation's loss and gradient equal dex-retargeting's torch ones (DexPilot's
    pinch projection state too) at random postures, targets and last answers."""
    ours = make_retargeter("iso16", method, operator=1.0)
    theirs = make_retargeter("iso16", method, operator=1.0, objective="torch")
    a, b = ours._seq.optimizer, theirs._seq.optimizer
    lo, hi = ours._seq.joint_limits.T
    rng = np.random.default_rng(3)
    rows = len(ours.human_tips) if method == "position" else a.target_link_human_indices.shape[1]
    pinched = False
    for k in range(12):
        q = rng.uniform(lo, hi)
        last = rng.uniform(lo, hi).astype(np.float32)
        target = (rng.normal(0, 0.05, (rows, 3)) * (0.3 if k % 2 else 1.0)).astype(np.float32)
        ga, gb = np.zeros(q.size), np.zeros(q.size)
        va = a.get_objective_function(target, np.array([]), last)(q, ga)
        vb = b.get_objective_function(target, np.array([]), last)(q, gb)
        assert va == pytest.approx(vb, rel=1e-6)
        assert np.allclose(ga, gb, rtol=1e-6, atol=1e-9 * np.abs(gb).max())
        if method == "dexpilot":
            assert (a.projected == b.projected).all()
            pinched |= bool(b.projected.any())
    assert pinched or method != "dexpilot"  # the pinch branch was taken


def test_the_numpy_objective_answers_alike_for_a_fraction_of_the_time(geometry, vector):
    """Same answers, frame after frame, as with dex-retargeting's torch objective, for well
    under half the CPU time a frame (thread time: what other work on the machine does
    not change)."""
    robot = HumanHand.robot(geometry)
    torch_objective = make_retargeter("iso16", "vector", operator=1.0, objective="torch")
    frames = [make_frame(robot.openxr(q)) for q in grasp_sweep(geometry, steps=12)]
    cpu = {}
    answers = {}
    for name, r in (("numpy", vector), ("torch", torch_objective)):
        r.reset()
        t0 = time.thread_time()
        answers[name] = np.array([r.retarget(f) for f in frames])
        cpu[name] = (time.thread_time() - t0) / len(frames)
    print("CPU a frame: numpy %.2f ms, torch %.2f ms" % (1e3 * cpu["numpy"], 1e3 * cpu["torch"]))
    assert np.abs(answers["numpy"] - answers["torch"]).max() < 0.05
    assert cpu["numpy"] < 0.5 * cpu["torch"]


@pytest.mark.parametrize("method", ["position", "dexpilot"])
def test_other_methods_stay_within_the_hands_ranges(geometry, method):
    r = make_retargeter("iso16", method, operator=1.0)
    robot = HumanHand.robot(geometry)
    errors = []
    for q in list(grasp_sweep(geometry, steps=6))[:30]:
        out = r.retarget(make_frame(robot.openxr(q)))
        assert out.shape == (16,)
        assert (out >= r.lo_deg - 1e-6).all() and (out <= r.hi_deg + 1e-6).all()
        errors.append(np.abs(out - np.degrees(q)).mean())
    assert np.mean(errors[5:]) < 15.0


def test_calibration_measures_the_operators_hand_size(geometry, vector):
    small = HumanHand.person(geometry, hand_length_m=0.165)
    vector.operator = OperatorCalibration()
    vector.reset()
    closed = grasps.posture(geometry, grasps.POWER_CLOSED)
    for k in range(35):
        vector.retarget(make_frame(small.openxr(closed * k / 34)))
    assert vector.operator.fixed
    assert vector.operator.scale == pytest.approx(geometry.hand_length_m / 0.165, rel=0.03)
    # calibrated, the small hand's grasp comes out as the big hand's
    out = vector.retarget(make_frame(small.openxr(closed)))
    assert np.abs(out - np.degrees(closed)).mean() < 10.0
    vector.operator = OperatorCalibration.of_scale(1.0)


def test_a_left_hand_drives_the_hand_as_its_mirror_image(geometry, vector):
    robot = HumanHand.robot(geometry)
    q = grasps.posture(geometry, grasps.POWER_CLOSED)
    vector.reset()
    right = [vector.retarget(make_frame(robot.openxr(q, "right"))) for _ in range(3)][-1]
    vector.reset()
    left = [vector.retarget(make_frame(robot.openxr(q, "left"), side="left")) for _ in range(3)][-1]
    assert np.allclose(left, right, atol=0.5)


def test_lost_joints_hold_then_fill_from_their_last_position(geometry, vector):
    robot = HumanHand.robot(geometry)
    vector.reset()
    held0 = vector.stats.held
    blind = np.ones(26, dtype=bool)
    blind[JOINT_INDEX["index_tip"]] = False
    start = vector.retarget(make_frame(robot.openxr(np.zeros(16)), valid=blind))
    assert vector.stats.held == held0 + 1  # no index tip seen yet: the posture holds
    assert np.allclose(start, np.clip((vector.lo_deg + vector.hi_deg) / 2, vector.lo_deg,
                                      vector.hi_deg))
    closed = grasps.posture(geometry, grasps.POWER_CLOSED)
    for _ in range(10):  # settled on it (a few evaluations a frame)
        seen = vector.retarget(make_frame(robot.openxr(closed)))
    joints = robot.openxr(closed)
    joints[JOINT_INDEX["index_tip"]] = np.nan  # lost, and garbage where it was
    filled = vector.retarget(make_frame(joints, valid=blind))
    assert np.isfinite(filled).all()
    assert np.abs(filled - seen).max() < 1.0


def test_an_unknown_method_is_a_user_error():
    with pytest.raises(UserError, match="unknown retargeting method 'ik'"):
        make_retargeter("iso16", "ik")
    with pytest.raises(UserError, match="unknown objective 'jax'"):
        make_retargeter("iso16", objective="jax")
