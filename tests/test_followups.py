"""Follow-ups found while integrating: boot-time Ctrl-C, calibration in the flashed config,
the simulated operator's calibration routine, present positions not read back yet, and
episode names never reused. Real virtual boards, real firmware, real files."""
from __future__ import annotations

import shutil
import time
import zlib

import pytest
import serial

from conftest import ROOT
from dexlink import hwconfig
from dexlink.link import Link
from dexlink.record.session import Session
from dexlink.sim import VirtualBoard
from dexlink.sim.flashing import flash_virtual

HAND = ROOT / "hardware" / "hands" / "iso16.toml"


def hand_copy(tmp_path):
    hand = tmp_path / "iso16.toml"
    shutil.copyfile(HAND, hand)
    return hand


# -- 1. the firmware claims the console first --------------------------------------------
def test_a_burst_of_ctrl_c_while_the_firmware_boots_does_not_stop_it():
    with VirtualBoard() as board:
        flash_virtual(board, HAND)
        boots = board.stats["boots"]
        with serial.Serial(board.port, timeout=0) as port:
            board.reset()  # hard: a fresh interpreter boots main.py again
            assert board.wait_for(lambda b: b.stats["boots"] > boots, 5)
            # 0x03 every millisecond from the reset until the firmware has built its drivers
            # and answers (its setup waits on every servo: long enough to be hit many times).
            end = time.monotonic() + 1.5
            sent = 0
            while time.monotonic() < end:
                port.write(b"\x03\x03")
                sent += 2
                time.sleep(0.001)
            assert board.claimed, "the firmware did not claim the console"
        assert sent > 500
        assert board.state == "booting"  # main.py still runs: no Ctrl-C reached it
        with Link(board.port, reconnect=False, handshake_timeout=5) as link:
            assert link.board.n_joints == 16


def test_a_crashing_firmware_leaves_a_repl_that_ctrl_c_reaches(tmp_path):
    """A firmware that raises on the way up releases the console: the traceback, then
    the REPL, which takes Ctrl-C and runs code."""
    with VirtualBoard(tmp_path / "fs") as board:
        flash_virtual(board, HAND)
        app = board.fs_dir / "dexfw" / "app.mpy"
        app.unlink(missing_ok=True)  # replaced by a firmware that crashes after the claim
        (board.fs_dir / "dexfw" / "app.py").write_text(
            "import micropython\n"
            "def run():\n"
            "    micropython.kbd_intr(-1)\n"
            "    raise RuntimeError('driver setup failed')\n")
        with serial.Serial(board.port, timeout=0.2) as port:
            board.reset()
            out = b""
            end = time.monotonic() + 10
            while b">>> " not in out and time.monotonic() < end:
                out += port.read(256)
            assert b"RuntimeError: driver setup failed" in out and out.endswith(b">>> ")
            assert board.state == "repl" and not board.claimed
            port.write(b"while True: pass\r\r")
            time.sleep(0.3)
            port.write(b"\x03")
            out = b""
            end = time.monotonic() + 5
            while b"KeyboardInterrupt" not in out and time.monotonic() < end:
                out += port.read(256)
            assert b"KeyboardInterrupt" in out


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


@pytest.mark.parametrize("text, field, problem", [
    ('[joints."thumb_mcp"]\nzero_turn16 = 70000\ndirection = 1\n', 'joints."thumb_mcp".zero_turn16',
     "must be in 0..65535"),
    ('[joints."thumb_mcp"]\nzero_turn16 = 1\ndirection = 2\n', 'joints."thumb_mcp".direction',
     "must be 1 or -1"),
    ('[joints."thumb_mcp"]\ndirection = 1\n', 'joints."thumb_mcp".zero_turn16', "missing"),
    ('[joints."wrist"]\nzero_turn16 = 1\ndirection = 1\n', 'joints."wrist"', "no joint of that name"),
    ('[joints."thumb_mcp"]\nindex = 5\nzero_turn16 = 1\ndirection = 1\n', 'joints."thumb_mcp".index',
     "the hand file changed"),
    ('[joints."thumb_mcp"]\nzero_turn16 = 1\ndirection = 1\nrange_deg = [100.0, 120.0]\n',
     'joints."thumb_mcp".range_deg', "does not overlap"),
    ('[joints."thumb_mcp"\n', "", "not valid TOML"),
    ('hand = "x"\n', "joints", "missing"),
])
def test_a_bad_calibration_file_is_refused_naming_file_and_field(tmp_path, text, field, problem):
    hand = hand_copy(tmp_path)
    cal = hwconfig.calibration_path(hand)
    cal.write_text(text)
    with pytest.raises(hwconfig.HwConfigError) as e:
        hwconfig.compile_config(hand, "virtual")
    assert str(cal) in str(e.value) and field in str(e.value) and problem in str(e.value)


