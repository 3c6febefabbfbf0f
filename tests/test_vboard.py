"""The virtual board behaves like a MicroPython board on USB: REPLs, resets, Ctrl-C, and
unmodified mpremote, all against the real interpreter behind a real pseudo-terminal."""
from __future__ import annotations

import os
import subprocess
import time

import pytest
import serial

from conftest import MPREMOTE
from dexlink import hwconfig
from dexlink.link import Link
from dexlink.sim import VirtualBoard, vboard
from dexlink.sim.flashing import flash_virtual
from support.hands import ISO16
from support.processes import child_pids, open_fds

pytestmark = [pytest.mark.micropython, pytest.mark.vboard]


def mpremote(board, *args, timeout=30):
    return subprocess.run([str(MPREMOTE), "connect", board.port, *args], capture_output=True,
                          timeout=timeout)


def read_until(port, ending: bytes, timeout=5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(ending) and time.monotonic() < deadline:
        data += port.read(port.in_waiting or 1)
    return data


@pytest.fixture
def board(tmp_path):
    with VirtualBoard(tmp_path / "fs") as b:
        assert b.wait_for(lambda b: b.state == "repl", 10)
        yield b


@pytest.fixture
def port(board):
    with serial.Serial(board.port, timeout=0.2) as p:
        yield p


def test_friendly_repl_echoes_evaluates_and_continues_blocks(port):
    port.write(b"\x03")
    read_until(port, b">>> ")
    port.write(b"6*7\r")
    assert read_until(port, b">>> ") == b"6*7\r\n42\r\n>>> "
    port.write(b"for i in range(2):\r  print(i)\r\r")
    out = read_until(port, b">>> ")
    assert out.endswith(b"... \r\n0\r\n1\r\n>>> ")
    port.write(b"undefined_name\r")
    assert b"NameError" in read_until(port, b">>> ")


def test_raw_repl_and_raw_paste_speak_pyexec(port):
    port.write(b"\r\x03\r\x01")
    assert read_until(port, b"raw REPL; CTRL-B to exit\r\n>").endswith(b"\r\n>")
    port.write(b"print('out')\r\nraise ValueError('bad')\x04")
    out = read_until(port, b"\x04>")
    assert out.startswith(b"OKout\r\n\x04Traceback")
    assert b"ValueError: bad" in out
    port.write(b"\x05A\x01")  # raw paste: R\x01, then the window size (u16 little-endian)
    port.timeout = 2
    reply = port.read(4)
    assert reply[:2] == b"R\x01"
    window = int.from_bytes(reply[2:], "little")
    assert window > 0
    port.write(b"print(sum(range(5)))\x04")
    assert read_until(port, b"\x04>") == b"\x0410\r\n\x04\x04>"


def test_soft_reset_restarts_the_interpreter(board, port):
    boots = board.stats["boots"]
    port.write(b"\x03marker = 1\r")
    read_until(port, b">>> ")
    port.write(b"\x04")
    out = read_until(port, b">>> ")
    assert b"MPY: soft reboot\r\n" in out and b"MicroPython" in out
    assert board.stats["boots"] == boots + 1
    port.write(b"'marker' in globals()\r")
    assert read_until(port, b">>> ").endswith(b"False\r\n>>> ")


def test_boot_then_main_and_ctrl_c_interrupts_an_unclaimed_program(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "boot.py").write_text("print('boot ran')\n")
    (fs / "main.py").write_text(
        "import time\nwhile True:\n    print('main ran')\n    time.sleep_ms(20)\n")
    with VirtualBoard(fs) as board, serial.Serial(board.port, timeout=0.2) as port:
        assert b"main ran" in read_until(port, b"main ran\r\n", 10)  # boot.py is done
        port.write(b"\x03")
        out = read_until(port, b">>> ")
        assert b"KeyboardInterrupt" in out
        assert board.state == "repl"


def test_a_claimed_console_takes_ctrl_c_as_data(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    # A program that owns the console echoes what it reads, Ctrl-C included, until 'q'.
    (fs / "main.py").write_text(
        "import vconsole\n"
        "c = vconsole.Console()\n"
        "c.claim()\n"
        "buf = bytearray(64)\n"
        "done = False\n"
        "while not done:\n"
        "    n = c.readinto(buf)\n"
        "    if n:\n"
        "        c.write(buf[:n])\n"
        "        done = b'q' in buf[:n]\n"
        "c.release()\n")
    with VirtualBoard(fs) as board, serial.Serial(board.port, timeout=0.2) as port:
        assert board.wait_for(lambda b: b.claimed, 10)
        port.write(b"a\x03b\x00\x04")
        assert read_until(port, b"\x04", 5) == b"a\x03b\x00\x04"
        assert board.state == "booting"  # still running: Ctrl-C and Ctrl-D were data
        port.write(b"q")
        assert read_until(port, b">>> ").endswith(b">>> ")
        assert not board.claimed


def test_hard_reset_reruns_main_and_machine_reset_works(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("print('main ran')\n")
    with VirtualBoard(fs) as board, serial.Serial(board.port, timeout=0.2) as port:
        assert board.wait_for(lambda b: b.state == "repl", 10)
        port.reset_input_buffer()
        board.reset()
        assert b"main ran" in read_until(port, b">>> ")
        port.write(b"import machine; machine.reset()\r")
        assert b"main ran" in read_until(port, b">>> ")
        assert board.stats["boots"] == 3


def test_unmodified_mpremote_copies_lists_execs_runs_and_resets(board, tmp_path):
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "__init__.py").write_text("")
    (src / "pkg" / "mod.py").write_text("ANSWER = 42\n" + "# padding\n" * 400)
    # Longer than one raw-paste window: the board must grant more with \x01 as it reads.
    (src / "script.py").write_text("import pkg.mod\n" + "# padding\n" * 1000
                                   + "print('answer', pkg.mod.ANSWER)\n")

    r = mpremote(board, "cp", "-r", str(src / "pkg"), ":")
    assert r.returncode == 0, r.stderr
    assert (board.fs_dir / "pkg" / "mod.py").read_bytes() == (src / "pkg" / "mod.py").read_bytes()
    r = mpremote(board, "fs", "ls")
    assert r.returncode == 0 and b"pkg/" in r.stdout and b".sim" not in r.stdout
    r = mpremote(board, "exec", "import pkg.mod; print(pkg.mod.ANSWER * 2)")
    assert r.returncode == 0 and r.stdout.strip() == b"84"
    r = mpremote(board, "run", str(src / "script.py"))
    assert r.returncode == 0 and r.stdout.strip() == b"answer 42"
    boots = board.stats["boots"]
    assert mpremote(board, "soft-reset").returncode == 0
    assert board.stats["boots"] == boots + 1
    assert mpremote(board, "reset").returncode == 0  # mpremote's soft reset, then machine.reset()
    assert board.wait_for(lambda b: b.stats["boots"] >= boots + 3, 5)
    r = mpremote(board, "exec", "1/0")
    assert r.returncode != 0 and b"ZeroDivisionError" in r.stdout + r.stderr


def test_mpremote_interrupts_a_running_main_py(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("while True:\n    pass\n")
    with VirtualBoard(fs) as board:
        assert board.wait_for(lambda b: b.interruptible, 10)
        r = mpremote(board, "exec", "print('reached')")
        assert r.returncode == 0 and r.stdout.strip() == b"reached"


def test_the_board_filesystem_is_the_directory(board):
    (board.fs_dir / "data.txt").write_text("from the host")
    r = mpremote(board, "exec",
                 "print(open('/data.txt').read()); open('/made.txt', 'w').write('x')")
    assert r.stdout.strip() == b"from the host"
    assert (board.fs_dir / "made.txt").read_text() == "x"


def test_fault_records_apply_in_the_interpreter_without_allocating(tmp_path, micropython):
    from dexlink.resources import sim_board_dir
    from dexlink.sim.boardcode import vfaults
    records = (vfaults.encode(vfaults.KIND_MAGNET_MISSING, 3, 1)
               + vfaults.encode(vfaults.KIND_SERVO_SILENT, 31, 1)
               + vfaults.encode(vfaults.KIND_CLOCK_PPM, 0, 0, -250)
               + vfaults.encode(vfaults.KIND_SERVO_BAD_CHECKSUM, 7, 1))
    channel = tmp_path / "faults.bin"
    channel.write_bytes(records)
    out = micropython(
        "import micropython, vfaults, vconsole\n"
        "vfaults._channel = open(%r, 'rb')\n"
        "console = vconsole.Console()\n"
        "buf = bytearray(16)\n"
        "def locked():\n"
        "    micropython.heap_lock()\n"
        "    n = console.readinto(buf)  # polls the fault channel first\n"
        "    again = vfaults.poll()\n"
        "    micropython.heap_unlock()\n"
        "    return n, again\n"
        "n, again = locked()\n"
        "print(n, bytes(buf[:n]), again, vfaults.injections, vfaults.magnet_missing[3],\n"
        "      vfaults.servo_silent[31], vfaults.servo_bad_checksum[7], vfaults.clock_ppm)\n"
        % str(channel), paths=[sim_board_dir()], stdin=b"hello")
    assert out.stdout.split() == [b"5", b"b'hello'", b"0", b"4", b"1", b"1", b"1", b"-250"]


def test_friendly_paste_mode_runs_the_pasted_block(port):
    port.write(b"\x03")
    read_until(port, b">>> ")
    port.write(b"\x05")
    assert read_until(port, b"=== ").endswith(b"Ctrl-D to finish\r\n=== ")
    port.write(b"def f(x):\r    return x + 1\r\rprint(f(41))\r\x04")
    assert read_until(port, b">>> ").endswith(b"42\r\n>>> ")


def test_dexlink_sim_prints_a_port_that_mpremote_can_use():
    import sys
    from pathlib import Path
    dexlink = Path(sys.executable).parent / "dexlink"
    proc = subprocess.Popen([str(dexlink), "sim", "--blank", "--seconds", "20"],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/pts/")
        r = subprocess.run([str(MPREMOTE), "connect", port, "exec", "print(6 * 7)"],
                           capture_output=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == b"42"
    finally:
        proc.terminate()
        proc.wait(10)
    r = subprocess.run([str(dexlink), "sim", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "example" in r.stdout


def test_inject_refuses_unknown_faults_and_missing_joints():
    board = VirtualBoard()  # not started: arguments are checked first
    try:
        with pytest.raises(ValueError, match="unknown fault 'smoke'.*magnet_missing"):
            board.inject("smoke")
        with pytest.raises(ValueError, match="servo_silent needs joint=0..31"):
            board.inject("servo_silent")
        with pytest.raises(ValueError, match="drop_rate must be within 0..1"):
            board.inject("line_noise", drop_rate=2)
    finally:
        board.close()


# -- 1. the firmware claims the console first --------------------------------------------
def test_a_burst_of_ctrl_c_while_the_firmware_boots_does_not_stop_it():
    with VirtualBoard() as board:
        flash_virtual(board, ISO16)
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
        flash_virtual(board, ISO16)
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


def test_the_operator_holds_zero_sweeps_one_finger_and_resumes_the_demo():
    with VirtualBoard() as board:
        flash_virtual(board, ISO16)
        with Link(board.port, reconnect=False, handshake_timeout=5) as link:
            fingers = [j["finger"] for j in hwconfig.compile_config(ISO16, "virtual")["joints"]]
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


def test_failed_board_start_leaves_no_fds_or_dirs(tmp_path, monkeypatch):
    """An interpreter that cannot start: start() (`with`'s __enter__) raises, and must not
    leave the pty, the pipes, the selector or its temporary directories behind."""
    not_executable = tmp_path / "micropython"
    not_executable.write_text("not a program")
    monkeypatch.setattr(vboard, "MICROPYTHON", not_executable)
    before = open_fds()
    for _ in range(3):
        board = VirtualBoard()
        with pytest.raises(vboard.VirtualBoardError, match="cannot start the MicroPython"):
            with board:
                pass
        assert not board.fs_dir.exists()  # its own temporary filesystem is removed
        assert board.port is None and not os.path.lexists(board.stable_port)
    assert open_fds() == before


def test_closed_board_starts_nothing(tmp_path):
    """reset() or replug() after close() would start an interpreter (or open a pty) that
    nothing ends: a closed board refuses them."""
    board = VirtualBoard(tmp_path).start()
    board.close()
    before, fds = child_pids(), open_fds()
    for control in (board.reset, board.replug, lambda: board.inject("soft_reset")):
        with pytest.raises(vboard.VirtualBoardError, match="closed"):
            control()
    assert child_pids() == before and open_fds() == fds
