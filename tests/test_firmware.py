"""The firmware loop under the real MicroPython interpreter: mapping, modes, safety and
commands, driven through a BufferConsole (no pty) with frames the host encoder makes and
replies the host decoder reads.

The encoders and servos here are small in-test fakes (FAKEDRV) that the tests can set
directly; the drivers and the simulated devices are checked in their own suites.
"""
from __future__ import annotations

import json
import sys

import pytest

from conftest import ROOT, run_micropython
from dexlink.hwconfig import compile_config, dumps
from dexproto import catalog as C
from dexproto.stream import StreamDecoder, encode, make

sys.path.insert(0, str(ROOT / "firmware"))
from dexfw import mapping as pymapping  # noqa: E402  (CPython runs the same file)

pytestmark = pytest.mark.micropython

FAKEHAL = '''
from dexfw.bufconsole import BufferConsole as Console
MASK = 0x3FFFFFFF
now = [0]
auto = [7]  # every ticks_us() call moves the clock on this much
def ticks_us():
    now[0] = (now[0] + auto[0]) & MASK
    return now[0]
def ticks_diff(a, b):
    return ((a - b + 0x20000000) & MASK) - 0x20000000
def ticks_add(a, d):
    return (a + d) & MASK
def sleep_us(n):
    now[0] = (now[0] + n) & MASK
class Pin:
    OUT = 1
    def __init__(self, n, mode=0):
        self.n = n
class _Bus:
    def __init__(self, id, *pins):
        self.id = id
I2C = SPI = UART = _Bus
'''

FAKEDRV = '''
from array import array
class Enc:
    def __init__(self, bus, joints, **kw):
        self.joints = joints
        self.raw = array("H", [0] * len(joints))
        self.status = bytearray(len(joints))
    def sample(self, raw, status):
        j = self.joints
        for k in range(len(j)):
            raw[j[k]] = self.raw[k]
            status[j[k]] = self.status[k]
class Servo:
    def __init__(self, bus, joints, **kw):
        self.joints = joints
        n = len(joints)
        self.pos = array("h", [0] * n)
        self.fail = bytearray(n)
        self.on = False
        self.next = 0
    def torque(self, on):
        self.on = on
    def write_goals(self, goal):
        if self.on:
            j = self.joints
            for k in range(len(j)):
                self.pos[k] = goal[j[k]]
    def poll(self, present, status):
        k = self.next
        self.next = (k + 1) % len(self.joints)
        m = self.joints[k]
        status[m] = self.fail[k]
        if not self.fail[k]:
            present[m] = self.pos[k]
'''

PRELUDE = '''
import json, gc
import fakehal
from dexfw.bufconsole import BufferConsole
from dexfw.loop import Firmware
from dexfw import config, build, mapping
from dexproto import catalog as C
cfg = json.loads(%r)
config.check(cfg)
enc, srv = build.build(fakehal, cfg)
con = BufferConsole()
fw = Firmware(fakehal, con, cfg, enc, srv, 1234, b"virtual")
jm = fw.jm
def send(h):
    con.feed(bytes.fromhex(h))
def out(tag):
    print("TX", tag, con.take().hex())
def val(tag, v):
    print("VAL", tag, json.dumps(v))
def set_exo(i, raw, status=0):
    for e in enc:
        for k in range(len(e.joints)):
            if e.joints[k] == i:
                e.raw[k] = raw
                e.status[k] = status
def servo_of(m):
    for s in srv:
        for k in range(len(s.joints)):
            if s.joints[k] == m:
                return s, k
'''


def fake_config(hand="iso16", **loop):
    """A hand compiled for the virtual board, its drivers swapped for the in-test fakes."""
    cfg = compile_config(ROOT / "hardware" / "hands" / ("%s.toml" % hand), "virtual")
    cfg["loop"].update(loop)
    for g in cfg["encoders"]:
        g.update(module="fakedrv", cls="Enc", args={})
    for g in cfg["servos"]:
        g.update(module="fakedrv", cls="Servo", args={})
    return cfg


class Run:
    """What a firmware script printed: frames by tag (decoded by the host's decoder), values."""

    def __init__(self, stdout: str):
        self.frames: dict[str, list] = {}
        self.values: dict[str, object] = {}
        for line in stdout.splitlines():
            parts = line.split(" ", 2)
            if parts[0] == "TX":
                dec = StreamDecoder()
                self.frames[parts[1]] = dec.feed(bytes.fromhex(parts[2] if len(parts) > 2 else ""))
                assert dec.dropped == 0, "the firmware wrote a bad frame"
            elif parts[0] == "VAL":
                self.values[parts[1]] = json.loads(parts[2])

    def names(self, tag):
        return [m.name for m in self.frames[tag]]

    def only(self, tag, name):
        found = [m for m in self.frames[tag] if m.name == name]
        assert found, "no %s in %s: %s" % (name, tag, self.names(tag))
        return found


def run_fw(tmp_path, body: str, cfg=None) -> Run:
    (tmp_path / "fakehal.py").write_text(FAKEHAL)
    (tmp_path / "fakedrv.py").write_text(FAKEDRV)
    cfg = fake_config() if cfg is None else cfg
    proc = run_micropython(PRELUDE % dumps(cfg) + body, paths=[tmp_path])
    return Run(proc.stdout.decode())


def hexframe(name, seq=0, **kw) -> str:
    return encode(make(name, seq=seq, **kw)).hex()


# ---- mapping ---------------------------------------------------------------------------
MAPPING_CASES = [
    # zero, direction, scale_q12, lo, hi, raw -> cdeg
    (65500, 1, 4096, -9000, 9000, 20, 31),  # zero near the wrap: 56 turn16 past it
    (65500, 1, 4096, -9000, 9000, 65480, -11),  # just before the zero
    (10, 1, 4096, -9000, 9000, 65530, -9),  # the other side of the wrap
    (0, -1, 4096, -12000, 12000, 16384, -9000),  # a quarter turn, reversed
    (0, 1, 4096, -3000, 6000, 16384, 6000),  # clipped to the range
    (0, 1, 2048, -9000, 9000, 16384, 4500),  # scale 0.5
    (32768, 1, 4096, -18100, 18100, 0, -18000),  # half a turn: the wrap point
]


