"""The world's physics, on the hands generated from hardware/hands: a closed hand lifts a
cube and an open one does not, a blocked finger loads its servo, a pressed fingertip
lights its gel, a seed gives one outcome, a tendon hand's motors move its joints."""
from __future__ import annotations

import time

import mujoco
import numpy as np
import pytest

from dexlink import hwconfig
from dexlink.errors import UserError
from dexlink.world import tasks
from dexlink.world.grasps import GraspPlanner
from dexlink.world.handpose import rotate
from dexlink.world.scene import hand_coupling
from dexlink.world.sensors import GelShader
from dexlink.world.tasks.base import yaw_of
from dexlink.world.world import World

ISO16 = hwconfig.HANDS / "iso16.toml"
TENDON16 = hwconfig.HANDS / "tendon16.toml"

# Postures of iso16 (degrees, hand file order: thumb, index, middle, ring; 4 joints each).
OPEN = [30, 0, 0, 0] + [0, 10, 10, 10] * 3
CLOSED = [40, 20, 40, 20] + [0, 80, 60, 20] * 3  # the pads onto the far face
FINGERS_CLOSED = [-20, 0, 0, 0] + [0, 80, 80, 60] * 3  # the thumb kept out of their way


def over_the_cube(world, posture):
    """The hand over the cube as the power grasp plans it: the cube's centre where the
    planner puts it in the hand, the fingers along one of its faces."""
    plan = GraspPlanner(world.hand, world.hand_path).plan("power", 0.025)
    cube, quat = world.body_pose("cube")
    yaw = yaw_of(quat)
    face = yaw - np.round(yaw / (np.pi / 2)) * (np.pi / 2)
    return place_hand_over(world, plan.object_in_hand, cube, yaw=face, posture=posture)


def place_hand_over(world, point_in_hand, at, yaw=0.0, pitch=0.0, posture=None):
    """Put the wrist so that a point of the hand frame lies on a world point; the hand
    starts in posture (degrees) with its goals there. Returns (wrist pos, quat)."""
    quat = world.hand.orientation(yaw=yaw, pitch=pitch)
    pos = np.asarray(at) - rotate(quat, point_in_hand)
    world.place_wrist(pos, quat)
    if posture is not None:
        q = np.radians(posture)
        world.data.qpos[world.scene.joint_qpos] = q
        world.set_motor_goals(q)
    mujoco.mj_forward(world.model, world.data)
    return pos, quat


def ramp(world, seconds, goals_from=None, goals_to=None, wrist_from=None, wrist_to=None, quat=None):
    """Move goals and/or the wrist linearly over seconds, 10 ms at a time."""
    n = max(1, round(seconds / 0.01))
    for k in range(1, n + 1):
        a = k / n
        if goals_to is not None:
            goals = np.add(goals_from, a * np.subtract(goals_to, goals_from))
            world.set_motor_goals(np.radians(goals))
        if wrist_to is not None:
            world.set_wrist(np.add(wrist_from, a * np.subtract(wrist_to, wrist_from)), quat)
        world.step_to(world.time + 0.01)


def grasp_and_lift(seed, closed_posture):
    world = World(ISO16, "lift_cube", seed=seed)
    pos, quat = over_the_cube(world, OPEN)
    world.step_to(0.3)
    ramp(world, 0.5, OPEN, closed_posture)
    world.step_to(1.3)
    ramp(world, 1.0, wrist_from=pos, wrist_to=pos + [0, 0, 0.10], quat=quat)
    world.step_to(world.time + 1.2)
    return world


def test_closed_hand_lifts_the_cube_and_the_open_hand_does_not():
    closed = grasp_and_lift(0, CLOSED)
    assert closed.task_state()["lifted_m"] > 0.08
    assert closed.judge() == "success"
    opened = grasp_and_lift(0, OPEN)
    assert opened.task_state()["lifted_m"] < 0.005
    assert opened.judge() is None  # still running: nothing was lifted


