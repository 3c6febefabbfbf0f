"""Timed points (TARGET_POINTS): the firmware plays action chunks at its loop rate.

Under the real MicroPython interpreter, the real firmware loop on the simulated rig (real
drivers, simulated devices, manual clock): chunks arrive as frames the board's own
FrameWriter builds (their times must be read off the board's clock as it runs), and the
goals of every cycle are read back. Then the host's side: NaN refused, past points dropped,
chunks cut into frames; and a round trip through the virtual board.
"""
from __future__ import annotations

import importlib.util
import json
import math
import time

import numpy as np
import pytest

from conftest import ROOT, run_micropython
from dexlink.hwconfig import HANDS
from dexlink.link import Link, LinkError
from dexlink.link.points import PointSender, check_goals, points_per_frame, to_cdeg
from dexproto import catalog as C
from dexproto.stream import make
from support.firmware_families import FAMILIES

SIM_BOARD = ROOT / "host" / "dexlink" / "sim" / "board"
JOINT = 5

# The rig in HOST mode and the host's senders: bench/points.py's, loaded under another name
# (as test_vrig_frames loads bench/vrig.py); then a way to print values back.
_spec = importlib.util.spec_from_file_location("bench_points", ROOT / "bench" / "points.py")
bench_points = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_points)
SETUP = r'''
def val(tag, v):
    print("VAL", tag, json.dumps(v))
fw.run(20)
'''


# Two overlapping chunks of a sine (amplitude 15 deg, 1 s period) at 50 Hz, the second
# offset by 1.5 deg (two predictions that disagree), replacing the first from its 9th
# point on; the goals of every cycle are recorded, with the shape of interpolation given.
OVERLAP = r'''
def play(shape):
    fw.points.shape = shape
    for i in range(n):
        jm.host[i] = jm.goal[i]
    heartbeat()
    fw.run(50)
    base = jm.goal[%(j)d]
    now = board_now()
    t0 = now + 20000
    def chunk(first, offset):
        rows = []
        times = []
        for i in range(16):
            t = t0 + (first + i) * 20000
            v = base + offset + int(1500 * math.sin(2 * math.pi * (t - t0) / 1000000))
            rows.append([v] * n)
            times.append(t)
        return times, rows
    ta, ra = chunk(0, 0)
    tb, rb = chunk(8, 150)
    send_points(ta[0], 20000, ra)
    log = []
    sent_b = False
    for c in range(400):
        if not sent_b and board_now() >= tb[0] - 19000:
            send_points(tb[0], 20000, rb)
            sent_b = True
        if c %% 50 == 0:
            heartbeat()  # the watchdog: fed as the link's keeper does
        fw.run(1)
        con.take()
        log.append([fw.sample_us, jm.host[%(j)d], jm.goal[%(j)d], jm.flags[%(j)d]])
    want = [[t, r[0]] for t, r in zip(ta[:8], ra[:8])] + [[t, r[0]] for t, r in zip(tb, rb)]
    return {"log": log, "want": want, "step": jm.step[%(j)d], "dropped": fw.points.dropped}
val("cubic", play(trajectory.SHAPE_CUBIC))
val("linear", play(trajectory.SHAPE_LINEAR))
val("stepwise", play(trajectory.SHAPE_STEP))
val("viper", trajectory.VIPER)
''' % {"j": JOINT}


def _rig_cfg():
    return FAMILIES["as5600+feetech"]()


def run_script(body: str) -> dict:
    proc = run_micropython(bench_points.rig_script(_rig_cfg(), SETUP + body), paths=[SIM_BOARD],
                           timeout=120)
    values = {}
    for line in proc.stdout.decode().splitlines():
        if line.startswith("VAL "):
            _, tag, rest = line.split(" ", 2)
            values[tag] = json.loads(rest)
    return values


@pytest.fixture(scope="module")
def overlap():
    return run_script(OVERLAP)


def _steps(log):
    return [abs(b[1] - a[1]) for a, b in zip(log, log[1:])]


