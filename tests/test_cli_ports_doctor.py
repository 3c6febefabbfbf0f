"""`dexlink ports` probing real ptys, and `dexlink doctor` on this machine and on one without tools."""
from __future__ import annotations

import subprocess
import sys

import pytest

from dexlink import cli
from dexlink.commands import doctor
from support.fakeboard import FakeBoard

pytestmark = pytest.mark.micropython

DEXLINK = [sys.executable, "-m", "dexlink.cli"]


def test_ports_probes_what_answers(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with FakeBoard(tmp_path / "a", joints=5) as good, FakeBoard(tmp_path / "b", mute=True) as mute:
        r = subprocess.run(DEXLINK + ["ports", good.port, "--timeout", "0.5"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "dexlink firmware: fakeboard: firmware 0.9.1, protocol 1.0, 5 joints" in r.stdout
        r = subprocess.run(DEXLINK + ["ports", mute.port, "--timeout", "0.5"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1
        assert "no dexlink firmware: no answer" in r.stdout


def test_doctor_passes_here(tmp_path, capsys):
    assert cli.main(["doctor", "--data-dir", str(tmp_path / "episodes")]) == 0
    out = capsys.readouterr().out
    assert "ok    micropython  MicroPython (1," in out
    assert "ok    mpy-cross" in out and "ok    mpremote" in out and "GB free" in out


def test_doctor_says_what_to_fix(tmp_path, monkeypatch, capsys):
    # a machine where the tools were never installed: no bin dir, nothing on PATH
    monkeypatch.setattr(doctor, "BIN", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["doctor", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  micropython  no MicroPython interpreter" in out
    assert "-> run `make setup`" in out and "FAIL  mpy-cross" in out
    assert "3 check(s) failed" in out
