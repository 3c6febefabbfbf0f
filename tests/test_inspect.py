"""`dexlink inspect`: counts, real rates, gaps, drops; plots and the tactile contact sheet."""
from __future__ import annotations

import cv2
import pytest

from dexlink.cli import main as cli
from dexlink.record.inspect import report
from dexlink.record.session import Session
from support.record_kit import write_episode


def by_topic(rep):
    return {s.topic: s for s in rep.streams}


def test_report_measures_rates_gaps_and_lost_telemetry(tmp_path):
    s = Session(tmp_path, "pick")
    path = write_episode(s, seconds=1.0, tel_hz=100, skip_cycles=(40, 41, 42),
                         mark="failure")
    rep = report(path)
    assert rep.task == "test task" and rep.mark == "failure" and rep.complete
    assert rep.duration_s == pytest.approx(0.99, abs=0.02)
    streams = by_topic(rep)
    tel = streams["/telemetry"]
    assert tel.count == 97 and tel.drops == 3  # cycles 40..42 never came
    assert tel.gaps == 1 and tel.max_gap_ms == pytest.approx(40, abs=0.1)
    assert tel.rate_hz == pytest.approx(96 / 0.99, rel=1e-3)
    img = streams["/tactile/index/image"]
    assert img.count == 60 and img.gaps == 0 and img.rate_hz == pytest.approx(60, rel=0.01)
    assert streams["/rgbd/depth"].count == 30


def test_inspect_cli_on_a_session_with_plots(tmp_path, capsys):
    s = Session(tmp_path, "pick")
    write_episode(s, seconds=0.5, tactile=("index", "thumb"))
    write_episode(s, seconds=0.5, tactile=("index", "thumb"), t0=9_000_000_000)
    (tmp_path / "episode_0002.mcap.part").write_bytes(b"")
    assert cli(["inspect", str(tmp_path), "--plot"]) == 0
    out = capsys.readouterr().out
    assert "episode_0000.mcap" in out and "episode_0001.mcap" in out
    assert "/tactile/thumb/image" in out and "mark success" in out
    assert "not in the index" in out and "episode_0002.mcap.part" in out
    plot = cv2.imread(str(tmp_path / "episode_0001_plot.png"))
    sheet = cv2.imread(str(tmp_path / "episode_0001_tactile.png"))
    assert plot is not None and plot.shape[0] > 300
    assert sheet is not None and sheet.shape[:2] == (2 * (120 + 20), 8 * 160)
    # The sheet shows real frames: write_episode's frame i is grey level 7*i.
    assert sheet[30:130, 7 * 160 + 10:8 * 160 - 10].mean() > 50
    # Next to it, the RGB-D camera's colour frames over the episode: one row, first frame
    # black (grey 0), the last (frame 14 of 15 at 30 fps) grey 98.
    rgbd = cv2.imread(str(tmp_path / "episode_0001_rgbd.png"))
    assert "episode_0001_rgbd.png" in out.replace("\n", "")
    assert rgbd is not None and rgbd.shape[:2] == (120 + 20, 8 * 160)
    assert rgbd[30:130, 10:150].mean() < 10
    assert rgbd[30:130, 7 * 160 + 10:8 * 160 - 10].mean() == pytest.approx(98, abs=3)


def test_inspect_says_a_file_was_cut_short(tmp_path, capsys):
    s = Session(tmp_path / "s", "pick")
    path = write_episode(s, seconds=1.0, tel_hz=200)
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(path.read_bytes()[:-2000])
    assert cli(["inspect", str(cut)]) == 0
    out = capsys.readouterr().out
    assert "CUT SHORT" in out and "dexlink recover" in out
    assert cli(["inspect", str(tmp_path / "nothing_here")]) == 1
    assert "no such episode file or session directory" in capsys.readouterr().err
