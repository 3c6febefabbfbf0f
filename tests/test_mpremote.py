"""Plain mpremote on a board that runs dexlink firmware (issue 14, part 1).

The firmware owns the port with Ctrl-C turned into data, so mpremote's break-in ("\\r\\x03",
"\\r\\x01", then silence) reaches it as bytes: dexfw.breakin recognises it and the board
hands the port back, answering mpremote's raw REPL itself (dexfw.rawrepl).

1. The detector (the firmware's own Link and FrameReader, CPython): the tools' break-ins
   are recognised, and valid traffic never is, however chunked and however long it stalls
   (hypothesis, frames full of the same control bytes).
2. Under MicroPython, on the simulated rig: the loop stops with the servos' torque off, and
   a pending candidate costs the loop no allocation.
3. The real mpremote against a virtual board running the firmware: exec, fs cp, run,
   soft-reset, fs ls, then `dexlink repl` and `dexlink flash` again, and the firmware runs.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MPREMOTE, ROOT, run_micropython
from dexlink.flash import build_image
from dexlink.link import Link as HostLink
from dexlink.sim import VirtualBoard
from dexproto import catalog as C
from dexproto.stream import frame_payload
from support.firmware_families import FAMILIES
from support.loop_script import SIM_BOARD, loop_script

sys.path.insert(0, str(ROOT / "firmware"))
from dexfw import breakin  # noqa: E402  (the board's module, run by CPython)
from dexfw.bufconsole import BufferConsole  # noqa: E402
from dexfw.link import Link  # noqa: E402

HAND = ROOT / "hardware" / "hands" / "iso16.toml"
DEXLINK = Path(sys.executable).parent / "dexlink"
QUIET = breakin.QUIET_US
MPREMOTE_KEYS = (b"\r\x03", b"\r\x01")  # its two writes in enter_raw_repl
PYBOARD_KEYS = (b"\r\x03\x03", b"\r\x01")  # pyboard.py, `dexlink flash`'s probe


# -- 1. the detector --------------------------------------------------------------------
class Board:
    """The firmware's Link over a BufferConsole, on a clock the test moves."""

    def __init__(self):
        self.now = 5000
        self.console = BufferConsole(rx_size=1 << 16)
        self.link = Link(self.console, lambda: self.now)
        self.frames = []
        self.breakins = 0

    def cycle(self):
        """One loop cycle's reads: good frames kept, break-ins counted."""
        self.link.start_cycle()
        while True:
            t = self.link.next_frame()
            if not t:
                return
            if t == C.REPL and self.link.breakin.fired and self.link.reader.fill:
                self.breakins += 1
                return
            self.frames.append((t, self.link.reader.seq))

    def send(self, data, then_us=0):
        self.console.feed(data)
        self.cycle()
        self.now += then_us
        self.cycle()


def test_the_tools_break_ins_are_recognised_after_the_quiet_gap():
    for keys, raw in ((MPREMOTE_KEYS, True), (PYBOARD_KEYS, True),
                      ((b"\r\x03\x03\r\x02",), False)):  # `dexlink repl`: the friendly REPL
        b = Board()
        b.send(frame_payload(bytes([C.HEARTBEAT, 7, 0])), 10)
        for chunk in keys:
            b.send(chunk, 1000)
        b.send(b"", QUIET - 2000)
        assert b.breakins == 0  # not quiet long enough yet
        b.send(b"", 1000)
        assert (b.breakins, b.link.breakin.raw) == (1, raw), keys
        assert b.frames == [(C.HEARTBEAT, 7)]


def test_what_could_begin_a_frame_never_breaks_in():
    # A lone Ctrl-C (a terminal's) could be a frame's first byte: COBS code 3.
    for keys in (b"\x03", b"\x03\x03", b"\x03\r", b"\x02\x03\x01"):
        b = Board()
        b.send(keys, 10 * QUIET)
        assert b.breakins == 0, keys
    # Other bytes than the tools' keys, or too many of them, or a 0x00 after them.
    for keys in (b"\r\x03\r\x01x", b"\r\x03" * 9, b"\r\x03\r\x01\x00", b"\r\r\r"):
        b = Board()
        b.send(keys, 10 * QUIET)
        assert b.breakins == 0, keys


KEYS = (0, 1, 2, 3, 4, 13)  # the tools' control keys, and COBS's zero


def _body(row, draw):
    """A body that fits the message, three bytes in four drawn from KEYS."""
    import struct
    head = struct.calcsize(row[3]) if row[3] else 0
    extra = 0
    if row[5]:
        extra = struct.calcsize(row[5]) * draw(st.integers(0, 6))
    elif row[7]:
        extra = draw(st.integers(0, 40))
    raw = draw(st.binary(min_size=head + extra, max_size=head + extra))
    return bytes(KEYS[b % len(KEYS)] if b < 192 else b for b in raw)


@st.composite
def valid_traffic(draw):
    """Frames of every type, bodies and sequence numbers full of the tools' keys."""
    frames = []
    for _ in range(draw(st.integers(1, 12))):
        t = draw(st.sampled_from([r[0] for r in C.MESSAGES]))
        seq = draw(st.one_of(st.sampled_from([0x0301, 0x030D, 0x0D03, 0x0101, 0x0103, 0]),
                             st.integers(0, 0xFFFF)))
        payload = bytes([t, seq & 0xFF, seq >> 8]) + _body(C.BY_TYPE[t], draw)
        frames.append(((t, seq), frame_payload(payload)))
    return frames


