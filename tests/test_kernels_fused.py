"""The fused per-cycle kernels (issue 15: fewer Python calls a cycle) give what the steps
they replace gave, viper and plain-Python alike, under the real MicroPython binary.

- mapping.map_exo_first_py (the plain sense step: map_exo_py and first_change in one
  call; no viper twin of its own), and map_exo_of, whose viper twin reads a JointMap's
  arrays itself (one call in all);
- mapping.drive_slewed (the drive step: slew and to_motors in one call, reading a
  JointMap's arrays itself).
"""
from __future__ import annotations

import pytest

from test_firmware import fake_config, run_fw

pytestmark = pytest.mark.micropython

MAP_FIRST = '''
import random
from array import array
random.seed(5)
n = 24
mism = []
firsts = set()
for trial in range(60):
    raw = array("H", [random.getrandbits(16) for i in range(n)])
    st = bytearray([random.choice((0, 0, 0, 0, 1, 2, 4, 0x40)) for i in range(n)])
    zero = array("H", [random.choice((0, 65535, 65500, 32768, random.getrandbits(16)))
                       for i in range(n)])
    ds = array("h", [random.choice((4096, -4096, 2048, -8192, 32767)) for i in range(n)])
    lo = array("h", [-random.getrandbits(14) for i in range(n)])
    hi = array("h", [random.getrandbits(14) for i in range(n)])
    prev = bytearray([random.choice((0, 0, 0, 1, 2, 4)) for i in range(n)])
    if trial % 3 == 0:  # no edge at all: 0
        prev = bytearray([s & 7 for s in st])
    jtab = array("h", [0] * (4 * n))
    for i in range(n):
        jtab[4 * i] = zero[i] - 65536 if zero[i] >= 32768 else zero[i]
        jtab[4 * i + 1] = ds[i]
        jtab[4 * i + 2] = lo[i]
        jtab[4 * i + 3] = hi[i]
    # The reference: the two steps the loop called before.
    exo = array("h", [7] * n); fl = bytearray(n)
    mapping.map_exo_py(raw, st, zero, ds, lo, hi, exo, fl, n)
    want = (mapping.first_change_py(fl, prev, mapping.ENCODER_BAD, 0, n) + 1, list(exo),
            list(fl))
    exo = array("h", [7] * n); fl = bytearray(n)
    got = (mapping.map_exo_first_py(raw, st, jtab, exo, fl, prev, n), list(exo), list(fl))
    if got != want:
        mism.append(trial)
    firsts.add(want[0])
val("mismatch", mism)
val("firsts", sorted(firsts))
'''


def test_map_exo_first_is_map_exo_then_first_change(tmp_path):
    """The plain path's sense step (map_exo_of_py calls it) against the reference; the
    viper sense step is map_exo_of's (below, and tests/test_firmware.py)."""
    r = run_fw(tmp_path, MAP_FIRST)
    assert r.values["mismatch"] == []
    firsts = r.values["firsts"]  # 1 + the first edge, 0 for none
    assert 0 in firsts and 1 in firsts and max(firsts) > 1  # the cases were exercised


SENSE_OF = '''
import random
random.seed(7)
mism = []
firsts = set()
for trial in range(40):
    for i in range(jm.n):
        jm.set_joint(i, random.getrandbits(16), random.choice((1, -1)),
                     random.choice((4096, 2048, 8192)), -random.getrandbits(14),
                     random.getrandbits(14), 100)
        jm.raw[i] = random.getrandbits(16)
        jm.enc_status[i] = random.choice((0, 0, 0, 1, 4))
    prev = bytearray([random.choice((0, 0, 0, 0, 1)) for i in range(jm.n)])
    if trial % 3 == 0:  # no edge: 0
        prev = bytearray([s & 7 for s in jm.enc_status])
    res = []
    for f in (mapping._map_exo_of_viper, mapping.map_exo_of_py, None):
        for i in range(jm.n):
            jm.exo[i] = 7
            jm.flags[i] = 0
        if f is None:  # the reference: the 9-argument map_exo, then first_change
            mapping.map_exo_py(jm.raw, jm.enc_status, jm.zero, jm.dscale, jm.lo, jm.hi,
                               jm.exo, jm.flags, jm.n)
            got = mapping.first_change_py(jm.flags, prev, mapping.ENCODER_BAD, 0, jm.n) + 1
        else:
            got = f(jm, prev)
        res.append((got, list(jm.exo), list(jm.flags)))
    if res[0] != res[2] or res[1] != res[2]:
        mism.append(trial)
    firsts.add(res[2][0])
val("mismatch", mism)
val("firsts", sorted(firsts))
val("in_use", mapping.map_exo_of is mapping._map_exo_of_viper)
'''


def test_map_exo_of_reads_the_joint_map_as_the_plain_steps_do(tmp_path):
    """Calibrations set through set_joint (the joint table kept with the arrays)."""
    r = run_fw(tmp_path, SENSE_OF)
    assert r.values["mismatch"] == []
    assert 0 in r.values["firsts"] and max(r.values["firsts"]) > 1
    assert r.values["in_use"] is True  # the loop's step is the viper one


