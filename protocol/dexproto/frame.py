# Frames on the wire:  COBS( payload || CRC32(payload) ) || 0x00
#
# FrameWriter and FrameReader are the board's side of the framing and run unchanged on
# CPython. Both work in buffers made once: after warm-up, writing or reading a frame
# allocates nothing, so the board's loop never wakes the garbage collector.
import struct

from dexproto import catalog
from dexproto.cobsbuf import copy_into, decode_into, encode_into, find_zero
from dexproto.crcbuf import append_crc, check_crc

HEADER_FORMAT = catalog.HEADER_FORMAT
HEADER_SIZE = catalog.HEADER_SIZE
CRC_SIZE = catalog.CRC_SIZE
MAX_PAYLOAD = catalog.MAX_PAYLOAD
MAX_FRAME = catalog.MAX_FRAME
MAX_BODY = MAX_PAYLOAD - HEADER_SIZE
COUNTER_MASK = catalog.COUNTER_MASK

# Why frames were dropped; indices into FrameReader.drops.
DROP_BAD_COBS = 0
DROP_BAD_CRC = 1
DROP_OVERSIZE = 2
DROP_UNKNOWN_TYPE = 3
DROP_BAD_LENGTH = 4
DROP_NO_TERMINATOR = 5
# bad_cobs: a malformed COBS block; bad_crc: the CRC-32 does not match; oversize: the
# frame decodes to more than MAX_PAYLOAD + CRC; unknown_type: no such message type;
# bad_length: shorter than header + CRC, or a body that does not fit its type;
# no_terminator: more than MAX_FRAME bytes went by without a 0x00 (counted at once; the bytes up
# to the next 0x00 are skipped).
DROP_NAMES = ("bad_cobs", "bad_crc", "oversize", "unknown_type", "bad_length", "no_terminator")
# The STATS field that carries each count, in the same order.
DROP_STATS_FIELDS = ("rx_bad_cobs", "rx_bad_crc", "rx_oversize", "rx_unknown", "rx_bad_length",
                     "rx_no_terminator")


def body_length_ok(row, n_body):
    """Whether a body of n_body bytes fits message row (head, then items or tail)."""
    head = struct.calcsize(row[3]) if row[3] else 0
    if n_body < head:
        return False
    rest = n_body - head
    if row[5]:
        return rest % struct.calcsize(row[5]) == 0
    if row[7]:
        return True
    return rest == 0


class _Views:
    """memoryviews of one buffer's prefixes, made on first use of each length.

    binascii.crc32 and stream writes take a whole object; slicing a memoryview on every
    frame would allocate. Steady-state traffic uses a handful of lengths, each made once.
    """

    def __init__(self, buf):
        self._mv = memoryview(buf)
        self._by_len = [None] * (len(buf) + 1)

    def get(self, n):
        v = self._by_len[n]
        if v is None:
            v = self._mv[:n]
            self._by_len[n] = v
        return v


class HeadPacker:
    """Packs one message's head fields by name, at the offsets its catalog row gives.

    A reply built this way keeps up with the catalog: a field added or moved there lands in
    the right place, and one nobody puts stays 0 (clear() first).
    """

    def __init__(self, msg_type):
        row = catalog.BY_TYPE[msg_type]
        fmt = row[3]
        self.size = struct.calcsize(fmt) if fmt else 0
        self._at = {}  # field name -> (offset, one-field struct format)
        offset = 0
        for i in range(len(row[4])):
            code = "<" + fmt[1 + i]
            self._at[row[4][i]] = (offset, code)
            offset += struct.calcsize(code)

    def clear(self, body):
        for i in range(self.size):
            body[i] = 0

    def put(self, body, name, value):
        offset, code = self._at[name]
        struct.pack_into(code, body, offset, value)


