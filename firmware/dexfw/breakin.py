# Break-in: how unmodified mpremote (pyboard.py, `dexlink repl`) stops the running firmware.
#
# The firmware owns the USB serial port with Ctrl-C turned into data (its frames may hold
# 0x03), so the keys a tool sends to stop a program reach the link as bytes. mpremote
# sends "\r\x03" (Ctrl-C), then "\r\x01" (Ctrl-A: raw REPL) and waits up to 10 s for
# "raw REPL; CTRL-B to exit\r\n>"; pyboard.py and `dexlink flash` send "\r\x03\x03\r\x01".
# None of them ever sends 0x00, the frame delimiter.
#
# The link calls BreakIn.check() when the console has nothing more to read and the
# FrameReader holds bytes collected since the last 0x00 (a frame still unfinished). It
# calls them a break-in when all of these hold:
#   1. they are only the tools' control keys (Ctrl-A/B/C/D, '\r'), at most MAX_KEYS,
#      and hold at least one Ctrl-C;
#   2. they cannot be the start of any valid frame (below);
#   3. nothing has arrived for QUIET_US.
#
# Why valid traffic can never trigger it (2 alone guarantees it, however the frames are
# chunked or delayed): a frame is COBS(payload || CRC32) then 0x00, the payload starting
# with its type byte. Its first byte is a COBS code c: the next c - 1 bytes are payload
# bytes, so c - 1 <= len(payload) + 4. If c == 1 the payload starts with 0x00: type 0,
# which no message has. Otherwise the second byte is the type, and a type with a fixed-size
# body bounds len(payload). So bytes whose first code overruns their type's longest frame,
# or that name no type, begin no valid frame; whatever follows them. mpremote's "\r\x03"
# is such a start: code 13 (12 payload bytes follow) for type 3, SET_MODE, whose whole
# payload and CRC is 8 bytes. A lone Ctrl-C from a terminal could begin a frame: it never
# breaks in (`dexlink repl` is the way there).
#
# QUIET_US lets the tool finish its keys (the last of Ctrl-A / Ctrl-B says which REPL it
# wants). It is longer than `dexlink flash` waits for a REPL to answer its probe (0.5 s)
# before it speaks the protocol (its next byte, 0x00, ends the candidate): flash keeps
# using the REPL message, the orderly way. mpremote waits 10 s: it sees the banner in ~1 s.
#
# check() allocates nothing: the loop may call it every cycle while such bytes wait.
from dexfw.compat import const
from dexproto import catalog
from dexproto.frame import CRC_SIZE, HEADER_SIZE, MAX_BODY

QUIET_US = const(1000000)
MAX_KEYS = const(16)  # more than a tool's keystrokes: not a break-in
_TICKS_MASK = const(0x3FFFFFFF)  # ticks_us wraps at 2**30 on the boards (a multiple elsewhere)
_CTRL_A = const(1)
_CTRL_B = const(2)
_CTRL_C = const(3)
_CTRL_D = const(4)
_CR = const(13)


def _longest_first_codes():
    """Per type byte: the largest first COBS code a valid frame of that type can have
    (0: no such type). A body of variable size may fill the frame."""
    import struct
    codes = bytearray(256)
    for t in range(256):
        row = catalog.BY_TYPE[t]
        if row is None:
            continue
        body = MAX_BODY if row[5] or row[7] else (struct.calcsize(row[3]) if row[3] else 0)
        codes[t] = min(255, HEADER_SIZE + body + CRC_SIZE + 1)
    return codes


_FIRST_CODE_MAX = _longest_first_codes()


def could_begin_frame(buf, n):
    """Whether buf[0:n] (no 0x00 in it) could be the start of a valid frame."""
    code = buf[0]
    if code == 1:
        return catalog.BY_TYPE[0] is not None  # the payload would start with type 0
    if n < 2:
        return True  # the type is not known yet
    return code <= _FIRST_CODE_MAX[buf[1]]


class BreakIn:
    """Recognises a tool's break-in among the bytes the link received (see above)."""

    def __init__(self):
        self.fired = False
        self.raw = False  # the keys asked for the raw REPL (Ctrl-A after the last Ctrl-B)

    def check(self, reader, last_rx_us, ticks_us):
        """catalog.REPL when the bytes pending in reader are a break-in, else 0.

        last_rx_us: when the link last received bytes; ticks_us: the board clock.
        """
        n = reader.fill
        if n == 0 or n > MAX_KEYS or self.fired or reader.overflow:
            return 0
        if (ticks_us() - last_rx_us) & _TICKS_MASK < QUIET_US:
            return 0
        keys = reader.encoded
        interrupt = False
        raw = False
        for i in range(n):
            b = keys[i]
            if b == _CTRL_C:
                interrupt = True
            elif b == _CTRL_A:
                raw = True
            elif b == _CTRL_B:
                raw = False
            elif b != _CTRL_D and b != _CR:
                return 0
        if not interrupt or could_begin_frame(keys, n):
            return 0
        self.fired = True
        self.raw = raw
        return catalog.REPL
