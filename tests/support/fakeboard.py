"""A small board for the link's tests: a MicroPython program behind a real pseudo-terminal.

It answers with dexproto's own FrameWriter/FrameReader under the real MicroPython
interpreter, so the link is tested against the board side of the framing. Its clock can run
fast or slow by a given ppm and wrap at a given period, and next to each TELEMETRY it sends
a LOG "truth CYCLE US" with the unskewed time of the same sampling instant:
MicroPython's Unix `time.ticks_us` reads CLOCK_MONOTONIC, the clock behind the host's
`time.monotonic_ns`, so that is the sample's true host time (test_fakeboard_clock_is_host_clock
checks it).

The port is a symlink to the pseudo-terminal, as udev's /dev/serial/by-id links are: a
"cable pull" kills the board (the pty vanishes), a "plug-in" starts a new one behind the
same path.
"""
from __future__ import annotations

import os
import pty
import subprocess
import time
import tty
from pathlib import Path

from conftest import BOARD_PATHS, MICROPYTHON

BOARD_SOURCE = r'''
import sys, select, struct, time
from dexproto import catalog as C
from dexproto.frame import FrameWriter, FrameReader, HEADER_SIZE

PPM = %(ppm)d
PERIOD = %(period)d
START = %(start)d
N = %(joints)d
TELEMETRY_HZ = %(telemetry_hz)d
GARBAGE = %(garbage)r
PROTO_MAJOR = %(proto_major)d
CORRUPT_EVERY = %(corrupt_every)d
MUTE = %(mute)r
CAL_ZERO = %(cal_zero)r
CAL_DIR = %(cal_dir)r
CAL_RANGES = %(cal_ranges)r
CAL_STILL = %(cal_still)d
CAL_WEAK = %(cal_weak)d
CAL_ZERO_S = %(cal_zero_s)r

origin = time.ticks_us()

def board_us(true_us):
    # the board's crystal runs PPM fast, counting from START, wrapping at PERIOD
    return (START + ((true_us - origin) * (1000000 + PPM)) // 1000000) %% PERIOD

out = sys.stdout.buffer
inp = sys.stdin.buffer
poller = select.poll()
poller.register(sys.stdin, select.POLLIN)
w = FrameWriter()
r = FrameReader()
one = bytearray(1)
mode = C.MODE_IDLE
config = [1000, 1, 200, 0]
targets = [0] * N
cycle = 0
heartbeats = [0]
cal_start = [0]
joints_set = {}

def raw_sample(true_us):
    # CALIBRATE: the operator holds the zero pose for CAL_ZERO_S, then sweeps every joint
    # 0 -> max -> min -> 0 once a second; joint CAL_STILL never moves, CAL_WEAK's magnet is weak
    t = time.ticks_diff(true_us, cal_start[0]) / 1e6 - CAL_ZERO_S
    struct.pack_into("<II", w.body, 0, cycle, board_us(true_us))
    for j in range(N):
        lo, hi = CAL_RANGES[j]
        angle = 0.0
        if t > 0 and j != CAL_STILL:
            ph = t %% 1.0
            if ph < 0.25:
                angle = hi * ph / 0.25
            elif ph < 0.75:
                angle = hi + (lo - hi) * (ph - 0.25) / 0.5
            else:
                angle = lo * (1 - (ph - 0.75) / 0.25)
        raw = int(CAL_ZERO[j] + CAL_DIR[j] * angle * 65536 / 360) %% 65536
        struct.pack_into("<HB", w.body, 8 + 3 * j, raw, C.ST_MAGNET_WEAK if j == CAL_WEAK else 0)
    send(w.finish(C.RAW_SAMPLE, 8 + 3 * N))

def send(frame):
    out.write(frame)

def ack(t, seq):
    send(w.pack(C.ACK, "<BH", t, seq))

def nack(t, seq, err, field):
    send(w.pack(C.NACK, "<BHBB", t, seq, err, field))

def handle(t, seq, body):
    global mode
    if t == C.HELLO:
        if body[0] != PROTO_MAJOR:
            nack(t, seq, C.ERR_VERSION, 0)
            return
        struct.pack_into("<BBBBBBHHHI", w.body, 0, PROTO_MAJOR, 0, 0, 9, 1, N, 1000,
                         C.CAP_VIRTUAL, 1, 0)
        name = b"fakeboard"
        w.body[16:16 + len(name)] = name
        send(w.finish(C.HELLO_REPLY, 16 + len(name)))
    elif t == C.SET_MODE:
        if body[0] > C.MODE_CALIBRATE:
            nack(t, seq, C.ERR_BAD_VALUE, 0)
        else:
            mode = body[0]
            cal_start[0] = time.ticks_us()
            ack(t, seq)
    elif t == C.SET_JOINT:
        j = body[0]
        if j >= N:
            nack(t, seq, C.ERR_BAD_VALUE, 0)
        else:
            joints_set[j] = struct.unpack_from("<BHbhhhH", body, 0)
            ack(t, seq)
    elif t == C.SET_CONFIG:
        v = struct.unpack_from("<HHHB", body, 0)
        if v[0] == 0:
            nack(t, seq, C.ERR_BAD_VALUE, 0)
        else:
            config[:] = list(v)
            ack(t, seq)
    elif t == C.GET_CONFIG:
        send(w.pack(C.CONFIG, "<HHHB", *config))
    elif t == C.TIME_SYNC:
        rx = board_us(time.ticks_us())
        token = struct.unpack_from("<I", body, 0)[0]
        send(w.pack(C.TIME_SYNC_REPLY, "<III", token, rx, board_us(time.ticks_us())))
    elif t == C.TARGETS:
        for j in range(N):
            targets[j] = struct.unpack_from("<h", body, 2 * j)[0]
        # every target received, with the true time, for tests that check what arrived
        sys.stderr.write("T %%d %%s\n" %% (time.ticks_us(), " ".join(str(v) for v in targets)))
    elif t == C.ESTOP:
        mode = C.MODE_IDLE
    elif t == C.HEARTBEAT:
        heartbeats[0] += 1
    else:
        nack(t, seq, C.ERR_UNKNOWN_TYPE, 255)

def telemetry(true_us):
    global cycle
    cycle += 1
    # "overruns" carries the heartbeats received, for the heartbeat test
    struct.pack_into("<IIHHHB", w.body, 0, cycle, board_us(true_us), 100, 200,
                     heartbeats[0] & 0xFFFF, mode)
    for j in range(N):
        struct.pack_into("<hhhB", w.body, 15 + 7 * j, 100 * j, targets[j], targets[j], 0)
    frame = w.finish(C.TELEMETRY, 15 + 7 * N)
    if CORRUPT_EVERY and cycle %% CORRUPT_EVERY == 0:
        frame[5] ^= 0x40  # a bit flipped on the line: a CRC error, and its seq is lost
    send(frame)
    text = b"truth %%d %%d" %% (cycle, true_us)
    w.body[0] = C.LOG_DEBUG
    w.body[1:1 + len(text)] = text
    send(w.finish(C.LOG, 1 + len(text)))

period_us = 1000000 // TELEMETRY_HZ if TELEMETRY_HZ else 0
next_t = time.ticks_us()
while True:
    while poller.poll(0 if period_us else 50):
        if inp.readinto(one) != 1:
            raise SystemExit
        if MUTE:
            if GARBAGE and one[0] == 0:
                out.write(GARBAGE)  # like a REPL echoing what it was sent
            continue
        if r.feed(one, 0, 1) >= 0:
            handle(r.msg_type, r.seq, memoryview(r.payload)[HEADER_SIZE:HEADER_SIZE + r.body_len])
    if MUTE:
        continue
    now = time.ticks_us()
    if period_us and time.ticks_diff(now, next_t) >= 0:
        if mode == C.MODE_CALIBRATE:
            raw_sample(now)
        else:
            telemetry(now)
        next_t = time.ticks_add(next_t, period_us)
    else:
        time.sleep_us(200)
'''


