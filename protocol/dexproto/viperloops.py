# The byte loops of the board framing as viper code (MicroPython only).
#
# Kept in a module of their own: a port built without the viper emitter refuses the whole
# module at compile time (SyntaxError), so cobsbuf and crcbuf catch the failed import and
# keep their plain-Python versions, which are the reference these must match byte for
# byte. No bounds checks here: callers pass buffers large enough (see frame.py).
import micropython


@micropython.viper
def cobs_encode_into(src: ptr8, n: int, dst: ptr8) -> int:
    """cobsbuf.encode_into_py in viper."""
    code_pos = 0
    code = 1
    o = 1
    i = 0
    while i < n:
        b = src[i]
        i += 1
        if b == 0:
            dst[code_pos] = code
            code_pos = o
            o += 1
            code = 1
        else:
            dst[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                dst[code_pos] = code
                if i == n:
                    return o
                code_pos = o
                o += 1
                code = 1
    dst[code_pos] = code
    return o


@micropython.viper
def cobs_decode_into(src: ptr8, n: int, dst: ptr8) -> int:
    """cobsbuf.decode_into_py in viper."""
    i = 0
    o = 0
    while i < n:
        code = src[i]
        if code == 0:
            return -1
        i += 1
        end = i + code - 1
        if end > n:
            return -1
        while i < end:
            b = src[i]
            if b == 0:
                return -1
            dst[o] = b
            o += 1
            i += 1
        if code != 0xFF and i < n:
            dst[o] = 0
            o += 1
    return o


@micropython.viper
def find_zero(buf: ptr8, start: int, end: int) -> int:
    """cobsbuf.find_zero_py in viper."""
    i = start
    while i < end:
        if buf[i] == 0:
            return i
        i += 1
    return -1


@micropython.viper
def copy_into(src: ptr8, start: int, stop: int, dst: ptr8, at: int) -> int:
    """cobsbuf.copy_into_py in viper."""
    while start < stop:
        dst[at] = src[start]
        at += 1
        start += 1
    return at


@micropython.viper
def crc_store(buf: ptr8, n: int, table: ptr32, out: ptr8, at: int):
    """Store CRC32(buf[0:n]) little-endian at out[at:at+4]; table is crcbuf.make_table()."""
    # 0xFFFFFFFF built from small literals: on a 32-bit port the literal itself would be a
    # big-int object, not a machine word.
    ones = (uint(0xFFFF) << 16) | uint(0xFFFF)
    crc = ones
    i = 0
    while i < n:
        crc = uint(table[(crc ^ uint(buf[i])) & 0xFF]) ^ (crc >> 8)
        i += 1
    crc = crc ^ ones
    out[at] = crc & 0xFF
    out[at + 1] = (crc >> 8) & 0xFF
    out[at + 2] = (crc >> 16) & 0xFF
    out[at + 3] = (crc >> 24) & 0xFF