@pytest.mark.micropython
def test_goals_are_continuous_across_overlapping_chunks(overlap):
    """Interpolated (cubic, and linear), the host target moves less per cycle than the
    speed limit allows, the chunk boundary included: the slew limit never has to act and
    the goal is the target. Stepwise, the same points jump past the limit."""
    assert overlap["viper"] is True
    for shape in ("cubic", "linear"):
        r = overlap[shape]
        steps = _steps(r["log"])
        assert max(steps) <= r["step"], (shape, max(steps), r["step"])
        assert all(host == goal for _, host, goal, _ in r["log"]), shape
        assert not any(flags & C.ST_LIMITED for *_, flags in r["log"]), shape
    stepwise = overlap["stepwise"]
    assert max(_steps(stepwise["log"])) > 4 * stepwise["step"]
    assert any(flags & C.ST_LIMITED for *_, flags in stepwise["log"])


@pytest.mark.micropython
def test_goals_reach_each_point_at_its_time(overlap):
    """At the cycle that starts at a point's time the goal is that point's (within what the
    goal moves in the 1 ms cycle); the second chunk's points replace the first's."""
    for shape in ("cubic", "linear"):
        log = overlap[shape]["log"]
        hits = 0
        for t, want in overlap[shape]["want"]:
            if not log[0][0] <= t <= log[-1][0]:
                continue
            at, got, _, _ = min(log, key=lambda row: abs(row[0] - t))
            # the cycle nearest the point's time: off by what the goal moves meanwhile
            assert abs(got - want) <= 1 + abs(at - t) * 15 // 1000, (shape, t, want, at, got)
            hits += 1
        assert hits >= 18, shape


SAFETY = r'''
def frames():
    from dexproto.frame import FrameReader
    raw = con.take()
    r = FrameReader()
    out = []
    at = 0
    while True:
        at = r.feed(raw, at, len(raw))
        if at < 0:
            return out
        p = r.payload
        out.append([p[0]] + list(p[3:3 + r.body_len]))
def nacks():
    return [[f[1], f[4], f[5]] for f in frames() if f[0] == C.NACK]
fw.run(5)
con.take()
now = board_now()
row = [jm.goal[i] for i in range(n)]
# points already past on arrival are dropped
send_points(now - 50000, 20000, [row] * 5)
fw.run(1)
val("past", [fw.points.dropped, fw.points.count, nacks()])
def targets(values):
    struct.pack_into("<" + "h" * n, host.body, 0, *values)
    con.feed(bytes(host.finish(C.TARGETS, 2 * n)))
# the queue is bounded: 15 + 15 points and the anchor fit, 15 more do not
targets(row)  # TARGETS empty the queue
fw.run(1)
con.take()
t0 = board_now() + 10000
send_points(t0, 10000, [row] * 15)
send_points(t0 + 150000, 10000, [row] * 15, flags=0)
send_points(t0 + 300000, 10000, [row] * 15, flags=0)
fw.run(3)  # (a cycle reads at most 4 x 256 bytes)
val("overflow", [fw.points.count, fw.points.refused, nacks()])
fw.run(50)
val("still_running", fw.cycles)
# refused: bad step, flags, times, length; an append that goes back
t0 = board_now() + 10000
send_points(t0, 0, [row])
send_points(t0, C.POINTS_MAX_STEP_US + 1, [row])
send_points(t0, 10000, [row], flags=0x80)
send_points(t0 + 5000000, 10000, [row])
send_points(1 << 30, 10000, [row])
send_points(t0, 10000, [row], extra=2)
send_points(t0, 10000, [row], flags=0)
send_points(t0 + 3000000, 10000, [row], flags=0)
fw.run(1)
val("refused", nacks())
# joint limits: a point past the joint's range is clipped to it
hi = jm.hi[%(j)d]
far = list(row)
far[%(j)d] = 32000
send_points(board_now() + 5000, 5000, [far, far])
trace = []
for c in range(60):
    fw.run(1)
    trace.append([jm.host[%(j)d], jm.goal[%(j)d], jm.flags[%(j)d]])
val("clipped", [trace, hi, jm.step[%(j)d]])
# TARGETS take over from points
send_points(board_now() + 50000, 50000, [row] * 4)
fw.run(1)
before = fw.points.count
targets(row)
fw.run(1)
val("targets", [before, fw.points.count])
fw.run(100)  # the goals slew back to row
# the watchdog: a chunk longer than its timeout, and then silence; the goals stop where
# they were when it tripped, and stay
start = jm.goal[%(j)d]
row = [jm.goal[i] for i in range(n)]
rows = [[v + 40 * k if i == %(j)d else v for i, v in enumerate(row)] for k in range(15)]
send_points(board_now() + 20000, 40000, rows)
fw.run(1)
con.take()
trace = []
for c in range(600):
    fw.run(1)
    trace.append(jm.goal[%(j)d])
faults = [f for f in frames() if f[0] == C.FAULT]
val("watchdog", [start, trace, fw.watchdog_tripped, fw.watchdog_ms, fw.points.count,
                 [f[5] for f in faults]])
# outside HOST mode: refused
fw.set_mode(C.MODE_TELEOP)
send_points(board_now() + 10000, 10000, [row])
fw.run(1)
val("mode", nacks())
''' % {"j": JOINT}


