"""`dexlink calibrate` against a MicroPython board whose simulated operator holds the zero
pose, then sweeps each joint; one joint never moves, one has a weak magnet."""
from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from dexlink import hwconfig
from dexlink.calibration import HandJoint, calibrate_joint, circular_mean_turn16, wrap16
from dexlink.hwconfig import HANDS
from support.fakeboard import FakeBoard
from support.hands import hand_copy

pytestmark = [pytest.mark.micropython, pytest.mark.vboard]

HAND = """
name = "testhand"
[[joints]]
name = "thumb_abd"
finger = "thumb"
range_deg = [-20.0, 20.0]
encoder = { chip = "as5600", bus = "i2c0", zero_deg = 1.0, direction = 1 }
[[joints]]
name = "thumb_flex"
finger = "thumb"
range_deg = [-10.0, 90.0]
encoder = { chip = "as5600", bus = "i2c0", zero_deg = 1.0, direction = 1 }
[[joints]]
name = "index_mcp"
finger = "index"
range_deg = [-10.0, 90.0]
encoder = { chip = "as5600", bus = "i2c0", zero_deg = 1.0, direction = 1 }
[[joints]]
name = "index_pip"
finger = "index"
range_deg = [0.0, 100.0]
encoder = { chip = "as5600", bus = "i2c0", zero_deg = 1.0, direction = 1 }
"""
# zero of joint 0 sits 36 turn16 below the 0/360 wrap: its mean must not land at 180 deg
ZEROS = [65500, 20000, 40000, 1000]
DIRS = [1, -1, 1, 1]
RANGES = [(-20, 20), (-10, 90), (-10, 90), (0, 100)]


def run_calibrate(port, hand, *extra):
    return subprocess.run([sys.executable, "-m", "dexlink.cli", "calibrate", "--port", port,
                           "--hand", str(hand), "--yes", "--zero-seconds", "0.5",
                           "--sweep-seconds", "2.2", *extra],
                          capture_output=True, text=True, timeout=60)


def test_calibrate_refuses_bad_joints_and_reruns_per_finger(tmp_path):
    hand = tmp_path / "testhand.toml"
    hand.write_text(HAND)
    params = dict(joints=4, cal_zero=ZEROS, cal_dir=DIRS, cal_ranges=RANGES, cal_zero_s=1.0)
    (tmp_path / "a").mkdir()
    with FakeBoard(tmp_path / "a", cal_still=2, cal_weak=3, **params) as board:
        r = run_calibrate(board.port, hand)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "REFUSED index_mcp" in r.stdout and "did not move" in r.stdout
    assert "REFUSED index_pip" in r.stdout and "magnet unhealthy (weak" in r.stdout
    cal = tomllib.loads((tmp_path / "testhand.calibration.toml").read_text())
    joints = cal["joints"]
    assert set(joints) == {"thumb_abd", "thumb_flex"}
    assert abs(wrap16(joints["thumb_abd"]["zero_turn16"] - ZEROS[0])) <= 20
    assert abs(joints["thumb_flex"]["zero_turn16"] - ZEROS[1]) <= 20
    assert joints["thumb_flex"]["direction"] == -1  # found from the sweep, against the file's +1
    assert joints["thumb_abd"]["direction"] == 1  # symmetric range: the file's
    lo, hi = joints["thumb_flex"]["range_deg"]
    assert abs(lo + 10) < 3 and abs(hi - 90) < 3
    assert cal["updated"].endswith("Z") and joints["thumb_flex"]["date"] == cal["updated"]

    # the index finger fixed (magnet replaced, joint freed): re-run for that finger only
    (tmp_path / "b").mkdir()
    with FakeBoard(tmp_path / "b", **params) as board:
        r = run_calibrate(board.port, hand, "--finger", "index")
    assert r.returncode == 0, r.stdout + r.stderr
    joints = tomllib.loads((tmp_path / "testhand.calibration.toml").read_text())["joints"]
    assert set(joints) == {"thumb_abd", "thumb_flex", "index_mcp", "index_pip"}
    assert joints["thumb_flex"]["direction"] == -1  # kept from the first run
    assert abs(joints["index_pip"]["zero_turn16"] - ZEROS[3]) <= 20