def test_a_blocked_finger_shows_a_position_error_and_a_load():
    index_mcp = 5
    free = World(ISO16, "lift_cube", seed=0)  # the hand in the air, far above the cube
    ramp(free, 0.5, OPEN, FINGERS_CLOSED)
    free.step_to(1.5)
    err_free = free.motor_goals()[index_mcp] - free.motor_positions()[index_mcp]
    assert abs(np.degrees(err_free)) < 1
    assert abs(free.motor_loads()[index_mcp]) < 0.05

    blocked = World(ISO16, "lift_cube", seed=0)
    over_the_cube(blocked, OPEN)
    ramp(blocked, 0.5, OPEN, CLOSED)  # the same index goal, the thumb holding the cube
    blocked.step_to(1.5)
    err = blocked.motor_goals()[index_mcp] - blocked.motor_positions()[index_mcp]
    assert np.degrees(err) > 10  # the cube stops the finger short of its goal
    assert blocked.motor_loads()[index_mcp] > 0.5  # and the servo strains against it
    assert any(t.other_geom == "cube" and t.hand_geom.startswith("index")
               for t in blocked.contacts)


def test_a_fingertip_pressed_into_the_cube_brightens_its_gel_where_it_presses():
    # The index pad, fingers straight and tilted down a little, pressed 2 mm down onto
    # the cube's far top edge: the edge presses a band across the pad.
    world = World(ISO16, "lift_cube", seed=0)
    cube, quat = world.body_pose("cube")
    yaw = yaw_of(quat)
    world.hand.tips(np.zeros(16))
    pad = world.hand.data.site("index_tactile").xpos.copy()  # pad centre, wrist frame
    posture = [-30, 0, 0, 0] + [0] * 12  # thumb out of the way, fingers straight
    edge = cube + [0.025 * np.cos(yaw), 0.025 * np.sin(yaw), 0.025 - 0.002]
    pos, quat = place_hand_over(world, pad, edge + [0, 0, 0.02], yaw=yaw, pitch=np.radians(8),
                                posture=posture)
    ramp(world, 1.0, wrist_from=pos, wrist_to=pos - [0, 0, 0.02], quat=quat)
    world.step_to(world.time + 0.1)
    depth = world.tactile_depth("index")
    assert depth.max() > 0.0003  # the gel is pressed a fraction of a millimetre
    assert world.tactile_depth("ring").max() == 0  # a finger off the cube feels nothing
    cols = np.flatnonzero(depth.max(axis=0) > 0)
    assert 0 < len(cols) < depth.shape[1] / 2  # a band, not the whole pad

    shader = GelShader(world.pad_half_size("index"))
    image = shader.shade(depth)

    def grey(im):
        return im.astype(float).mean(axis=2)

    brighter = grey(image) - grey(shader.background)
    pressed = np.kron(depth > 0.0002, np.ones((10, 10))) > 0  # taxels -> 320x240 pixels
    far = np.kron(depth == 0, np.ones((10, 10))) > 0
    assert brighter[pressed].mean() > 20  # well over the contact meter's threshold (12)
    if far.any():  # where nothing touches, the gel looks as it does untouched
        assert abs(brighter[far]).mean() < brighter[pressed].mean() / 3
    # The deepest quarter of the imprint is brighter than its shallowest quarter.
    big = np.kron(depth, np.ones((10, 10)))[pressed]
    lo, hi = np.quantile(big, [0.25, 0.75])
    assert brighter[pressed][big >= hi].mean() > brighter[pressed][big <= lo].mean()
    assert np.array_equal(shader.shade(np.zeros_like(depth)), shader.background)


def test_the_same_seed_gives_the_same_outcome():
    a, b = grasp_and_lift(4, CLOSED), grasp_and_lift(4, CLOSED)
    assert np.array_equal(a.data.qpos, b.data.qpos)
    assert a.judge() == b.judge() == "success"
    c = World(ISO16, "lift_cube", seed=5)
    d = World(ISO16, "lift_cube", seed=4)
    assert not np.allclose(c.body_pose("cube")[0], d.body_pose("cube")[0])


