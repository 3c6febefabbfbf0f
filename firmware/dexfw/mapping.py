# Per-joint arithmetic of the loop, in integers only (MicroPython floats are heap objects).
#
# Arrays: 'h' (int16) for angles in cdeg and coefficients, 'H' for raw turn16 positions,
# bytearray for status bits. Every function works in place on arrays made once.
# The hot ones have viper twins in dexfw.mapping_viper (same arguments, same results:
# the tests compare them); select(False) switches to the plain-Python versions, which
# every port runs. map_exo_py and map_exo_first_py have no viper twin of their own: the
# loop's sense step in viper is map_exo_of's (one kernel, where three copies of the
# per-joint math took the boards' RAM); they are its readable reference.
#
# Integer ranges: a raw difference d is within +-32768, so d * 1125 (36000/65536 =
# 1125/2048) stays below 2^26; cdeg * scale_q12 is below 18000 * 32767 < 2^30, a small
# int even on 32-bit ports. Coupling sums are bounded below 2^29 by the config check.
from dexproto.catalog import (ST_ENCODER_ERROR, ST_HELD, ST_LIMITED, ST_MAGNET_MISSING,
                              ST_MAGNET_WEAK)

ENCODER_BAD = ST_MAGNET_MISSING | ST_MAGNET_WEAK | ST_ENCODER_ERROR
UNKNOWN = -32768  # a present position not read yet (catalog.PRESENT_UNKNOWN on the wire)


def turn16_to_cdeg(d):
    """cdeg of a signed turn16 difference, rounded (d * 36000 / 65536)."""
    return (d * 1125 + 1024) >> 11


def map_exo_py(raw, status, zero, dscale, lo, hi, exo, flags, n):
    """Exoskeleton angles from raw encoder positions: the reference the tests hold the
    viper map_exo_of to (the calibration in its own arrays; nothing in the loop calls it).

    The difference to the zero is wrapped to half a turn either side, so a zero near the
    0/65536 wrap gives no jump. A joint whose encoder reports a bad status keeps its
    last good angle and is flagged ST_HELD; clipping to the range flags ST_LIMITED.
    """
    for i in range(n):
        s = status[i] & ENCODER_BAD
        if s:
            flags[i] = s | ST_HELD
            continue
        d = (raw[i] - zero[i]) & 0xFFFF
        if d >= 32768:
            d -= 65536
        q = (((d * 1125 + 1024) >> 11) * dscale[i] + 2048) >> 12
        if q < lo[i]:
            q = lo[i]
            s = ST_LIMITED
        elif q > hi[i]:
            q = hi[i]
            s = ST_LIMITED
        exo[i] = q
        flags[i] = s


# map_exo_first's table per joint: its zero (turn16, kept as int16: the difference to it
# is taken modulo 2^16), direction x scale, limits.
JOINT_ZERO, JOINT_DSCALE, JOINT_LO, JOINT_HI = 0, 1, 2, 3
JOINT_FIELDS = 4


def map_exo_first_py(raw, status, jtab, exo, flags, prev, n):
    """map_exo_py (zero, dscale, lo, hi: jtab[4 * i:4 * i + 4]); returns 1 + the first
    joint whose encoder bits (flags & ENCODER_BAD) differ from prev[i], 0 for none: the
    loop's sense step in one call where map_exo and first_change took two, and a result
    the loop tests as it is (no compare: 2 bytecodes fewer; issue 15). The plain path's
    (map_exo_of_py), and the plain twin of the viper map_exo_of's mapping pass."""
    edge = 0
    for i in range(n):
        s = status[i] & ENCODER_BAD
        if edge == 0 and s != prev[i]:
            edge = i + 1
        if s:
            flags[i] = s | ST_HELD
            continue
        t = JOINT_FIELDS * i
        d = (raw[i] - jtab[t]) & 0xFFFF
        if d >= 32768:
            d -= 65536
        q = (((d * 1125 + 1024) >> 11) * jtab[t + 1] + 2048) >> 12
        if q < jtab[t + 2]:
            q = jtab[t + 2]
            s = ST_LIMITED
        elif q > jtab[t + 3]:
            q = jtab[t + 3]
            s = ST_LIMITED
        exo[i] = q
        flags[i] = s
    return edge


def follow_py(src, flags, goal, target, n):
    """target = src, except a held joint (bad encoder) whose target stays at its goal."""
    for i in range(n):
        target[i] = goal[i] if flags[i] & ST_HELD else src[i]


