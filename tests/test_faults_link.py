"""Faults on the virtual board (real firmware, real interpreter, real pty), seen through
dexlink.link.Link: line noise both ways, and the device / host faults that must reach
the host as FAULTs naming the joint, with the hand doing what the firmware promises.

The line-noise session runs DEXLINK_NOISE_SECONDS (default 60) at DEXLINK_NOISE_RATE per
byte for each kind of damage (default 5e-4: dropped, garbled, bit-flipped, inserted) and
prints its figures (pytest -s shows them).
"""
from __future__ import annotations

import os
import random
import time

import pytest

from dexlink.hwconfig import HANDS, compile_config
from dexlink.link import Link, NackError, RequestTimeout
from dexlink.sim import VirtualBoard
from dexlink.sim.flashing import flash_virtual
from dexlink.sim.line import LineNoise
from dexproto import catalog as C
from dexproto.stream import StreamDecoder, encode, make
from support.waiting import wait_for

pytestmark = pytest.mark.vboard

HAND = HANDS / "iso16.toml"
CFG = compile_config(HAND, "virtual")
JOINTS = [j["name"] for j in CFG["joints"]]
MOTORS = [m["name"] for m in CFG["motors"]]
DECIMATION = CFG["loop"]["telemetry_decimation"]
NOISE_SECONDS = float(os.environ.get("DEXLINK_NOISE_SECONDS", "60"))
NOISE_RATE = float(os.environ.get("DEXLINK_NOISE_RATE", "5e-4"))
DROP_FIELDS = ("rx_bad_cobs", "rx_bad_crc", "rx_oversize", "rx_unknown", "rx_bad_length",
               "rx_no_terminator")


@pytest.fixture(scope="module")
def vboard():
    with VirtualBoard(seed=7) as board:
        flash_virtual(board, HAND)
        yield board


@pytest.fixture
def link(vboard):
    """A session with the hand's names; every fault cleared afterwards."""
    with Link(vboard.port) as link:
        link.use_names(JOINTS, MOTORS)
        yield link
        vboard.inject("clear")
        link.set_mode(C.MODE_IDLE)


def test_line_noise_accounting_matches_a_receiver():
    """The injector's frame account is exact: a receiver (the host's decoder, which counts
    as the board's FrameReader does) decodes `delivered` frames and drops `bad_chunks`."""
    rnd = random.Random(3)
    for trial in range(16):
        noise = LineNoise(trial)
        rates = [rnd.choice([0, 1e-3, 1e-2, 5e-2]) for _ in range(4)]
        frames = [encode(make("TARGETS", items=[(rnd.randint(-3000, 3000),)] * rnd.randint(0, 20)),
                         seq=i) for i in range(800)]
        stream = b"".join(f + (b"\x00" if rnd.random() < 0.05 else b"") for f in frames)
        decoder, got, i = StreamDecoder(), [], 0
        while i < len(stream):
            if rnd.random() < 0.1:  # noise comes and goes (a dead line too), mid-frame
                noise.set(*(rates if rnd.random() < 0.8 else (1.0, 0, 0, 0)))
            elif rnd.random() < 0.05:
                noise.set()
            k = rnd.randint(1, 300)
            got += decoder.feed(noise.apply(stream[i:i + k]))
            i += k
        noise.set()
        got += decoder.feed(noise.apply(b"\x00"))
        r = noise.report()
        assert r["frames"] == len(frames) and r["frames"] == r["delivered"] + r["damaged"]
        assert len(got) == r["delivered"], (rates, r)
        assert [m.seq for m in got] == sorted(m.seq for m in got)
        assert decoder.dropped == r["bad_chunks"], (rates, r, decoder.drops)
        if any(rates):
            assert r["damaged"] > 0


def _drops(stats) -> int:
    return sum(getattr(stats, f) for f in DROP_FIELDS)


def _between(messages, first, last):
    i = next(k for k, m in enumerate(messages) if m is first)
    j = next(k for k, m in enumerate(messages) if m is last)
    return messages[i + 1:j]