@pytest.fixture(scope="module")
def safety():
    return run_script(SAFETY)


@pytest.mark.micropython
def test_points_already_past_are_dropped(safety):
    dropped, count, nacks = safety["past"]
    assert dropped == 3  # now - 50, - 30, - 10 ms
    assert count == 3  # the anchor (goals now) and the two points ahead
    assert nacks == []


@pytest.mark.micropython
def test_a_full_queue_refuses_the_chunk_and_the_loop_goes_on(safety):
    count, refused, nacks = safety["overflow"]
    assert count == 31 and refused == 1
    assert nacks == [[C.TARGET_POINTS, C.ERR_BUSY, C.NO_JOINT]]
    assert safety["still_running"] > 300


@pytest.mark.micropython
def test_bad_chunks_are_nacked_with_the_field(safety):
    t = C.TARGET_POINTS
    assert safety["refused"] == [
        [t, C.ERR_BAD_VALUE, 1],  # step_us 0
        [t, C.ERR_BAD_VALUE, 1],  # step_us over a second
        [t, C.ERR_BAD_VALUE, 2],  # unknown flag
        [t, C.ERR_BAD_VALUE, 0],  # 5 s ahead
        [t, C.ERR_BAD_VALUE, 0],  # not a board time (2^30)
        [t, C.ERR_BAD_LENGTH, C.NO_JOINT],  # not whole points
        [t, C.ERR_BAD_VALUE, 0],  # an append before the queued points
        [t, C.ERR_BAD_VALUE, 0],  # an append seconds after them
    ]
    assert safety["mode"] == [[t, C.ERR_BAD_MODE, C.NO_JOINT]]


@pytest.mark.micropython
def test_joint_limits_targets_and_watchdog_still_rule(safety):
    trace, hi, step = safety["clipped"]
    assert trace[-1][0] == hi  # the target: the point, clipped to the joint's range
    goals = [goal for _, goal, _ in trace]
    assert max(abs(b - a) for a, b in zip(goals, goals[1:])) == step  # then the speed limit
    assert any(flags & C.ST_LIMITED for *_, flags in trace)
    before, after = safety["targets"]
    assert before > 0 and after == 0
    start, trace, tripped, watchdog_ms, count, faults = safety["watchdog"]
    assert tripped and count == 0 and faults == [C.FAULT_WATCHDOG]
    # The goal moved along the chunk until the watchdog tripped, then held still.
    assert trace[100] > start
    held = trace[watchdog_ms + 20:]
    assert len(set(held)) == 1 and held[0] < start + 40 * 14