class FrameWriter:
    """Builds frames in place. Put the body at .body, then call finish()."""

    def __init__(self):
        self.payload = bytearray(MAX_PAYLOAD + CRC_SIZE)
        self.frame = bytearray(MAX_FRAME)
        self.body = memoryview(self.payload)[HEADER_SIZE:MAX_PAYLOAD]
        self._payload_views = _Views(self.payload)
        self._frame_views = _Views(self.frame)
        self.seq = 0

    def finish(self, msg_type, n_body):
        """Frame the n_body bytes at .body as msg_type; return a memoryview of the frame.

        The view is valid until the next finish(): write it out before building another.
        """
        if n_body < 0 or n_body > MAX_BODY:
            # Checked here because the viper CRC and COBS loops do not check bounds.
            raise ValueError("body of %d bytes: the maximum is %d" % (n_body, MAX_BODY))
        n = HEADER_SIZE + n_body
        self._put_header(msg_type)
        append_crc(self.payload, n, self._payload_views.get(n))
        k = encode_into(self.payload, n + CRC_SIZE, self.frame)
        self.frame[k] = 0
        return self._frame_views.get(k + 1)

    def _put_header(self, msg_type):
        # Apart from finish(): together their frames pass MicroPython's on-stack limit.
        struct.pack_into(HEADER_FORMAT, self.payload, 0, msg_type, self.seq)
        self.seq = (self.seq + 1) & 0xFFFF

    def pack(self, msg_type, fmt, *values):
        """Frame a message whose body is one struct (commands and replies, not the loop)."""
        if fmt:
            struct.pack_into(fmt, self.body, 0, *values)
            return self.finish(msg_type, struct.calcsize(fmt))
        return self.finish(msg_type, 0)


class FrameReader:
    """Reassembles frames from bytes in any chunking, dropping and counting bad ones.

    feed(buf, start, end) consumes bytes until a good frame is complete, and returns the
    index after it (then .msg_type, .seq and .body_len describe it; the body starts at
    payload[HEADER_SIZE]) or -1 when the bytes ran out. Call again from that index.
    An end past len(buf) is taken as len(buf).
    """

    def __init__(self):
        self.encoded = bytearray(MAX_FRAME)
        self.payload = bytearray(MAX_FRAME)
        self._payload_views = _Views(self.payload)
        self.fill = 0
        self.overflow = False
        self.drops = [0] * len(DROP_NAMES)
        self.frames = 0
        self.msg_type = 0
        self.seq = 0
        self.body_len = 0

    def feed(self, buf, start, end):
        if end > len(buf):
            end = len(buf)  # the viper loops do not check bounds
        while start < end:
            z = find_zero(buf, start, end)
            stop = end if z < 0 else z
            self._collect(buf, start, stop)
            if z < 0:
                return -1
            start = z + 1
            if self._complete():
                return start
        return -1

    # feed, _collect, _complete and _accept are apart so that each frame is small enough
    # for MicroPython to keep it on the stack (a bigger one is a heap allocation per call).
    def _collect(self, buf, start, stop):
        """Append buf[start:stop] to the frame being collected (unless it overflowed)."""
        if self.overflow:
            return
        if self.fill + stop - start > MAX_FRAME:
            self.overflow = True
            self.fill = 0
            self._drop(DROP_NO_TERMINATOR)
        else:
            self.fill = copy_into(buf, start, stop, self.encoded, self.fill)

    def _complete(self):
        """A delimiter arrived: check the frame collected so far. True if it is good."""
        n = self.fill
        overflow = self.overflow
        self.fill = 0
        self.overflow = False
        if overflow or n == 0:
            # The end of a run already counted as no_terminator, or back-to-back
            # delimiters (an idle line, not an error).
            return False
        k = decode_into(self.encoded, n, self.payload)
        if k < 0:
            return self._drop(DROP_BAD_COBS)
        if k > MAX_PAYLOAD + CRC_SIZE:
            return self._drop(DROP_OVERSIZE)
        if k < HEADER_SIZE + CRC_SIZE:
            return self._drop(DROP_BAD_LENGTH)
        return self._accept(k - CRC_SIZE)

    def _accept(self, n_payload):
        """Check the decoded payload's CRC, type and body length. True if it is good."""
        p = self.payload
        if not check_crc(p, n_payload, self._payload_views.get(n_payload)):
            return self._drop(DROP_BAD_CRC)
        row = catalog.BY_TYPE[p[0]]
        if row is None:
            return self._drop(DROP_UNKNOWN_TYPE)
        if not body_length_ok(row, n_payload - HEADER_SIZE):
            return self._drop(DROP_BAD_LENGTH)
        self.msg_type = p[0]
        self.seq = p[1] | (p[2] << 8)
        self.body_len = n_payload - HEADER_SIZE
        self.frames = (self.frames + 1) & COUNTER_MASK
        return True

    def _drop(self, reason):
        """Count a dropped frame (False: no good frame)."""
        self.drops[reason] = (self.drops[reason] + 1) & COUNTER_MASK
        return False
