"""`dexlink replay` of a recorded episode (written by the recorder's own EpisodeWriter) to a
MicroPython board that logs every TARGETS it receives."""
from __future__ import annotations

import subprocess
import sys

import pytest

from dexlink.record.episode import EpisodeWriter
from dexproto.stream import make
from support.fakeboard import FakeBoard

pytestmark = [pytest.mark.micropython, pytest.mark.vboard]

N = 4
STEP_NS = 20_000_000


def write_episode(path, samples):
    w = EpisodeWriter(path.with_name(path.name), {"hand": "test"})
    t0 = 10_000_000_000
    for k, goals in enumerate(samples):
        msg = make("TELEMETRY", cycle=k, board_us=k * 20000, cycle_us=100, worst_cycle_us=200,
                   overruns=0, mode=1, items=[(g + 7, g, g, 0) for g in goals])
        w.add_telemetry(msg, t0 + k * STEP_NS)
    return w.finish({"outcome": "ok"})


def test_replay_ramps_then_plays_recorded_targets(tmp_path):
    samples = [[1000 + 10 * k, -500 - 5 * k, 20 * k, 3000] for k in range(40)]
    episode = write_episode(tmp_path / "episode_0000.mcap", samples)
    board = FakeBoard(tmp_path, joints=N)
    board.plug()
    try:
        r = subprocess.run([sys.executable, "-m", "dexlink.cli", "replay", str(episode), "--port",
                            board.port, "--ramp", "0.3", "--ramp-speed", "1000"],
                           capture_output=True, text=True, timeout=60)
    finally:
        board.unplug()
    assert r.returncode == 0, r.stdout + r.stderr
    got = board.received_targets()
    values = [v for _, v in got]
    # the episode, in order, at the end
    assert values[-len(samples):] == samples
    ramp = values[:-len(samples)]
    assert len(ramp) >= 10  # 0.3 s at 100 Hz
    assert ramp[0] != samples[0] and ramp[-1] == samples[0]
    for j in range(N):  # monotonic from the pose the hand was in (all zero) to the first target
        col = [0] + [v[j] for v in ramp]
        assert col == sorted(col) or col == sorted(col, reverse=True)
    # never faster than recorded (sends can only be late): 39 steps of 20 ms
    played_us = got[-1][0] - got[-len(samples)][0]
    assert played_us >= 39 * STEP_NS / 1000 - 2000
    print(r.stdout)


def test_replay_mismatch_and_bad_file_are_clear(tmp_path):
    episode = write_episode(tmp_path / "episode_0000.mcap", [[1, 2, 3]] * 3)
    with FakeBoard(tmp_path, joints=N) as board:
        r = subprocess.run([sys.executable, "-m", "dexlink.cli", "replay", str(episode), "--port",
                            board.port], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "has 3 joints per sample but the board runs 4" in r.stderr
    bad = tmp_path / "notes.mcap"
    bad.write_text("not an episode")
    r = subprocess.run([sys.executable, "-m", "dexlink.cli", "replay", str(bad), "--port", "x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "notes.mcap" in r.stderr and "Traceback" not in r.stderr


def test_replay_on_the_virtual_board(tmp_path):
    """The real firmware takes every target in HOST mode (a refusal would fail the command)."""
    samples = [[200 + 5 * k] * 16 for k in range(40)]
    episode = write_episode(tmp_path / "episode_0000.mcap", samples)
    r = subprocess.run([sys.executable, "-m", "dexlink.cli", "replay", str(episode), "--sim",
                        "--ramp", "0.5"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sent 40 targets" in r.stdout
