# The per-joint loops of dexfw.mapping as viper code (MicroPython only).
#
# Kept in a module of their own (docs/decisions.md): a port built without the viper
# emitter refuses the whole module at compile time (SyntaxError), so mapping catches the
# failed import and keeps its plain-Python versions, which are the reference these must
# match (tests/test_firmware.py compares them). In viper, ptr16 loads are unsigned: the
# sign of an int16 array item is restored by hand (>= 32768: - 65536). Status bits are
# literals (a literal is a machine word in viper, a global an object lookup): ENCODER_BAD
# is 0x07, ST_HELD 0x08, ST_LIMITED 0x80 (dexproto.catalog).
import micropython


@micropython.viper
def map_exo_of(jm, prev: ptr8) -> int:
    """mapping.map_exo_of_py in viper: map_exo_first_py's pass (the reference) with the
    arrays read from jm here (the loop's sense step in one call, where the plain path
    makes two), and in TELEOP (jm.follow_exo) follow's work in the same pass: each target
    written right after its joint is mapped, the exo angle or, held, the goal (a call
    fewer a cycle). The loop's only exo-mapping kernel in viper: the per-joint math is
    kept once here (viper code takes the boards' RAM)."""
    raw = ptr16(jm.raw)
    status = ptr8(jm.enc_status)
    jtab = ptr16(jm.jtab)
    exo = ptr16(jm.exo)
    flags = ptr8(jm.flags)
    n = int(jm.n)
    follows = int(jm.follow_exo)
    goal = ptr16(jm.goal)
    target = ptr16(jm.target)
    edge = 0
    for i in range(n):
        s = status[i] & 0x07  # ENCODER_BAD
        if edge == 0 and s != prev[i]:
            edge = i + 1
        if s:
            flags[i] = s | 0x08  # ST_HELD
            if follows:
                target[i] = goal[i]  # a held joint stays where it is driven
            continue
        t = 4 * i
        d = (int(raw[i]) - int(jtab[t])) & 0xFFFF
        if d >= 32768:
            d -= 65536
        sc = int(jtab[t + 1])
        if sc >= 32768:
            sc -= 65536
        q = (((d * 1125 + 1024) >> 11) * sc + 2048) >> 12
        a = int(jtab[t + 2])
        if a >= 32768:
            a -= 65536
        b = int(jtab[t + 3])
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
        if follows:
            target[i] = q
    return edge


@micropython.viper
def follow(src: ptr16, flags: ptr8, goal: ptr16, target: ptr16, n: int):
    """mapping.follow_py in viper."""
    for i in range(n):
        if flags[i] & 0x08:
            target[i] = goal[i]
        else:
            target[i] = src[i]


@micropython.viper
def pack_joints(body: ptr8, at: int, exo: ptr16, goal: ptr16, present: ptr16, flags: ptr8,
                sstatus: ptr8, n: int, nm: int) -> int:
    """mapping.pack_joints_py in viper."""
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
def first_change(bits: ptr8, prev: ptr8, mask: int, start: int, n: int) -> int:
    """mapping.first_change_py in viper."""
    i = start
    while i < n:
        if (bits[i] & mask) != prev[i]:
            return i
        i += 1
    return -1


@micropython.viper
def clip(motor: ptr16, lo: ptr16, hi: ptr16, n: int):
    """mapping.clip_py in viper."""
    m = 0
    while m < n:
        v = int(motor[m])
        if v >= 32768:
            v -= 65536
        a = int(lo[m])
        if a >= 32768:
            a -= 65536
        b = int(hi[m])
        if b >= 32768:
            b -= 65536
        if v < a:
            motor[m] = a
        elif v > b:
            motor[m] = b
        m += 1


@micropython.viper
def to_motors(q: ptr16, motor: ptr16, start: ptr16, col: ptr8, coef: ptr16, mtab: ptr16,
              servo: ptr16, nm: int):
    """mapping.to_motors_py in viper (mtab per motor: b, lo, hi, direction, offset)."""
    m = 0
    while m < nm:
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
        t = 5 * m
        v = int(mtab[t])
        if v >= 32768:
            v -= 65536
        v = (((acc >> 12) + v + 32768) & 0xFFFF) - 32768
        a = int(mtab[t + 1])
        if a >= 32768:
            a -= 65536
        c = int(mtab[t + 2])
        if c >= 32768:
            c -= 65536
        if v < a:
            v = a
        elif v > c:
            v = c
        motor[m] = v
        if mtab[t + 3] < 32768:
            servo[m] = int(mtab[t + 4]) + v
        else:
            servo[m] = int(mtab[t + 4]) - v
        m += 1


