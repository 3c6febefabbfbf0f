# Allocation-free COBS for the board: encode and decode between preallocated buffers.
#
# Byte-identical to the `cobs` package the host uses (the Wikipedia reference algorithm:
# a final block of exactly 254 bytes gets no trailing code byte). Viper where the port
# has it; the plain-Python versions below are the fallback and the reference.

def encode_into_py(src, n, dst):
    """COBS-encode src[0:n] into dst (no delimiter); return the encoded length."""
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


def decode_into_py(src, n, dst):
    """COBS-decode src[0:n] (no delimiter) into dst; return the length, or -1 if malformed."""
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


def find_zero_py(buf, start, end):
    """Index of the first 0x00 in buf[start:end], or -1."""
    i = start
    while i < end:
        if buf[i] == 0:
            return i
        i += 1
    return -1


def copy_into_py(src, start, stop, dst, at):
    """Copy src[start:stop] to dst[at:]; return the index after the last byte written."""
    while start < stop:
        dst[at] = src[start]
        at += 1
        start += 1
    return at


encode_into = encode_into_py
decode_into = decode_into_py
find_zero = find_zero_py
copy_into = copy_into_py
VIPER = False

try:
    # The viper versions live in their own module: a port without the viper emitter
    # refuses a whole module that uses it (SyntaxError at compile time), so only that
    # import fails, and the plain-Python versions above stay in use.
    from dexproto.viperloops import (cobs_decode_into as _decode_into_viper,
                                     cobs_encode_into as _encode_into_viper,
                                     copy_into as _copy_into_viper,
                                     find_zero as _find_zero_viper)

    encode_into = _encode_into_viper
    decode_into = _decode_into_viper
    find_zero = _find_zero_viper
    copy_into = _copy_into_viper
    VIPER = True
except (ImportError, SyntaxError):
    # CPython (no micropython module) or a port built without the viper emitter.
    pass
