# Feetech STS bus servos (STS3215 and relatives): packets `FF FF ID LEN INST P... CHK`,
# LEN = params + 2, CHK = ~(ID + LEN + INST + sum(P)) & 0xFF; STS registers little-endian.
#
# Every write_goals() is one SYNC_WRITE of all goal positions. poll() reads present
# position, speed and load (one block from Present_Position) of `read_group` servos per
# request: READ for one, SYNC_READ for several; each servo answers with its own status
# packet whose ERR byte carries its error bits. Register addresses and sizes come from the
# vendor table (feetech_table), which the simulated servos read too.
import array

from dexfw.compat import const
from dexfw.drivers import busbytes, feetech_table
from dexfw.drivers.feetech_table import (BROADCAST_ID, INST_READ, INST_SYNC_READ,
                                         INST_SYNC_WRITE, INST_WRITE)
from dexfw.drivers.servobus import KEEP_BITS, ServoBus
from dexproto.catalog import COUNTER_MASK, ST_SERVO_BAD_CHECKSUM, ST_SERVO_ERROR

_REGS = feetech_table.CONTROL_TABLE
_ADDRESS = const(0)  # a CONTROL_TABLE entry is (address, size)
_SIZE = const(1)
REG_RETURN_DELAY = _REGS["Return_Delay_Time"][_ADDRESS]
REG_LOCK = _REGS["Lock"][_ADDRESS]
REG_TORQUE_ENABLE = _REGS["Torque_Enable"][_ADDRESS]
TORQUE_ENABLE_SIZE = _REGS["Torque_Enable"][_SIZE]
REG_GOAL_POSITION = _REGS["Goal_Position"][_ADDRESS]
GOAL_POSITION_SIZE = _REGS["Goal_Position"][_SIZE]
# The block read back every poll: present position, speed and load, in one request.
REG_PRESENT_POSITION = _REGS["Present_Position"][_ADDRESS]
LOAD_AT = _REGS["Present_Load"][_ADDRESS] - REG_PRESENT_POSITION  # offset in the block
READ_LEN = LOAD_AT + _REGS["Present_Load"][_SIZE]
POSITION_SIGN_BIT = feetech_table.SIGN_BIT["Present_Position"]
LOAD_SIGN_BIT = feetech_table.SIGN_BIT["Present_Load"]
_HEAD = const(5)  # FF FF ID LEN INST|ERR: the first parameter or data byte
ANSWER_SIZE = _HEAD + READ_LEN + 1  # FF FF ID LEN ERR data CHK


def finish_packet(buf, n):
    """Write the checksum of the packet in buf[0:n-1] at buf[n-1]."""
    buf[n - 1] = 0xFF ^ busbytes.sum_bytes(buf, 2, n - 1)


def packet(servo_id, inst, params):
    """A whole packet as a new bytearray (setup only: allocates)."""
    buf = bytearray(_HEAD + 1 + len(params))
    buf[0] = buf[1] = 0xFF
    buf[2] = servo_id
    buf[3] = len(params) + 2
    buf[4] = inst
    for i in range(len(params)):
        buf[_HEAD + i] = params[i]
    finish_packet(buf, len(buf))
    return buf


def sync_write_packet(addr, length, ids):
    """A SYNC_WRITE of `length` bytes at `addr` for `ids`, data left zero to fill in."""
    params = bytearray(2 + len(ids) * (length + 1))
    params[0] = addr
    params[1] = length
    for i in range(len(ids)):
        params[2 + i * (length + 1)] = ids[i]
    return packet(BROADCAST_ID, INST_SYNC_WRITE, params)