def slew_py(goal, target, step, flags, n, q8):
    """Move each goal toward its target by at most step * q8 / 256 (flags ST_LIMITED).

    step is the limit over one configured period; q8 the time since the last cycle in
    1/256 periods (256 when the loop keeps its rate), so a loop that runs late still
    moves at the joint's max speed. step < 2^15 and q8 <= 1024: the product < 2^25.
    """
    for i in range(n):
        d = target[i] - goal[i]
        s = (step[i] * q8) >> 8
        if d > s:
            d = s
            flags[i] |= ST_LIMITED
        elif d < -s:
            d = -s
            flags[i] |= ST_LIMITED
        goal[i] += d


# Per-cycle functions keep few arguments and locals and loop with while (a for over
# range() takes 3 slots): their frames then fit MicroPython's on-stack limit
# (tests/test_vrig_frames.py), where a bigger one is a heap allocation per call.
def clip_py(motor, lo, hi, n):
    """Clip motor goals to the motor limits."""
    m = 0
    while m < n:
        if motor[m] < lo[m]:
            motor[m] = lo[m]
        elif motor[m] > hi[m]:
            motor[m] = hi[m]
        m += 1


# to_motors' table per motor: its offset b (coupling), limits, direction, servo offset.
MOTOR_B, MOTOR_LO, MOTOR_HI, MOTOR_DIR, MOTOR_OFF = 0, 1, 2, 3, 4
MOTOR_FIELDS = 5


def to_motors_py(q, motor, start, col, coef, mtab, servo, nm):
    """Joint goals q -> motor goals -> servo frame, in one pass (the loop's drive step: one
    call where coupling, clipping and the servo frame took three, issue 15). motor[m] =
    sum(coef * q[col]) / 4096 + b over row m's entries start[m]:start[m+1] (kept to
    int16), clipped to lo..hi; servo[m] = offset +- motor[m] by direction (b, lo, hi,
    direction, offset: mtab[5 * m:5 * m + 5])."""
    m = 0
    while m < nm:
        acc = 2048
        k = start[m]
        while k < start[m + 1]:
            acc += coef[k] * q[col[k]]
            k += 1
        t = MOTOR_FIELDS * m
        v = (((acc >> 12) + mtab[t] + 32768) & 0xFFFF) - 32768
        if v < mtab[t + 1]:
            v = mtab[t + 1]
        elif v > mtab[t + 2]:
            v = mtab[t + 2]
        motor[m] = v
        servo[m] = mtab[t + 4] + v if mtab[t + 3] > 0 else mtab[t + 4] - v
        m += 1


def drive_slewed_py(jm):
    """slew, then to_motors, over a JointMap's arrays: the loop's drive step. Its viper
    twin is one call that reads the arrays from jm itself (where the loop made three
    calls: slew, drive_of and to_motors, issue 15); this plain one is the reference."""
    slew_py(jm.goal, jm.target, jm.step, jm.flags, jm.n, jm.slew_q8)
    to_motors_py(jm.goal, jm.motor, jm.cstart, jm.ccol, jm.ccoef, jm.mtab, jm.servo_goal,
                 jm.nm)


def from_servo_py(servo, direction, offset, out, n):
    """Servo-frame present positions back to the motor frame; return how many are unknown."""
    unknown = 0
    m = 0
    while m < n:
        if servo[m] == UNKNOWN:
            out[m] = UNKNOWN
            unknown += 1
        else:
            out[m] = servo[m] - offset[m] if direction[m] > 0 else offset[m] - servo[m]
        m += 1
    return unknown


def mark_unread_py(sstatus, present, blind, report, bit, nm):
    """report = sstatus, plus `bit` on motors whose present position is UNKNOWN and that
    can report one (blind[m] == 0)."""
    m = 0
    while m < nm:
        s = sstatus[m]
        if present[m] == UNKNOWN and not blind[m]:
            s |= bit
        report[m] = s
        m += 1


def pack_joints_py(body, at, exo, goal, present, flags, sstatus, n, nm):
    """TELEMETRY items ("<hhhB" per joint) at body[at:]; return the index after them."""
    for i in range(n):
        v = exo[i]
        body[at] = v & 0xFF
        body[at + 1] = (v >> 8) & 0xFF
        v = goal[i]
        body[at + 2] = v & 0xFF
        body[at + 3] = (v >> 8) & 0xFF
        v = present[i] if i < nm else UNKNOWN
        body[at + 4] = v & 0xFF
        body[at + 5] = (v >> 8) & 0xFF
        body[at + 6] = flags[i] | (sstatus[i] if i < nm else 0)
        at += 7
    return at


