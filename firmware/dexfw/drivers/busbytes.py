# Byte loops of the buses: Feetech checksum, Dynamixel CRC-16 and byte stuffing, servo
# goals into a sync-write, and the AS5048A chain's frame collected in one pass.
#
# Viper where the port has it (dexfw.drivers.busbytes_viper, several times faster on the
# board); the plain-Python versions are the fallback and the reference the tests compare
# them with.
import array


def _make_crc16_table():
    # CRC-16 poly 0x8005, init 0, not reflected (Dynamixel Protocol 2.0, crc-16-buypass).
    table = array.array("H", [0] * 256)
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x8005) if (c & 0x8000) else (c << 1)
        table[i] = c & 0xFFFF
    return table


CRC16_TABLE = _make_crc16_table()


def sum_bytes_py(buf, start, end):
    """Low byte of the sum of buf[start:end]."""
    s = 0
    for i in range(start, end):
        s += buf[i]
    return s & 0xFF


def crc16_py(buf, start, end, table):
    """Dynamixel CRC-16 of buf[start:end]."""
    crc = 0
    for i in range(start, end):
        crc = ((crc << 8) ^ table[((crc >> 8) ^ buf[i]) & 0xFF]) & 0xFFFF
    return crc


def stuff_py(src, start, end, dst, at):
    """Copy src[start:end] to dst[at:], adding 0xFD after every FF FF FD; return the end."""
    b1 = 0
    b2 = 0
    for i in range(start, end):
        b = src[i]
        dst[at] = b
        at += 1
        if b == 0xFD and b1 == 0xFF and b2 == 0xFF:
            dst[at] = 0xFD
            at += 1
            b = 0  # the added byte starts no new pattern
        b2 = b1
        b1 = b
    return at


def unstuff_py(buf, start, end):
    """Remove in place the 0xFD added after every FF FF FD in buf[start:end]; return the end."""
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


# The AS5048A chain's frame (dexfw.drivers.as5048a), collected in one pass over its words.
# buf: the frame received (2n bytes), the frame sent (2n), then per chip k its state:
# buf[4n + k] what its answer in this frame holds (what it was last sent: CHAIN_ANGLE,
# CHAIN_DIAG or CHAIN_CLEAR), buf[5n + k] its magnet bits, buf[6n + k] its joint; then
# buf[7n] the sweeps since a chip was last asked for its diagnostics and buf[7n + 1] the
# chip asked next. codes: the command words (angle, diag, clear), then the status bits
# kept, the error bit, the missing-magnet bit, the sweeps from one diagnostics request to
# the next, and the chips in the chain (n). One buffer, and n in codes: the call's frame
# stays small (tests/test_vrig_frames.py) and the caller loads an argument fewer.
CHAIN_ANGLE = 0
CHAIN_DIAG = 1
CHAIN_CLEAR = 2


def chain_collect_py(buf, raw, status, codes):
    """Book every chip's answer (big-endian 16-bit words) into raw / status, note what
    each was sent this frame, and write the next frame's commands in place: CLEAR_ERROR
    for a chip whose answer carried the error flag, else an angle read; and every codes[6]
    sweeps a diagnostics read for the next chip in turn (unless it is owed a CLEAR_ERROR:
    that first). Returns the parity and flag errors plus 256 * (1 + the chip whose
    diagnostics arrived), 0 for none."""
    n = codes[7]
    out = 0
    t = 2 * n  # the frame sent
    st = 4 * n  # the chips' state
    for k in range(n):
        word = (buf[2 * k] << 8) | buf[2 * k + 1]
        p = word ^ (word >> 8)
        p ^= p >> 4
        p ^= p >> 2
        p ^= p >> 1
        sent = (buf[t + 2 * k] << 8) | buf[t + 2 * k + 1]
        asked = buf[st + k]
        buf[st + k] = CHAIN_CLEAR if sent == codes[2] else (
            CHAIN_DIAG if sent == codes[1] else CHAIN_ANGLE)
        bits = buf[st + n + k]
        nxt = codes[0]
        if p & 1 or word & 0x4000:
            out += 1
            bits |= codes[4]
            if word & 0x4000:
                nxt = codes[2]
        elif asked == CHAIN_DIAG:
            out += (k + 1) << 8
        elif asked == CHAIN_ANGLE and not bits & codes[5]:
            raw[buf[st + 2 * n + k]] = (word & 0x3FFF) << 2
        status[buf[st + 2 * n + k]] = (status[buf[st + 2 * n + k]] & codes[3]) | bits
        buf[t + 2 * k] = nxt >> 8
        buf[t + 2 * k + 1] = nxt & 0xFF
    c = buf[st + 3 * n]  # (the sweep count: in the pass, where Python took ~14 bytecodes)
    if c == 0:
        k = buf[st + 3 * n + 1]
        buf[st + 3 * n + 1] = k + 1 if k + 1 < n else 0
        if (buf[t + 2 * k] << 8) | buf[t + 2 * k + 1] != codes[2]:
            buf[t + 2 * k] = codes[1] >> 8
            buf[t + 2 * k + 1] = codes[1] & 0xFF
    c += 1
    buf[st + 3 * n] = 0 if c >= codes[6] else c
    return out