class FeetechBus(ServoBus):
    MIN_PACKET = _HEAD + 1
    READ1_SIZE = _HEAD + 2  # the answer to a one-byte READ
    WRITE_ANSWER_SIZE = _HEAD + 1
    DATA_AT = _HEAD  # first data byte of an answer

    def __init__(self, uart, ids=(), joints=(), model="sts3215", read_group=1,
                 timeout_polls=3, clock=None):
        ServoBus.__init__(self, uart, ids, joints, model, feetech_table, read_group,
                          timeout_polls, 8 * ANSWER_SIZE * read_group, "Feetech", clock)
        self._goals = sync_write_packet(REG_GOAL_POSITION, GOAL_POSITION_SIZE, self.ids)
        # goals_into's inputs: the counts conversion and where servo k's 2 bytes sit
        # (FF FF FE LEN 83 ADDR L, then ID GOAL(2) per servo), the sum of the packet's
        # fixed bytes (id to the last id, goals left zero) and the checksum's place
        # (goals_into writes the checksum too), the servos, then servo k's joint.
        size = len(self._goals)
        self._conv = array.array("H", [self.centre, self.counts_per_turn, self.top,
                                       _HEAD + 3, GOAL_POSITION_SIZE + 1,
                                       busbytes.sum_bytes_py(self._goals, 2, size - 1) & 0xFF,
                                       size - 1, self.n] + list(self.joints))
        self._torque_on = sync_write_packet(REG_TORQUE_ENABLE, TORQUE_ENABLE_SIZE, self.ids)
        self._torque_off = sync_write_packet(REG_TORQUE_ENABLE, TORQUE_ENABLE_SIZE, self.ids)
        for k in range(self.n):
            self._torque_on[_HEAD + 2 + (TORQUE_ENABLE_SIZE + 1) * k + 1] = 1
        finish_packet(self._torque_on, len(self._torque_on))
        self._reads = ()  # a READ per servo, made once: poll writes it (read_group 1)
        if read_group == 1:
            self._reads = tuple(packet(i, INST_READ, (REG_PRESENT_POSITION, READ_LEN))
                                for i in self.ids)
        else:
            self._req = packet(BROADCAST_ID, INST_SYNC_READ, bytearray(2 + read_group))
            self._req[_HEAD] = REG_PRESENT_POSITION
            self._req[_HEAD + 1] = READ_LEN
        # busbytes.sts_answers' inputs: the ids, the awaited flags (ServoBus's _awaited is
        # a view into them) and the joints in one buffer; the conversions in io, and the
        # loads it reads back (self.load: a view of them, an argument fewer).
        n = self.n
        self._book = bytearray(256 + 2 * n)
        for i in range(256):
            self._book[i] = self._index_of[i]
        for k in range(n):
            self._book[256 + n + k] = self.joints[k]
        self._awaited = memoryview(self._book)[256:256 + n]
        self._io = array.array("h", [0, self.centre, self.counts_per_turn, n, 0, 0,
                                     ANSWER_SIZE, LOAD_AT, POSITION_SIGN_BIT, LOAD_SIGN_BIT,
                                     KEEP_BITS, ST_SERVO_BAD_CHECKSUM, ST_SERVO_ERROR]
                               + [0] * n)
        self.load = memoryview(self._io)[busbytes.STS_LOAD:busbytes.STS_LOAD + n]
        self._set_eeprom_byte(REG_RETURN_DELAY, 0)  # answer at once, not after 500 us

    def _read1_packet(self, servo_id, addr):
        return packet(servo_id, INST_READ, (addr, 1))

    def _write1_packets(self, servo_id, addr, value):
        # The EEPROM area is locked: unlock, write, lock again.
        return (packet(servo_id, INST_WRITE, (REG_LOCK, 0)),
                packet(servo_id, INST_WRITE, (addr, value)),
                packet(servo_id, INST_WRITE, (REG_LOCK, 1)))

    def write_goals(self, goal_cdeg):
        """One SYNC_WRITE of every servo's goal; goal_cdeg is indexed by joint. Built in
        the packet made once (busbytes.goals_into: one pass with the checksum, viper where
        the port has it) and handed to the UART's TX buffer: nothing waits for the line."""
        busbytes.goals_into(self._goals, goal_cdeg, self._conv)
        self.uart.write(self._goals)

    def _send_request(self, first, count):
        # A SYNC_READ (read_group > 1: poll writes a single servo's READ itself).
        req = self._req
        self._fill_ids(req, 7, first, count)  # FF FF FE LEN 82 ADDR L IDs
        finish_packet(req, len(req))
        self.uart.write(req)

    def poll(self, present_cdeg, status):
        """ServoBus.poll with _parse and a one-servo _request written out (issue 15: two
        method calls fewer a poll, ~14 us each on an RP2040)."""
        # (No locals: sts_answers' call, 7 slots, and the 3 arguments are near the
        # on-stack limit.)
        if not self._rxn:  # ServoBus.poll's: what is there, without any() first
            self._rxn = self.uart.readinto(self._rx, self._rx_size) or 0
        else:
            self._receive_more(self.uart.any())
        if self._rxn:  # _parse's lines
            self._io[0] = self._rxn
            if busbytes.sts_answers(self._rx, self._io, self._book, present_cdeg,
                                    status) == self._rxn:
                self._rxn = 0  # all used up, the usual case: no _consume (2 calls fewer)
            elif self._io[0]:
                self._consume(self._io[0])
            self._n_awaited -= self._io[4]
            if self._io[5]:
                self.bad_checksums = (self.bad_checksums + self._io[5]) & COUNTER_MASK
        if self._n_awaited:
            self._age += 1
            if self._age < self.timeout_polls:
                return
            self._expire(status)
        if not self._reads:
            self._request()  # a SYNC_READ of read_group servos
            return
        # _request's lines for one servo, its READ made once
        self._awaited[self._next] = 1
        self._n_awaited = 1
        self._age = 0
        self.uart.write(self._reads[self._next])
        self._next = self._next + 1 if self._next + 1 < self.n else 0

    def _parse(self, present_cdeg, status):
        """ServoBus._parse in one pass over the receive buffer (busbytes.sts_answers:
        viper where the port has it; each answer booked as _packet would). poll has
        these lines written out; bench/firmware.py's read-back stage calls this."""
        self._io[0] = self._rxn
        if busbytes.sts_answers(self._rx, self._io, self._book, present_cdeg,
                                status) == self._rxn:
            self._rxn = 0  # all used up, the usual case: no _consume (2 calls fewer)
        elif self._io[0]:
            self._consume(self._io[0])
        self._n_awaited -= self._io[4]
        if self._io[5]:
            self.bad_checksums = (self.bad_checksums + self._io[5]) & COUNTER_MASK

    # ---- framing (ServoBus._find_status calls these at setup) --------------------------
    def _size_at(self, rx, p):
        if rx[p] != 0xFF or rx[p + 1] != 0xFF or rx[p + 2] == 0xFF:
            return 0
        size = rx[p + 3] + 4
        return size if size >= 6 else 0

    def _check(self, rx, p, size):
        return (0xFF ^ busbytes.sum_bytes(rx, p + 2, p + size - 1)) == rx[p + size - 1]

    def _status_id(self, rx, p):
        return rx[p + 2]  # an answer and an echo look alike: callers tell them by size

