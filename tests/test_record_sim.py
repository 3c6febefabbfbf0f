"""`dexlink record --sim`: the virtual board's real firmware, the link, simulated cameras."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dexlink.cli import main as cli
from dexlink.record.reader import read_episode
from dexlink.record.session import Session
from dexproto import catalog

pytestmark = pytest.mark.vboard


def test_record_sim_writes_a_multimodal_episode(tmp_path, capsys):
    pytest.importorskip("dexlink.sim.flashing")
    out = tmp_path / "session"
    status = cli(["record", "--sim", "--task", "pick the cube", "--duration", "1.5",
                  "--out", str(out)])
    said = capsys.readouterr()
    assert status == 0, said.err
    assert "kept episode_0000.mcap" in said.out
    [entry] = Session(out).episodes
    ep = read_episode(out / entry["file"])
    assert ep.complete and ep.info["task"] == "pick the cube" and ep.info["board"] == "virtual"
    n = int(ep.info["n_joints"])
    calibration = json.loads(ep.info["calibration"])
    assert [c["joint"] for c in calibration] == list(range(n))
    assert "[[joints]]" in ep.info["hand"]
    tel = ep.telemetry()
    assert len(tel["t_ns"]) > 20 and tel["present_cdeg"].shape[1] == n
    assert set(tel["mode"]) == {catalog.MODE_NAMES[catalog.MODE_TELEOP]}
    # Telemetry and frames share the host clock: their time spans overlap within a frame.
    img = ep.streams["/tactile/index/image"]
    assert abs(int(img.times[0]) - int(tel["t_ns"][0])) < 300_000_000
    assert abs(int(img.times[-1]) - int(tel["t_ns"][-1])) < 300_000_000
    for topic in ("/tactile/thumb/image", "/tactile/ring/contact", "/rgbd/color", "/rgbd/depth"):
        assert len(ep.streams[topic]) > 10, topic
    # Every loop cycle, none skipped (the hand file's rate is every 10th).
    assert ep.info["telemetry_decimation"] == "1"
    assert set(np.diff(telemetry_cycles(ep))) == {1}


def telemetry_cycles(ep) -> np.ndarray:
    return np.array([json.loads(d)["cycle"] for d in ep.streams["/telemetry"].data])


def test_record_telemetry_hz_lowers_the_rate(tmp_path, capsys):
    pytest.importorskip("dexlink.sim.flashing")
    out = tmp_path / "session"
    assert cli(["record", "--sim", "--task", "fewer", "--duration", "1.2", "--telemetry-hz",
                "250", "--out", str(out)]) == 0, capsys.readouterr().err
    ep = read_episode(out / "episode_0000.mcap")
    assert ep.info["telemetry_hz"] == "250.0" and ep.info["telemetry_decimation"] == "4"
    cycles = telemetry_cycles(ep)
    assert len(cycles) > 100 and set(np.diff(cycles)) == {4}
    assert cli(["record", "--sim", "--task", "x", "--telemetry-hz", "0", "--out",
                str(tmp_path / "o")]) == 1
    assert "--telemetry-hz must be positive" in capsys.readouterr().err


def test_telemetry_rate_is_put_back_after_a_recording():
    pytest.importorskip("dexlink.sim.flashing")
    from dexlink.board import BoardOptions, connect
    from dexlink.telemetry_rate import TelemetryRateError, telemetry_rate

    with connect(BoardOptions()) as board:
        link = board.link
        hand = link.get_config().fields
        assert hand["telemetry_decimation"] == 10
        with telemetry_rate(link, None) as rate:
            assert (rate.decimation, rate.hz) == (1, hand["loop_hz"])
            assert link.get_config().telemetry_decimation == 1
        assert link.get_config().fields == hand
        with telemetry_rate(link, 300) as rate:  # never faster than asked
            assert rate.decimation == 4 and link.get_config().telemetry_decimation == 4
        with pytest.raises(TelemetryRateError, match="above the board's loop rate"):
            with telemetry_rate(link, 5000):
                pass
        assert link.get_config().fields == hand


def test_record_keys_on_a_terminal(tmp_path):
    """s start, d discard, s start, y success, k keep: one episode, marked success."""
    import os
    import pty
    import subprocess
    import sys
    import time

    pytest.importorskip("dexlink.sim.flashing")
    out = tmp_path / "session"
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dexlink.cli", "record", "--sim", "--task",
                             "keys", "--out", str(out)], stdin=slave, stdout=slave, stderr=slave,
                            close_fds=True)
    os.close(slave)
    seen = bytearray()

    def wait_for(text: bytes, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while text not in seen:
            assert time.monotonic() < end and proc.poll() is None, (text, seen[-300:])
            try:
                seen.extend(os.read(master, 4096))
            except OSError:
                time.sleep(0.05)

    try:
        wait_for(b"keys: s start")
        for key, after in ((b"s", b"REC episode_0000"), (b"d", b"idle"),
                           (b"s", b"REC episode_"), (b"y", b"[success]")):
            os.write(master, key)
            wait_for(after)
            seen.clear()
            time.sleep(0.5)
        os.write(master, b"k")
        wait_for(b"session: ")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    [entry] = Session(out).episodes
    assert entry["mark"] == "success"  # the discarded episode's name may be reused
    assert [p.name for p in out.glob("episode_*")] == [entry["file"]]


def test_record_session_is_a_library_call(tmp_path):
    """What `dexlink record` and `dexlink demo` record through, called as a library: the
    options as a dataclass, progress through a callback, the result as a value."""
    pytest.importorskip("dexlink.sim.flashing")
    from dexlink.record.recording import RecordOptions, record_session

    seen = []
    result = record_session(RecordOptions(task="api", out=tmp_path / "s", episodes=2,
                                          duration_s=1.2), progress=seen.append)
    assert result.ok and result.directory == tmp_path / "s"
    assert [e["file"] for e in result.kept] == ["episode_0000.mcap", "episode_0001.mcap"]
    assert [e["file"] for e in Session(tmp_path / "s").episodes] == [e["file"] for e in result.kept]
    starts = [p for p in seen if p.starting]
    assert [(p.episode, p.episodes, p.path.name) for p in starts] == [
        (1, 2, "episode_0000.mcap"), (2, 2, "episode_0001.mcap")]
    ticks = [p for p in seen if not p.starting]
    assert len(ticks) >= 4 and all("telemetry" in p.status for p in ticks)
    # a virtual board records with simulated cameras unless others are named
    ep = read_episode(tmp_path / "s" / "episode_0001.mcap")
    assert len(ep.streams["/rgbd/color"]) > 5 and ep.info["task"] == "api"