RANDOM = r'''
import random
random.seed(11)
fw.run(5)
worst = 0
outside = 0
prev = [jm.goal[i] for i in range(n)]
for c in range(3000):
    if random.randrange(8) == 0:
        k = random.randint(1, PER_FRAME)
        rows = [[random.randint(-6000, 6000) for i in range(n)] for r in range(k)]
        t0 = board_now() + random.randint(-100000, 300000)
        send_points(t0, random.choice((1, 7, 1000, 20000, 100000, random.randint(1, 200000))), rows,
               flags=random.choice((0, C.POINTS_REPLACE)))
    fw.run(1)
    con.take()
    for i in range(n):
        worst = max(worst, abs(jm.goal[i] - prev[i]) - jm.step[i])
        outside += not jm.lo[i] <= jm.host[i] <= jm.hi[i]
        prev[i] = jm.goal[i]
val("random", [worst, outside, fw.cycles, fw.points.count <= trajectory.CAPACITY])
'''


@pytest.mark.micropython
def test_random_chunks_never_break_the_loop_or_the_limits():
    """3000 cycles of random chunks (times past and ahead, steps of 1 us to 200 ms,
    appends and replacements, goals beyond the ranges): the loop runs on, every goal
    moves within its speed limit and every target stays in its joint's range."""
    worst, outside, cycles, bounded = run_script(RANDOM)["random"]
    assert worst <= 0 and outside == 0 and bounded
    assert cycles >= 3000


BLEND = r'''
import random
from array import array
random.seed(5)
bad = []
for trial in range(200):
    q = array("h", [random.randint(-32768, 32767) for i in range(4 * n)])
    k = array("h", [random.randrange(4) * n, random.randrange(4) * n, random.randrange(4) * n,
                    random.randrange(4) * n, random.randint(0, 4096), random.randint(0, 607),
                    -random.randint(0, 607), random.randint(0, 4096), random.randint(0, 4096), n])
    outs = []
    for f in (trajectory.blend_py, trajectory._blend_viper):
        out = array("h", [0] * n)
        f(q, k, out)
        outs.append(list(out))
    if outs[0] != outs[1]:
        bad.append(trial)
val("blend", bad)
'''


@pytest.mark.micropython
def test_viper_blend_equals_the_plain_one():
    assert run_script(BLEND)["blend"] == []


@pytest.mark.micropython
def test_every_function_keeps_its_frame_on_the_stack():
    """sample() and what it calls every cycle, taking a chunk, and the plain blend (a port
    without viper runs it) fit MicroPython's on-stack frame: no hidden heap frame."""
    from test_vrig_frames import vrig
    assert vrig.heap_frames(ROOT / "firmware" / "dexfw" / "trajectory.py") == []


# ---- the host's side -----------------------------------------------------------------
def test_nan_or_infinite_goals_are_refused_naming_point_and_joint():
    goals = np.zeros((4, 16))
    goals[2, 7] = np.nan
    with pytest.raises(ValueError, match=r"point 2, joint 7 \(j7\) is nan"):
        check_goals(goals, 16, ["j%d" % i for i in range(16)])
    goals[2, 7] = np.inf
    with pytest.raises(ValueError, match="point 2, joint 7 is inf"):
        check_goals(goals, 16)
    with pytest.raises(ValueError, match=r"shape \(4, 15\), expected \(points, 16\)"):
        check_goals(np.zeros((4, 15)), 16)
    with pytest.raises(ValueError, match="at most 31"):
        check_goals(np.zeros((40, 16)), 16)


def test_goals_become_cdeg_clipped_to_the_session_ranges():
    got = to_cdeg(np.array([[12.345, -400.0, 400.0]]), {0: (-1000, 1000)})
    assert got.tolist() == [[1000, -32767, 32767]]
    assert to_cdeg(np.array([[1.234, -1.236, 0.0]]), {}).tolist() == [[123, -124, 0]]