def goals_into_py(buf, goal, conv):
    """Servo goals into a sync-write packet: for k < n, goal[joint k] (cdeg from the servo
    centre) as counts, centre + round(cdeg * per_turn / 36000) clipped to 0..top, little-
    endian 16 bits at buf[at + stride * k]. conv: centre, per_turn, top, at, stride, base,
    chk, n, then servo k's joint for each k: the Feetech checksum goes to buf[chk], 0xFF ^
    the low byte of (base + the goal bytes), base being the sum of the packet's other bytes
    from its id on (the checksum in the same pass: two calls fewer a cycle than
    finish_packet's; n and the joints in conv: two arguments fewer to load)."""
    centre = conv[0]
    per_turn = conv[1]
    s = conv[5]
    for k in range(conv[7]):
        c = centre + (goal[conv[8 + k]] * per_turn + 18000) // 36000
        if c < 0:
            c = 0
        elif c > conv[2]:
            c = conv[2]
        p = conv[3] + conv[4] * k
        buf[p] = c & 0xFF
        buf[p + 1] = c >> 8
        s += (c & 0xFF) + (c >> 8)
    buf[conv[6]] = 0xFF ^ (s & 0xFF)


# Feetech STS status packets in one pass (FeetechBus.poll). book: servo id -> index
# (256 bytes, 0xFF: none), then 1 per servo awaited, then each servo's joint. io (int16):
# in: 0 bytes in rx (out: bytes used up), 1 centre, 2 counts per turn, 3 servos, 6 answer
# size, 7 load offset in the data, 8 position sign bit, 9 load sign bit, 10 status bits
# kept, 11 bad-checksum bit, 12 error bit; out: 4 answers booked, 5 bad checksums, and
# from STS_LOAD on each servo's load (the bus's `load` is a view of them). Five arguments:
# the caller's frame stays on the stack (tests/test_vrig_frames.py).
STS_RXN = 0
STS_BOOKED = 4
STS_BAD = 5
STS_LOAD = 13


def sts_answers_py(rx, io, book, present, status):
    """Book every whole status packet in rx[0:io[0]] (an answer awaited from a servo:
    present position in cdeg from the centre, load, status bits; a bad checksum is
    counted and flagged; an echo or an unawaited answer is skipped); a partial packet is
    kept. Returns how many bytes were used up (also left in io[0])."""
    rxn = io[0]
    n = io[3]
    io[4] = io[5] = 0
    p = 0
    while rxn - p >= 6:
        size = rx[p + 3] + 4
        if rx[p] != 0xFF or rx[p + 1] != 0xFF or rx[p + 2] == 0xFF or size < 6:
            p += 1  # no packet starts here: resynchronise byte by byte
            continue
        if rxn - p < size:
            break  # the rest has not arrived yet
        k = book[rx[p + 2]]
        if size == io[6] and k != 0xFF and book[256 + k]:  # else an echo, or not awaited
            book[256 + k] = 0
            io[4] += 1
            j = book[256 + n + k]
            ok = (0xFF ^ sum_bytes_py(rx, p + 2, p + size - 1)) == rx[p + size - 1]
            if not ok:
                io[5] += 1
                status[j] = (status[j] & io[10]) | io[11]
            else:
                status[j] = (status[j] & io[10]) | (io[12] if rx[p + 4] else 0)
                d = p + 5
                v = rx[d] | (rx[d + 1] << 8)
                if v & (1 << io[8]):
                    v = -(v & ((1 << io[8]) - 1))
                present[j] = ((v - io[1]) * 36000 + (io[2] >> 1)) // io[2]
                d += io[7]
                v = rx[d] | (rx[d + 1] << 8)
                if v & (1 << io[9]):
                    v = -(v & ((1 << io[9]) - 1))
                io[13 + k] = v  # STS_LOAD
        p += size
    io[0] = p
    return p


sum_bytes = sum_bytes_py
crc16 = crc16_py
stuff = stuff_py
unstuff = unstuff_py
chain_collect = chain_collect_py
goals_into = goals_into_py
sts_answers = sts_answers_py
VIPER = False

try:
    # The viper versions live in their own module: a port without the viper emitter
    # refuses a whole module that uses it (SyntaxError at compile time), so only this
    # import fails, and the plain-Python versions above stay in use.
    from dexfw.drivers.busbytes_viper import crc16 as _crc16_viper
    from dexfw.drivers.busbytes_viper import stuff as _stuff_viper
    from dexfw.drivers.busbytes_viper import sum_bytes as _sum_bytes_viper
    from dexfw.drivers.busbytes_viper import unstuff as _unstuff_viper
    from dexfw.drivers.busbytes_viper import chain_collect as _chain_collect_viper
    from dexfw.drivers.busbytes_viper import goals_into as _goals_into_viper
    from dexfw.drivers.busbytes_viper import sts_answers as _sts_answers_viper

    sum_bytes = _sum_bytes_viper
    chain_collect = _chain_collect_viper
    goals_into = _goals_into_viper
    sts_answers = _sts_answers_viper
    crc16 = _crc16_viper
    stuff = _stuff_viper
    unstuff = _unstuff_viper
    VIPER = True
except (ImportError, SyntaxError):
    pass  # CPython (no micropython module), or a port without the viper emitter


def use_plain():
    """Switch to the plain-Python loops (benchmarks compare the two)."""
    global sum_bytes, crc16, stuff, unstuff, chain_collect, goals_into, sts_answers, VIPER
    sum_bytes, crc16, stuff, unstuff, VIPER = sum_bytes_py, crc16_py, stuff_py, unstuff_py, False
    chain_collect, goals_into, sts_answers = chain_collect_py, goals_into_py, sts_answers_py
