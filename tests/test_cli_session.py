"""`dexlink session`: plain lines in a pipe; the rich dashboard and its keys on a terminal."""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest

from support.fakeboard import FakeBoard

pytestmark = [pytest.mark.micropython, pytest.mark.vboard]

DEXLINK = [sys.executable, "-m", "dexlink.cli"]


def test_plain_lines_when_not_a_terminal(tmp_path):
    with FakeBoard(tmp_path, corrupt_every=25) as board:
        r = subprocess.run(DEXLINK + ["session", "--port", board.port, "--duration", "1.6",
                                      "--every", "0.5", "--mode", "teleop"],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("mode ")]
    assert len(lines) >= 3
    assert "mode TELEOP" in lines[-1]
    assert re.search(r"loop \d+ Hz cycle 100 us worst 200 us overruns 0", lines[-1])
    assert "drops 0" not in lines[-1]  # the corrupted frames are counted
    assert "joint 3 3.0>" in r.stdout  # exo 3.00 deg from the board's telemetry
    # the fake board never drives goal = exo: TELEOP latency is reported, and not as same-cycle
    assert "exo->servo within one cycle (100 us) in 25.0% of samples" in lines[-1]


def read_until(fd, needle: bytes, timeout: float = 8.0) -> bytes:
    seen = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end and needle not in seen:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def test_dashboard_keys_switch_modes_and_estop(tmp_path):
    with FakeBoard(tmp_path) as board:
        master, slave = pty.openpty()
        proc = subprocess.Popen(DEXLINK + ["session", "--port", board.port, "--duration", "20"],
                                stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                                env=dict(os.environ, COLUMNS="120", LINES="40", TERM="xterm"))
        os.close(slave)
        try:
            assert b"exo deg" in read_until(master, b"exo deg")  # the joint table is drawn
            os.write(master, b"h")
            assert b"mode HOST" in read_until(master, b"mode HOST")  # the board reports HOST
            os.write(master, b" ")
            out = read_until(master, b"E-STOP sent")
            assert b"E-STOP sent" in out
            assert b"mode IDLE" in read_until(master, b"mode IDLE")  # the board went IDLE
            os.write(master, b"q")
            assert proc.wait(timeout=10) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(master)


def test_help_has_examples_and_bad_port_is_one_line():
    for cmd in ("session", "ports", "calibrate", "replay", "doctor"):
        r = subprocess.run(DEXLINK + [cmd, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "example" in r.stdout, cmd
    r = subprocess.run(DEXLINK + ["session", "--port", "/dev/does-not-exist"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "cannot open /dev/does-not-exist" in r.stderr


def test_session_on_the_virtual_board():
    r = subprocess.run(DEXLINK + ["session", "--sim", "--duration", "2.5", "--every", "1",
                                  "--mode", "teleop"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("mode ")]
    assert lines and "mode TELEOP" in lines[-1] and "exo->servo within one cycle" in lines[-1]
    assert "thumb_cmc_abd " in r.stdout and "ring_dip " in r.stdout  # iso16's joint names
