"""`dexlink flash` against virtual boards: the real CLI, mpremote, firmware and HELLO check."""
from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import serial

from conftest import ROOT
from dexlink import hwconfig
from dexlink.flash import PREPARE, FlashError, build_image, firmware_version, flash, reach_repl
from dexlink.link import Link
from dexlink.sim import VirtualBoard
from dexlink.sim.flashing import flash_virtual
from support.hands import hand_copy

pytestmark = pytest.mark.vboard

HAND = ROOT / "hardware" / "hands" / "iso16.toml"
DEXLINK = Path(sys.executable).parent / "dexlink"


def run_dexlink(*args, timeout=120):
    return subprocess.run([str(DEXLINK), *args], capture_output=True, text=True, timeout=timeout)


def hello(port):
    with Link(port, reconnect=False, handshake_timeout=10) as link:
        return link.board


def test_dexlink_flash_reboot_hello_and_a_flash_cut_short_is_repaired(tmp_path):
    expected_crc = zlib.crc32(hwconfig.dumps(hwconfig.compile_config(HAND, "virtual")).encode())
    with VirtualBoard(tmp_path / "fs") as board:
        r = run_dexlink("flash", "--port", board.port, "--hand", str(HAND), "--board", "virtual")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "verified" in r.stdout
        on_board = {p.relative_to(board.fs_dir).as_posix() for p in board.fs_dir.rglob("*.py")}
        assert {"main.py", "dexfw/app.py", "dexproto/catalog.py"} <= on_board
        assert "dexproto/stream.py" not in on_board  # host only
        assert (board.fs_dir / "main.py").read_text() == (ROOT / "firmware" / "main.py").read_text()
        assert not (board.fs_dir / "safeboot").exists()
        board.reset()  # a hard reset: main.py starts the firmware from the copied files
        reply = hello(board.port)
        assert (reply.fw_major, reply.fw_minor, reply.fw_patch) == firmware_version()
        assert reply.config_crc == expected_crc
        assert reply.n_joints == 16

        # The firmware owns the port: the REPL message hands it back. Then the first step
        # of a copy, and the cable is pulled: old firmware gone, the safe-boot flag set.
        said = []
        reach_repl(board.port, said.append)
        assert any("hand the port to the REPL" in line for line in said)
        r = subprocess.run([str(Path(sys.executable).parent / "mpremote"), "connect", board.port,
                            "exec", PREPARE], capture_output=True, timeout=30)
        assert r.returncode == 0
        assert (board.fs_dir / "safeboot").exists() and not (board.fs_dir / "dexfw").exists()
        board.reset()
        assert board.wait_for(lambda b: b.state == "repl", 10)  # not a half-flashed firmware

        iso22 = ROOT / "hardware" / "hands" / "iso22.toml"
        r = run_dexlink("flash", "--port", board.port, "--hand", str(iso22), "--board", "virtual")
        assert r.returncode == 0, r.stdout + r.stderr
        assert not (board.fs_dir / "safeboot").exists()
        assert hello(board.port).n_joints == 22


def test_the_image_is_precompiled_for_the_boards_architecture(tmp_path):
    image = build_image(HAND, "pico", tmp_path / "image")
    names = {p.relative_to(image.root).as_posix() for p in image.files()}
    assert image.arch == "armv6m"
    assert "main.py" in names and "dexfw/loop.mpy" in names and "dexproto/frame.mpy" in names
    assert not [n for n in names if n.endswith(".py") and n != "main.py"]
    mpy = (image.root / "dexfw" / "loop.mpy").read_bytes()
    assert mpy[0] == ord("M")  # the .mpy header
    assert image.config_crc == zlib.crc32((image.root / "dexlink.json").read_bytes())