def test_mapping_on_cpython_matches_the_formula():
    """The reference (plain-Python) mapping: unwrap at the wrap, direction, scale, limits."""
    from array import array
    for zero, d, scale, lo, hi, raw, want in MAPPING_CASES:
        exo, flags = array("h", [0]), bytearray(1)
        pymapping.map_exo_py(array("H", [raw]), bytearray(1), array("H", [zero]),
                             array("h", [d * scale]), array("h", [lo]), array("h", [hi]),
                             exo, flags, 1)
        assert exo[0] == want, (zero, d, scale, raw)
        assert bool(flags[0] & C.ST_LIMITED) == (want in (lo, hi))


def test_mapping_viper_equals_python_under_micropython(tmp_path):
    """Viper and plain-Python mapping, coupling, packing and the present positions
    (servo frame back, unread marks) agree on many inputs, including zeros at the wrap,
    bad encoders, limits, negative coefficients, unknown positions, blind servos. (The
    slew limit's viper code is drive_slewed's: tests/test_kernels_fused.py.)"""
    body = '''
from array import array
import random
random.seed(3)
n = 24
def arr(t, vals): return array(t, vals)
class Joints:  # what map_exo_of reads of a JointMap
    pass
mism = []
cases = set()
for trial in range(40):
    raw = arr("H", [random.getrandbits(16) for i in range(n)])
    st = bytearray([random.choice((0, 0, 0, 1, 2, 4)) for i in range(n)])
    zeros = (0, 65535, 65500, 32768)
    zero = arr("H", [random.choice(zeros + (random.getrandbits(16),)) for i in range(n)])
    ds = arr("h", [random.choice((4096, -4096, 2048, -8192, 32767)) for i in range(n)])
    lo = arr("h", [-random.getrandbits(14) for i in range(n)])
    hi = arr("h", [random.getrandbits(14) for i in range(n)])
    # The viper sense kernel (map_exo_of: the calibration as its joint table, read from
    # a JointMap-like object) against the plain reference map_exo_py, then first_change.
    prev = bytearray([random.choice((0, 0, 0, 1, 2, 4)) for i in range(n)])
    exo = arr("h", [7] * n); fl = bytearray(n)
    mapping.map_exo_py(raw, st, zero, ds, lo, hi, exo, fl, n)
    want = (mapping.first_change_py(fl, prev, mapping.ENCODER_BAD, 0, n) + 1, list(exo),
            list(fl))
    joints = Joints()
    joints.n = n; joints.follow_exo = 0; joints.raw = raw; joints.enc_status = st
    joints.exo = arr("h", [7] * n); joints.flags = bytearray(n)
    joints.goal = arr("h", [0] * n); joints.target = arr("h", [0] * n)
    joints.jtab = arr("h", [])
    for i in range(n):
        z = zero[i] - 65536 if zero[i] >= 32768 else zero[i]  # int16, as set_joint keeps it
        joints.jtab.extend(arr("h", [z, ds[i], lo[i], hi[i]]))
    got = (mapping._map_exo_of_viper(joints, prev), list(joints.exo), list(joints.flags))
    if got != want: mism.append(("map", trial))
    cases.update(("held" if b & C.ST_HELD else "limited" if b & C.ST_LIMITED else "free")
                 for b in want[2])
    goal = arr("h", [random.getrandbits(15) - 16384 for i in range(n)])
    tgt = arr("h", [random.getrandbits(15) - 16384 for i in range(n)])
    res = []
    for f in (mapping.follow_py, mapping._follow_viper):
        t = arr("h", [0] * n); f(tgt, st, goal, t, n); res.append(list(t))
    if res[0] != res[1]: mism.append(("follow", trial))
    start = arr("H", [0, 3, 3, 5]); col = bytearray([0, 5, 23, 1, 2])
    coef = arr("h", [4096, -2048, 6144, 1, -4096]); b = arr("h", [100, -5, 0])
    q = arr("h", [random.getrandbits(15) - 16384 for i in range(n)])
    mtab = arr("h", [])  # per motor: b, lo, hi, direction, servo offset
    for i in range(3):
        mtab.extend(arr("h", [b[i], -random.getrandbits(15), random.getrandbits(15),
                              random.choice((1, -1)), random.getrandbits(12) - 2048]))
    res = []
    for f in (mapping.to_motors_py, mapping._to_motors_viper):
        m = arr("h", [0] * 3); sg = arr("h", [0] * 3)
        f(q, m, start, col, coef, mtab, sg, 3); res.append((list(m), list(sg)))
    if res[0] != res[1]: mism.append(("couple", trial))
    prev = bytearray([random.choice((0, 0, 1, 4)) for i in range(n)])
    res = [[f(st, prev, 7, s0, n) for s0 in (0, 5, n)]
           for f in (mapping.first_change_py, mapping._first_change_viper)]
    if res[0] != res[1]: mism.append(("first_change", trial))
    res = []
    for f in (mapping.pack_joints_py, mapping._pack_joints_viper):
        body = bytearray(300); end = f(body, 5, goal, tgt, q, st, st, n, 20)
        res.append((end, bytes(body)))
    if res[0] != res[1]: mism.append(("pack", trial))
    servo = arr("h", [random.choice((-32768, random.getrandbits(15) - 16384)) for i in range(n)])
    sign = arr("h", [random.choice((1, -1)) for i in range(n)])
    blind = bytearray([random.choice((0, 0, 1)) for i in range(n)])
    res = []
    for fs, fm in ((mapping.from_servo_py, mapping.mark_unread_py),
                   (mapping._from_servo_viper, mapping._mark_unread_viper)):
        pm = arr("h", [7] * n); rep = bytearray(n)
        u = fs(servo, sign, lo, pm, n); fm(st, pm, blind, rep, 0x10, n)
        res.append((u, list(pm), list(rep)))
    if res[0] != res[1]: mism.append(("present", trial))
val("viper", mapping.VIPER)
val("mismatch", mism)
val("cases", sorted(cases))
'''
    r = run_fw(tmp_path, body)
    assert r.values["viper"] is True
    assert r.values["mismatch"] == []
    assert r.values["cases"] == ["free", "held", "limited"]  # the mapping's cases were met


