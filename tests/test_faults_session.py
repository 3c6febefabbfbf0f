"""Faults at the session level, injected into a virtual board session; what survives.

Each test records with the real firmware on the virtual board (or runs `dexlink record
--sim` as a process), injects one fault, and reads the episode back: cable pulled and put
back, host killed, board reset, disk full / unwritable directory, camera unplugged.
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from dexlink.capture import CameraSet, Fingertip, SimRGBDCamera, SimTactileCamera
from dexlink.hwconfig import HANDS
from dexlink.link import EVENT, Link
from dexlink.record.reader import read_episode
from dexlink.record.recorder import Recorder, follow_link
from dexlink.record.recording import run_episodes
from dexlink.record.session import Session
from dexlink.sim import VirtualBoard
from dexlink.sim.flashing import flash_virtual
from dexproto import catalog
from support.waiting import wait_for

pytestmark = pytest.mark.vboard

HAND = HANDS / "iso16.toml"
CLI = [sys.executable, "-m", "dexlink.cli"]


@pytest.fixture(scope="module")
def vboard():
    with VirtualBoard() as board:
        flash_virtual(board, HAND)
        yield board


@contextlib.contextmanager
def recording(board, out, mode, cameras=None):
    """A link to the board's stable port, a recorder following it, the board in `mode`."""
    with Link(board.stable_port) as link:
        recorder = Recorder(Session(out, "faults"), None, {"task": "faults"})
        recorder.attach_cameras(cameras(recorder) if cameras else CameraSet([]))
        stop = threading.Event()
        follow_link(link, recorder, stop)
        events = link.subscribe(EVENT)
        link.set_mode(mode)
        try:
            yield link, recorder, events
        finally:
            recorder.close()
            stop.set()
            link.set_mode(catalog.MODE_IDLE)


def telemetry_rows(ep):
    s = ep.streams["/telemetry"]
    return [json.loads(d) for d in s.data], s.times


def link_events(ep):
    return [(t, e["text"]) for t, e in ep.events() if e["kind"] == "link"]


def cycle_rate(a, b):
    """Loop cycles per board second between two telemetry rows (board_us wraps at 2^30)."""
    return (b["cycle"] - a["cycle"]) * 1e6 / ((b["board_us"] - a["board_us"]) % (1 << 30))


def split_at_gap(cycles, step):
    """Indices where consecutive telemetry cycles are further apart than one step."""
    return [i for i in range(1, len(cycles)) if cycles[i] - cycles[i - 1] != step]


# --- 1. serial cable pulled and put back -----------------------------------------------
@pytest.mark.parametrize("mode", [catalog.MODE_TELEOP, catalog.MODE_HOST], ids=["teleop", "host"])
def test_cable_pulled_mid_episode(vboard, tmp_path, mode):
    boots = vboard.stats["boots"]
    targets = [1000] * 16
    with recording(vboard, tmp_path / "s", mode) as (link, recorder, events):
        tele = link.subscribe("TELEMETRY")
        if mode == catalog.MODE_HOST:
            link.send_targets(targets)
            assert wait_for(tele, lambda m: m.column("goal_cdeg") == targets, timeout=5)
        recorder.start_episode()
        time.sleep(0.8)
        vboard.unplug()
        time.sleep(1.0)  # four watchdog periods: the board is on its own
        assert not os.path.exists(vboard.stable_port)
        vboard.replug()
        assert wait_for(events, lambda e: e.kind == "reconnected", timeout=10) is not None
        tele.drain()
        first_back = wait_for(tele, lambda m: True, timeout=2)
        time.sleep(0.8)
        recorder.stop_episode()
        recorder.wait_finished()
    assert vboard.stats["boots"] == boots, "the board must not have rebooted"
    assert vboard.stats["unplugged_drops"] > 0  # it wrote on into the void, unblocked
    [entry] = Session(tmp_path / "s").episodes
    ep = read_episode(tmp_path / "s" / entry["file"])
    rows, times = telemetry_rows(ep)
    cycles = [r["cycle"] for r in rows]
    step = int(np.median(np.diff(cycles)))
    # Every sample before the cut and after the reconnect: one gap, the cut, and no other.
    [cut] = split_at_gap(cycles, step)
    assert cut > 30 and len(cycles) - cut > 30
    # The board kept its loop running while the host was gone: over the gap its cycles
    # went on at the rate they had before (writes into the void never blocked it).
    assert cycle_rate(rows[cut - 1], rows[cut]) > 0.6 * cycle_rate(rows[0], rows[cut - 1])
    # The gap is in the episode as link events, between the last sample before and the
    # first after.
    texts = link_events(ep)
    down = [t for t, text in texts if text.startswith("disconnected")]
    up = [t for t, text in texts if text.startswith("reconnected")]
    assert len(down) == 1 and len(up) == 1, texts
    assert "(link down " in [text for _, text in texts if text.startswith("reconnected")][0]
    assert times[cut - 1] - 200_000_000 < down[0] < up[0] < times[cut] + 200_000_000
    after = rows[cut:]
    assert {r["mode"] for r in after} == {catalog.MODE_NAMES[mode]}
    before_last, back = rows[cut - 1], first_back.column("goal_cdeg")
    if mode == catalog.MODE_HOST:
        # The hand held its pose: goals are still our targets, the servos are there.
        assert back == targets and before_last["goal_cdeg"] == targets
        assert np.abs(np.array(first_back.column("present_cdeg")) - targets).max() < 100
    else:
        # It kept following the exoskeleton: the operator moved, and the goals with him.
        exo_back = np.array(first_back.column("exo_cdeg"))
        assert np.abs(exo_back - before_last["exo_cdeg"]).max() > 50
        assert np.abs(np.array(back) - exo_back).max() < 300