def test_an_explicit_calibration_wins_and_false_means_none(tmp_path):
    hand = hand_copy(tmp_path)
    hwconfig.calibration_path(hand).write_text('[joints."thumb_mcp"]\nzero_turn16 = 1\ndirection = 1\n')
    other = tmp_path / "other.toml"
    other.write_text('[joints."thumb_mcp"]\nzero_turn16 = 2\ndirection = 1\n')
    assert hwconfig.compile_config(hand, "virtual")["joints"][2]["zero_turn16"] == 1
    assert hwconfig.compile_config(hand, "virtual", other)["joints"][2]["zero_turn16"] == 2
    cfg = hwconfig.compile_config(hand, "virtual", False)
    assert "calibration" not in cfg and cfg["joints"][2]["zero_turn16"] != 1
    with pytest.raises(hwconfig.HwConfigError, match="missing.toml: no such file"):
        hwconfig.compile_config(hand, "virtual", tmp_path / "missing.toml")


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


# -- 4. present positions not read back yet are flagged, and left out of datasets --------
def test_present_positions_not_read_back_yet_are_flagged_and_read_back_in_idle():
    from dexproto import catalog as C
    from dexproto.stream import StreamDecoder

    with VirtualBoard() as board:
        flash_virtual(board, HAND)
        with serial.Serial(board.port, timeout=0.1) as port:
            board.reset()  # capture from the first cycle of a fresh boot (the board idles)
            data = b""
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                data += port.read(4096)
    frames = [m for m in StreamDecoder().feed(data) if m.name == "TELEMETRY"]
    assert len(frames) > 20 and all(m.mode == C.MODE_IDLE for m in frames)
    unread = [(m.cycle, j) for m in frames for j, it in enumerate(m.items)
              if it[2] == C.PRESENT_UNKNOWN]
    assert unread, "the first frames (cycle %d) should precede the first read-back" % frames[0].cycle
    for m in frames:
        for present, status in ((it[2], it[3]) for it in m.items):
            # A placeholder never goes out unflagged, and the flag clears once read.
            assert (present == C.PRESENT_UNKNOWN) == bool(status & C.ST_SERVO_TIMEOUT)
    last = frames[-1]
    assert all(it[2] != C.PRESENT_UNKNOWN for it in last.items)  # read back in IDLE


def test_export_leaves_out_samples_without_a_read_back_present(tmp_path):
    from dexproto import catalog as C
    from dexproto.stream import make

    from dexlink.record.episode import EpisodeWriter
    from dexlink.record.export import align

    s = Session(tmp_path, "t")
    path = s.next_path()
    w = EpisodeWriter(path, {"task": "t", "dexlink_version": "test"}, [])
    t0 = 5_000_000_000
    for c in range(100):  # 100 Hz: joint 1 not read back for 30 cycles; joint 2 never (PWM)
        items = [(100 + c, 200 + c, 300 + c, 0),
                 (100 + c, 200 + c, C.PRESENT_UNKNOWN if c < 30 else 300 + c,
                  C.ST_SERVO_TIMEOUT if c < 30 else 0),
                 (100 + c, 200 + c, C.PRESENT_UNKNOWN, 0)]
        w.add_telemetry(make("TELEMETRY", cycle=c, board_us=c * 10000, cycle_us=250,
                             worst_cycle_us=400, overruns=0, mode=1, items=items),
                        t0 + c * 10_000_000)
    w.finish({"mark": "", "duration_s": 1.0})
    ep = align(path, 50)
    assert ep.state.min() > -300  # no -327.68 placeholder anywhere
    assert abs(ep.state[0, 1] - 3.30) < 1e-4  # the first frame is the first read-back (cycle 30)
    assert len(ep) == 35  # cycles 30..98 at 50 fps
    assert abs(ep.state[0, 2] - ep.action[0, 2]) < 1e-6  # no read-back at all: the goal


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