@micropython.viper
def from_servo(servo: ptr16, direction: ptr16, offset: ptr16, out: ptr16, n: int) -> int:
    """mapping.from_servo_py in viper (0x8000: UNKNOWN, as ptr16 loads it)."""
    unknown = 0
    m = 0
    while m < n:
        s = int(servo[m])
        if s == 0x8000:
            out[m] = s
            unknown += 1
        else:
            if s >= 32768:
                s -= 65536
            o = int(offset[m])
            if o >= 32768:
                o -= 65536
            d = int(direction[m])
            if d != 0 and d < 32768:  # > 0 (ptr16 loads are unsigned)
                out[m] = s - o
            else:
                out[m] = o - s
        m += 1
    return unknown


@micropython.viper
def mark_unread(sstatus: ptr8, present: ptr16, blind: ptr8, report: ptr8, bit: int,
                nm: int):
    """mapping.mark_unread_py in viper."""
    m = 0
    while m < nm:
        s = sstatus[m]
        if int(present[m]) == 0x8000 and not blind[m]:
            s |= bit
        report[m] = s
        m += 1


@micropython.viper
def drive_slewed(jm):
    """mapping.drive_slewed_py in viper: slew then to_motors in one call. The arrays are
    read from jm here (an attribute load in native code, where the loop's bytecode loaded
    each and made three calls). An uncoupled hand's identity rows are not summed: motor
    m's goal is joint m's (what the sum gives: (4096 * q + 2048) >> 12 == q)."""
    goal = ptr16(jm.goal)
    target = ptr16(jm.target)
    step = ptr16(jm.step)
    flags = ptr8(jm.flags)
    n = int(jm.n)
    q8 = int(jm.slew_q8)
    for i in range(n):  # slew
        g = int(goal[i])
        if g >= 32768:
            g -= 65536
        t = int(target[i])
        if t >= 32768:
            t -= 65536
        s = (int(step[i]) * q8) >> 8
        d = t - g
        if d > s:
            d = s
            flags[i] = flags[i] | 0x80  # ST_LIMITED
        elif d < 0 - s:
            d = 0 - s
            flags[i] = flags[i] | 0x80
        goal[i] = g + d
    motor = ptr16(jm.motor)
    start = ptr16(jm.cstart)
    col = ptr8(jm.ccol)
    coef = ptr16(jm.ccoef)
    mtab = ptr16(jm.mtab)
    servo = ptr16(jm.servo_goal)
    nm = int(jm.nm)
    coupled = int(jm.coupled)  # (a machine word: tested each motor)
    m = 0
    while m < nm:  # to_motors
        if coupled:
            acc = 2048
            k = int(start[m])
            end = int(start[m + 1])
            while k < end:
                c = int(coef[k])
                if c >= 32768:
                    c -= 65536
                v = int(goal[col[k]])
                if v >= 32768:
                    v -= 65536
                acc += c * v
                k += 1
            acc = acc >> 12
        else:  # the identity rows (4096 * goal[m] + 2048) >> 12: goal[m] itself
            acc = int(goal[m])
            if acc >= 32768:
                acc -= 65536
        t = 5 * m
        v = int(mtab[t])
        if v >= 32768:
            v -= 65536
        v = ((acc + v + 32768) & 0xFFFF) - 32768
        a = int(mtab[t + 1])
        if a >= 32768:
            a -= 65536
        c = int(mtab[t + 2])
        if c >= 32768:
            c -= 65536
        if v < a:
            v = a
        elif v > c:
            v = c
        motor[m] = v
        if mtab[t + 3] < 32768:
            servo[m] = int(mtab[t + 4]) + v
        else:
            servo[m] = int(mtab[t + 4]) - v
        m += 1