def test_torque_off_lets_go_of_the_cube():
    world = grasp_and_lift(0, CLOSED)
    assert world.task_state()["lifted_m"] > 0.08
    world.set_torque(False)
    world.step_to(world.time + 1.0)
    assert np.all(world.motor_loads() == 0)
    assert world.task_state()["lifted_m"] < 0.02  # limp fingers: the cube falls


def test_the_tendon_hand_moves_its_joints_through_the_coupling():
    world = World(TENDON16, "lift_cube", seed=0)
    a, b = hand_coupling(TENDON16)
    target = np.radians([20, 10, 30, 20] + [5, 40, 30, 20] * 3)
    world.set_motor_goals(a @ target + b)
    world.step_to(1.0)
    assert np.degrees(np.abs(world.joint_positions() - target)).max() < 3
    # Present motor positions are in the goals' frame: at rest in the air, on the goals.
    assert np.degrees(np.abs(world.motor_positions() - world.motor_goals())).max() < 3


def test_a_bad_task_name_is_a_user_error_naming_the_tasks():
    with pytest.raises(UserError) as e:
        World(ISO16, "juggle", seed=0)
    assert "juggle" in str(e.value)
    for name in tasks.names():
        assert name in str(e.value)


def test_the_rgbd_camera_sees_the_cube_where_it_is():
    from dexlink.world.sensors import RGBDRenderer
    world = World(ISO16, "lift_cube", seed=0)
    cam = world.data.camera("rgbd")
    cube, _ = world.body_pose("cube")
    renderer = RGBDRenderer(world)
    try:
        color, depth = renderer.render()
    finally:
        renderer.close()
    assert color.shape == (480, 640, 3) and color.dtype == np.uint8
    assert depth.shape == (480, 640) and depth.dtype == np.uint16
    # Project the cube's top face centre with the camera's pinhole model (it looks along
    # its -z, image y up).
    top = cube + [0, 0, 0.025]
    p = cam.xmat.reshape(3, 3).T @ (top - cam.xpos)
    f = 240 / np.tan(np.radians(world.model.cam_fovy[world.model.camera("rgbd").id]) / 2)
    u, v = int(round(320 + f * p[0] / -p[2])), int(round(240 - f * p[1] / -p[2]))
    assert abs(depth[v, u] / 1000 - (-p[2])) < 0.01  # depth in mm along the view axis
    b, g, r = color[v, u].astype(int)
    assert r > 2 * max(b, g)  # the red cube
    assert depth[5, 320] == 0  # above the table's far edge: nothing within range


def test_world_cameras_stream_frames_the_recorder_measures():
    from dexlink.capture.base import CameraSet
    from dexlink.world.sensors import WorldRGBDCamera, WorldTactileCamera
    world = grasp_and_lift(0, CLOSED)
    touching = [f for f in world.fingers if world.tactile_depth(f).max() > 0]
    assert touching  # the fingers' pads hold the cube
    frames = []
    cams = CameraSet([WorldTactileCamera(world, f) for f in world.fingers] +
                     [WorldRGBDCamera(world)])
    cams.start(lambda fr: frames.append(fr) or True)
    try:
        cams.wait_running(5.0)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not (
                {fr.camera for fr in frames} >= set(world.fingers) | {"rgbd"}):
            time.sleep(0.02)
    finally:
        cams.stop()
    assert not cams.problems()
    by = {fr.camera: fr for fr in frames}
    assert by["rgbd"].depth.dtype == np.uint16 and by["rgbd"].depth_scale == 0.001
    for f in world.fingers:
        fr = by[f]
        assert fr.color.shape == (240, 320, 3) and fr.contact is not None
        # A pad that touches shows an imprint (a light touch covers under 1 % of the
        # image); one that does not shows none at all.
        assert (fr.contact.area > 0.001) == (f in touching)