def test_the_operator_holds_zero_sweeps_one_finger_and_resumes_the_demo():
    with VirtualBoard() as board:
        flash_virtual(board, HAND)
        with Link(board.port, reconnect=False, handshake_timeout=5) as link:
            fingers = [j["finger"] for j in hwconfig.compile_config(HAND, "virtual")["joints"]]
            sub = link.subscribe("TELEMETRY")

            def exo(seconds):
                sub.drain()
                rows, end = [], time.monotonic() + seconds
                while time.monotonic() < end:
                    m = sub.get(timeout=0.1)
                    if m is not None:
                        rows.append([it[0] for it in m.items])
                return rows

            board.operator("zero")
            time.sleep(0.1)
            rows = exo(0.3)
            assert rows and all(abs(v) <= 30 for row in rows for v in row)  # 0.3 deg: noise
            board.operator("sweep", "index")
            time.sleep(0.1)
            rows = exo(2.0)
            for j, f in enumerate(fingers):
                span = max(r[j] for r in rows) - min(r[j] for r in rows)
                assert (span > 1500) == (f == "index"), (j, f, span)
            board.operator("demo")
            rows = exo(1.5)
            assert max(r[j] for r in rows for j in range(16)) > 1000  # moving again
            with pytest.raises(ValueError, match="behaviours: demo, zero, sweep"):
                board.operator("wave")
            with pytest.raises(ValueError, match="unknown finger 'toe'"):
                board.operator("sweep", "toe")


def test_operator_behaviours_switch_through_vfaults_and_allocate_nothing():
    """Inside the interpreter: the records the supervisor sends switch the behaviour, and
    holding zero, sweeping and the demo allocate nothing once running."""
    import json

    from test_sim_devices import run_sim

    cfg = hwconfig.compile_config(HAND, "virtual")
    r = run_sim("""
import gc
import vfaults
import vworld
from voperator import Operator, SWEEP_LEG_US
vworld.manual_clock()
cfg = json.loads(%r)
op = Operator(cfg["joints"], 1)
n = len(cfg["joints"])
def run(ms):
    lo = [99999] * n
    hi = [-99999] * n
    for i in range(ms):
        now = vworld.now_us()
        for j in range(n):
            q = op.angle_cdeg(j, now)
            lo[j] = min(lo[j], q)
            hi[j] = max(hi[j], q)
        vworld.advance_us(1000)
    return lo, hi
def ask(behaviour, finger):
    vfaults.apply(vfaults.KIND_OPERATOR, vfaults.OPERATOR_BEHAVIOURS.index(behaviour), 0, finger)
ask("zero", -1)
zero = run(50)
ask("sweep", vfaults.OPERATOR_FINGERS.index("middle"))
sweep = run(3 * SWEEP_LEG_US // 1000 + 10)
ask("demo", -1)
first_demo = [op.angle_cdeg(j, vworld.now_us()) for j in range(n)]
gc.collect()
deltas = []
for behaviour in ("zero", "sweep", "demo"):
    ask(behaviour, -1)
    for j in range(n):
        op.angle_cdeg(j, vworld.now_us())  # the switch itself may allocate (not the loop)
    gc.collect()
    a = gc.mem_alloc()
    for i in range(2000):
        op.angle_cdeg(i %% n, vworld.now_us())
        op.raw_turn16(i %% n, vworld.now_us())
        vworld.advance_us(500)
    deltas.append(gc.mem_alloc() - a)
print("RESULT " + json.dumps({"zero": zero, "sweep": sweep, "first_demo": first_demo,
                              "deltas": deltas}))
""" % json.dumps(cfg))
    assert r["deltas"] == [0, 0, 0]
    assert r["zero"] == [[0] * 16, [0] * 16]
    lo, hi = r["sweep"]
    for j, joint in enumerate(cfg["joints"]):
        if joint["finger"] == "middle":
            assert abs(lo[j] - joint["min_cdeg"]) <= 2 and abs(hi[j] - joint["max_cdeg"]) <= 2
        else:
            assert lo[j] == hi[j] == 0
    assert all(abs(q) <= 2 for q in r["first_demo"])  # the demo resumes from the sweep's end: 0