class CommandDriver:
    """Drives SET_JOINT / SET_CONFIG / SET_MODE requests and remembers what it asked for."""

    def __init__(self, link):
        self.link = link
        self.issued = self.answered = self.timed_out = 0
        self.joint_speed = {}  # joint -> the last max_speed_cdeg_per_ms asked
        self.watchdog_ms = None
        self.k = 0

    def _do(self, fn, *args, **kw):
        self.issued += 1
        try:
            fn(*args, **kw)
            self.answered += 1
            return True
        except RequestTimeout:
            self.timed_out += 1
            return False

    def next(self):
        self.k += 1
        kind = self.k % 3
        if kind == 0:
            j = self.k % len(JOINTS)
            c = CFG["joints"][j]
            speed = 20 + self.k % 40
            self._do(self.link.set_joint, j, zero_turn16=c["zero_turn16"], direction=c["direction"],
                     scale_q12=c["scale_q12"], min_cdeg=c["min_cdeg"], max_cdeg=c["max_cdeg"],
                     max_speed_cdeg_per_ms=speed)
            self.joint_speed[j] = speed  # applied or not, it may have been: checked at the end
        elif kind == 1:
            self.watchdog_ms = 400 + self.k % 100
            self._do(self.link.set_config, 1000, DECIMATION, self.watchdog_ms)
        else:
            self._do(self.link.set_mode, C.MODE_HOST)


def test_line_noise_both_ways(vboard):
    """Random bytes, bit flips, garbled and dropped bytes both ways for NOISE_SECONDS: both
    sides live on; every damaged frame is counted (host drops, board STATS drops) exactly
    as the injector's account says; every undamaged frame is delivered (sequence and
    telemetry cycle gaps are damaged frames only); no command is applied twice (STATS
    cmd_applied never exceeds what was issued; retries after a lost ACK are re-ACKed)."""
    # No TIME_SYNC after the first: at the two counting points nothing may be in flight
    # towards the board (HEARTBEATs stop with HOST mode).
    with Link(vboard.port, sync_s=1e6) as link:
        everything = link.subscribe(*C.BY_NAME, maxsize=10_000_000)
        link.set_config(1000, DECIMATION, 500)
        link.set_mode(C.MODE_IDLE)
        time.sleep(0.2)
        s1 = link.get_stats()
        in1, out1 = vboard.to_board.report(), vboard.to_host.report()
        host1 = link.stats_snapshot()
        retries1 = link.stats.retries
        driver = CommandDriver(link)
        driver._do(link.set_mode, C.MODE_HOST)

        vboard.inject("line_noise", drop_rate=NOISE_RATE, garbage_rate=NOISE_RATE,
                      flip_rate=NOISE_RATE, insert_rate=NOISE_RATE, direction="both")
        end = time.monotonic() + NOISE_SECONDS
        next_command = 0.0
        t = 0
        while time.monotonic() < end:
            t += 1
            link.send_targets([(t * 7) % 2000 - 500] * len(JOINTS))
            if time.monotonic() >= next_command:
                driver.next()
                next_command = time.monotonic() + 0.05
            time.sleep(0.01)
        vboard.inject("line_noise", direction="both")  # all rates 0: off

        driver._do(link.set_mode, C.MODE_IDLE)
        time.sleep(0.3)
        s2 = link.get_stats()
        in2, out2 = vboard.to_board.report(), vboard.to_host.report()
        time.sleep(0.1)
        host2 = link.stats_snapshot()
        final = {j: link.get_joint(j) for j in driver.joint_speed}
        config = link.get_config()
        retries = link.stats.retries - retries1
    messages = everything.drain()
    assert everything.overflows == 0

    # board -> host: by the board's sequence numbers, between the two STATS replies
    window = _between(messages, s1, s2)
    sent = (s2.seq - s1.seq - 1) & 0xFFFF
    host_lost = sent - len(window)
    host_damaged = out2["damaged"] - out1["damaged"]
    host_drops = host2["dropped"] - host1["dropped"]
    assert s2.tx_dropped == s1.tx_dropped and vboard.stats["host_overflow"] == 0
    assert host_lost == host_damaged, "frames lost %d, damaged %d" % (host_lost, host_damaged)
    assert host_drops == out2["bad_chunks"] - out1["bad_chunks"]
    seq_gaps = [(b.seq - a.seq - 1) & 0xFFFF for a, b in zip([s1] + window, window + [s2])]
    assert sum(seq_gaps) == host_lost
    # telemetry: each missing cycle lies in a gap of the sequence numbers, and no more
    # telemetry is missing than frames were lost
    missing_telemetry = 0
    last = None
    for i, m in enumerate(window):
        if m.name != "TELEMETRY":
            continue
        if last is not None:
            missing = (m.cycle - window[last].cycle) // DECIMATION - 1
            assert missing >= 0 and (m.cycle - window[last].cycle) % DECIMATION == 0
            if missing:
                assert sum(seq_gaps[last + 1:i + 1]) >= missing
            missing_telemetry += missing
        last = i
    assert missing_telemetry <= host_lost

    # host -> board: the board's STATS against what the injector did to the host's frames
    board_rx = s2.rx_frames - s1.rx_frames
    board_drops = _drops(s2) - _drops(s1)
    to_board_frames = in2["frames"] - in1["frames"]
    board_damaged = in2["damaged"] - in1["damaged"]
    assert board_rx == to_board_frames - board_damaged
    assert board_drops == in2["bad_chunks"] - in1["bad_chunks"]

    # commands: none applied twice; the board ends where the last command put it
    applied = s2.cmd_applied - s1.cmd_applied
    repeats = s2.cmd_repeats - s1.cmd_repeats
    assert driver.answered <= applied <= driver.issued
    assert repeats <= retries
    for j, speed in final.items():
        assert speed.max_speed_cdeg_per_ms == driver.joint_speed[j], JOINTS[j]
    assert config.watchdog_ms == driver.watchdog_ms
    assert host_damaged > 0 and board_damaged > 0, "the noise did nothing"
    print("\nline noise %.0e/byte x4 kinds, %.0f s: board->host %d frames, %d damaged "
          "(%d lost by seq, %d drops counted, %d telemetry missing); host->board %d frames, "
          "%d damaged, %d delivered, %d drops counted (STATS); commands %d issued, %d answered, "
          "%d applied, %d host retries, %d re-ACKed without applying, %d timed out; "
          "bytes to board: %s; to host: %s"
          % (NOISE_RATE, NOISE_SECONDS, sent, host_damaged, host_lost, host_drops,
             missing_telemetry, to_board_frames, board_damaged, board_rx, board_drops,
             driver.issued, driver.answered, applied, retries, repeats, driver.timed_out,
             {k: in2[k] - in1[k] for k in ("dropped", "garbled", "flipped", "inserted")},
             {k: out2[k] - out1[k] for k in ("dropped", "garbled", "flipped", "inserted")}))


