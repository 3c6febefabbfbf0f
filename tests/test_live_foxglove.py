"""The live Foxglove view: `dexlink record|session --foxglove` serve the Foxglove WebSocket
protocol (foxglove-sdk) that a real websocket client subscribes to; the hand's links are
posed as MuJoCo poses the same URDF."""
from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from dexlink.live.kinematics import HandKinematics, quat_mul, rotate
from dexlink.record.reader import read_episode

pytestmark = pytest.mark.vboard

# foxglove-sdk's server speaks the Foxglove WebSocket protocol under its current name;
# foxglove.websocket.v1 is the same protocol's older name (older clients offer only it).
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]


class FoxgloveClient:
    """A real websocket client of the protocol: channels as advertised, subscriptions,
    messages by topic (binary messageData: opcode 1, subscription id, log time, payload)."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self._connection = connect(url, subprotocols=SUBPROTOCOLS, max_size=None,
                                   open_timeout=10)
        self.ws = None
        self.channels: dict[str, dict] = {}
        self.subscribed: dict[int, str] = {}
        self.messages: dict[str, list[tuple[int, bytes]]] = {}
        self.server_info = None

    def collect(self, topics, until, timeout: float = 20.0) -> dict:
        """Subscribe to `topics` as they are advertised; read until until(messages)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not until(self.messages):
            try:
                m = self.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            if isinstance(m, str):
                op = json.loads(m)
                if op["op"] == "serverInfo":
                    self.server_info = op
                elif op["op"] == "advertise":
                    for c in op["channels"]:
                        self.channels[c["topic"]] = c
                        if c["topic"] in topics and c["topic"] not in self.subscribed.values():
                            sid = len(self.subscribed) + 1
                            self.subscribed[sid] = c["topic"]
                            self.ws.send(json.dumps({"op": "subscribe", "subscriptions": [
                                {"id": sid, "channelId": c["id"]}]}))
            elif m[0] == 1:
                _, sid, log_time = struct.unpack_from("<BIQ", m)
                self.messages.setdefault(self.subscribed[sid], []).append((log_time, m[13:]))
        return self.messages

    def __enter__(self) -> "FoxgloveClient":
        self.ws = self._connection.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._connection.__exit__(*exc)


