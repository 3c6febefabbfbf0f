# Per-joint arithmetic of the loop, in integers only (MicroPython floats are heap objects).
#
# Arrays: 'h' (int16) for angles in cdeg and coefficients, 'H' for raw turn16 positions,
# bytearray for status bits. Every function works in place on arrays made once.
# The hot ones have viper twins (same arguments, same results: the tests compare them);
# select(False) switches to the plain-Python versions, which every port runs.
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
    """Exoskeleton angles from raw encoder positions.

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


def follow_py(src, flags, goal, target, n):
    """target = src, except a held joint (bad encoder) whose target stays at its goal."""
    for i in range(n):
        target[i] = goal[i] if flags[i] & ST_HELD else src[i]


def slew_py(goal, target, step, flags, n):
    """Move each goal toward its target by at most step per cycle (flags ST_LIMITED)."""
    for i in range(n):
        d = target[i] - goal[i]
        s = step[i]
        if d > s:
            d = s
            flags[i] |= ST_LIMITED
        elif d < -s:
            d = -s
            flags[i] |= ST_LIMITED
        goal[i] += d


def couple_py(q, motor, start, col, coef, b, nm):
    """motor[m] = sum(coef * q[col]) / 4096 + b[m] over row m's entries start[m]:start[m+1]."""
    for m in range(nm):
        acc = 2048
        for k in range(start[m], start[m + 1]):
            acc += coef[k] * q[col[k]]
        motor[m] = (acc >> 12) + b[m]


# Per-cycle functions keep few arguments and locals and loop with while (a for over
# range() takes 3 slots): their frames then fit MicroPython's on-stack limit
# (tests/test_vrig_frames.py), where a bigger one is a heap allocation per call.
def clip(motor, lo, hi, n):
    """Clip motor goals to the motor limits."""
    m = 0
    while m < n:
        if motor[m] < lo[m]:
            motor[m] = lo[m]
        elif motor[m] > hi[m]:
            motor[m] = hi[m]
        m += 1


def to_servo(motor, direction, offset, servo, n):
    """Motor goals (clipped) into servo-frame goals."""
    m = 0
    while m < n:
        servo[m] = offset[m] + motor[m] if direction[m] > 0 else offset[m] - motor[m]
        m += 1


def from_servo(servo, direction, offset, out, n):
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


map_exo = map_exo_py
first_change = first_change_py
follow = follow_py
slew = slew_py
couple = couple_py
pack_joints = pack_joints_py
VIPER = False

try:
    import micropython

    # In viper, ptr16 loads are unsigned: _s16 restores the sign of int16 array items.
    @micropython.viper
    def _map_exo_viper(raw: ptr16, status: ptr8, zero: ptr16, dscale: ptr16, lo: ptr16,
                       hi: ptr16, exo: ptr16, flags: ptr8, n: int):
        for i in range(n):
            s = status[i] & 0x07  # ENCODER_BAD
            if s:
                flags[i] = s | 0x08  # ST_HELD
                continue
            d = (int(raw[i]) - int(zero[i])) & 0xFFFF
            if d >= 32768:
                d -= 65536
            sc = int(dscale[i])
            if sc >= 32768:
                sc -= 65536
            q = (((d * 1125 + 1024) >> 11) * sc + 2048) >> 12
            a = int(lo[i])
            if a >= 32768:
                a -= 65536
            b = int(hi[i])
            if b >= 32768:
                b -= 65536
            if q < a:
                q = a
                s = 0x80  # ST_LIMITED
            elif q > b:
                q = b
                s = 0x80
            exo[i] = q
            flags[i] = s

    @micropython.viper
    def _follow_viper(src: ptr16, flags: ptr8, goal: ptr16, target: ptr16, n: int):
        for i in range(n):
            if flags[i] & 0x08:
                target[i] = goal[i]
            else:
                target[i] = src[i]

    @micropython.viper
    def _slew_viper(goal: ptr16, target: ptr16, step: ptr16, flags: ptr8, n: int):
        for i in range(n):
            g = int(goal[i])
            if g >= 32768:
                g -= 65536
            t = int(target[i])
            if t >= 32768:
                t -= 65536
            s = int(step[i])
            d = t - g
            if d > s:
                d = s
                flags[i] = flags[i] | 0x80
            elif d < 0 - s:
                d = 0 - s
                flags[i] = flags[i] | 0x80
            goal[i] = g + d

    @micropython.viper
    def _couple_viper(q: ptr16, motor: ptr16, start: ptr16, col: ptr8, coef: ptr16,
                      b: ptr16, nm: int):
        for m in range(nm):
            acc = 2048
            k = int(start[m])
            end = int(start[m + 1])
            while k < end:
                c = int(coef[k])
                if c >= 32768:
                    c -= 65536
                v = int(q[col[k]])
                if v >= 32768:
                    v -= 65536
                acc += c * v
                k += 1
            v = int(b[m])
            if v >= 32768:
                v -= 65536
            motor[m] = (acc >> 12) + v

    @micropython.viper
    def _pack_joints_viper(body: ptr8, at: int, exo: ptr16, goal: ptr16, present: ptr16,
                           flags: ptr8, sstatus: ptr8, n: int, nm: int) -> int:
        for i in range(n):
            v = int(exo[i])
            body[at] = v & 0xFF
            body[at + 1] = (v >> 8) & 0xFF
            v = int(goal[i])
            body[at + 2] = v & 0xFF
            body[at + 3] = (v >> 8) & 0xFF
            if i < nm:
                v = int(present[i])
                body[at + 6] = flags[i] | sstatus[i]
            else:
                v = 0x8000
                body[at + 6] = flags[i]
            body[at + 4] = v & 0xFF
            body[at + 5] = (v >> 8) & 0xFF
            at += 7
        return at

    @micropython.viper
    def _first_change_viper(bits: ptr8, prev: ptr8, mask: int, start: int, n: int) -> int:
        i = start
        while i < n:
            if (bits[i] & mask) != prev[i]:
                return i
            i += 1
        return -1

    VIPER = True
except (ImportError, AttributeError, SyntaxError, NameError):
    pass  # CPython, or a port without the viper emitter: the Python versions stand


def map_exo_of(jm):
    """map_exo over a JointMap's arrays. A plain global call (1 slot, where a method call
    takes 2) is what keeps the caller's frame, 9 arguments, on the stack."""
    map_exo(jm.raw, jm.enc_status, jm.zero, jm.dscale, jm.lo, jm.hi, jm.exo, jm.flags, jm.n)


def pack_joints_of(jm):
    """pack_joints of a JointMap's arrays into jm.pack_body at jm.pack_at (set by the
    loop: the telemetry body); the index after the last byte. One argument, as above."""
    return pack_joints(jm.pack_body, jm.pack_at, jm.exo, jm.goal, jm.present_motor, jm.flags,
                       jm.report_status, jm.n, jm.nm)


def select(viper):
    """Use the viper versions (when the port has them) or the plain-Python ones."""
    global map_exo, first_change, follow, slew, couple, pack_joints
    use = viper and VIPER
    map_exo = _map_exo_viper if use else map_exo_py
    first_change = _first_change_viper if use else first_change_py
    follow = _follow_viper if use else follow_py
    slew = _slew_viper if use else slew_py
    couple = _couple_viper if use else couple_py
    pack_joints = _pack_joints_viper if use else pack_joints_py
    return use


select(True)