def test_coupling_motor_is_a_q_plus_b(tmp_path):
    """Tendon hand: motor goals = A.q + b (A in 1/4096), clipped, in the servo frame."""
    cfg = fake_config("tendon16")
    a, b = cfg["coupling"]["a_q12"], cfg["coupling"]["b_cdeg"]
    b[1] = 250
    body = '''
for i in range(jm.n):
    jm.goal[i] = (i * 331) %% 4000 - 1000
jm.drive()
val("motor", list(jm.motor))
val("goal", list(jm.goal))
'''
    r = run_fw(tmp_path, body % (), cfg)
    q = r.values["goal"]
    for m, row in enumerate(a):
        want = (sum(c * x for c, x in zip(row, q)) + 2048 >> 12) + b[m]
        lo, hi = cfg["motors"][m]["min_cdeg"], cfg["motors"][m]["max_cdeg"]
        assert r.values["motor"][m] == min(max(want, lo), hi)
    assert r.values["motor"][1] != r.values["goal"][1]  # the off-diagonal term acts


# ---- modes -----------------------------------------------------------------------------
def test_coupled_hand_starts_from_where_the_motors_are(tmp_path):
    """Tendon hand entering TELEOP: joint goals = A^-1 (present - b), so the motor goals
    written first are the motors' present positions (to rounding)."""
    body = '''
for m in range(jm.nm):
    s, k = servo_of(m)
    s.pos[k] = 500 + 37 * m
fw.run(40)
pos = [servo_of(m)[0].pos[servo_of(m)[1]] for m in range(jm.nm)]
fw.set_mode(C.MODE_TELEOP)
val("pos", pos); val("first", list(jm.servo_goal)); val("inv", jm.inverse is not None)
'''
    r = run_fw(tmp_path, body, fake_config("tendon16"))
    assert r.values["inv"] is True
    assert all(abs(a - b) <= 3 for a, b in zip(r.values["first"], r.values["pos"])), r.values


def test_teleop_starts_from_where_the_hand_is_and_slews(tmp_path):
    """Entering TELEOP: the first goal is the servo's present position, then goals move
    at most max_speed per cycle toward the exoskeleton; no joint jumps."""
    body = '''
s, k = servo_of(5)
s.pos[k] = 3000                       # the hand sits at 30 deg
set_exo(5, 0)                         # the exoskeleton reads -> some angle
fw.run(40)                            # IDLE: every servo polled at least once
goals = []
send(%r)
fw.run(1)
for c in range(200):
    goals.append(s.pos[k])
    fw.run(1)
val("goals", goals)
val("exo", jm.exo[5])
val("step", jm.step[5])
val("torque", s.on)
out("tx")
'''
    r = run_fw(tmp_path, body % hexframe("SET_MODE", seq=9, mode=C.MODE_TELEOP))
    goals, exo, step = r.values["goals"], r.values["exo"], r.values["step"]
    assert r.values["torque"] is True
    assert abs(goals[0] - 3000) <= step  # started where the hand was
    assert all(abs(b - a) <= step for a, b in zip(goals, goals[1:]))
    assert goals[-1] == exo != 3000
    ack = r.only("tx", "ACK")[0]
    assert (ack.acked_type, ack.acked_seq) == (C.SET_MODE, 9)


def test_mode_change_teleop_to_host_holds_then_follows_targets(tmp_path):
    body = '''
set_exo(2, 0)
fw.run(40)
fw.set_mode(C.MODE_TELEOP)
fw.run(300)
held = jm.goal[2]
send(%r)                              # SET_MODE HOST
fw.run(5)
after_switch = jm.goal[2]
send(%r)                              # TARGETS
fw.run(400)
val("held", held); val("after", after_switch); val("final", list(jm.goal)); val("mode", fw.mode)
out("tx")
'''
    targets = [(1000 + 100 * i,) for i in range(16)]
    r = run_fw(tmp_path, body % (hexframe("SET_MODE", seq=1, mode=C.MODE_HOST),
                                 hexframe("TARGETS", seq=2, items=targets)))
    assert r.values["after"] == r.values["held"]  # no jump at the switch
    assert r.values["mode"] == C.MODE_HOST
    cfg = fake_config()
    for i, (t,) in enumerate(targets):
        j = cfg["joints"][i]
        assert r.values["final"][i] == min(max(t, j["min_cdeg"]), j["max_cdeg"])
    assert [m.acked_type for m in r.only("tx", "ACK")] == [C.SET_MODE, C.TARGETS]


def test_set_mode_refused_until_the_hand_position_is_known(tmp_path):
    """No servo read back yet: entering TELEOP would have to guess, so NACK(busy)."""
    body = '''
send(%r)
fw.cycle(fakehal.ticks_us())
val("mode", fw.mode)
out("tx")
'''
    r = run_fw(tmp_path, body % hexframe("SET_MODE", seq=4, mode=C.MODE_TELEOP))
    nack = r.only("tx", "NACK")[0]
    assert (nack.acked_type, nack.error) == (C.SET_MODE, C.ERR_BUSY)
    assert r.values["mode"] == C.MODE_IDLE


def test_calibrate_streams_raw_samples(tmp_path):
    body = '''
set_exo(3, 12345)
send(%r)
fw.run(50)
out("tx")
'''
    r = run_fw(tmp_path, body % hexframe("SET_MODE", mode=C.MODE_CALIBRATE))
    raws = r.only("tx", "RAW_SAMPLE")
    assert len(raws) == 5  # decimation 10
    assert raws[-1].column("raw_turn16")[3] == 12345
    assert "TELEMETRY" not in r.names("tx")