def pack_raw(body, at, raw, status, n):
    """RAW_SAMPLE items ("<HB" per joint) at body[at:]; return the index after them."""
    i = 0
    while i < n:
        body[at] = raw[i] & 0xFF
        body[at + 1] = raw[i] >> 8
        body[at + 2] = status[i]
        at += 3
        i += 1
    return at


def first_change_py(bits, prev, mask, start, n):
    """The first i in start..n-1 with bits[i] & mask != prev[i], or -1 (fault edges)."""
    for i in range(start, n):
        if bits[i] & mask != prev[i]:
            return i
    return -1


drive_slewed = drive_slewed_py
first_change = first_change_py
follow = follow_py
clip = clip_py
to_motors = to_motors_py
pack_joints = pack_joints_py
from_servo = from_servo_py
mark_unread = mark_unread_py
VIPER = False

try:
    # The viper versions live in their own module: a port without the viper emitter
    # refuses a whole module that uses it (SyntaxError at compile time), so only this
    # import fails, and the plain-Python versions above stay in use.
    from dexfw.mapping_viper import clip as _clip_viper
    from dexfw.mapping_viper import drive_slewed as _drive_slewed_viper
    from dexfw.mapping_viper import first_change as _first_change_viper
    from dexfw.mapping_viper import follow as _follow_viper
    from dexfw.mapping_viper import from_servo as _from_servo_viper
    from dexfw.mapping_viper import map_exo_of as _map_exo_of_viper
    from dexfw.mapping_viper import mark_unread as _mark_unread_viper
    from dexfw.mapping_viper import pack_joints as _pack_joints_viper
    from dexfw.mapping_viper import to_motors as _to_motors_viper

    VIPER = True
except (ImportError, SyntaxError):
    pass  # CPython (no micropython module), or a port without the viper emitter


def map_exo_of(jm, prev):
    """map_exo_first_py over a JointMap's arrays: the exoskeleton angles, and 1 + the
    first joint whose encoder bits differ from prev (the fault reporter's), 0 for none;
    then, when jm.follow_exo is set (TELEOP), follow: target = exo, a held joint's its
    goal. A plain global call (1 slot, where a method call takes 2) keeps this frame,
    7 arguments, on the stack. The plain twin (map_exo_of_py) and reference of the viper
    map_exo_of, which select() puts here where viper runs: one call that reads jm itself
    and sets the targets in the same pass (the loop's follow call folded in, issue 15)."""
    edge = map_exo_first_py(jm.raw, jm.enc_status, jm.jtab, jm.exo, jm.flags, prev, jm.n)
    if jm.follow_exo:
        follow(jm.exo, jm.flags, jm.goal, jm.target, jm.n)
    return edge


map_exo_of_py = map_exo_of


def drive_of(jm):
    """to_motors over a JointMap's arrays: goals -> motors (coupling, limits) -> servo
    frame. A plain global call, as map_exo_of."""
    to_motors(jm.goal, jm.motor, jm.cstart, jm.ccol, jm.ccoef, jm.mtab, jm.servo_goal, jm.nm)


def pack_joints_of(jm):
    """pack_joints of a JointMap's arrays into jm.pack_body at jm.pack_at (set by the
    loop: the telemetry body); the index after the last byte. One argument, as above."""
    return pack_joints(jm.pack_body, jm.pack_at, jm.exo, jm.goal, jm.present_motor, jm.flags,
                       jm.report_status, jm.n, jm.nm)


def select(viper):
    """Use the viper versions (when the port has them) or the plain-Python ones."""
    global first_change, follow, clip, pack_joints
    global from_servo, mark_unread, to_motors, drive_slewed, map_exo_of
    use = viper and VIPER
    map_exo_of = _map_exo_of_viper if use else map_exo_of_py
    drive_slewed = _drive_slewed_viper if use else drive_slewed_py
    first_change = _first_change_viper if use else first_change_py
    follow = _follow_viper if use else follow_py
    clip = _clip_viper if use else clip_py
    to_motors = _to_motors_viper if use else to_motors_py
    pack_joints = _pack_joints_viper if use else pack_joints_py
    from_servo = _from_servo_viper if use else from_servo_py
    mark_unread = _mark_unread_viper if use else mark_unread_py
    return use


select(True)