# ---- device and host faults -------------------------------------------------------------

def _fault(faults, code, timeout=3.0):
    return wait_for(faults, lambda m: m.name == "FAULT" and m.code == code, timeout)


def _telemetry(sub, n, pred=lambda m: True, timeout=3.0):
    """The next n telemetry frames satisfying pred (fewer if they do not come)."""
    out = []
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        m = wait_for(sub, lambda m: m.name == "TELEMETRY" and pred(m), end - time.monotonic())
        if m is not None:
            out.append(m)
    return out


def test_magnet_lost_holds_the_joint_and_names_it(link, vboard):
    sub = link.subscribe("TELEMETRY", "FAULT")
    link.set_mode(C.MODE_TELEOP)
    j = 3
    vboard.inject("magnet_missing", joint=j)
    f = _fault(sub, C.FAULT_MAGNET)
    assert f is not None and f.joint == j
    assert f.where == "joint %s (%d)" % (JOINTS[j], j)
    assert JOINTS[j] in f.description and "magnet" in f.description
    held = _telemetry(sub, 30, lambda m: m.column("status")[j] & C.ST_MAGNET_MISSING)
    assert len(held) == 30
    assert all(m.column("status")[j] & C.ST_HELD for m in held)
    assert len({m.column("goal_cdeg")[j] for m in held}) == 1, "the joint's goal moved"
    others = {tuple(m.column("exo_cdeg")[:j] + m.column("exo_cdeg")[j + 1:]) for m in held}
    assert len(others) > 1, "the other joints stopped following the operator"
    assert all(m.mode == C.MODE_TELEOP for m in held)
    vboard.inject("magnet_missing", joint=j, on=False)
    assert _telemetry(sub, 1, lambda m: not m.column("status")[j] & C.ST_MAGNET_MISSING)


