"""Hand inputs (dexlink.inputs): the frame and its checks, the generic JSON, recordings, and
every listener fed real traffic (UDP, ZMQ, HTTPS + websocket), garbage and floods included."""
from __future__ import annotations

import json
import os
import socket
import ssl
import time
import urllib.request

import numpy as np
import pytest

from dexlink.errors import FileFormatError, UsageError, UserError
from dexlink.inputs import wire
from dexlink.inputs.frame import (
    BONES,
    FINGER_CHAINS,
    N_JOINTS,
    BadFrame,
    HandFrame,
    InputLimits,
    make_frame,
    mediapipe_to_openxr,
    problem,
    to_wrist_frame,
    validate,
    wrist_pose_from_joints,
)
from dexlink.inputs.recorded import FileInput, FrameWriter, read_frames
from dexlink.inputs.reference import curl, reference_joints
from dexlink.inputs.rokoko import RokokoInput, bone_names
from dexlink.inputs.spec import open_input, parse_input
from dexlink.inputs.udp import GenericUdpInput
from support.waiting import wait_until

# The OpenXR joint each MediaPipe landmark is (the other five OpenXR joints are interpolated).
XR_OF_MP = [1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 20, 22, 23, 24, 25]


def landmarks_of(joints26):
    """The 21 MediaPipe landmarks a hand's OpenXR joints contain."""
    return np.asarray(joints26)[XR_OF_MP]


def rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def posed(joints, rot, origin):
    """Wrist-frame joints placed in a device frame by a rotation and an origin."""
    return joints @ rot.T + origin


@pytest.fixture
def sender():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield s
    s.close()


# -- the frame -------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["right", "left"])
def test_reference_hand_is_a_valid_frame_and_its_wrist_frame_is_openxr(side):
    j = reference_joints(side)
    assert problem(make_frame(j, side)) is None
    assert problem(make_frame(curl(j, 1.0), side)) is None
    # Built from the joints, the wrist frame is the one they are in (OpenXR's axes).
    pose = wrist_pose_from_joints(j, side)
    assert np.allclose(pose, np.eye(4), atol=1e-9)
    # In any device frame: the pose found is the one the hand was placed with.
    rot, origin = rotation([1, 2, 3], 0.7), np.array([0.3, 1.2, -0.4])
    world = posed(j, rot, origin)
    found = wrist_pose_from_joints(world, side)
    assert np.allclose(found[:3, :3], rot, atol=1e-9) and np.allclose(found[:3, 3], origin)
    assert np.allclose(to_wrist_frame(world, found), j, atol=1e-12)


def test_mediapipe_landmarks_map_to_openxr_with_metacarpals_and_palm_interpolated():
    j = reference_joints()
    out = mediapipe_to_openxr(landmarks_of(j))
    # The reference hand's metacarpals and palm follow the same rule, so all 26 come back.
    assert np.allclose(out, j, atol=1e-12)
    lm = np.random.default_rng(1).normal(size=(21, 3))
    out = mediapipe_to_openxr(lm)
    assert np.allclose(out[XR_OF_MP], lm)
    assert np.allclose(out[6], lm[0] + 0.25 * (lm[5] - lm[0]))  # index metacarpal
    assert np.allclose(out[0], 0.5 * (out[11] + out[12]))  # palm: middle of the middle metacarpal
    with pytest.raises(BadFrame, match="21, 3"):
        mediapipe_to_openxr(np.zeros((20, 3)))