@pytest.mark.parametrize("hand", ["iso16", "iso22", "tendon16"])
def test_every_hand_has_a_tactile_camera_per_fingertip_and_none_elsewhere(hand):
    # iso22's palm joint is a finger without a tip: a tactile camera there would have no pad.
    from dexlink.world.sensors import WorldTactileCamera
    from dexlink.world.world import World
    world = World(hwconfig.HANDS / ("%s.toml" % hand), "lift_cube", seed=0)
    with_tips = [f for f in world.fingers if f != "palm"]
    assert world.tactile_fingers == with_tips
    for f in world.tactile_fingers:
        assert WorldTactileCamera(world, f).name == f


def test_a_held_up_tactile_camera_still_gets_every_exposure_of_the_physics():
    # The pads are read when the physics evaluates its tactile sensor (every 1/60 s of
    # world time) and kept: a camera whose thread is held up (a long pause of the host's
    # interpreter) delivers every exposure afterwards, stamped with its world time, and
    # loses none. A camera paced by its own thread lost every slot of the pause.
    from dexlink.capture.base import CameraSet
    from dexlink.capture.tactile import ContactMeter
    from dexlink.world.sensors import WorldTactileCamera
    world = grasp_and_lift(0, CLOSED)
    pressed = max(world.fingers, key=lambda f: world.tactile_depth(f).max())
    t_held = world.time
    held, frames = [], []

    def sink(fr):
        frames.append(fr)
        if len(frames) == 1:  # the host's pause, right after the first frame
            held.append(True)
            time.sleep(0.2)  # twelve frame slots
        return True
    cam = WorldTactileCamera(world, pressed)
    cams = CameraSet([cam]).start(sink)
    try:
        deadline = time.monotonic() + 10
        while not held and time.monotonic() < deadline:
            time.sleep(0.005)
        # The world starts running in real time (as the board's bridge starts it).
        world.time_origin_ns = time.monotonic_ns() - int(world.time * 1e9)
        world.step_to(t_held + 0.1)  # about six exposures, made while the camera is held up
        exposures = [e for e in world.exposures if e.t_ns > world.time_origin_ns + t_held * 1e9]
        while time.monotonic() < deadline and not (
                {e.t_ns for e in exposures} <= {fr.t_ns for fr in frames}):
            time.sleep(0.01)
    finally:
        cams.stop()
    assert len(exposures) >= 5
    got = [fr for fr in frames if fr.t_ns in {e.t_ns for e in exposures}]
    assert [fr.t_ns for fr in got] == [e.t_ns for e in exposures]  # each once, in order
    gaps = np.diff([e.t_ns for e in exposures]) / 1e9
    assert np.all(np.abs(gaps - 1 / 60) < world.timestep)  # on the sensor's schedule
    assert cam.stats.missed == 0
    # Shaded and measured in the tactile process as the recorder's meter measures it.
    meter = ContactMeter()
    meter.set_reference(cam.shader.background)
    assert got[-1].contact.area > 0.001
    assert got[-1].contact == meter.measure(got[-1].color)


def test_a_30_fps_world_camera_takes_every_other_exposure_of_the_physics():
    # Exposures come at the first 2 ms step at or after each 1/60 s of world time.
    from dexlink.world.exposures import ExposureSource
    world = World(ISO16, "lift_cube", seed=0)
    world.step_to(0.1)
    assert not world.exposures  # kept only once a camera asks
    ExposureSource.open(world)
    world.step_to(0.3)
    times = [e.t for e in world.exposures]
    assert np.all(np.abs(np.diff(times) - 1 / 60) < world.timestep)
    rgbd, tactile = ExposureSource(30), ExposureSource(60)
    picked = [rgbd._on_schedule(t) for t in times]
    assert picked[0] and all(a != b for a, b in zip(picked, picked[1:]))  # every other one
    assert all(tactile._on_schedule(t) for t in times)
