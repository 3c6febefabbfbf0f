# CRC-32 (zlib's) appended to a buffer in place, or checked there, without an int object.
#
# binascii.crc32 is C code and the fastest way on the board, but it returns the CRC as
# one int: on a 32-bit port any value >= 2**30 is a heap-allocated big int, so every
# frame would allocate. Where small ints are that narrow, a viper loop over a
# 256-entry table computes the CRC in machine words and stores its four bytes directly.
# The viper functions are defined wherever viper exists (so the 64-bit Unix port can
# test them), but chosen only where small ints are narrow.
import sys

try:
    from binascii import crc32 as _crc32
except ImportError:  # pragma: no cover
    from zlib import crc32 as _crc32

POLY = 0xEDB88320  # CRC-32 (zlib, IEEE 802.3), reflected


def append_crc_py(buf, n, view):
    """Store CRC32(buf[0:n]) little-endian at buf[n:n+4]; view is buf[0:n] as a memoryview."""
    crc = _crc32(view)
    buf[n] = crc & 0xFF
    buf[n + 1] = (crc >> 8) & 0xFF
    buf[n + 2] = (crc >> 16) & 0xFF
    buf[n + 3] = (crc >> 24) & 0xFF


def check_crc_py(buf, n, view):
    """Whether buf[n:n+4] holds CRC32(buf[0:n]) little-endian."""
    crc = _crc32(view)
    return (buf[n] == crc & 0xFF and buf[n + 1] == (crc >> 8) & 0xFF
            and buf[n + 2] == (crc >> 16) & 0xFF and buf[n + 3] == (crc >> 24) & 0xFF)


def make_table():
    """The 256-entry CRC-32 table as array('I') (made once, at import, where it is used)."""
    import array
    t = array.array("I", [0] * 256)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (POLY ^ (c >> 1)) if (c & 1) else (c >> 1)
        t[i] = c
    return t


try:
    from dexproto.viperloops import crc_store as crc_store_viper
except (ImportError, SyntaxError):
    # CPython (no micropython module) or a port built without the viper emitter.
    crc_store_viper = None


class ViperCRC:
    """append_crc / check_crc through crc_store_viper, with the table and a scratch made once."""

    def __init__(self):
        self.table = make_table()
        self.scratch = bytearray(4)

    def append_crc(self, buf, n, view):
        crc_store_viper(buf, n, self.table, buf, n)

    def check_crc(self, buf, n, view):
        s = self.scratch
        crc_store_viper(buf, n, self.table, s, 0)
        return buf[n] == s[0] and buf[n + 1] == s[1] and buf[n + 2] == s[2] and buf[n + 3] == s[3]


append_crc = append_crc_py
check_crc = check_crc_py
VIPER = False

if crc_store_viper is not None and sys.maxsize < (1 << 32):
    _viper_crc = ViperCRC()
    append_crc = _viper_crc.append_crc
    check_crc = _viper_crc.check_crc
    VIPER = True