# ---- safety ----------------------------------------------------------------------------
def test_host_watchdog_holds_and_faults(tmp_path):
    """Host silent past watchdog_ms in HOST mode: FAULT(watchdog), goals stop where they
    are (torque stays on); the next TARGETS resumes following."""
    body = '''
fw.run(40)
send(%r)
fw.run(1)
send(%r)
fw.run(20)                            # goals are on their way to the targets
before = list(jm.goal)
fakehal.sleep_us(300000)              # 300 ms of silence
fw.run(30)
after = list(jm.goal)
send(%r)
fw.run(30)
val("before", before); val("after", after); val("resumed", list(jm.goal))
val("mode", fw.mode); val("torque", srv[0].on)
out("tx")
'''
    cfg = fake_config(watchdog_ms=250)
    r = run_fw(tmp_path, body % (hexframe("SET_MODE", mode=C.MODE_HOST),
                                 hexframe("TARGETS", items=[(2000,)] * 16),
                                 hexframe("TARGETS", items=[(2000,)] * 16)), cfg)
    assert [f.code for f in r.only("tx", "FAULT")] == [C.FAULT_WATCHDOG]
    assert r.values["torque"] is True and r.values["mode"] == C.MODE_HOST
    assert r.values["after"] == r.values["before"] != [2000] * 16
    assert r.values["resumed"] != r.values["after"]


def test_host_watchdog_torque_off(tmp_path):
    body = '''
fw.run(40)
send(%r)
fw.run(1)
fakehal.auto[0] = 0
for c in range(10):
    fakehal.sleep_us(10000)
    fw.cycle(fakehal.ticks_us())
val("mode", fw.mode); val("torque", srv[0].on)
out("tx")
'''
    cfg = fake_config(watchdog_ms=50, watchdog_action=C.WATCHDOG_TORQUE_OFF)
    r = run_fw(tmp_path, body % hexframe("SET_MODE", mode=C.MODE_HOST), cfg)
    assert [f.code for f in r.only("tx", "FAULT")] == [C.FAULT_WATCHDOG]
    assert r.values == {"mode": C.MODE_IDLE, "torque": False}


def test_bad_magnet_holds_the_joint_and_flags_it(tmp_path):
    body = '''
for i in range(jm.n):
    set_exo(i, 1000)
fw.run(40)
fw.set_mode(C.MODE_TELEOP)
fw.run(200)
held = jm.goal[6]
set_exo(6, 9000, C.ST_MAGNET_MISSING)  # the magnet falls off; the raw value is garbage
set_exo(7, 9000)                      # a healthy joint moves on
con.take()
fw.run(200)
val("held", held); val("now", jm.goal[6]); val("other", [jm.goal[7], jm.exo[7]])
out("tx")
'''
    r = run_fw(tmp_path, body)
    assert r.values["now"] == r.values["held"]
    assert r.values["other"][0] == r.values["other"][1]
    fault = r.only("tx", "FAULT")[0]
    assert (fault.code, fault.joint) == (C.FAULT_MAGNET, 6)
    tel = r.only("tx", "TELEMETRY")[-1]
    status = tel.column("status")
    assert status[6] & C.ST_MAGNET_MISSING and status[6] & C.ST_HELD
    assert not status[7] & C.ST_HELD


def test_only_teleop_sets_the_targets_from_the_exoskeleton(tmp_path):
    """The sense step sets the targets in TELEOP (follow folded into it, issue 15): each
    target the exoskeleton's angle, a held joint's its goal, so the servos follow the
    exoskeleton; HOST (the watchdog holding), CALIBRATE and IDLE (after ESTOP) leave the
    targets as they were whatever the exoskeleton does."""
    body = '''
for i in range(jm.n):
    set_exo(i, 1000)
set_exo(5, 45000)                     # joint 5 (zero 49188, reversed): 23 deg, in range
fw.run(40)
send(%r)                              # SET_MODE TELEOP
fw.run(200)
set_exo(4, 3000)                      # joint 4 moves (9 to 16 deg)...
fw.run(1)
set_exo(4, 9000, C.ST_MAGNET_MISSING)  # ...and its magnet falls off: held, short of it
set_exo(5, 40000)                     # the operator moves (to 50 deg): the hand follows
fw.run(1)
val("teleop", [list(jm.target), list(jm.exo), list(jm.goal), [f & C.ST_HELD for f in jm.flags]])
fw.run(300)
s, k = servo_of(5)
val("teleop_end", [jm.goal[5], jm.exo[5], s.pos[k], jm.servo_goal[5]])
send(%r)                              # SET_MODE HOST, then no TARGETS: the watchdog holds
fw.run(1)
fakehal.sleep_us(300000)
set_exo(5, 36000)                     # the exoskeleton moves on: HOST does not follow it
fw.run(300)
val("host", [jm.goal[5], jm.exo[5], list(jm.target) == list(jm.goal), fw.watchdog_tripped])
send(%r)                              # SET_MODE CALIBRATE
fw.run(1)
before = list(jm.target)
set_exo(5, 34000)
fw.run(50)
val("calibrate", [before == list(jm.target), jm.exo[5] != before[5]])
send(%r)                              # SET_MODE TELEOP
fw.run(5)
send(%r)                              # ESTOP: IDLE
fw.run(1)
before = list(jm.target)
set_exo(5, 38000)
fw.run(50)
val("idle", [before == list(jm.target), jm.exo[5] != before[5], fw.mode])
'''
    r = run_fw(tmp_path, body % (hexframe("SET_MODE", seq=1, mode=C.MODE_TELEOP),
                                 hexframe("SET_MODE", seq=2, mode=C.MODE_HOST),
                                 hexframe("SET_MODE", seq=3, mode=C.MODE_CALIBRATE),
                                 hexframe("SET_MODE", seq=4, mode=C.MODE_TELEOP),
                                 hexframe("ESTOP", seq=5)), fake_config(watchdog_ms=250))
    target, exo, goal, held = r.values["teleop"]
    assert held[4] and not any(held[:4] + held[5:])
    assert target[4] == goal[4] != exo[4]  # held where it was driven, not at its last angle
    assert [t for i, t in enumerate(target) if i != 4] == [e for i, e in enumerate(exo) if i != 4]
    assert target[5] != goal[5]  # it moved this cycle: the goal is on its way
    g, e, pos, servo_goal = r.values["teleop_end"]
    assert g == e and pos == servo_goal  # the servo got there
    g, e, held_targets, tripped = r.values["host"]
    assert tripped and held_targets and g != e
    assert r.values["calibrate"] == [True, True]
    assert r.values["idle"] == [True, True, C.MODE_IDLE]


