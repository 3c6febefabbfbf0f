"""Episode files, the session index, the recorder, and recovery after a crash."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from dexlink.capture import CameraSet, SimRGBDCamera, SimTactileCamera, default_fingertips
from dexlink.cli import main as cli
from dexlink.record import schema
from dexlink.record.episode import EpisodeWriter
from dexlink.record.reader import read_episode
from dexlink.record.recorder import Recorder
from dexlink.record.session import Session
from support.record_kit import T0, FakeCam, telemetry, write_episode


def test_episode_file_holds_every_stream_at_its_capture_time(tmp_path):
    s = Session(tmp_path, "pick")
    path = write_episode(s, seconds=0.5, tel_hz=100, tactile=("index", "thumb"))
    ep = read_episode(path)
    assert ep.complete and ep.error == ""
    assert ep.info["task"] == "test task" and ep.result["mark"] == "success"
    tel = ep.telemetry()
    assert len(tel["t_ns"]) == 50
    assert list(tel["t_ns"][:3]) == [T0, T0 + 10_000_000, T0 + 20_000_000]
    assert list(tel["present_cdeg"][3]) == [32, 33, 34, 35]  # 10*cycle + j + 2
    assert list(tel["goal_cdeg"][3]) == [31, 32, 33, 34]
    assert set(ep.streams) >= {"/tactile/index/image", "/tactile/thumb/contact", "/rgbd/color",
                               "/rgbd/depth", "/events", "/telemetry"}
    img = ep.streams["/tactile/index/image"]
    assert len(img) == 30 and img.times[1] == T0 + 1_000_000_000 // 60 + 1000
    fmt, jpg = schema.image_bytes(img.data[5])
    decoded = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    assert fmt == "jpeg" and decoded.shape == (48, 64, 3) and abs(int(decoded.mean()) - 35) <= 2
    fmt, png = schema.image_bytes(ep.streams["/rgbd/depth"].data[7])
    depth = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert fmt == "png" and depth.dtype == np.uint16 and (depth == 507).all()  # lossless
    assert ep.contact("index")["area"][10] == pytest.approx(0.01)
    # The channels are what Foxglove knows: CompressedImage for images, JSON everywhere.
    names = {sc.name for sc in ep.schemas}
    assert "foxglove.CompressedImage" in names
    assert all(c.message_encoding == "json" for c in ep.channels)


def test_session_index_names_only_finished_files(tmp_path):
    s = Session(tmp_path, "pick")
    w = EpisodeWriter(s.next_path(), {"task": "pick"}, [FakeCam("thumb", "tactile")])
    w.add_telemetry(telemetry(0), T0)
    assert w.part_path.exists() and not w.path.exists()
    assert s.episodes == []  # recording: not in the index
    w.discard()
    assert not w.part_path.exists() and s.episodes == []
    kept = write_episode(s, seconds=0.2)
    assert [e["file"] for e in Session(tmp_path).episodes] == [kept.name]
    assert json.loads((tmp_path / "session.json").read_text())["episodes"][0]["mark"] == "success"
    with pytest.raises(FileNotFoundError, match="missing episode file"):
        s.add(tmp_path / "episode_0099.mcap")
    assert not list(tmp_path.glob("*.tmp"))


def test_a_full_queue_refuses_and_counts_without_blocking(tmp_path):
    w = EpisodeWriter(tmp_path / "e.mcap", {}, [], queue_size=3, workers=0)
    t = time.monotonic()
    results = [w.add_telemetry(telemetry(c), T0 + c) for c in range(5)]
    assert time.monotonic() - t < 1.0
    assert results == [True, True, True, False, False]
    assert w.counts["/telemetry"].dropped == 2
    w.discard()


def test_recorder_with_sim_cameras_keeps_and_discards_episodes(tmp_path):
    s = Session(tmp_path, "pick")
    rec = Recorder(s, None, {"task": "pick"})
    tips = default_fingertips(8, 2)
    rec.attach_cameras(CameraSet(
        [SimTactileCamera(t, rec.joints, fps=60, width=80, height=60) for t in tips]
        + [SimRGBDCamera(rec.joints, tips, fps=30, width=160, height=120)]))
    rec.start_cameras()
    rec.on_telemetry(telemetry(0, mode=0, n_joints=8), time.monotonic_ns())
    rec.start_episode()
    for c in range(1, 40):
        rec.on_telemetry(telemetry(c, mode=1 if c > 5 else 0, n_joints=8), time.monotonic_ns())
        time.sleep(0.01)
    rec.mark(True)
    rec.stop_episode(keep=True)
    rec.start_episode()
    time.sleep(0.1)
    rec.stop_episode(keep=False)
    rec.close()
    assert rec.errors == []
    assert [e["file"] for e in s.episodes] == ["episode_0000.mcap"]
    assert not list(tmp_path.glob("*.part"))
    ep = read_episode(tmp_path / "episode_0000.mcap")
    assert ep.result["mark"] == "success"
    assert len(ep.streams["/telemetry"]) == 39
    kinds = [e["kind"] for _, e in ep.events()]
    assert kinds.count("mode") == 2 and "mark" in kinds  # starts in IDLE, then IDLE -> TELEOP
    assert len(ep.streams["/tactile/thumb/image"]) > 10
    assert len(ep.streams["/rgbd/depth"]) > 5
    assert "missed.thumb" in ep.result


RECORDING_SCRIPT = r"""
import sys, time
sys.path.insert(0, %(tests)r)
from dexlink.capture import CameraSet, SimTactileCamera, default_fingertips
from dexlink.record.recorder import Recorder
from dexlink.record.session import Session
from support.record_kit import telemetry
s = Session(%(out)r, "crash")
rec = Recorder(s, None, {"task": "crash"})
rec.attach_cameras(CameraSet([SimTactileCamera(t, rec.joints, fps=60, width=80, height=60)
                              for t in default_fingertips(4, 2)]))