def test_errors_name_the_port_and_the_problem(tmp_path):
    with pytest.raises(FlashError, match="no port /dev/nonexistent"):
        flash("/dev/nonexistent", HAND, "virtual", tmp_path / "w", progress=lambda line: None)
    with VirtualBoard(tmp_path / "fs") as board, serial.Serial(board.port, exclusive=True):
        with pytest.raises(FlashError, match="busy"):
            flash(board.port, HAND, "virtual", tmp_path / "w", progress=lambda line: None)
    master, slave = os.openpty()  # a port with something silent behind it
    try:
        with pytest.raises(FlashError, match="neither the MicroPython REPL nor dexlink"):
            reach_repl(os.ttyname(slave), lambda line: None)
        with pytest.raises(FlashError, match="no such board"):
            flash(os.ttyname(slave), HAND, "nosuchboard", tmp_path / "w", progress=lambda line: None)
    finally:
        os.close(master)
        os.close(slave)


def test_cli_refuses_a_real_board_for_sim_and_has_help():
    r = run_dexlink("flash", "--sim", "--hand", str(HAND), "--board", "pico", "--exit")
    assert r.returncode == 1 and "hal" in r.stderr and "--board virtual" in r.stderr
    r = run_dexlink("flash", "--help")
    assert r.returncode == 0 and "example" in r.stdout


def test_flash_sim_flashes_a_fresh_virtual_board_and_keeps_its_filesystem(tmp_path):
    fs = tmp_path / "vb"
    r = run_dexlink("flash", "--sim", "--hand", str(HAND), "--fs", str(fs), "--exit")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified" in r.stdout
    assert (fs / "main.py").exists() and (fs / "dexlink.json").exists()
    with VirtualBoard(fs) as board:  # `dexlink sim --fs` boots it again
        assert hello(board.port).n_joints == 16


def test_a_board_that_refuses_the_copy_fails_clearly(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("print('old firmware')\n")
    with VirtualBoard(fs, readonly=True) as board:
        refused = r"failed on %s: OSError: 30 \(Read-only file system\); flash again"
        with pytest.raises(FlashError, match=refused % board.port):
            flash(board.port, HAND, "virtual", tmp_path / "w", progress=lambda line: None)
    assert (fs / "main.py").read_text() == "print('old firmware')\n"


# -- 2. the calibration file goes into the flashed config ------------------------------
CALIBRATION = '''hand = "iso16.toml"
updated = "2026-11-21T10:00:00Z"

[joints."thumb_mcp"]
index = 2
finger = "thumb"
zero_turn16 = 12345
zero_deg = 67.813
direction = 1
range_deg = [-5.0, 80.0]
date = "2026-11-21T10:00:00Z"

[joints."index_pip"]
zero_turn16 = 60000
direction = -1
'''


def test_a_flashed_board_reports_the_calibrated_zero_direction_and_range(tmp_path):
    hand = hand_copy(tmp_path)
    plain = hwconfig.compile_config(hand, "virtual")
    hwconfig.calibration_path(hand).write_text(CALIBRATION)
    cfg = hwconfig.compile_config(hand, "virtual")
    names = [j["name"] for j in cfg["joints"]]
    pip = names.index("index_pip")
    assert cfg["calibration"] == {"file": "iso16.calibration.toml",
                                  "updated": "2026-11-21T10:00:00Z",
                                  "joints": ["index_pip", "thumb_mcp"]}
    assert plain["joints"][2]["direction"] == -1 and plain["joints"][2]["min_cdeg"] == -1000
    with VirtualBoard() as board:
        reply = flash_virtual(board, hand)
        assert reply.config_crc == zlib.crc32(hwconfig.dumps(cfg).encode())
        assert reply.config_crc != zlib.crc32(hwconfig.dumps(plain).encode())
        with Link(board.port, reconnect=False, handshake_timeout=5) as link:
            j = link.get_joint(2)
            assert (j.zero_turn16, j.direction, j.min_cdeg, j.max_cdeg) == (12345, 1, -500, 8000)
            j = link.get_joint(pip)
            hand_range = (plain["joints"][pip]["min_cdeg"], plain["joints"][pip]["max_cdeg"])
            assert (j.zero_turn16, j.direction) == (60000, -1)
            assert (j.min_cdeg, j.max_cdeg) == hand_range  # no range_deg: the hand's stays
            j = link.get_joint(0)  # not calibrated: the hand file's values
            assert j.zero_turn16 == plain["joints"][0]["zero_turn16"]
