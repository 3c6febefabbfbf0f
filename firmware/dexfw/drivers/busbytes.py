# Byte loops of the servo buses: Feetech checksum, Dynamixel CRC-16 and byte stuffing.
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


sum_bytes = sum_bytes_py
crc16 = crc16_py
stuff = stuff_py
unstuff = unstuff_py
VIPER = False

try:
    # The viper versions live in their own module: a port without the viper emitter
    # refuses a whole module that uses it (SyntaxError at compile time), so only this
    # import fails, and the plain-Python versions above stay in use.
    from dexfw.drivers.busbytes_viper import crc16 as _crc16_viper
    from dexfw.drivers.busbytes_viper import stuff as _stuff_viper
    from dexfw.drivers.busbytes_viper import sum_bytes as _sum_bytes_viper
    from dexfw.drivers.busbytes_viper import unstuff as _unstuff_viper

    sum_bytes = _sum_bytes_viper
    crc16 = _crc16_viper
    stuff = _stuff_viper
    unstuff = _unstuff_viper
    VIPER = True
except (ImportError, SyntaxError):
    pass  # CPython (no micropython module), or a port without the viper emitter


def use_plain():
    """Switch to the plain-Python loops (benchmarks compare the two)."""
    global sum_bytes, crc16, stuff, unstuff, VIPER
    sum_bytes, crc16, stuff, unstuff, VIPER = sum_bytes_py, crc16_py, stuff_py, unstuff_py, False