def test_chunks_drop_past_points_and_split_into_frames():
    sender = PointSender()
    cdeg = np.arange(20 * 16).reshape(20, 16) - 100
    # board now = 1_000_000 + 25_000: the first three points (0, 10, 20 ms) are past
    msgs = sender.messages(1_000_000, 10_000, cdeg, 1_025_000, 1 << 30, replace=True)
    per = points_per_frame(16)
    assert per == 15
    assert [len(m.items) // 16 for m in msgs] == [15, 2]
    assert [m.flags for m in msgs] == [C.POINTS_REPLACE, 0]
    assert [m.t0_us for m in msgs] == [1_030_000, 1_030_000 + 15 * 10_000]
    assert [v for m in msgs for (v,) in m.items] == cdeg[3:].ravel().tolist()
    # board times wrap on the wire like the board's ticks
    (m,) = sender.messages((1 << 30) + 5, 10, cdeg[:1], 1 << 30, 1 << 30, replace=False)
    assert m.t0_us == 5 and m.flags == 0
    # all past: nothing sent, every point counted
    assert sender.messages(0, 10, cdeg[:4], 10_000, 1 << 30, True) == []
    # too far ahead: a time from another clock
    with pytest.raises(ValueError, match="board_t0_us: 5000 ms ahead of the board's clock"):
        sender.messages(5_000_000, 10, cdeg[:4], 0, 1 << 30, True)
    assert sender.counts() == {"point_chunks": 3, "point_frames": 3, "points_sent": 18,
                               "points_dropped": 7}


def test_link_refuses_points_for_an_older_board_and_nan_first():
    link = Link("loop://")
    with pytest.raises(LinkError, match="not connected"):
        link.send_points(0, 10_000, np.zeros((2, 16)))
    link.board = make("HELLO_REPLY", proto_major=1, proto_minor=1, fw_major=0, fw_minor=1,
                      fw_patch=0, n_joints=16, loop_hz=1000, capabilities=0,
                      telemetry_decimation=10, config_crc=0)
    assert not link.takes_points
    with pytest.raises(LinkError, match=r"protocol 1\.1; timed points \(TARGET_POINTS\) need 1\.2"):
        link.send_points(0, 10_000, np.zeros((2, 16)))
    link.board.fields["proto_minor"] = C.PROTOCOL_MINOR
    assert link.takes_points
    with pytest.raises(ValueError, match="point 1, joint 3 is nan"):
        link.send_points(0, 10_000, np.array([[0.0] * 16, [0.0] * 3 + [math.nan] + [0.0] * 12]))
    with pytest.raises(ValueError, match="step_us"):
        link.send_points(0, 0, np.zeros((2, 16)))
    with pytest.raises(LinkError, match="not synchronised"):
        link.send_points(0, 10_000, np.zeros((2, 16)))


# ---- a round trip through the virtual board ------------------------------------------
@pytest.mark.vboard
def test_virtual_board_plays_points_sent_by_the_link(tmp_path):
    """HOST mode on the virtual board (real firmware, real pty): a chunk of points timed on
    the board's clock moves the hand's present positions to the chunk's last point."""
    from dexlink.sim import VirtualBoard
    from dexlink.sim.flashing import flash_virtual
    with VirtualBoard(tmp_path / "fs") as board:
        flash_virtual(board, HANDS / "iso16.toml")
        with Link(board.port) as link:
            assert link.takes_points
            tele = link.subscribe("TELEMETRY")
            link.set_mode(C.MODE_HOST)
            deadline = time.monotonic() + 5
            while not link.clock.synced and time.monotonic() < deadline:
                time.sleep(0.02)
            joint = link.get_joint(JOINT)
            m = tele.get(timeout=2)
            start = np.array(m.column("present_cdeg"), dtype=float) / 100
            end = (joint.min_cdeg + joint.max_cdeg) / 200 + 10  # mid-range, and a bit
            goals = start + (end - start) * np.linspace(0, 1, 16)[:, None]  # over 300 ms
            assert abs(end - start[JOINT]) > 5  # the hand has somewhere to go
            t0 = link.board_time_us() + 50_000
            assert link.send_points(t0, 20_000, goals) == 16
            end = time.monotonic() + 5
            got = None
            while time.monotonic() < end:
                m = tele.get(timeout=0.5)
                if m is not None and abs(m.column("present_cdeg")[JOINT] / 100
                                         - goals[-1, JOINT]) < 0.5:
                    got = m
                    break
            assert got is not None, "the hand never reached the chunk's last point"
            assert got.column("goal_cdeg")[JOINT] == round(goals[-1, JOINT] * 100)
            snap = link.stats_snapshot()
            assert snap["points_sent"] == 16 and snap["points_dropped"] == 0
            link.set_mode(C.MODE_IDLE)
