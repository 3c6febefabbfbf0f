"""`dexlink record --sim --world TASK`: an episode recorded from the virtual board running
in a physics world, its cameras the world's, ended and marked by the world's verdict."""
from __future__ import annotations

import pytest

import dexlink.record.recording as recording
from dexlink.cli import main as cli
from dexlink.record.reader import read_episode
from dexlink.record.session import Session

pytestmark = [pytest.mark.micropython, pytest.mark.vboard]


def test_a_world_episode_is_marked_with_the_world_verdict(tmp_path, capsys, monkeypatch):
    pytest.importorskip("dexlink.sim.flashing")
    pytest.importorskip("mujoco")
    verdicts = []
    real_run = recording.run_world_episode

    def run_and_keep_verdict(recorder, world, progress=None):  # what the world itself said
        real_run(recorder, world, progress)
        verdicts.append(world.judge())

    monkeypatch.setattr(recording, "run_world_episode", run_and_keep_verdict)
    out = tmp_path / "session"
    status = cli(["record", "--sim", "--world", "lift_cube", "--world-seed", "1",
                  "--skill", "0.9", "--task", "lift", "--out", str(out)])
    said = capsys.readouterr()
    assert status == 0, said.err
    [verdict] = verdicts
    assert verdict in ("success", "failure")
    [entry] = Session(out).episodes
    assert entry["mark"] == verdict
    ep = read_episode(out / entry["file"])
    assert ep.complete and ep.result["mark"] == verdict
    for topic in ("/tactile/index/image", "/tactile/thumb/contact", "/rgbd/color",
                  "/rgbd/depth"):
        assert len(ep.streams[topic]) > 5, topic
    assert cli(["inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert verdict in shown and entry["file"] in shown


@pytest.mark.parametrize("argv, words", [
    (["--sim", "--world", "juggle"], ["unknown task 'juggle'", "lift_cube"]),
    (["--port", "loop://", "--world", "lift_cube"], ["--world needs --sim"]),
    (["--sim", "--world", "lift_cube", "--episodes", "2"], ["one episode"]),
])
def test_bad_world_options_are_one_line_errors(tmp_path, capsys, argv, words):
    out = tmp_path / "session"
    assert cli(["record", "--task", "x", "--out", str(out)] + argv) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for w in words:
        assert w in err
    assert not out.exists()  # refused before anything was made


def test_sim_refuses_an_unknown_world_task(capsys):
    assert cli(["sim", "--world", "juggle", "--seconds", "0"]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "lift_cube" in err