STALLS = st.sampled_from([0, 50, QUIET - 1, QUIET, 3 * QUIET])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=valid_traffic(), cuts=st.lists(st.tuples(st.integers(1, 40), STALLS), min_size=1))
def test_valid_frames_never_break_in_however_chunked_and_stalled(frames, cuts):
    wire = b"".join(f for _, f in frames)
    b = Board()
    at = 0
    while at < len(wire):
        # Chunks cut anywhere (inside frames too), each followed by a stall of up to 3 s.
        for size, stall in cuts:
            b.send(wire[at:at + size], stall)
            at += size
        assert b.breakins == 0
    b.send(b"", 3 * QUIET)
    assert b.breakins == 0
    assert b.frames == [key for key, _ in frames]
    # The positive control: the same board, then mpremote's keys, does break in.
    for chunk in MPREMOTE_KEYS:
        b.send(chunk)
    b.send(b"", QUIET)
    assert b.breakins == 1 and b.link.breakin.raw


# -- 2. under MicroPython: the loop stops, torque off, no allocation while it waits -----
LOOP = r'''
from dexfw.breakin import QUIET_US
fw.run(300)
if not fw.set_mode(1):
    raise SystemExit("TELEOP refused")
fw.run(300)
torque_before = fw.torque_on
con.feed(b"\x02\x03")  # could begin a SET_MODE frame: waits for ever, allocating nothing
fw.run(50)
gc.collect()
before = gc.mem_alloc()
fw.run(2 * QUIET_US // fw.period_us)
waiting_alloc = gc.mem_alloc() - before
con.feed(b"\x00\r\x03")  # mpremote's keys
fw.run(20)
con.feed(b"\r\x01")
fw.run(50)
gc.collect()
before = gc.mem_alloc()
fw.run(QUIET_US // fw.period_us - 150)  # a break-in not yet quiet long enough
waiting_alloc += gc.mem_alloc() - before
early = fw.running
cycles = fw.cycles
fw.run(300)
stopped_after = fw.cycles - cycles
fw.stop()
print("RESULT", json.dumps([torque_before, waiting_alloc, early, fw.running, stopped_after,
                            fw.link.breakin.raw, fw.torque_on, fw.mode]))
'''


@pytest.mark.micropython
def test_the_loop_stops_with_torque_off_and_waits_without_allocating():
    cfg = FAMILIES["as5600+feetech"]()
    out = run_micropython(loop_script(cfg, LOOP), paths=[SIM_BOARD], timeout=120).stdout.decode()
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT")][-1]
    torque_before, alloc, early, running, stopped_after, raw, torque, mode = json.loads(line[6:])
    assert torque_before  # TELEOP drove the servos
    assert alloc == 0
    assert early and not running and 95 <= stopped_after <= 105  # QUIET_US after the last key
    assert raw and not torque and mode == C.MODE_IDLE


# -- 3. the real mpremote, `dexlink repl` and `dexlink flash` on a virtual board --------
def _mpremote(port, *args, timeout=30):
    r = subprocess.run([str(MPREMOTE), "connect", port, *args], capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def _hello(port):
    with HostLink(port, reconnect=False, handshake_timeout=10) as link:
        return link.board


@pytest.mark.vboard
def test_mpremote_exec_cp_run_soft_reset_ls_then_repl_and_flash_again(tmp_path):
    image = build_image(HAND, "virtual", tmp_path / "image")
    shutil.copytree(image.root, tmp_path / "fs")  # flashed, as `dexlink flash` leaves it
    script = tmp_path / "job.py"
    script.write_text("import os\nprint('job sees', sorted(os.listdir('/'))[:2])\n")
    with VirtualBoard(tmp_path / "fs") as board:
        port = board.port
        assert _hello(port).n_joints == 16  # the firmware owns the port
        assert "1" == _mpremote(port, "exec", "print(1)").strip()
        assert not board.claimed
        _mpremote(port, "fs", "cp", str(script), ":job.py")
        assert (tmp_path / "fs" / "job.py").read_text() == script.read_text()
        assert "job sees" in _mpremote(port, "run", str(script))
        _mpremote(port, "soft-reset")
        assert "job.py" in _mpremote(port, "fs", "ls")

        board.reset()  # the firmware again: an error in the REPL the board plays
        assert _hello(port).n_joints == 16
        r = subprocess.run([str(MPREMOTE), "connect", port, "exec", "1/0"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1 and r.stdout.startswith("Traceback"), r.stdout + r.stderr
        assert 'File "<stdin>", line 1' in r.stdout and "rawrepl" not in r.stdout
        assert r.stdout.rstrip().endswith("ZeroDivisionError: divide by zero")

        board.reset()  # and again: `dexlink repl` sends it the REPL message
        assert _hello(port).n_joints == 16
        r = subprocess.run([str(DEXLINK), "repl", "--port", port], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "mpremote connect %s repl" % port in r.stdout
        assert board.state == "repl"

        iso22 = ROOT / "hardware" / "hands" / "iso22.toml"
        r = subprocess.run([str(DEXLINK), "flash", "--port", port, "--hand", str(iso22),
                            "--board", "virtual"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert _hello(port).n_joints == 22  # flashed, rebooted: the firmware runs again
        assert "2" == _mpremote(port, "exec", "print(2)").strip()  # and breaks in again