def test_calibrate_user_mistakes_are_one_line(tmp_path):
    hand = tmp_path / "testhand.toml"
    hand.write_text(HAND)
    r = subprocess.run([sys.executable, "-m", "dexlink.cli", "calibrate", "--port", "/dev/null/x",
                        "--hand", str(hand), "--finger", "pinky", "--yes"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "no joints on finger(s) pinky" in r.stderr
    r = subprocess.run([sys.executable, "-m", "dexlink.cli", "calibrate", "--port", "x",
                        "--hand", str(tmp_path / "missing.toml")], capture_output=True, text=True)
    assert r.returncode == 1 and "missing.toml: no such hand file" in r.stderr


def test_zero_near_the_wrap_and_direction_rules():
    assert circular_mean_turn16([65530, 65534, 2, 6]) in (65535, 0, 1, 2)
    j = HandJoint(0, "mcp", "index", (-10.0, 90.0), 1, 1.0)
    cal = calibrate_joint(j, [100] * 5, [0] * 5, [100 - 16384, 100, 100 + 1000], [0] * 3)
    assert cal.ok and cal.direction == -1 and cal.range_deg == pytest.approx((-5.49, 90.0), abs=0.01)
    cal = calibrate_joint(j, [100, 2000], [0, 0], [100, 30000], [0, 0])
    assert not cal.ok and "moved" in cal.refused  # the zero pose was not held


def test_calibrate_on_the_virtual_board(tmp_path):
    """The real firmware's RAW_SAMPLE stream, the simulated operator asked to hold the zero
    pose and then to sweep the ring finger: its four joints calibrate."""
    hand = tmp_path / "iso16.toml"
    hand.write_text((HANDS / "iso16.toml").read_text())
    r = subprocess.run([sys.executable, "-m", "dexlink.cli", "calibrate", "--sim", "--hand",
                        str(hand), "--yes", "--zero-seconds", "1", "--sweep-seconds", "2",
                        "--finger", "ring"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok      ring_mcp" in r.stdout and "REFUSED" not in r.stdout
    assert "4 of 4 joints calibrated" in r.stdout


# -- 3. the simulated operator calibrates ------------------------------------------------
ZERO_TOLERANCE_TURN16 = 91  # 0.5 degree: AS5600 steps are 0.088 deg, plus the sensor noise


RANGE_TOLERANCE_DEG = 0.5


def test_calibrate_sim_drives_the_operator_and_finds_the_rigs_true_zeros(tmp_path):
    import subprocess
    import sys
    import tomllib

    hand = hand_copy(tmp_path)
    truth = hwconfig.compile_config(hand, "virtual")  # the rig's wiring: zero and direction
    r = subprocess.run([sys.executable, "-m", "dexlink.cli", "calibrate", "--sim", "--hand",
                        str(hand), "--yes", "--zero-seconds", "0.5", "--sweep-seconds", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "16 of 16 joints calibrated" in r.stdout
    written = tomllib.loads(hwconfig.calibration_path(hand).read_text())["joints"]
    assert len(written) == 16
    for j in truth["joints"]:
        cal = written[j["name"]]
        off = (cal["zero_turn16"] - j["zero_turn16"] + 32768) % 65536 - 32768
        assert abs(off) <= ZERO_TOLERANCE_TURN16, (j["name"], off)
        assert cal["direction"] == j["direction"], j["name"]
        lo, hi = cal["range_deg"]
        assert abs(lo - j["min_cdeg"] / 100) <= RANGE_TOLERANCE_DEG, (j["name"], lo)
        assert abs(hi - j["max_cdeg"] / 100) <= RANGE_TOLERANCE_DEG, (j["name"], hi)