def test_estop_turns_torque_off_at_once(tmp_path):
    body = '''
fw.run(40)
fw.set_mode(C.MODE_TELEOP)
fw.run(20)
val("on_before", srv[0].on)
send(%r)
fw.cycle(fakehal.ticks_us())          # the very next cycle
val("on_after", srv[0].on); val("mode", fw.mode)
out("tx")
'''
    r = run_fw(tmp_path, body % hexframe("ESTOP", seq=77))
    assert r.values == {"on_before": True, "on_after": False, "mode": C.MODE_IDLE}
    assert [f.code for f in r.only("tx", "FAULT")] == [C.FAULT_ESTOP]
    assert r.only("tx", "ACK")[0].acked_seq == 77


def test_servo_timeouts_are_counted_and_faulted(tmp_path):
    body = '''
fw.run(40)
s, k = servo_of(4)
s.fail[k] = C.ST_SERVO_TIMEOUT
fw.run(40)
s.fail[k] = 0
fw.run(40)
s.fail[k] = C.ST_SERVO_BAD_CHECKSUM
fw.run(40)
send(%r)
fw.run(1)
out("tx")
'''
    r = run_fw(tmp_path, body % hexframe("GET_STATS"))
    faults = [(f.code, f.joint) for f in r.only("tx", "FAULT")]
    assert faults == [(C.FAULT_SERVO_TIMEOUT, 4), (C.FAULT_SERVO_CHECKSUM, 4)]
    stats = r.only("tx", "STATS")[0]
    assert (stats.servo_timeouts, stats.servo_bad_checksums) == (1, 1)
    tel = r.only("tx", "TELEMETRY")[-1]
    assert tel.column("status")[4] & C.ST_SERVO_BAD_CHECKSUM


# ---- commands and telemetry ------------------------------------------------------------
def test_hello_config_joint_stats_time_sync(tmp_path):
    frames = [hexframe("HELLO", seq=1, proto_major=C.PROTOCOL_MAJOR, proto_minor=0),
              hexframe("GET_CONFIG", seq=2),
              hexframe("GET_JOINT", seq=3, joint=5),
              hexframe("TIME_SYNC", seq=4, token=0xDEADBEEF),
              hexframe("HEARTBEAT", seq=5),
              hexframe("HELLO", seq=6, proto_major=C.PROTOCOL_MAJOR + 1, proto_minor=0),
              hexframe("GET_STATS", seq=7)]
    body = "send(%r)\nfw.run(3)\nout('tx')\n" % "".join(frames)
    r = run_fw(tmp_path, body)
    cfg = fake_config()
    hello = r.only("tx", "HELLO_REPLY")[0]
    assert (hello.n_joints, hello.loop_hz, hello.config_crc, hello.text) == (
        16, 1000, 1234, "virtual")
    assert hello.capabilities & C.CAP_VIPER
    conf = r.only("tx", "CONFIG")[0]
    assert (conf.loop_hz, conf.telemetry_decimation, conf.watchdog_ms) == (1000, 10, 250)
    jc = r.only("tx", "JOINT_CONFIG")[0]
    j = cfg["joints"][5]
    assert (jc.joint, jc.zero_turn16, jc.min_cdeg, jc.max_cdeg) == (
        5, j["zero_turn16"], j["min_cdeg"], j["max_cdeg"])
    ts = r.only("tx", "TIME_SYNC_REPLY")[0]
    assert ts.token == 0xDEADBEEF and 0 <= ts.tx_us - ts.rx_us < 10000
    nack = r.only("tx", "NACK")[0]
    assert (nack.acked_seq, nack.error) == (6, C.ERR_VERSION)
    assert nack.field == C.PROTOCOL_MAJOR  # the board's major version, for the host to name
    assert r.only("tx", "ACK")[0].acked_seq == 5
    stats = r.only("tx", "STATS")[0]
    assert stats.rx_frames == 7 and stats.cycles == 0  # all answered in the first cycle


def test_version_refusal_names_the_boards_major_and_the_session_goes_on(tmp_path):
    older = C.PROTOCOL_MAJOR - 1 if C.PROTOCOL_MAJOR > 0 else C.PROTOCOL_MAJOR + 1
    frames = [hexframe("HELLO", seq=9, proto_major=older, proto_minor=3),
              hexframe("HELLO", seq=10, proto_major=C.PROTOCOL_MAJOR, proto_minor=99)]
    r = run_fw(tmp_path, "send(%r)\nfw.run(1)\nout('tx')\n" % "".join(frames))
    assert r.names("tx")[:2] == ["NACK", "HELLO_REPLY"]
    nack = r.only("tx", "NACK")[0]
    assert (nack.acked_type, nack.acked_seq, nack.error, nack.field) == (
        C.HELLO, 9, C.ERR_VERSION, C.PROTOCOL_MAJOR)
    assert r.only("tx", "HELLO_REPLY")[0].proto_major == C.PROTOCOL_MAJOR


def test_stats_count_every_drop_reason_in_its_own_field(tmp_path):
    """One bad frame of each kind: each lands in the STATS field that frame.DROP_STATS_FIELDS
    names, the host decoder agrees on the reason, and no field is left out of the reply."""
    from dexproto import frame
    from dexproto.stream import frame_payload
    good = encode(make("HEARTBEAT", seq=1))
    bad = {
        "bad_cobs": b"\x05\x11\x22\x00",
        "bad_crc": good[:-3] + bytes([good[-3] ^ 0x40]) + good[-2:],
        "oversize": frame_payload(b"\x23" * (C.MAX_PAYLOAD + 1)),
        "unknown_type": frame_payload(b"\x7f\x01\x00"),
        "bad_length": frame_payload(b"\x0d\x01\x00\x55"),  # HEARTBEAT with a body
        "no_terminator": b"\x55" * (C.MAX_FRAME + 1) + b"\x00",
    }
    assert list(bad) == list(frame.DROP_NAMES)
    host = StreamDecoder()
    for reason, data in bad.items():
        assert host.feed(data) == [] and host.drops[reason] == 1, reason
    stream = b"".join(bad.values()) + good + encode(make("GET_STATS", seq=2))
    r = run_fw(tmp_path, "send(%r)\nfw.run(3)\nout('tx')\n" % stream.hex())
    stats = r.only("tx", "STATS")[0]
    assert [getattr(stats, f) for f in frame.DROP_STATS_FIELDS] == [1] * len(bad)
    assert stats.rx_frames == 2
    assert stats.tx_frames == r.names("tx").index("STATS")  # what went out before it


