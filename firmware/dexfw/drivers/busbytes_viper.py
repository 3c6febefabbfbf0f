# The byte loops of the buses (dexfw.drivers.busbytes) as viper code (MicroPython
# only): several times faster on the board than the plain-Python versions.
#
# Kept in a module of their own (docs/decisions.md): a port built without the viper
# emitter refuses the whole module at compile time (SyntaxError), so busbytes catches the
# failed import and keeps its plain-Python versions, which are the reference these must
# match byte for byte (tests/test_drivers.py). No bounds checks: callers pass buffers
# large enough.
import micropython


@micropython.viper
def sum_bytes(buf: ptr8, start: int, end: int) -> int:
    """busbytes.sum_bytes_py in viper."""
    s = 0
    i = start
    while i < end:
        s += buf[i]
        i += 1
    return s & 0xFF


@micropython.viper
def crc16(buf: ptr8, start: int, end: int, table: ptr16) -> int:
    """busbytes.crc16_py in viper."""
    crc = 0
    i = start
    while i < end:
        crc = ((crc << 8) ^ table[((crc >> 8) ^ buf[i]) & 0xFF]) & 0xFFFF
        i += 1
    return crc


@micropython.viper
def stuff(src: ptr8, start: int, end: int, dst: ptr8, at: int) -> int:
    """busbytes.stuff_py in viper."""
    b1 = 0
    b2 = 0
    i = start
    while i < end:
        b = src[i]
        dst[at] = b
        at += 1
        i += 1
        if b == 0xFD and b1 == 0xFF and b2 == 0xFF:
            dst[at] = 0xFD
            at += 1
            b = 0
        b2 = b1
        b1 = b
    return at


@micropython.viper
def unstuff(buf: ptr8, start: int, end: int) -> int:
    """busbytes.unstuff_py in viper."""
    o = start
    b1 = 0
    b2 = 0
    i = start
    while i < end:
        b = buf[i]
        buf[o] = b
        o += 1
        i += 1
        if b == 0xFD and b1 == 0xFF and b2 == 0xFF:
            if i < end and buf[i] == 0xFD:
                i += 1
            b = 0
        b2 = b1
        b1 = b
    return o


@micropython.viper
def chain_collect(buf: ptr8, raw: ptr16, status: ptr8, codes: ptr16) -> int:
    """busbytes.chain_collect_py in viper (0, 1, 2: CHAIN_ANGLE, CHAIN_DIAG, CHAIN_CLEAR).
    The codes in locals, the indices walked, and a command sent again (the usual angle
    read) left in place: less work a chip than the plain loop's shape."""
    n = int(codes[7])
    angle = int(codes[0])
    diag = int(codes[1])
    clear = int(codes[2])
    keep = int(codes[3])
    missing = int(codes[5])
    out = 0
    t = 2 * n  # the frame sent
    st = 4 * n  # the chips' state
    a = 0  # chip k's answer in the frame received
    b = t  # its command in the frame sent
    k = 0
    while k < n:
        word = (buf[a] << 8) | buf[a + 1]
        p = word ^ (word >> 8)
        p ^= p >> 4
        p ^= p >> 2
        p ^= p >> 1
        sent = (buf[b] << 8) | buf[b + 1]
        asked = buf[st + k]
        if sent == angle:
            buf[st + k] = 0
        elif sent == clear:
            buf[st + k] = 2
        elif sent == diag:
            buf[st + k] = 1
        else:
            buf[st + k] = 0
        j = buf[st + 2 * n + k]
        bits = buf[st + n + k]
        nxt = angle
        if (p & 1) or (word & 0x4000):
            out += 1
            bits |= codes[4]
            if word & 0x4000:
                nxt = clear
        elif asked == 1:
            out += (k + 1) << 8
        elif asked == 0 and not (bits & missing):
            raw[j] = (word & 0x3FFF) << 2
        status[j] = (status[j] & keep) | bits
        if nxt != sent:
            buf[b] = nxt >> 8
            buf[b + 1] = nxt & 0xFF
        a += 2
        b += 2
        k += 1
    c = buf[st + 3 * n]
    if c == 0:
        k = int(buf[st + 3 * n + 1])
        buf[st + 3 * n + 1] = k + 1 if k + 1 < n else 0
        if ((buf[t + 2 * k] << 8) | buf[t + 2 * k + 1]) != clear:
            buf[t + 2 * k] = diag >> 8
            buf[t + 2 * k + 1] = diag & 0xFF
    c += 1
    if c >= codes[6]:
        c = 0
    buf[st + 3 * n] = c
    return out


@micropython.viper
def goals_into(buf: ptr8, goal: ptr16, conv: ptr16):
    """busbytes.goals_into_py in viper (goal holds int16: ptr16 loads are unsigned)."""
    centre = conv[0]
    per_turn = conv[1]
    top = conv[2]
    s = int(conv[5])
    n = int(conv[7])
    p = int(conv[3])  # servo k's goal bytes, walked (no multiply a servo)
    stride = int(conv[4])
    k = 0
    while k < n:
        v = goal[conv[8 + k]]
        if v > 32767:
            v -= 65536
        c = centre + (v * per_turn + 18000) // 36000
        if c < 0:
            c = 0
        elif c > top:
            c = top
        buf[p] = c & 0xFF
        buf[p + 1] = c >> 8
        s += (c & 0xFF) + (c >> 8)
        p += stride
        k += 1
    buf[conv[6]] = 0xFF ^ (s & 0xFF)


@micropython.viper
def sts_answers(rx: ptr8, io: ptr16, book: ptr8, present: ptr16, status: ptr8) -> int:
    """busbytes.sts_answers_py in viper."""
    rxn = io[0]
    n = io[3]
    io[4] = 0
    io[5] = 0
    p = 0
    while rxn - p >= 6:
        size = rx[p + 3] + 4
        if rx[p] != 0xFF or rx[p + 1] != 0xFF or rx[p + 2] == 0xFF or size < 6:
            p += 1
            continue
        if rxn - p < size:
            break
        k = book[rx[p + 2]]
        if size == io[6] and k != 0xFF and book[256 + k]:
            book[256 + k] = 0
            io[4] = io[4] + 1
            j = book[256 + n + k]
            s = 0
            i = p + 2
            while i < p + size - 1:
                s += rx[i]
                i += 1
            if (0xFF ^ (s & 0xFF)) != rx[p + size - 1]:
                io[5] = io[5] + 1
                status[j] = (status[j] & io[10]) | io[11]
            else:
                e = 0
                if rx[p + 4]:
                    e = io[12]
                status[j] = (status[j] & io[10]) | e
                d = p + 5
                v = rx[d] | (rx[d + 1] << 8)
                b = 1 << io[8]
                if v & b:
                    v = 0 - (v & (b - 1))
                present[j] = ((v - io[1]) * 36000 + (io[2] >> 1)) // io[2]
                d += io[7]
                v = rx[d] | (rx[d + 1] << 8)
                b = 1 << io[9]
                if v & b:
                    v = 0 - (v & (b - 1))
                io[13 + k] = v  # STS_LOAD
        p += size
    io[0] = p
    return p
