# CRC-32 (zlib's) appended to a buffer in place, without making an int object.
#
# binascii.crc32 is C code and the fastest way on the board, but it returns the CRC as
# one int: on a 32-bit port any value >= 2**30 is a heap-allocated big int, so every
# frame would allocate. Where small ints are that narrow, a viper loop over a
# 256-entry table computes the CRC in machine words and stores its four bytes directly.
import sys

try:
    from binascii import crc32 as _crc32
except ImportError:  # pragma: no cover
    from zlib import crc32 as _crc32


def append_crc_py(buf, n, view):
    """Store CRC32(buf[0:n]) little-endian at buf[n:n+4]; view is buf[0:n] as a memoryview."""
    crc = _crc32(view)
    buf[n] = crc & 0xFF
    buf[n + 1] = (crc >> 8) & 0xFF
    buf[n + 2] = (crc >> 16) & 0xFF
    buf[n + 3] = (crc >> 24) & 0xFF


def check_crc_py(buf, n, view):
    """Whether buf[n:n+4] holds CRC32(buf[0:n])."""
    crc = _crc32(view)
    return (buf[n] == crc & 0xFF and buf[n + 1] == (crc >> 8) & 0xFF
            and buf[n + 2] == (crc >> 16) & 0xFF and buf[n + 3] == (crc >> 24) & 0xFF)


append_crc = append_crc_py
check_crc = check_crc_py
VIPER = False

if sys.maxsize < (1 << 32):
    try:
        import array
        import micropython

        def _make_table():
            t = array.array("I", [0] * 256)
            for i in range(256):
                c = i
                for _ in range(8):
                    c = (0xEDB88320 ^ (c >> 1)) if (c & 1) else (c >> 1)
                t[i] = c
            return t

        _TABLE = _make_table()

        @micropython.viper
        def _append_crc_viper(buf: ptr8, n: int, table: ptr32):
            crc = uint(0xFFFFFFFF)
            for i in range(n):
                crc = uint(table[(crc ^ uint(buf[i])) & 0xFF]) ^ (crc >> 8)
            crc = crc ^ uint(0xFFFFFFFF)
            buf[n] = crc & 0xFF
            buf[n + 1] = (crc >> 8) & 0xFF
            buf[n + 2] = (crc >> 16) & 0xFF
            buf[n + 3] = (crc >> 24) & 0xFF

        @micropython.viper
        def _check_crc_viper(buf: ptr8, n: int, table: ptr32) -> bool:
            crc = uint(0xFFFFFFFF)
            for i in range(n):
                crc = uint(table[(crc ^ uint(buf[i])) & 0xFF]) ^ (crc >> 8)
            crc = crc ^ uint(0xFFFFFFFF)
            return (uint(buf[n]) == (crc & 0xFF) and uint(buf[n + 1]) == ((crc >> 8) & 0xFF)
                    and uint(buf[n + 2]) == ((crc >> 16) & 0xFF)
                    and uint(buf[n + 3]) == ((crc >> 24) & 0xFF))

        def append_crc(buf, n, view):
            _append_crc_viper(buf, n, _TABLE)

        def check_crc(buf, n, view):
            return _check_crc_viper(buf, n, _TABLE)

        VIPER = True
    except (ImportError, AttributeError, SyntaxError, NameError):
        pass
