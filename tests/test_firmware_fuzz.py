"""The firmware's command path fed garbage, under the real MicroPython interpreter.

One interpreter runs the real loop (dexfw.loop.Firmware) on the simulated rig (vmachine,
manual clock) behind a BufferConsole, in HOST mode with the servos settled on known
targets. Hypothesis makes the garbage: random bytes, valid commands with bits flipped,
truncated, with the wrong length (CRC made right), of unknown types, and valid-CRC
commands with a value out of range. After each case the loop must still run (nothing
raised out of it), and the servo goals, host targets, mode and torque must be what they
were: only a frame that passed its CRC and length checks may move a servo, and a refused
one may not either. Refusals must be NACKs that name the field.

Every case runs in the same interpreter (a line of hex in, a line of results out), so
hundreds run in seconds. Positive controls prove the oracle can fail: a valid TARGETS
and a valid SET_MODE do move things.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import zlib

import pytest
from cobs import cobs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import BOARD_PATHS, MICROPYTHON, ROOT
from dexlink.hwconfig import compile_config, dumps
from dexlink.link import NackError
from dexproto import catalog as C
from dexproto.stream import StreamDecoder, encode, encode_payload, make

pytestmark = pytest.mark.micropython

SIM_BOARD = ROOT / "host" / "dexlink" / "sim" / "board"
N_JOINTS = 16
HOME = [0] * N_JOINTS  # the targets the hand is settled on
ELSEWHERE = [1000] * N_JOINTS  # where a command that got through would move it
CYCLES = 6  # per case: the loop reads up to 4 x 256 bytes a cycle

HARNESS = r'''
import sys, json, vworld, vmachine
vworld.manual_clock()
cfg = json.loads(%r)
vmachine.load_rig(cfg)
from dexfw.bufconsole import BufferConsole
from dexfw import build
from dexfw.loop import Firmware
enc, srv = build.build(vmachine, cfg)
con = BufferConsole(rx_size=8192)
fw = Firmware(vmachine, con, cfg, enc, srv, 0, b"virtual")
home = bytes.fromhex(%r)  # HELLO (a new session), then TARGETS
CYCLES = %d

def state():
    jm = fw.jm
    return [list(jm.servo_goal), list(jm.host), list(jm.goal), fw.mode, fw.torque_on,
            fw.running, fw.hz, fw.decimation, fw.watchdog_ms, fw.watchdog_action,
            [jm.joint_values(i) for i in range(jm.n)]]

def settle():
    fw.running = True
    fw.run(5)
    while fw.mode != 2 and not fw.set_mode(2):
        fw.run(5)
    con.feed(home)
    fw.run(400)  # slew onto the targets
    con.take()

settle()
base = state()
print("READY", json.dumps(base))
while True:
    line = sys.stdin.readline()
    if not line:
        break
    data = bytes.fromhex(line.strip())
    raised = ""
    try:
        con.feed(data)
        con.feed(b"\x00")  # ends whatever partial frame the garbage left
        fw.run(CYCLES)
    except Exception as e:
        raised = repr(e)
    now = state()
    print("CASE", json.dumps([now == base, raised, con.take().hex(), now]))
    if now != base:
        settle()
        base = state()
'''


class Board:
    """The interpreter running the harness: case(bytes) -> (unchanged, raised, replies)."""

    def __init__(self):
        cfg = compile_config(ROOT / "hardware" / "hands" / "iso16.toml", "virtual")
        cfg["loop"]["watchdog_ms"] = 60000  # the clock is manual: no watchdog mid-case
        hello = make("HELLO", proto_major=C.PROTOCOL_MAJOR, proto_minor=C.PROTOCOL_MINOR)
        home = (encode(hello, seq=0) + encode(make("TARGETS", items=[(t,) for t in HOME]),
                                              seq=1)).hex()
        self.script = ROOT / ".pytest_cache" / ("fuzz_harness_%d.py" % os.getpid())
        self.script.parent.mkdir(exist_ok=True)
        self.script.write_text(HARNESS % (dumps(cfg), home, CYCLES))
        env = dict(os.environ)
        env["MICROPYPATH"] = ":".join(str(p) for p in [SIM_BOARD, *BOARD_PATHS, ".frozen"])
        self.proc = subprocess.Popen([str(MICROPYTHON), str(self.script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     text=True, bufsize=1)
        ready = self._line("READY")
        self.base = json.loads(ready)
        self.cases = 0

    def _line(self, tag):
        line = self.proc.stdout.readline()
        if not line.startswith(tag + " "):
            self.proc.kill()
            raise AssertionError("harness said %r\n%s" % (line, self.proc.stderr.read()))
        return line[len(tag) + 1:]

    def case(self, data: bytes):
        self.proc.stdin.write(data.hex() + "\n")
        self.proc.stdin.flush()
        unchanged, raised, out, now = json.loads(self._line("CASE"))
        self.cases += 1
        self.state = now  # servo goals, host targets, goals, mode, torque, ...
        replies = StreamDecoder().feed(bytes.fromhex(out))
        return unchanged, raised, [m for m in replies if m.name not in ("TELEMETRY", "FAULT")]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.script.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def board():
    b = Board()
    yield b
    b.close()


def frame_of(payload: bytes) -> bytes:
    """A frame with a correct CRC around any payload (lengths and types unchecked)."""
    return cobs.encode(payload + struct.pack("<I", zlib.crc32(payload))) + b"\x00"


# Commands that would change the hand's state if they got through.
MOVERS = [
    make("TARGETS", items=[(t,) for t in ELSEWHERE]),
    make("SET_MODE", mode=C.MODE_IDLE),
    make("SET_MODE", mode=C.MODE_TELEOP),
    make("ESTOP"),
    make("REPL"),
    make("SET_JOINT", joint=3, zero_turn16=100, direction=-1, scale_q12=4096, min_cdeg=500,
         max_cdeg=900, max_speed_cdeg_per_ms=5),
    make("SET_CONFIG", loop_hz=500, telemetry_decimation=5, watchdog_ms=60000, watchdog_action=1),
]
movers = st.sampled_from(MOVERS)
seqs = st.integers(0, 0xFFFF)


@st.composite
def flipped(draw):
    frame = bytearray(encode(draw(movers), seq=draw(seqs)))
    bits = draw(st.sets(st.integers(0, 8 * len(frame) - 1), min_size=1, max_size=4))
    for b in bits:  # distinct bits: two flips of one bit would give the frame back
        frame[b >> 3] ^= 1 << (b & 7)
    return bytes(frame)


@st.composite
def truncated(draw):
    frame = encode(draw(movers), seq=draw(seqs))
    return frame[:draw(st.integers(1, len(frame) - 2))]


@st.composite
def wrong_length(draw):
    payload = encode_payload(draw(movers), draw(seqs))
    if draw(st.booleans()) and len(payload) > 3:
        payload = payload[:draw(st.integers(3, len(payload) - 1))]
    else:
        payload += draw(st.binary(min_size=1, max_size=8))
    return frame_of(payload)


@st.composite
def unknown_type(draw):
    known_to_board = {row[0] for row in C.MESSAGES if row[2] == C.TO_BOARD}
    t = draw(st.integers(0, 255).filter(lambda t: t not in known_to_board))
    return frame_of(bytes([t]) + struct.pack("<H", draw(seqs)) + draw(st.binary(max_size=40)))


garbage = st.one_of(st.binary(min_size=1, max_size=900), flipped(), truncated(), wrong_length(),
                    unknown_type())

FUZZ = settings(max_examples=250, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=garbage)
def test_garbage_never_moves_a_servo(board, data):
    # Garbage it must be: the host's decoder (same rules) finds no good frame in it.
    # (Hypothesis splices examples: it can rebuild a whole frame, missing only its 0x00.)
    assume(not StreamDecoder().feed(data + b"\x00"))
    unchanged, raised, replies = board.case(data)
    assert raised == "", "the loop raised on %s: %s" % (data.hex(), raised)
    assert unchanged, "garbage %s changed the hand's state" % data.hex()
    assert not [m for m in replies if m.name == "ACK"], "garbage ACKed: %r" % replies


# Out-of-range values, one field at a time: (message, field, bad values).
LOOP_OK = dict(loop_hz=1000, telemetry_decimation=10, watchdog_ms=60000, watchdog_action=0)
JOINT_OK = dict(joint=2, zero_turn16=0, direction=1, scale_q12=4096, min_cdeg=-1000,
                max_cdeg=9000, max_speed_cdeg_per_ms=36)
OUT_OF_RANGE = [
    ("SET_CONFIG", LOOP_OK, "loop_hz", st.sampled_from([0, 9, 5001, 65535])),
    ("SET_CONFIG", LOOP_OK, "telemetry_decimation", st.sampled_from([0, 10001, 65535])),
    ("SET_CONFIG", LOOP_OK, "watchdog_ms", st.integers(0, 9) | st.integers(60001, 65535)),
    ("SET_CONFIG", LOOP_OK, "watchdog_action", st.integers(2, 255)),
    ("SET_JOINT", JOINT_OK, "joint", st.integers(N_JOINTS, 255)),
    ("SET_JOINT", JOINT_OK, "direction", st.integers(-128, -2) | st.just(0) | st.integers(2, 127)),
    ("SET_JOINT", JOINT_OK, "scale_q12", st.sampled_from([0, -32768])),
    ("SET_JOINT", JOINT_OK, "min_cdeg", st.sampled_from([-32768, 9000, 20000])),
    ("SET_JOINT", JOINT_OK, "max_cdeg", st.just(-32768)),
    ("SET_JOINT", JOINT_OK, "max_speed_cdeg_per_ms", st.just(0)),
    ("SET_MODE", {"mode": 0}, "mode", st.integers(len(C.MODE_NAMES), 255)),
    ("GET_JOINT", {"joint": 0}, "joint", st.integers(N_JOINTS, 255)),
]


@st.composite
def out_of_range(draw):
    name, ok, field, bad = draw(st.sampled_from(OUT_OF_RANGE))
    msg = make(name, **dict(ok, **{field: draw(bad)}))
    return msg, field, draw(seqs)


@FUZZ
@given(case=out_of_range())
def test_out_of_range_values_are_refused_naming_the_field(board, case):
    msg, field, seq = case
    unchanged, raised, replies = board.case(encode(msg, seq=seq))
    assert raised == ""
    assert unchanged, "%s with %s out of range changed the hand's state" % (msg.name, field)
    assert [m.name for m in replies] == ["NACK"], replies
    nack = replies[0]
    assert (nack.acked_type, nack.acked_seq, nack.error) == (msg.spec.type, seq, C.ERR_BAD_VALUE)
    error = NackError(msg, nack.error, nack.field)  # what dexlink.link raises for it
    assert error.field == field and field in str(error), str(error)


@pytest.mark.parametrize("msg", MOVERS, ids=lambda m: m.name + str(m.fields.get("mode", "")))
def test_control_a_valid_command_does_change_the_state(board, msg):
    """The oracle can fail: each command the garbage is made from moves the hand when whole."""
    unchanged, raised, replies = board.case(encode(msg, seq=0x1234))
    assert raised == "" and not unchanged


def test_atheris_firmware_target_holds_on_its_seeds():
    """tests/fuzz/fuzz_firmware.py (make fuzz FUZZ_TARGET=firmware) imports and its
    invariants hold on valid traffic of every type and on a few damaged copies of it."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "fuzz_firmware", ROOT / "tests" / "fuzz" / "fuzz_firmware.py")
    target = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(target)
    seeds = target.seeds()
    for _ in range(50):  # the hand held still: nothing moves by itself between inputs
        target.check(b"")
    good = 0
    for seed in seeds:
        good += target.check(seed)
        damaged = bytearray(seed)
        damaged[len(damaged) // 2] ^= 0x10
        target.check(bytes(damaged))
    assert good >= len(seeds)  # the valid traffic did get through (and was answered)


def _set_speed(seq, speed, joint=3):
    return encode(make("SET_JOINT", joint=joint, zero_turn16=0, direction=1, scale_q12=4096,
                       min_cdeg=-3000, max_cdeg=9000, max_speed_cdeg_per_ms=speed), seq=seq)


def test_a_retried_command_is_applied_once_and_an_older_one_never(board):
    """The host's retry after a lost ACK repeats the frame: ACKed again, not applied again.
    A late frame older than the last applied of its kind is ACKed, not applied. A new
    session (HELLO) starts afresh."""
    hello = encode(make("HELLO", proto_major=C.PROTOCOL_MAJOR, proto_minor=C.PROTOCOL_MINOR), seq=0)
    ask = encode(make("GET_JOINT", joint=3), seq=40) + encode(make("GET_STATS"), seq=41)
    _, _, r0 = board.case(hello + encode(make("GET_STATS"), seq=1))
    s0 = r0[-1]
    _, raised, replies = board.case(hello + _set_speed(10, 50) + _set_speed(10, 50)
                                    + _set_speed(8, 70) + _set_speed(10, 50) + ask)
    assert raised == ""
    acks = [(m.acked_type, m.acked_seq) for m in replies if m.name == "ACK"]
    assert acks == [(C.SET_JOINT, 10), (C.SET_JOINT, 10), (C.SET_JOINT, 8), (C.SET_JOINT, 10)]
    joint, stats = replies[-2], replies[-1]
    assert joint.max_speed_cdeg_per_ms == 50
    assert stats.cmd_applied - s0.cmd_applied == 1
    assert stats.cmd_repeats - s0.cmd_repeats == 3
    # another joint is another slot; a new session forgets the old numbers
    _, _, replies = board.case(_set_speed(9, 60, joint=4) + hello + _set_speed(8, 70) + ask)
    assert replies[-2].max_speed_cdeg_per_ms == 70
    assert replies[-1].cmd_applied - stats.cmd_applied == 2
    # TARGETS are idempotent (a repeat applies) but never go backwards
    def t(seq, v):
        return encode(make("TARGETS", items=[(v,)] * N_JOINTS), seq=seq)

    _, _, replies = board.case(hello + t(100, 700) + t(90, -700))
    assert [m.name for m in replies] == ["HELLO_REPLY", "ACK", "ACK"]
    assert board.state[1] == [700] * N_JOINTS  # the host targets
    _, _, replies = board.case(t(100, 700) + t(101, -700))
    assert board.state[1][0] == -700  # a newer one does apply (joint 0 reaches -7 deg)