def test_validate_rejects_what_no_hand_makes_with_a_reason():
    j = reference_joints()
    good = make_frame(j)
    assert validate(good) is good
    nan = j.copy()
    nan[10] = np.nan
    cases = {
        "NaN": make_frame(nan),
        "shape": make_frame(j[:21]),
        "human": make_frame(j * 100),  # centimetres sent as metres
        "rotation": make_frame(j, wrist=np.diag([2.0, 1, 1, 1])),
        "no joint is valid": make_frame(j, valid=np.zeros(N_JOINTS, bool)),
        "side": make_frame(j, side="middle"),
        "infinite": make_frame(j, wrist=np.full((4, 4), np.inf)),
    }
    for word, frame in cases.items():
        with pytest.raises(BadFrame) as e:
            validate(frame)
        assert word in e.value.reason, (word, e.value.reason)
    # A lost joint may hold anything: only tracked joints are checked.
    assert problem(make_frame(nan, valid=~np.isnan(nan).any(axis=1))) is None
    assert len(BONES) == sum(len(c) - 1 for c in FINGER_CHAINS.values())


# -- the generic JSON ------------------------------------------------------------------------
def test_generic_json_round_trips_and_names_bad_fields():
    rot, origin = rotation([0, 1, 0], 1.0), np.array([0.1, 1.0, 0.2])
    wrist = np.eye(4)
    wrist[:3, :3], wrist[:3, 3] = rot, origin
    valid = np.ones(N_JOINTS, bool)
    valid[25] = False
    f = make_frame(reference_joints(), wrist=wrist, seq=7, valid=valid)
    counter = iter(range(100, 200))
    [back] = wire.decode(wire.encode(f), source="glove", received_ns=5_000_000_000,
                         next_seq=lambda: next(counter))
    assert back.seq == 7 and back.t_ns == 5_000_000_000 and back.source == "glove"
    assert np.allclose(back.wrist, wrist) and np.array_equal(back.valid, valid)
    assert np.allclose(back.joints[valid], f.joints[valid])
    # Positions in the device frame (landmarks or joints) give the same hand.
    world = posed(reference_joints(), rot, origin)
    msg = {"hands": [{"side": "right", "landmarks21": (landmarks_of(world) * 1000).tolist(),
                      "units": "mm", "latency_ms": 20},
                     {"side": "right", "joints_world": world.tolist()}]}
    a, b = wire.decode(json.dumps(msg).encode(), source="camera", received_ns=10**9,
                       next_seq=lambda: next(counter))
    for g in (a, b):
        assert np.allclose(g.joints, reference_joints(), atol=1e-9)
        assert np.allclose(g.wrist, wrist, atol=1e-9)
    assert a.t_ns == 10**9 - 20_000_000 and a.seq == 100 and b.seq == 101
    bad = {
        b"\xff\xfe": "not JSON",
        b'{"side": "up", "joints": []}': "'side'",
        b'{"side": "left"}': "exactly one of",
        b'{"side": "left", "joints": [[0, 0]]}': "'joints' is not a list of 26",
        b'{"side": "left", "units": "ft", "landmarks21": []}': "'units'",
        b'{"side": "left", "latency_ms": -5, "landmarks21": []}': "'latency_ms'",
        b'{"hands": []}': "'hands'",
        json.dumps({"hands": [{"side": "left"}] * 9}).encode(): "at most",
        b"[" * 50000: "not JSON",
    }
    for data, words in bad.items():
        with pytest.raises(BadFrame) as e:
            wire.decode(data, source="x", received_ns=0, next_seq=lambda: 0)
        assert words in e.value.reason, (data[:40], e.value.reason)


# -- recordings ------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".jsonl", ".npz"])
def test_recording_round_trips_and_replays_at_its_pace(tmp_path, suffix):
    path = tmp_path / ("hands" + suffix)
    frames = [make_frame(curl(reference_joints(), k / 20), t_ns=10**9 + k * 10_000_000, seq=k)
              for k in range(21)]
    with FrameWriter(path) as w:
        for f in frames:
            w.write(f)
    back = read_frames(path)
    assert [f.t_ns for f in back] == [f.t_ns for f in frames]
    assert all(np.allclose(a.joints, b.joints) for a, b in zip(back, frames))
    replay = FileInput(path).start()
    got = list(replay)
    assert replay.finished.is_set() and not replay.running
    assert [f.seq for f in got] == list(range(1, 22))
    span_s = (got[-1].t_ns - got[0].t_ns) / 1e9
    assert 0.18 <= span_s < 0.5  # the recorded 0.2 s, stamped with the replay's own times
    assert np.allclose(got[-1].joints, frames[-1].joints)