def served(args: list[str]):
    """A dexlink command serving a view on a free port: (process, its ws:// URL)."""
    proc = subprocess.Popen([sys.executable, "-m", "dexlink.cli", *args, "--foxglove", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        m = re.search(r"Foxglove live view on (ws://127\.0\.0\.1:\d+)", line)
        if m:
            return proc, m[1]
    proc.wait()
    raise AssertionError("no live view announced:\n" + "".join(seen))


def enough(counts: dict[str, int]):
    return lambda got: all(len(got.get(t, [])) >= n for t, n in counts.items())


def test_record_serves_a_live_view_a_client_subscribes_to(tmp_path):
    pytest.importorskip("dexlink.sim.flashing")
    out = tmp_path / "session"
    proc, url = served(["record", "--sim", "--task", "live", "--duration", "10",
                        "--no-keys", "--out", str(out)])
    try:
        topics = {"/telemetry": 50, "/tf": 10, "/joint_states": 10, "/robot_description": 1,
                  "/tactile/index/image": 3, "/tactile/index/contact": 10, "/rgbd/color": 3}
        with FoxgloveClient(url) as client:
            got = client.collect(topics, enough(topics))
        assert {t: len(got.get(t, [])) >= n for t, n in topics.items()} == \
            {t: True for t in topics}, {t: len(v) for t, v in got.items()}
        assert client.channels["/telemetry"]["schemaName"] == "dexlink.Telemetry"
        row = json.loads(got["/telemetry"][-1][1])
        assert len(row["present_cdeg"]) == 16 and row["mode"] == "TELEOP"
        urdf = json.loads(got["/robot_description"][0][1])["data"]
        assert '<robot name="iso16">' in urdf
        # The transforms name the URDF's links; the images are JPEGs (protobuf bytes field).
        tf = got["/tf"][-1][1]
        assert b"palm" in tf and b"index_mcp_link" in tf
        assert client.channels["/tactile/index/image"]["schemaName"] == "foxglove.CompressedImage"
        assert b"\xff\xd8\xff" in got["/tactile/index/image"][-1][1]
        assert "area" in json.loads(got["/tactile/index/contact"][-1][1])
        # Log times are wall-clock: Foxglove shows them as today.
        assert abs(got["/telemetry"][-1][0] / 1e9 - time.time()) < 60
    finally:
        said = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, said
    # The view never held the recording up: every loop cycle is in the episode.
    ep = read_episode(out / "episode_0000.mcap")
    cycles = np.array([json.loads(d)["cycle"] for d in ep.streams["/telemetry"].data])
    assert len(cycles) > 1000 and set(np.diff(cycles)) == {1}


def test_session_serves_telemetry_and_events(tmp_path):
    pytest.importorskip("dexlink.sim.flashing")
    proc, url = served(["session", "--sim", "--mode", "teleop", "--duration", "8", "--plain"])
    try:
        topics = {"/telemetry": 20, "/tf": 5, "/robot_description": 1}
        with FoxgloveClient(url) as client:
            got = client.collect(topics, enough(topics))
        assert all(len(got.get(t, [])) >= n for t, n in topics.items()), \
            {t: len(v) for t, v in got.items()}
        assert "/log" in client.channels and "/events" in client.channels
        assert client.server_info["name"] == "dexlink"
    finally:
        said = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, said


def test_the_port_is_named_when_it_is_taken():
    from dexlink.live.foxglove import FoxgloveView, LiveViewError

    with FoxgloveView(["a"], port=0) as first:
        with pytest.raises(LiveViewError, match="127.0.0.1:%d" % first.port):
            FoxgloveView(["a"], port=first.port)


def test_taps_never_block():
    """A view whose queue is full drops what it is offered, at once."""
    from dexlink.live.foxglove import FoxgloveView

    with FoxgloveView(["a"], port=0, queue_size=4) as view:
        view._stop.set()  # a stalled worker: nothing leaves the queue
        view._thread.join()
        t0 = time.perf_counter()
        for i in range(20000):
            view.event("log", "line %d" % i)
        assert time.perf_counter() - t0 < 1.0
        assert view.dropped >= 20000 - 4


@pytest.mark.parametrize("name", ["iso16", "tendon16"])
def test_link_transforms_pose_the_hand_as_mujoco_does(name):
    """Chaining the /tf transforms from the palm gives every fingertip where MuJoCo's model
    of the same hand puts it, bent and at rest."""
    mujoco = pytest.importorskip("mujoco")
    from dexlink.hwconfig import hand_path
    from dexlink.world.geometry import load_geometry
    from dexlink.world.mjcf import hand_spec
    from dexlink.world.urdf import hand_urdf

    g = load_geometry(hand_path(name))
    kin = HandKinematics(hand_urdf(hand_path(name)))
    assert kin.root == "palm" and sorted(kin.moving) == sorted(j.name for j in g.joints)
    model = hand_spec(hand_path(name)).compile()
    data = mujoco.MjData(model)
    for scale in (0.0, 0.7, -0.4):
        pose = {j.name: scale * (j.range_rad[1] if scale > 0 else -j.range_rad[0])
                for j in g.joints}
        for joint, q in pose.items():
            data.joint(joint).qpos[0] = q
        mujoco.mj_kinematics(model, data)
        frames = {kin.root: ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))}
        for t in kin.transforms(pose):  # parents come before children in the URDF
            p, r = frames[t.parent]
            offset = rotate(r, t.translation)
            frames[t.child] = (tuple(a + b for a, b in zip(p, offset)), quat_mul(r, t.rotation))
        for f in (f for f in g.fingers if f.fingertip):
            np.testing.assert_allclose(frames[f.name + "_tip"][0],
                                       data.site(f.name + "_tip").xpos, atol=1e-6)
