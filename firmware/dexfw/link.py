# The host link on the board: frames in from hal.Console without blocking, frames out
# through one FrameWriter. Replies on the loop's path (ACK, FAULT, TIME_SYNC_REPLY)
# are packed with struct.pack_into into buffers made once: they allocate nothing.
import struct

from dexfw.breakin import BreakIn
from dexfw.compat import const
from dexproto import catalog
from dexproto.cobsbuf import copy_into
from dexproto.frame import HEADER_SIZE, FrameReader, FrameWriter

RX_CHUNK = 256
MAX_READS = 4  # console reads per cycle: bounds the time commands take from the loop
# A catalog.MESSAGES row is (type, name, direction, head format, head fields, item format,
# item fields, tail field, summary); the board reads only the head format.
_ROW_HEAD_FORMAT = const(3)


def _always():
    return 1


def head_format(msg_type):
    """The struct format of a message's head, from the catalog ("" when it has none)."""
    return catalog.BY_TYPE[msg_type][_ROW_HEAD_FORMAT]


def head_size(msg_type):
    """The size in bytes of a message's head."""
    return struct.calcsize(head_format(msg_type))


ACK_HEAD = head_format(catalog.ACK)
ACK_SIZE = head_size(catalog.ACK)
NACK_HEAD = head_format(catalog.NACK)
NACK_SIZE = head_size(catalog.NACK)
FAULT_HEAD = head_format(catalog.FAULT)
FAULT_SIZE = head_size(catalog.FAULT)
LOG_HEAD_SIZE = head_size(catalog.LOG)
SYNC_REPLY_SIZE = head_size(catalog.TIME_SYNC_REPLY)


class Link:
    """Reads command frames and sends replies over a Console (readinto / write)."""

    def __init__(self, console, ticks_us):
        self.console = console
        self.ticks_us = ticks_us
        self.reader = FrameReader()
        self.writer = FrameWriter()
        self.body = self.writer.body
        self.payload = self.reader.payload  # a received frame: body at HEADER_SIZE
        self._rx = bytearray(RX_CHUNK)
        self._pos = 0
        self._end = 0
        self._reads = 0
        self.rx_us = 0  # board time when the bytes of the last frame arrived
        self.tx_frames = 0
        self.tx_dropped = 0
        self.breakin = BreakIn()
        # Whether bytes wait (the console's any()): the loop reads the console only then,
        # or while a frame is half read (reader.fill), which saves a quiet cycle the
        # reading calls (issue 15: a method call is 13.6 us on an RP2040). A console
        # without any() is read every cycle.
        self.waiting = getattr(console, "any", _always)

    def start_cycle(self):
        self._reads = 0

    def next_frame(self):
        """The type of the next complete good frame (then .reader.seq, .reader.body_len), or 0."""
        r = self.reader
        while True:
            if self._pos >= self._end:
                if self._reads >= MAX_READS:
                    return 0
                self._reads += 1
                n = self.console.readinto(self._rx)
                if not n:
                    # The host went quiet. Bytes of an unfinished frame may be mpremote's
                    # break-in (dexfw.breakin), which reads as the REPL message.
                    return self.breakin.check(r, self.rx_us, self.ticks_us) if r.fill else 0
                self.rx_us = self.ticks_us()
                self._pos = 0
                self._end = n
            k = r.feed(self._rx, self._pos, self._end)
            if k < 0:
                self._pos = self._end
                continue
            self._pos = k
            return r.msg_type

    def send(self, msg_type, n_body):
        """Frame the n_body bytes at .body and write them; a short write counts as dropped."""
        frame = self.writer.finish(msg_type, n_body)
        n = self.console.write(frame)
        if n is not None and n < len(frame):
            self.tx_dropped = (self.tx_dropped + 1) & catalog.COUNTER_MASK
        else:
            self.tx_frames = (self.tx_frames + 1) & catalog.COUNTER_MASK

    def ack(self, msg_type, seq):
        struct.pack_into(ACK_HEAD, self.body, 0, msg_type, seq)
        self.send(catalog.ACK, ACK_SIZE)

    def nack(self, msg_type, seq, error, field=catalog.NO_JOINT):
        struct.pack_into(NACK_HEAD, self.body, 0, msg_type, seq, error, field)
        self.send(catalog.NACK, NACK_SIZE)

    def fault(self, board_us, code, joint, detail):
        struct.pack_into(FAULT_HEAD, self.body, 0, board_us, code, joint, detail & 0xFFFF)
        self.send(catalog.FAULT, FAULT_SIZE)

    def log(self, level, text):
        """A LOG line (not on the loop's path: text is bytes, cut to fit a frame)."""
        self.body[0] = level
        n = min(len(text), catalog.MAX_PAYLOAD - HEADER_SIZE - LOG_HEAD_SIZE)
        copy_into(text, 0, n, self.body, LOG_HEAD_SIZE)
        self.send(catalog.LOG, LOG_HEAD_SIZE + n)

    def time_sync_reply(self):
        """TIME_SYNC_REPLY: the probe's token bytes copied as they came, then rx/tx times."""
        copy_into(self.payload, HEADER_SIZE, HEADER_SIZE + 4, self.body, 0)
        struct.pack_into("<II", self.body, 4, self.rx_us, self.ticks_us())
        self.send(catalog.TIME_SYNC_REPLY, SYNC_REPLY_SIZE)

    def unpack(self, fmt):
        """The received body's head fields (configuration commands only: allocates)."""
        return struct.unpack_from(fmt, self.payload, HEADER_SIZE)