def test_a_bad_recording_is_named_with_its_line(tmp_path):
    good = json.dumps(wire.frame_to_dict(make_frame(reference_joints(), t_ns=5)))
    path = tmp_path / "hands.jsonl"
    path.write_text(good + "\n" + '{"t_ns": 6, "side": "right", "joints": "x"}\n')
    with pytest.raises(FileFormatError, match="hands.jsonl:2: 'joints'"):
        read_frames(path)
    path.write_text(json.dumps(wire.frame_to_dict(make_frame(reference_joints() * 50, t_ns=5))))
    with pytest.raises(FileFormatError, match="frame 0: bone"):
        FileInput(path)
    with pytest.raises(FileFormatError, match="not 'csv'|not '.csv'"):
        read_frames(tmp_path / "hands.csv")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(FileFormatError, match="junk.npz"):
        read_frames(tmp_path / "junk.npz")


# -- the generic UDP listener under bad input ----------------------------------------------
def test_udp_listener_drops_and_counts_bad_packets_and_goes_on(sender):
    inp = GenericUdpInput(0, limits=InputLimits(max_message_bytes=8192)).start()
    try:
        assert inp._sock.getsockname()[0] == "127.0.0.1"  # loopback unless told otherwise
        addr = ("127.0.0.1", inp.port)
        nan = reference_joints()
        nan[8] = np.nan
        junk = [
            b"\x00\xff garbage",
            b"[" * 5000,  # nests deeper than the parser goes
            wire.encode(make_frame(nan, seq=1)).replace(b"null", b"NaN"),
            json.dumps({"side": "right", "seq": 2,
                        "joints_world": (reference_joints() * 30).tolist()}).encode(),
            json.dumps({"side": "right", "seq": 3, "joints": [[1e308, 1e308, 1e308]] * 26}).encode(),
            b"x" * 9000,  # over the size limit
        ]
        for data in junk:
            sender.sendto(data, addr)
        assert wait_until(lambda: inp.counters.received == len(junk))
        assert inp.counters.dropped_malformed == len(junk)
        assert "over 8192 bytes" in inp.counters.last_problem
        sender.sendto(wire.encode(make_frame(reference_joints(), seq=10)), addr)
        got = inp.get(10.0)
        assert got is not None and got.seq == 10
        # Stale: captured 2 s ago; out of order: an older seq than one delivered.
        sender.sendto(json.dumps({"side": "right", "seq": 11, "latency_ms": 2000,
                                  "joints": reference_joints().tolist()}).encode(), addr)
        sender.sendto(wire.encode(make_frame(reference_joints(), seq=9)), addr)
        assert wait_until(lambda: inp.counters.dropped_stale == 2)
        assert inp.get(0.2) is None
    finally:
        inp.stop()
    assert not inp._thread if inp._thread is None else not inp._thread.is_alive()


def test_udp_flood_is_bounded_and_counted(sender):
    limits = InputLimits(queue_size=8, max_rate_hz=500, burst=50)
    inp = GenericUdpInput(0, limits=limits).start()
    try:
        addr = ("127.0.0.1", inp.port)
        data = [wire.encode(make_frame(reference_joints(), seq=k)) for k in range(1, 2001)]
        for k, d in enumerate(data):
            sender.sendto(d, addr)
            if k % 20 == 19:
                time.sleep(0.001)  # ~10000 a second: more than the OS's buffer holds at once
        assert wait_until(lambda: inp.counters.received >= 200)
        before = -1
        while inp.counters.received != before:  # until the listener has read what arrived
            before = inp.counters.received
            time.sleep(0.2)
        c = inp.counters
        assert len(inp._queue) <= 8
        assert c.dropped_flood > 0
        assert c.received == c.dropped_flood + c.dropped_malformed + c.dropped_stale + len(inp._queue) \
            + 0  # nothing consumed yet: every frame is queued or counted as dropped
        # The newest frames are the ones kept (the oldest went first).
        kept = [inp.get(0) for _ in range(len(inp._queue))]
        assert kept == sorted(kept, key=lambda f: f.seq)
        # After the flood the listener still takes frames.
        time.sleep(0.2)
        sender.sendto(wire.encode(make_frame(reference_joints(), seq=5000)), addr)
        assert wait_until(lambda: any(f.seq == 5000 for f in list(inp._queue)))
    finally:
        inp.stop()