class FakeBoard:
    """Context manager: the board above, behind a pty reached through a stable symlink."""

    def __init__(self, tmp_path: Path, *, ppm: int = 0, period: int = 1 << 30, start: int = 0,
                 joints: int = 4, telemetry_hz: int = 100, garbage: bytes = b"",
                 proto_major: int = 1, corrupt_every: int = 0, mute: bool = False,
                 cal_zero=None, cal_dir=None, cal_ranges=None, cal_still: int = -1,
                 cal_weak: int = -1, cal_zero_s: float = 1.0):
        self.params = dict(ppm=ppm, period=period, start=start, joints=joints,
                           telemetry_hz=telemetry_hz, garbage=garbage, proto_major=proto_major,
                           corrupt_every=corrupt_every, mute=mute,
                           cal_zero=list(cal_zero or [0] * joints),
                           cal_dir=list(cal_dir or [1] * joints),
                           cal_ranges=[tuple(r) for r in (cal_ranges or [(-10, 90)] * joints)],
                           cal_still=cal_still, cal_weak=cal_weak, cal_zero_s=cal_zero_s)
        self.dir = Path(tmp_path)
        self.script = self.dir / "fakeboard.py"
        self.script.write_text(BOARD_SOURCE % self.params)
        self.port = str(self.dir / "ttyFAKE")
        self.proc: subprocess.Popen | None = None
        self._hold: int | None = None  # the host side's fd, held so the pty stays up
        self.stderr_text = ""

    def plug(self) -> None:
        """Start the board and point the port symlink at its pty."""
        master, slave = pty.openpty()
        tty.setraw(slave)
        env = dict(os.environ, MICROPYPATH=":".join(str(p) for p in BOARD_PATHS))
        self.proc = subprocess.Popen([str(MICROPYTHON), str(self.script)], stdin=master,
                                     stdout=master, stderr=subprocess.PIPE, env=env)
        os.close(master)
        self._hold = slave  # the host opens this side by path; the board has the other
        link = Path(self.port)
        tmp = link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(link)
        time.sleep(0.3)  # the interpreter starts up

    def received_targets(self) -> list[tuple[int, list[int]]]:
        """(true µs, targets) of every TARGETS the board got; call after unplug()."""
        out = []
        for line in self.stderr_text.splitlines():
            if line.startswith("T "):
                _, t, *values = line.split()
                out.append((int(t), [int(v) for v in values]))
        return out

    def unplug(self) -> None:
        """Pull the cable: the board dies and its pty goes away."""
        if self.proc is not None:
            self.proc.kill()
            self.stderr_text = self.proc.communicate()[1].decode(errors="replace")
            self.proc = None
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None
        Path(self.port).unlink(missing_ok=True)

    def __enter__(self) -> "FakeBoard":
        self.plug()
        return self

    def __exit__(self, *exc) -> None:
        self.unplug()