# --- 3. board reset mid-session --------------------------------------------------------
def test_board_reset_mid_episode(vboard, tmp_path):
    boots = vboard.stats["boots"]
    with recording(vboard, tmp_path / "s", catalog.MODE_TELEOP) as (link, recorder, events):
        link.set_config(500, 5, 300)  # not the flashed config: it must come back
        recorder.start_episode()
        time.sleep(0.6)
        vboard.inject("reset")  # a fresh interpreter: IDLE, the flashed config
        assert wait_for(events, lambda e: e.kind == "reconnected", timeout=10) is not None
        assert link.get_config().loop_hz == 500
        time.sleep(0.8)
        recorder.stop_episode()
        recorder.wait_finished()
    assert vboard.stats["boots"] == boots + 1
    [entry] = Session(tmp_path / "s").episodes
    ep = read_episode(tmp_path / "s" / entry["file"])
    texts = [text for _, text in link_events(ep)]
    assert any(t.startswith("board_reset") for t in texts), texts
    assert any(t.startswith("reconnected") for t in texts), texts
    rows, times = telemetry_rows(ep)
    cycles = [r["cycle"] for r in rows]
    restart = [i for i in range(1, len(cycles)) if cycles[i] < cycles[i - 1]]
    assert len(restart) == 1, "one reboot in the episode"
    after = rows[restart[0]:]
    # The episode went on: config (decimation 5) and TELEOP re-applied after the reboot.
    teleop = [r["cycle"] for r in after if r["mode"] == "TELEOP"]
    assert len(teleop) > 50
    assert int(np.median(np.diff(teleop))) == 5
    assert any("IDLE -> TELEOP" in e["text"] for _, e in ep.events() if e["kind"] == "mode")


# --- 5. a camera unplugged mid-episode -------------------------------------------------
def small_cameras(recorder):
    tips = [Fingertip("thumb", (1, 2, 3)), Fingertip("index", (5, 6, 7))]
    return CameraSet([SimTactileCamera(tip, recorder.joints, fps=30, width=160, height=120,
                                       seed=i) for i, tip in enumerate(tips)]
                     + [SimRGBDCamera(recorder.joints, tips, fps=15, width=320, height=240)])


def test_camera_unplugged_mid_episode(vboard, tmp_path):
    lines = []
    with recording(vboard, tmp_path / "s", catalog.MODE_TELEOP, small_cameras) as (
            link, recorder, events):
        recorder.start_cameras()
        recorder.cameras.wait_running()
        index = next(c for c in recorder.cameras if c.name == "index")
        timer = threading.Timer(1.2, index.unplug)
        timer.start()
        t_unplug = time.monotonic_ns() + 1_200_000_000
        run_episodes(recorder, 1, 3.5, progress=lambda p: lines.append(p.status))
        timer.join()
        recorder.wait_finished()
    # The live line names the camera that went away.
    assert any("index" in line and "DISCONNECTED" in line for line in lines), lines
    [entry] = Session(tmp_path / "s").episodes
    ep = read_episode(tmp_path / "s" / entry["file"])
    cam_events = [e["text"] for _, e in ep.events() if e["kind"] == "camera"]
    assert any(t.startswith("index: disconnected") for t in cam_events), cam_events
    assert not any(t.startswith(("thumb", "rgbd")) for t in cam_events), cam_events
    # index stopped at the unplug; the other streams went on to the end.
    assert ep.streams["/tactile/index/image"].times[-1] < t_unplug + 100_000_000
    end = ep.span_ns()[1]
    for topic in ("/tactile/thumb/image", "/rgbd/color", "/rgbd/depth", "/telemetry"):
        t = ep.streams[topic].times
        assert t[-1] > end - 300_000_000, topic
        assert (t > t_unplug).sum() > 10, topic