def test_out_of_range_config_is_nacked_with_the_field(tmp_path):
    frames = [hexframe("SET_CONFIG", seq=1, loop_hz=500, telemetry_decimation=0,
                       watchdog_ms=100, watchdog_action=0),
              hexframe("SET_JOINT", seq=2, joint=3, zero_turn16=0, direction=1, scale_q12=4096,
                       min_cdeg=500, max_cdeg=-500, max_speed_cdeg_per_ms=10),
              hexframe("SET_JOINT", seq=3, joint=40, zero_turn16=0, direction=1, scale_q12=4096,
                       min_cdeg=-500, max_cdeg=500, max_speed_cdeg_per_ms=10),
              hexframe("SET_JOINT", seq=4, joint=3, zero_turn16=100, direction=-1, scale_q12=4096,
                       min_cdeg=-500, max_cdeg=500, max_speed_cdeg_per_ms=10),
              hexframe("SET_CONFIG", seq=5, loop_hz=500, telemetry_decimation=5,
                       watchdog_ms=100, watchdog_action=1),
              hexframe("GET_JOINT", seq=6, joint=3),
              hexframe("GET_CONFIG", seq=7),
              hexframe("TELEMETRY", seq=8, cycle=0, board_us=0, cycle_us=0, worst_cycle_us=0,
                       overruns=0, mode=0)]
    r = run_fw(tmp_path, "send(%r)\nfw.run(2)\nout('tx')\n" % "".join(frames))
    nacks = [(m.acked_seq, m.error, m.field) for m in r.only("tx", "NACK")]
    assert nacks == [(1, C.ERR_BAD_VALUE, 1), (2, C.ERR_BAD_VALUE, 4), (3, C.ERR_BAD_VALUE, 0),
                     (8, C.ERR_UNKNOWN_TYPE, C.NO_JOINT)]
    assert [m.acked_seq for m in r.only("tx", "ACK")] == [4, 5]
    jc = r.only("tx", "JOINT_CONFIG")[0]
    assert (jc.zero_turn16, jc.direction, jc.min_cdeg) == (100, -1, -500)
    conf = r.only("tx", "CONFIG")[0]
    assert (conf.loop_hz, conf.telemetry_decimation, conf.watchdog_action) == (500, 5, 1)


def test_telemetry_every_nth_cycle_with_sampling_time(tmp_path):
    body = '''
fakehal.auto[0] = 0
times = []
for c in range(40):
    fakehal.sleep_us(1000)
    t = fakehal.ticks_us()
    times.append(t)
    fw.cycle(t)
val("times", times)
out("tx")
'''
    cfg = fake_config(telemetry_decimation=4)
    r = run_fw(tmp_path, body, cfg)
    tel = r.only("tx", "TELEMETRY")
    times = r.values["times"]
    assert [m.board_us for m in tel] == times[3::4]
    assert [m.cycle for m in tel] == list(range(4, 41, 4))
    assert len(tel[0].items) == 16


def test_servo_read_back_polls_at_most_500_times_a_second_and_goals_go_every_cycle(tmp_path):
    """At 1 kHz the servo buses are polled every other cycle (issue 15: a poll is a quarter
    of an RP2040's cycle), at 500 Hz and below every cycle; the goals go out every cycle."""
    body = '''
polls = [0]
writes = [0]
for s in srv:
    s.poll_real, s.write_real = s.poll, s.write_goals
    def poll(present, status, s=s):
        polls[0] += 1
        s.poll_real(present, status)
    def write_goals(goal, s=s):
        writes[0] += 1
        s.write_real(goal)
    s.poll, s.write_goals = poll, write_goals
for c in range(40):  # every servo read back once (one a poll)
    fw.cycle(fakehal.ticks_us())
val("teleop", fw.set_mode(C.MODE_TELEOP))
polls[0] = writes[0] = 0
for c in range(20):
    fw.cycle(fakehal.ticks_us())
val("at", [fw.hz, polls[0], writes[0]])
fw._set_loop((500, 10, 250, 0))
polls[0] = writes[0] = 0
for c in range(20):
    fw.cycle(fakehal.ticks_us())
val("at500", [fw.hz, polls[0], writes[0]])
'''
    r = run_fw(tmp_path, body)
    assert r.values["teleop"] is True
    assert r.values["at"] == [1000, 10, 20]
    assert r.values["at500"] == [500, 20, 20]


def test_a_quiet_console_is_not_read(tmp_path):
    """The loop asks the console whether bytes wait (any()) and reads it only then, or
    while a frame is half read; commands still get their answers the same cycle."""
    body = '''
reads = [0]
real = con.readinto
def readinto(buf):
    reads[0] += 1
    return real(buf)
con.readinto = readinto
for c in range(10):
    fw.cycle(fakehal.ticks_us())
val("quiet", reads[0])
send(%r)
fw.cycle(fakehal.ticks_us())
val("heartbeat", reads[0])
out("tx")
send(%r[:10])
fw.cycle(fakehal.ticks_us())
fw.cycle(fakehal.ticks_us())
val("half", reads[0])
''' % (hexframe("HEARTBEAT", seq=5), hexframe("HEARTBEAT", seq=6))
    r = run_fw(tmp_path, body)
    assert r.values["quiet"] == 0
    assert r.values["heartbeat"] == 2  # the frame, then the read that finds none left
    assert len(r.only("tx", "ACK")) == 1  # the heartbeat answered in its cycle
    assert r.values["half"] == 5  # a half frame: read again the next cycle too


