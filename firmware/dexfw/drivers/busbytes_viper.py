# The byte loops of the servo buses (dexfw.drivers.busbytes) as viper code (MicroPython
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