rec.start_cameras()
rec.start_episode()  # default flushing: at least every second
c = 0
start = time.monotonic()
while True:
    rec.on_telemetry(telemetry(c), time.monotonic_ns()); c += 1
    time.sleep(0.005)
    if c == 10 or time.monotonic() - start > 1.0 and c %% 50 == 0:
        print(c, flush=True)
"""


def test_a_killed_recording_is_recovered_and_indexed(tmp_path):
    out = tmp_path / "session"
    script = RECORDING_SCRIPT % {"tests": str(Path(__file__).parent), "out": str(out)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until it has recorded for over a second
            line = proc.stdout.readline()
            if line and int(line) > 10:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    part = out / "episode_0000.mcap.part"
    assert part.exists() and Session(out).episodes == []
    cut = read_episode(part)
    assert not cut.complete and len(cut.streams["/telemetry"]) > 0  # flushed chunks survive
    assert cli(["recover", str(part)]) == 0
    fixed = read_episode(out / "episode_0000.mcap")
    assert fixed.complete
    assert len(fixed.streams["/telemetry"]) >= len(cut.streams["/telemetry"])
    assert len(fixed.streams["/tactile/thumb/image"]) > 30
    [entry] = Session(out).episodes
    assert entry["file"] == "episode_0000.mcap" and entry["recovered"] and entry["task"] == "crash"


def test_recover_a_truncated_file_says_what_it_saved(tmp_path, capsys):
    s = Session(tmp_path / "s", "t")
    path = write_episode(s, seconds=1.0, tel_hz=200, tactile=("index",))
    full = sum(len(x) for x in read_episode(path).streams.values())
    cut = tmp_path / "cut.mcap"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert not read_episode(cut).complete
    assert cli(["recover", str(cut)]) == 0
    said = capsys.readouterr().out
    saved = int(said.split("saved ")[1].split()[0])
    assert 0 < saved < full
    rebuilt = read_episode(tmp_path / "cut.recovered.mcap")
    assert rebuilt.complete and sum(len(x) for x in rebuilt.streams.values()) == saved
    assert rebuilt.info["task"] == "test task"
    assert "it stopped at" in said
    (tmp_path / "junk.mcap").write_bytes(b"not an mcap file at all")
    assert cli(["recover", str(tmp_path / "junk.mcap")]) == 1
    assert "junk.mcap" in capsys.readouterr().err


# -- 5. episode names are never reused ---------------------------------------------------
def test_episode_numbers_are_never_reused_after_a_discard(tmp_path):
    s = Session(tmp_path, "pick")
    first = s.next_path()
    assert first.name == "episode_0000.mcap"
    first.with_name(first.name + ".part").unlink()  # discarded: its file is gone
    second = s.next_path()
    assert second.name == "episode_0001.mcap"
    second.with_name(second.name + ".part").unlink()
    # Another process (a later `dexlink record` in the same directory) goes on counting.
    assert Session(tmp_path).next_path().name == "episode_0002.mcap"
    # A file put there by hand (or an index from before next_episode) is never overwritten.
    (tmp_path / "episode_0007.mcap").write_bytes(b"")
    assert Session(tmp_path).next_path().name == "episode_0008.mcap"