DRIVE = '''
import random
from array import array
random.seed(11)
mism = []
limited = 0
for trial in range(40):
    goal = [random.getrandbits(15) - 16384 for i in range(jm.n)]
    tgt = [random.getrandbits(15) - 16384 for i in range(jm.n)]
    for i in range(jm.n):
        jm.step[i] = random.choice((random.getrandbits(10) + 1, 32767))
        jm.target[i] = tgt[i]
    jm.slew_q8 = random.randint(0, 1024)
    res = []
    for f in (mapping._drive_slewed_viper, mapping.drive_slewed_py, None):
        for i in range(jm.n):
            jm.goal[i] = goal[i]
            jm.flags[i] = 0
        if f is None:  # the reference: the loop's two steps before
            mapping.slew_py(jm.goal, jm.target, jm.step, jm.flags, jm.n, jm.slew_q8)
            mapping.to_motors_py(jm.goal, jm.motor, jm.cstart, jm.ccol, jm.ccoef, jm.mtab,
                                 jm.servo_goal, jm.nm)
        else:
            f(jm)
        res.append((list(jm.goal), list(jm.flags), list(jm.motor), list(jm.servo_goal)))
    if res[0] != res[2] or res[1] != res[2]:
        mism.append(trial)
    limited += sum(1 for b in res[2][1] if b)
val("mismatch", mism)
val("limited", limited)
val("motors", jm.nm)
'''


@pytest.mark.parametrize("hand", ["iso16", "tendon16"])
def test_drive_slewed_is_slew_then_to_motors(tmp_path, hand):
    """Uncoupled and coupled (tendon16: off-diagonal coefficients, offsets, clipping)."""
    r = run_fw(tmp_path, DRIVE, fake_config(hand))
    assert r.values["mismatch"] == []
    assert r.values["limited"] > 0  # the slew limit acted in some trials
    assert r.values["motors"] > 0


SENSE_FOLLOW = '''
import random
random.seed(13)
FREE = -32000  # a target no step writes (angles stay within +-16384 here)
mism = []
held_on = free_on = wrong = 0
for trial in range(48):
    for i in range(jm.n):
        jm.set_joint(i, random.getrandbits(16), random.choice((1, -1)),
                     random.choice((4096, 2048, 8192)), -random.getrandbits(14),
                     random.getrandbits(14), 100)
        jm.raw[i] = random.getrandbits(16)
        jm.enc_status[i] = random.choice((0, 0, 0, 1, 4, 0x40))
    prev = bytearray([random.choice((0, 0, 0, 0, 1)) for i in range(jm.n)])
    goal = [random.getrandbits(14) - 8192 for i in range(jm.n)]
    teleop = trial % 2
    jm.follow_exo = teleop
    res = []
    for f in (mapping._map_exo_of_viper, mapping.map_exo_of_py, None):
        for i in range(jm.n):
            jm.exo[i] = 7
            jm.flags[i] = 0
            jm.goal[i] = goal[i]
            jm.target[i] = FREE
        if f is None:  # the reference: the loop's steps before, follow only in TELEOP
            mapping.map_exo_py(jm.raw, jm.enc_status, jm.zero, jm.dscale, jm.lo, jm.hi,
                               jm.exo, jm.flags, jm.n)
            got = mapping.first_change_py(jm.flags, prev, mapping.ENCODER_BAD, 0, jm.n) + 1
            if teleop:
                mapping.follow_py(jm.exo, jm.flags, jm.goal, jm.target, jm.n)
        else:
            got = f(jm, prev)
        res.append((got, list(jm.exo), list(jm.flags), list(jm.goal), list(jm.target)))
    if res[0] != res[2] or res[1] != res[2]:
        mism.append(trial)
    exo, flags, tgt = res[2][1], res[2][2], res[2][4]
    for i in range(jm.n):  # what the reference did: the cases the kernels were held to
        if not teleop:
            wrong += tgt[i] != FREE
        elif flags[i] & C.ST_HELD:
            held_on += 1
            wrong += tgt[i] != goal[i]
        else:
            free_on += 1
            wrong += tgt[i] != exo[i]
val("mismatch", mism)
val("cases", [held_on, free_on, wrong])
'''


def test_map_exo_of_follows_the_exo_only_when_the_joint_map_says_so(tmp_path):
    """TELEOP (jm.follow_exo 1): the sense kernel sets target = exo, a held joint's (bad
    encoder) its goal, as the loop's follow call did after it; 0 (HOST, CALIBRATE, IDLE):
    the targets are left as they were. Viper and plain alike."""
    r = run_fw(tmp_path, SENSE_FOLLOW)
    assert r.values["mismatch"] == []
    held_on, free_on, wrong = r.values["cases"]
    assert held_on > 0 and free_on > 0 and wrong == 0