def test_repl_message_stops_the_loop(tmp_path):
    body = '''
fw.run(5)
send(%r)
fw.run(100000)                        # returns as soon as REPL arrives
val("cycles", fw.cycles); val("running", fw.running)
out("tx")
'''
    r = run_fw(tmp_path, body % hexframe("REPL", seq=3))
    assert r.values["running"] is False and r.values["cycles"] == 6
    assert r.only("tx", "ACK")[0].acked_type == C.REPL


def test_loop_counts_overruns_and_worst_cycle(tmp_path):
    body = '''
fakehal.auto[0] = 1200                # each clock read costs 1.2 ms: cycles run long
fw.run(50)
val("overruns", fw.overruns); val("worst", fw.worst_us); val("period", fw.period_us)
fakehal.auto[0] = 1
o = fw.overruns
fw.run(50)
val("more", fw.overruns - o)
out("tx")
'''
    r = run_fw(tmp_path, body)
    assert r.values["overruns"] > 0 and r.values["worst"] > r.values["period"]
    assert r.values["more"] == 0
    assert any(f.code == C.FAULT_OVERRUN for f in r.only("tx", "FAULT"))


def test_counters_wrap_at_2_30_and_stay_small_ints(tmp_path):
    """Counters started just below COUNTER_MASK wrap to small values (they would turn into
    heap-allocated big ints past 2^30 on a 32-bit port); the overrun FAULT's count since
    the last one stays right across the wrap."""
    body = '''
M = C.COUNTER_MASK
fw.cycles = fw.overruns = fw.faults.overruns_reported = M - 1
fw.link.tx_frames = fw.link.reader.frames = M
fakehal.auto[0] = 1200                # cycles run long: every one overruns
fw.run(3)
send(%r)
fw.run(1)
val("counters", [fw.cycles, fw.overruns, fw.link.reader.frames])
out("tx")
'''
    r = run_fw(tmp_path, body % hexframe("GET_STATS", seq=1))
    cycles, overruns, frames = r.values["counters"]
    assert cycles == 2 and frames == 0  # M-1 + 3 cycles; M + 1 frame
    assert 0 <= overruns < 4  # M-1 + up to 4 overruns (the first cycle may be on time)
    stats = r.only("tx", "STATS")[0]
    # (answered at the start of the 4th cycle, before it was counted)
    assert (stats.cycles, stats.rx_frames) == (1, 0) and stats.overruns <= overruns
    assert stats.tx_frames < 10  # wrapped too
    details = [f.detail for f in r.only("tx", "FAULT") if f.code == C.FAULT_OVERRUN]
    assert details and all(1 <= d <= 4 for d in details)


@pytest.mark.parametrize("hand,n_enc,n_bus", [("iso16spi", 1, 1), ("iso16", 2, 1),
                                              ("tendon16", 1, 2), ("iso22", 4, 2)])
def test_every_encoder_and_servo_bus_is_called_as_the_tuple_loop_did(tmp_path, hand, n_enc,
                                                                     n_bus):
    """The cycle calls the one encoder driver and servo bus straight, several in a chain
    (dexfw.devices): each driver samples every cycle in order, each bus gets the goals
    every cycle and a poll every other cycle (1 kHz), the methods looked up at each call."""
    body = '''
calls = []
for i in range(len(enc)):
    def sample(raw, status, i=i, real=enc[i].sample):
        calls.append("s%d" % i)
        real(raw, status)
    enc[i].sample = sample
for i in range(len(srv)):
    def write_goals(goal, i=i, real=srv[i].write_goals):
        calls.append("w%d" % i)
        real(goal)
    def poll(present, status, i=i, real=srv[i].poll):
        calls.append("p%d" % i)
        real(present, status)
    srv[i].write_goals, srv[i].poll = write_goals, poll
fw.run(40)
val("teleop", fw.set_mode(C.MODE_TELEOP))
del calls[:]
fw.run(4)
val("calls", calls)
val("counts", [len(enc), len(srv)])
'''
    r = run_fw(tmp_path, body, fake_config(hand, hz=1000))
    assert r.values["teleop"] is True and r.values["counts"] == [n_enc, n_bus]
    sample = ["s%d" % i for i in range(n_enc)]
    goals = ["w%d" % i for i in range(n_bus)]
    polls = ["p%d" % i for i in range(n_bus)]
    # set_mode's goals went out at the switch; then 4 cycles, a poll every other one
    # (the count's phase: cycles 41 and 43 have none, 42 and 44 poll).
    assert r.values["calls"] == 2 * (sample + goals + sample + goals + polls)


def test_run_without_a_count_runs_until_repl_and_a_count_is_exact(tmp_path):
    body = '''
fw.run(7)
val("seven", fw.cycles)
send(%r)
fw.run()                              # no count: until REPL (its cycle finishes)
val("repl", [fw.cycles, fw.running])
'''
    r = run_fw(tmp_path, body % hexframe("REPL", seq=1))
    assert r.values["seven"] == 7 and r.values["repl"] == [8, False]