def test_listener_binds_where_told(sender):
    inp = GenericUdpInput(0, bind="0.0.0.0").start()
    try:
        assert inp._sock.getsockname()[0] == "0.0.0.0"
    finally:
        inp.stop()
    taken = GenericUdpInput(0).start()
    try:
        with pytest.raises(OSError, match="cannot listen on udp://127.0.0.1:%d" % taken.port):
            GenericUdpInput(taken.port).start()
    finally:
        taken.stop()


# -- Rokoko Studio ---------------------------------------------------------------------------
def rokoko_message(world_right, world_left=None, actor_meta=None):
    """A Rokoko Studio JSON v3 scene with hands at these (right-handed) positions."""
    body = {"hip": {"position": {"x": 0, "y": 1, "z": 0}, "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}}}
    for side, world in (("right", world_right), ("left", world_left)):
        if world is None:
            continue
        for name, p in zip(bone_names(side), landmarks_of(world)):
            body[name] = {"position": {"x": p[0], "y": p[1], "z": -p[2]},  # Unity: left-handed
                          "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}}
    actor = {"name": "A", "meta": actor_meta or {"hasGloves": True, "hasLeftGlove": world_left is not None,
                                                 "hasRightGlove": True}, "body": body}
    return {"version": 3, "fps": 60, "scene": {"timestamp": 1.5, "actors": [actor]}}


def test_rokoko_studio_stream_gives_both_hands_plain_or_lz4(sender):
    import lz4.frame

    rot, origin = rotation([1, 0, 1], 0.5), np.array([0.2, 1.3, 0.4])
    right = posed(reference_joints("right"), rot, origin)
    left = posed(curl(reference_joints("left"), 0.5), rot, origin + 0.3)
    inp = RokokoInput(0).start()
    try:
        addr = ("127.0.0.1", inp.port)
        sender.sendto(json.dumps(rokoko_message(right, left)).encode(), addr)
        a, b = inp.get(10.0), inp.get(10.0)
        assert (a.side, b.side) == ("right", "left") and a.source == "glove"
        assert np.allclose(a.joints, reference_joints("right"), atol=1e-9)
        assert np.allclose(b.joints, curl(reference_joints("left"), 0.5), atol=1e-9)
        assert np.allclose(a.wrist[:3, :3], rot, atol=1e-9)
        sender.sendto(lz4.frame.compress(json.dumps(rokoko_message(right)).encode()), addr)
        c = inp.get(10.0)
        assert c is not None and c.side == "right"
        sender.sendto(b"\x04\x22\x4d\x18 not lz4 at all", addr)
        sender.sendto(json.dumps({"version": 3, "scene": {"actors": []}}).encode(), addr)
        broken = rokoko_message(right)
        del broken["scene"]["actors"][0]["body"]["rightIndexTip"]
        sender.sendto(json.dumps(broken).encode(), addr)
        assert wait_until(lambda: inp.counters.dropped_malformed == 3)
        assert "rightIndexTip" in inp.counters.last_problem
    finally:
        inp.stop()


# -- ZMQ -------------------------------------------------------------------------------------
def test_zmq_publisher_frames_and_garbage():
    zmq = pytest.importorskip("zmq")
    from dexlink.inputs.zmq_input import ZmqInput

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    inp = ZmqInput("tcp://127.0.0.1:%d" % port).start()
    try:
        seq = 0

        def publish_until_received():
            nonlocal seq
            seq += 1
            pub.send_multipart([b"hand", wire.encode(make_frame(reference_joints(), seq=seq))])
            return inp.get(0.05)

        # A SUB socket gets nothing until its subscription reaches the publisher.
        assert wait_until(lambda: publish_until_received() is not None)
        pub.send(b"not json")
        pub.send(json.dumps({"side": "left", "joints": "x"}).encode())
        assert wait_until(lambda: inp.counters.dropped_malformed == 2)
    finally:
        inp.stop()
        pub.close(0)
        ctx.term()


# -- WebXR -----------------------------------------------------------------------------------
def webxr_message(joints, wrist, seq):
    """What the page sends: the wrist's pose column-major and XRHand's 25 joints in world space."""
    world = joints @ wrist[:3, :3].T + wrist[:3, 3]
    return json.dumps({"side": "right", "seq": seq, "wrist": wrist.T.ravel().tolist(),
                       "xr25": world[1:].tolist()})


def test_webxr_page_and_websocket_over_https(tmp_path):
    pytest.importorskip("cryptography")
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from dexlink.inputs.webxr import WebXRInput

    inp = WebXRInput(0, cert_dir=tmp_path / "certs").start()
    try:
        cert = tmp_path / "certs" / "cert.pem"
        assert oct(os.stat(tmp_path / "certs" / "key.pem").st_mode & 0o777) == "0o600"
        context = ssl.create_default_context(cafile=str(cert))  # verifies 127.0.0.1 is in it
        base = "127.0.0.1:%d" % inp.port
        page = urllib.request.urlopen("https://%s/" % base, context=context, timeout=10)
        html = page.read().decode()
        assert page.headers["Content-Type"].startswith("text/html")
        assert "fillPoses" in html and "hand-tracking" in html and "/ws" in html
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen("https://%s/secret" % base, context=context, timeout=10)
        wrist = np.eye(4)
        wrist[:3, :3], wrist[:3, 3] = rotation([0, 1, 0], 0.4), [0.1, 1.4, -0.3]
        with connect("wss://%s/ws" % base, ssl=context) as ws:
            ws.send(webxr_message(reference_joints(), wrist, 1))
            f = inp.get(10.0)
            assert f is not None and f.source == "xr" and f.seq == 1
            assert np.allclose(f.joints, reference_joints(), atol=1e-9)
            assert np.allclose(f.wrist, wrist)
            ws.send("{not json")
            ws.send(b"\x00\x01")
            ws.send(json.dumps({"side": "right", "wrist": [0] * 16, "xr25": [[0, 0]] * 25}))
            assert wait_until(lambda: inp.counters.dropped_malformed == 3)
        with connect("wss://%s/ws" % base, ssl=context, max_size=None) as ws:
            ws.send("x" * 70000)  # over the limit: the server closes this connection
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
        assert wait_until(lambda: inp.counters.dropped_malformed == 4)
        with connect("wss://%s/ws" % base, ssl=context) as ws:  # a new client is served
            ws.send(webxr_message(reference_joints(), wrist, 1))  # its seq counts from 1 again
            assert inp.get(10.0) is not None
    finally:
        inp.stop()
    mtime = cert.stat().st_mtime_ns
    from dexlink.inputs.certs import ensure_certificate
    assert ensure_certificate(["127.0.0.1", "localhost"], tmp_path / "certs")[0].stat().st_mtime_ns == mtime
    ensure_certificate(["10.1.2.3"], tmp_path / "certs")  # a name it lacks: made again
    assert cert.stat().st_mtime_ns != mtime


# -- Apple Vision Pro (the mapping; the app itself needs the headset) ------------------------
def test_avp_sample_maps_to_openxr_joints():
    from dexlink.inputs.avp import frames_from_avp

    j = curl(reference_joints(), 0.3)
    # avp-stream: the wrist's pose, and 25 joints (OpenXR's without the palm) as 4x4 in the
    # wrist frame, here in ARKit's own axes (rotated from OpenXR's): the frame is rebuilt.
    arkit = rotation([1, 0, 0], np.pi / 2)
    wrist = np.eye(4)
    wrist[:3, :3], wrist[:3, 3] = rotation([0, 0, 1], 0.3) @ arkit.T, [0.0, 1.1, -0.4]
    fingers = np.tile(np.eye(4), (27, 1, 1))
    fingers[:25, :3, 3] = j[1:] @ arkit  # the joints in ARKit's wrist axes
    sample = {"right_wrist": wrist[None], "right_fingers": fingers, "head": np.eye(4)[None]}
    [f] = frames_from_avp(sample, received_ns=1, next_seq=lambda: 3)
    assert f.side == "right" and f.source == "avp" and problem(f) is None
    assert np.allclose(f.joints, j, atol=1e-9)
    with pytest.raises(BadFrame, match="right_fingers"):
        frames_from_avp({"right_wrist": wrist[None], "right_fingers": fingers[:10]},
                        received_ns=1, next_seq=lambda: 3)


def test_avp_without_its_client_says_how_to_install_it():
    try:
        import avp_stream  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match=r"pip install 'dexlink\[avp\]'"):
            open_input("avp:10.0.0.2")
    else:
        pytest.skip("avp-stream is installed here: nothing missing to report")


# -- the webcam ------------------------------------------------------------------------------
def test_camera_frames_arrive_as_the_worker_sends_them(sender, monkeypatch, tmp_path):
    from dexlink.inputs.camera import CameraInput

    monkeypatch.setenv("DEXLINK_MEDIAPIPE_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(UserError, match="make mediapipe-env"):
        CameraInput()
    # The worker's messages (MediaPipe world landmarks, metres, about the hand's centre).
    inp = CameraInput(0, spawn=False).start()
    try:
        world = posed(curl(reference_joints(), 0.6), rotation([0, 0, 1], 2.0), [0.01, -0.02, 0.0])
        sender.sendto(json.dumps({"side": "right", "seq": 1, "latency_ms": 12.5,
                                  "landmarks21": landmarks_of(world).tolist()}).encode(),
                      ("127.0.0.1", inp.port))
        f = inp.get(10.0)
        assert f is not None and f.source == "camera"
        assert np.allclose(f.joints, curl(reference_joints(), 0.6), atol=1e-9)
    finally:
        inp.stop()


def test_mediapipe_worker_runs_in_its_environment(tmp_path):
    from dexlink.inputs.camera import CameraInput, mediapipe_python

    if mediapipe_python() is None:
        pytest.skip("no MediaPipe environment here (make mediapipe-env makes one)")
    # The input spawns the worker; MediaPipe and OpenCV load (an import error would end it
    # with status 1), then the video does not open: reported, and teleop stops on it.
    video = tmp_path / "none.mp4"
    inp = CameraInput(0, video=str(video)).start()
    try:
        assert wait_until(lambda: inp.failed() != "", 60)
        assert inp.failed() == "the MediaPipe worker cannot open %s" % video
    finally:
        inp.stop()


# -- --input values --------------------------------------------------------------------------
def test_input_values_are_checked():
    assert str(parse_input("glove:zmq:tcp://1.2.3.4:5")) == "glove:zmq:tcp://1.2.3.4:5"
    for text, words in {"kinect": "expected", "avp": "address", "file": "path", "xr:1": "nothing",
                        "glove:tcp": "glove"}.items():
        with pytest.raises(UsageError, match=words):
            parse_input(text)
    with pytest.raises(UsageError, match="board"):
        open_input("exo")
    assert isinstance(open_input("glove:udp", port=0), GenericUdpInput)
    assert isinstance(open_input("glove", port=0), RokokoInput)
    assert HandFrame.__dataclass_params__.frozen