@pytest.mark.parametrize("fault, code, bit", [
    ("servo_silent", C.FAULT_SERVO_TIMEOUT, C.ST_SERVO_TIMEOUT),
    ("servo_bad_checksum", C.FAULT_SERVO_CHECKSUM, C.ST_SERVO_BAD_CHECKSUM),
])
def test_servo_fault_is_named_counted_and_never_stalls_the_loop(link, vboard, fault, code, bit):
    sub = link.subscribe("TELEMETRY", "FAULT")
    link.set_mode(C.MODE_TELEOP)
    before = link.get_stats()
    m = 5
    vboard.inject(fault, joint=m)
    f = _fault(sub, code)
    assert f is not None and f.joint == m
    assert f.where == "motor %s (%d)" % (MOTORS[m], m)
    flagged = _telemetry(sub, 20, lambda t: t.column("status")[m] & bit)
    assert len(flagged) == 20
    steps = [b.cycle - a.cycle for a, b in zip(flagged, flagged[1:])]
    assert all(s > 0 and s % DECIMATION == 0 for s in steps)  # the loop runs on
    assert all(t.mode == C.MODE_TELEOP for t in flagged)
    after = link.get_stats()
    field = "servo_timeouts" if code == C.FAULT_SERVO_TIMEOUT else "servo_bad_checksums"
    assert getattr(after, field) > getattr(before, field)
    vboard.inject(fault, joint=m, on=False)  # retried later: the servo comes back
    assert _telemetry(sub, 1, lambda t: not t.column("status")[m] & bit)


@pytest.mark.parametrize("action", [C.WATCHDOG_HOLD, C.WATCHDOG_TORQUE_OFF])
def test_watchdog_when_the_host_falls_silent(link, vboard, action):
    """HOST mode, and nothing more reaches the board (the host->board line dead): FAULT
    (watchdog), then hold (goals stay, torque on, HOST) or torque off (IDLE)."""
    sub = link.subscribe("TELEMETRY", "FAULT")
    link.set_config(1000, DECIMATION, 200, action)
    link.set_mode(C.MODE_HOST)
    link.send_targets([800] * len(JOINTS))
    assert _telemetry(sub, 1, lambda m: m.column("goal_cdeg")[4] == 800)
    vboard.inject("line_noise", drop_rate=1.0, direction="to_board")
    f = _fault(sub, C.FAULT_WATCHDOG)
    assert f is not None and f.joint == C.NO_JOINT and f.detail == 200 and f.where == ""
    after = _telemetry(sub, 20)
    assert len(after) == 20
    if action == C.WATCHDOG_HOLD:
        assert all(m.mode == C.MODE_HOST for m in after)
        assert len({tuple(m.column("goal_cdeg")) for m in after}) == 1, "goals moved"
    else:
        assert all(m.mode == C.MODE_IDLE for m in after)
    vboard.inject("line_noise", direction="to_board")  # the line is back
    if action == C.WATCHDOG_HOLD:  # the next TARGETS take over again
        link.send_targets([1200] * len(JOINTS))
        assert _telemetry(sub, 1, lambda m: m.column("goal_cdeg")[4] == 1200)
    link.set_config(1000, DECIMATION, CFG["loop"]["watchdog_ms"])


def test_estop_turns_torque_off(link, vboard):
    sub = link.subscribe("TELEMETRY", "FAULT")
    link.set_mode(C.MODE_TELEOP)
    assert _telemetry(sub, 1, lambda m: m.mode == C.MODE_TELEOP)
    link.estop()
    f = _fault(sub, C.FAULT_ESTOP)
    assert f is not None and f.joint == C.NO_JOINT and "e-stop" in f.description
    assert len(_telemetry(sub, 5, lambda m: m.mode == C.MODE_IDLE)) == 5


def test_out_of_range_config_is_refused_naming_the_field(link):
    """Through the link: the NACK's field index comes back as the field's name."""
    c = CFG["joints"][2]
    good = dict(zero_turn16=c["zero_turn16"], direction=c["direction"], scale_q12=c["scale_q12"],
                min_cdeg=c["min_cdeg"], max_cdeg=c["max_cdeg"], max_speed_cdeg_per_ms=36)
    before = link.get_joint(2)
    for fields, name in ((dict(good, min_cdeg=c["max_cdeg"]), "min_cdeg"),
                         (dict(good, max_speed_cdeg_per_ms=0), "max_speed_cdeg_per_ms"),
                         (dict(good, direction=3), "direction")):
        with pytest.raises(NackError) as e:
            link.set_joint(2, **fields)
        assert e.value.field == name and name in str(e.value) and "SET_JOINT" in str(e.value)
    with pytest.raises(NackError) as e:
        link.set_config(1000, DECIMATION, 5)
    assert e.value.field == "watchdog_ms" and "watchdog_ms" in str(e.value)
    assert link.get_joint(2).fields == before.fields  # nothing applied