def test_slew_time_is_one_period_after_a_wait_and_measured_after_a_late_cycle(tmp_path):
    """A cycle that waited for its deadline begins a period after the last one began:
    slew 256/256; after a late one the measured time (1..4 periods, in 1/256)."""
    body = '''
fw.run(5)
val("waited", jm.slew_q8)
fakehal.auto[0] = 700                 # each clock read 0.7 ms: a cycle takes ~1.4 ms
fw.run(5)
val("late", [jm.slew_q8, fw.cycle_us])
fakehal.auto[0] = 7
fw.run(5)
val("again", jm.slew_q8)
'''
    r = run_fw(tmp_path, body)
    assert r.values["waited"] == 256 and r.values["again"] == 256
    late, took = r.values["late"]
    assert 256 < late < 1024 and abs(late - (took + 700) * 256 // 1000) <= 2


def test_polls_and_telemetry_keep_their_rates_across_the_cycle_counters_wrap(tmp_path):
    """The cycle count is the phase of polls and telemetry: across its wrap at 2**30 one
    interval is shorter, and the rates hold."""
    body = '''
polls = [0]
def poll(present, status, real=srv[0].poll):
    polls[0] += 1
    real(present, status)
srv[0].poll = poll
fw.cycles = C.COUNTER_MASK - 24
fw.run(60)
val("after", [fw.cycles, polls[0]])
out("tx")
'''
    r = run_fw(tmp_path, body, fake_config(hz=1000, telemetry_decimation=10))
    cycles, polls = r.values["after"]
    assert cycles == 35 and polls == 30
    tel = [m.cycle for m in r.only("tx", "TELEMETRY")]
    assert tel == [C.COUNTER_MASK - 23, C.COUNTER_MASK - 13, C.COUNTER_MASK - 3, 0, 10,
                   20, 30]


# ---- boot ------------------------------------------------------------------------------
BOOT = '''
import fakehal
from dexfw import app
from dexfw.bufconsole import BufferConsole
from dexproto import catalog as C
import json
con = BufferConsole()
fw = app.make_firmware(%r, fakehal, con)
con.feed(bytes.fromhex(%r))
fw.run(1200)
print("VAL state", json.dumps([fw.mode, fw.jm.n, fw.config_error]))
print("TX tx", con.take().hex())
'''


@pytest.mark.parametrize("breakage,field", [
    (lambda c: c["joints"][3].update(min_cdeg=9000, max_cdeg=100), "joints[3].min_cdeg"),
    (lambda c: c["loop"].update(hz=0), "loop.hz"),
    (lambda c: c["servos"][0].update(bus="nope"), "servos[0].bus"),
    (lambda c: c["encoders"][0].update(cls="NoSuchDriver"), "encoders[0]"),
    (lambda c: c.pop("motors"), "motors"),
])
def test_refused_config_at_boot_faults_and_idles(tmp_path, breakage, field):
    (tmp_path / "fakehal.py").write_text(FAKEHAL)
    (tmp_path / "fakedrv.py").write_text(FAKEDRV)
    cfg = fake_config()
    breakage(cfg)
    path = tmp_path / "dexlink.json"
    path.write_text(json.dumps(cfg))
    cmds = hexframe("SET_MODE", seq=1, mode=C.MODE_TELEOP) + hexframe(
        "HELLO", seq=2, proto_major=1, proto_minor=0)
    r = Run(run_micropython(BOOT % (str(path), cmds), paths=[tmp_path]).stdout.decode())
    mode, n, error = r.values["state"]
    assert (mode, n) == (C.MODE_IDLE, 0) and field in error
    log = r.only("tx", "LOG")[0]
    assert field in log.text
    assert [f.code for f in r.only("tx", "FAULT")] == [C.FAULT_CONFIG, C.FAULT_CONFIG]  # 1 s apart
    nack = r.only("tx", "NACK")[0]
    assert (nack.acked_type, nack.error) == (C.SET_MODE, C.ERR_BAD_MODE)
    assert r.only("tx", "HELLO_REPLY")[0].n_joints == 0


def test_good_config_boots_configured(tmp_path):
    (tmp_path / "fakehal.py").write_text(FAKEHAL)
    (tmp_path / "fakedrv.py").write_text(FAKEDRV)
    path = tmp_path / "dexlink.json"
    text = dumps(fake_config())
    path.write_text(text)
    r = Run(run_micropython(BOOT % (str(path), hexframe("HELLO", proto_major=1, proto_minor=0)),
                            paths=[tmp_path]).stdout.decode())
    import zlib
    assert r.values["state"] == [C.MODE_IDLE, 16, None]
    hello = r.only("tx", "HELLO_REPLY")[0]
    assert hello.config_crc == zlib.crc32(text.encode()) and hello.text == "virtual"
    assert "FAULT" not in r.names("tx")


def test_set_config_changes_the_period_and_the_slew_step(tmp_path):
    body = '''
val("before", [fw.period_us, jm.step[0]])
send(%r)
fw.run(1)
val("after", [fw.period_us, jm.step[0], fw.decimation, fw.watchdog_us])
'''
    r = run_fw(tmp_path, body % hexframe("SET_CONFIG", loop_hz=250, telemetry_decimation=2,
                                         watchdog_ms=80, watchdog_action=0))
    assert r.values["before"] == [1000, 36]
    assert r.values["after"] == [4000, 144, 2, 80000]  # 36 cdeg/ms over 4 ms


def test_a_loop_that_runs_late_still_slews_at_max_speed(tmp_path):
    """The slew limit follows the measured time between cycles: a 1 kHz hand whose
    encoders take 2.5 ms (the loop overruns, ~350 Hz) moves at max_speed_dps, not a third
    of it; one stall of 1 s moves a goal no more than 4 periods' worth."""
    body = '''
set_exo(5, 0)                         # -10 deg (the joint's low end)
fw.run(40)
send(%r)
fw.run(3)
set_exo(5, 24000)                     # 90 deg (its high end): 100 deg to go
slow = enc[0].sample
def late_sample(raw, status):
    fakehal.sleep_us(2500)
    slow(raw, status)
enc[0].sample = late_sample
s, k = servo_of(5)
fw.run(2)
g0, t0 = jm.goal[5], fw.sample_us
fw.run(30)
val("late", [jm.goal[5] - g0, fakehal.ticks_diff(fw.sample_us, t0), jm.exo[5], fw.overruns])
enc[0].sample = slow
set_exo(5, 0)
fw.run(1)
fakehal.sleep_us(1000000)
g1 = jm.goal[5]
fw.run(1)
val("stall", [jm.goal[5] - g1, jm.step[5]])
'''
    r = run_fw(tmp_path, body % hexframe("SET_MODE", seq=3, mode=C.MODE_TELEOP))
    moved, took_us, exo, overruns = r.values["late"]
    assert overruns >= 30 and took_us > 30 * 2500
    assert abs(moved) < abs(exo)  # still slewing at the end: the limit acted throughout
    dps = abs(moved) / 100 / (took_us / 1e6)
    assert 0.97 * 360 <= dps <= 360.5, dps  # iso16: max_speed_dps = 360
    moved, step = r.values["stall"]
    assert 0 < abs(moved) <= 4 * step
