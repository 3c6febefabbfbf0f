# Commands applied once. A command the host retries after a lost answer comes again with
# the same sequence number (and so the same frame CRC): it is ACKed again, not applied
# twice. One slot per kind of command (SET_JOINT: one per joint) remembers the last one
# applied: its sequence number, its frame's CRC and when it arrived.
#
# TARGETS come with every cycle in HOST mode: repeated() and remember() keep their frames
# on the stack (tests/test_vrig_frames.py) and allocate nothing.
from dexfw.compat import const
from dexproto.catalog import COUNTER_MASK
from dexproto.cobsbuf import copy_into
from dexproto.frame import HEADER_SIZE as BODY  # a received body starts here

SLOT_MODE = const(0)
SLOT_CONFIG = const(1)
SLOT_TARGETS = const(2)
SLOT_JOINT = const(3)  # + joint index
# An older sequence number than the slot's, within this many received frames of it, is a
# late retry of a command already superseded: ACKed, never applied (nothing goes
# backwards). Further apart, 16-bit sequence numbers no longer order: it is new.
STALE_FRAMES = const(64)


class ApplyOnce:
    """The last command applied per slot, for the frames `reader` (a FrameReader) takes in."""

    def __init__(self, reader, max_joints):
        self.reader = reader
        n = SLOT_JOINT + max_joints
        self.used = bytearray(n)
        self.seq = [0] * n
        self.frame = [0] * n  # reader.frames when it was applied
        self.crc = bytearray(4 * n)  # its frame's CRC
        self.applied = 0  # SET_MODE / SET_CONFIG / SET_JOINT applied since boot
        self.repeats = 0  # retried or superseded commands ACKed without applying

    def repeated(self, slot, seq, idempotent=False):
        """True if the received command is a retry of, or older than, the one applied last
        in its slot: it must not be applied (again), only ACKed. An idempotent command
        (TARGETS) is only kept from going backwards."""
        if not self.used[slot]:
            return False
        ahead = (seq - self.seq[slot]) & 0xFFFF
        if ahead == 0:
            if idempotent:
                return False
            if not self._same_crc(slot << 2):
                return False  # same number, other content: a new host counting from 0
        elif ahead < 0x8000 or (((self.reader.frames - self.frame[slot]) & COUNTER_MASK)
                                > STALE_FRAMES):
            return False
        self.repeats = (self.repeats + 1) & COUNTER_MASK
        return True

    def remember(self, slot, seq, counted=True):
        """Remember the command just applied in its slot (its seq, CRC, arrival)."""
        self._keep_crc(slot << 2)
        self.used[slot] = 1
        self.seq[slot] = seq
        self.frame[slot] = self.reader.frames
        if counted:
            self.applied = (self.applied + 1) & COUNTER_MASK

    def _keep_crc(self, k):
        """The received frame's CRC (the 4 bytes after its body) into crc[k:k + 4]."""
        at = BODY + self.reader.body_len
        copy_into(self.reader.payload, at, at + 4, self.crc, k)

    def _same_crc(self, k):
        """True when the received frame's CRC equals the 4 bytes at crc[k]."""
        p = self.reader.payload
        at = BODY + self.reader.body_len  # the frame's CRC
        crc = self.crc
        return (p[at] == crc[k] and p[at + 1] == crc[k + 1] and p[at + 2] == crc[k + 2]
                and p[at + 3] == crc[k + 3])

    def forget(self):
        """A new session (HELLO): its host numbers its frames afresh."""
        for i in range(len(self.used)):
            self.used[i] = 0