# --- 2. host process killed ------------------------------------------------------------
def start_record(out, duration, preexec_fn=None):
    return subprocess.Popen(CLI + ["record", "--sim", "--task", "faults", "--duration",
                                   str(duration), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec_fn)


def wait_line(proc, text, timeout=30):
    """Read the process's stdout until a line holds text (a thread bounds the wait)."""
    found = threading.Event()
    seen = []

    def read():
        for line in proc.stdout:
            seen.append(line)
            if text in line:
                found.set()
                return
    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), (text, seen, proc.poll())


def children(pid):
    """Process ids of pid's children (from /proc)."""
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            out += [int(c) for c in f.read().split()]
    return out


def running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_host_killed_mid_episode(tmp_path):
    out = tmp_path / "s"
    proc = start_record(out, 30)
    try:
        wait_line(proc, "episode 1/1")
        time.sleep(2.5)
        board_processes = children(proc.pid)  # the virtual board's interpreter
        assert board_processes
        killed_ns = time.monotonic_ns()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The board's interpreter sees its supervisor gone and ends: no orphan left running.
    end = time.monotonic() + 5
    while any(map(running, board_processes)) and time.monotonic() < end:
        time.sleep(0.05)
    assert not any(map(running, board_processes))
    part = out / "episode_0000.mcap.part"
    assert part.exists() and Session(out).episodes == []
    r = subprocess.run(CLI + ["recover", str(part)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "added episode_0000.mcap to the session index" in r.stdout
    ep = read_episode(out / "episode_0000.mcap")
    assert ep.complete
    # Everything up to the last flushed chunk: at most a second before the kill is lost.
    tel = ep.streams["/telemetry"].times
    assert len(tel) > 100
    assert killed_ns - 1_000_000_000 < tel[-1] < killed_ns
    for topic in ("/tactile/index/image", "/rgbd/color"):
        assert ep.streams[topic].times[-1] > killed_ns - 1_000_000_000, topic
    [entry] = Session(out).episodes
    assert entry["recovered"] and entry["messages"] > 100
    r = subprocess.run(CLI + ["inspect", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "episode_0000" in r.stdout and "/telemetry" in r.stdout


# --- 4. disk full, unwritable output directory -----------------------------------------
FILE_LIMIT = 6 << 20  # bytes: no file of the recording process may grow past this


def small_disk():
    """In the child: files stop growing at FILE_LIMIT (EFBIG), as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


def test_disk_full_while_recording(tmp_path):
    out = tmp_path / "s"
    proc = start_record(out, 20, preexec_fn=small_disk)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    part = out / "episode_0000.mcap.part"
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    assert "cannot write %s: File too large" % part in err, err
    assert "dexlink recover" in err
    assert part.exists() and part.stat().st_size <= FILE_LIMIT
    # The episode so far is kept and readable: every complete chunk, no half one.
    ep = read_episode(part)
    assert not ep.complete and len(ep.streams["/telemetry"]) > 20
    assert len(ep.streams["/tactile/index/image"]) > 5
    r = subprocess.run(CLI + ["inspect", str(part)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "/telemetry" in r.stdout, r.stdout + r.stderr
    # With room again, recover makes it a complete, indexed episode.
    r = subprocess.run(CLI + ["recover", str(part)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert Session(out).episodes[0]["messages"] == sum(len(s) for s in ep.streams.values())


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    out = blocker / "session"  # nobody, not even root, makes a directory under a file
    r = subprocess.run(CLI + ["record", "--sim", "--task", "x", "--duration", "1", "--out",
                              str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "cannot record into %s: Not a directory" % out in r.stderr, r.stderr
