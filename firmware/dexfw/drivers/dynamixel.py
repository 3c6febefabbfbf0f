# Dynamixel Protocol 2.0 servos (X series): packets
# `FF FF FD 00 ID LEN_L LEN_H INST P... CRC_L CRC_H`, LEN = bytes after it (INST, params,
# CRC). CRC-16 (poly 0x8005) over the whole packet after byte stuffing: an FD is added
# after every FF FF FD among INST and params, so the header pattern never appears inside.
#
# write_goals() is one SYNC_WRITE of Goal_Position (4 bytes); poll() reads present
# current, velocity and position (one block from Present_Current) of `read_group` servos
# per request (READ for one, SYNC_READ for several); each servo answers with its own
# status packet. Register addresses and sizes come from the vendor table
# (dynamixel_table), which the simulated servos read too.
from dexfw.compat import const
from dexfw.drivers import busbytes, dynamixel_table
from dexfw.drivers.dynamixel_table import (BROADCAST_ID, INST_READ, INST_STATUS,
                                           INST_SYNC_READ, INST_SYNC_WRITE, INST_WRITE)
from dexfw.drivers.servobus import ServoBus, cdeg_from_counts, counts_from_cdeg
from dexproto.cobsbuf import copy_into
from dexproto.frame import _Views  # views of a buffer's prefixes, one per length, made once

_REGS = dynamixel_table.CONTROL_TABLE
_ADDRESS = const(0)  # a CONTROL_TABLE entry is (address, size)
_SIZE = const(1)
REG_RETURN_DELAY = _REGS["Return_Delay_Time"][_ADDRESS]
REG_TORQUE_ENABLE = _REGS["Torque_Enable"][_ADDRESS]
TORQUE_ENABLE_SIZE = _REGS["Torque_Enable"][_SIZE]
REG_GOAL_POSITION = _REGS["Goal_Position"][_ADDRESS]
GOAL_POSITION_SIZE = _REGS["Goal_Position"][_SIZE]
# The block read back every poll: present current (2), velocity (4), position (4).
REG_PRESENT_CURRENT = _REGS["Present_Current"][_ADDRESS]
POSITION_AT = _REGS["Present_Position"][_ADDRESS] - REG_PRESENT_CURRENT  # offset in it
READ_LEN = POSITION_AT + _REGS["Present_Position"][_SIZE]
HEADER_SIZE = const(7)  # FF FF FD 00 ID LEN_L LEN_H
ANSWER_SIZE = HEADER_SIZE + 2 + READ_LEN + 2  # unstuffed: + INST, ERR, data, CRC


def finish_packet(raw, n_body, out):
    """Stuff raw's INST+params (raw[7:n_body]) into out, fill LEN and CRC; return the size."""
    # Two functions, each with a frame small enough for the stack (tests/test_vrig_frames.py).
    copy_into(raw, 0, HEADER_SIZE, out, 0)
    end = busbytes.stuff(raw, HEADER_SIZE, n_body, out, HEADER_SIZE)
    _length_and_crc(out, end)
    return end + 2


def _length_and_crc(out, end):
    """LEN (from INST to the CRC) and the CRC of out[0:end], put at out[end:end+2]."""
    length = end - HEADER_SIZE + 2
    out[5] = length & 0xFF
    out[6] = length >> 8
    crc = busbytes.crc16(out, 0, end, busbytes.CRC16_TABLE)
    out[end] = crc & 0xFF
    out[end + 1] = crc >> 8


def packet(servo_id, inst, params):
    """A whole packet as a new bytearray (setup only: allocates)."""
    raw = bytearray(HEADER_SIZE + 1 + len(params))
    raw[0] = raw[1] = 0xFF
    raw[2] = 0xFD
    raw[4] = servo_id
    raw[7] = inst
    for i in range(len(params)):
        raw[8 + i] = params[i]
    out = bytearray(2 * len(raw) + 2)
    n = finish_packet(raw, len(raw), out)
    return out[:n]


def le16(value):
    return (value & 0xFF, value >> 8)


class DynamixelBus(ServoBus):
    MIN_PACKET = HEADER_SIZE + 4  # INST, ERR, CRC(2)
    READ1_SIZE = HEADER_SIZE + 5  # the answer to a one-byte READ: INST ERR data CRC(2)
    WRITE_ANSWER_SIZE = HEADER_SIZE + 4
    DATA_AT = HEADER_SIZE + 2  # first data byte of an answer

    def __init__(self, uart, ids=(), joints=(), model="xm430", read_group=1,
                 timeout_polls=3, clock=None):
        ServoBus.__init__(self, uart, ids, joints, model, dynamixel_table, read_group,
                          timeout_polls, 8 * ANSWER_SIZE * read_group, "Dynamixel", clock)
        n = self.n
        # Goals: raw (unstuffed) packet filled in place, stuffed into _out, written as a
        # view of its exact length (one view per length, made on first use).
        self._raw = bytearray(HEADER_SIZE + 5 + 5 * n)
        head = packet(BROADCAST_ID, INST_SYNC_WRITE,
                      le16(REG_GOAL_POSITION) + le16(GOAL_POSITION_SIZE))
        for i in range(HEADER_SIZE + 5):
            self._raw[i] = head[i]
        for k in range(n):
            self._raw[HEADER_SIZE + 5 + 5 * k] = self.ids[k]
        self._out = bytearray(2 * len(self._raw) + 2)
        self._views = _Views(self._out)
        self._torque_on = self._torque_packet(1)
        self._torque_off = self._torque_packet(0)
        self._req_raw = bytearray(HEADER_SIZE + 5 + (0 if read_group == 1 else read_group))
        params = le16(REG_PRESENT_CURRENT) + le16(READ_LEN)
        head = packet(self.ids[0] if read_group == 1 else BROADCAST_ID,
                      INST_READ if read_group == 1 else INST_SYNC_READ, params)
        for i in range(HEADER_SIZE + 5):
            self._req_raw[i] = head[i]
        self._req = bytearray(2 * len(self._req_raw) + 2)
        self._req_views = _Views(self._req)
        # Return_Delay_Time: answer at once, not after 500 us. It sits in EEPROM, writable
        # while torque is off (as at power-up).
        self._set_eeprom_byte(REG_RETURN_DELAY, 0)

    def _read1_packet(self, servo_id, addr):
        return packet(servo_id, INST_READ, le16(addr) + le16(1))

    def _write1_packets(self, servo_id, addr, value):
        return (packet(servo_id, INST_WRITE, le16(addr) + (value,)),)

    def _torque_packet(self, on):
        params = list(le16(REG_TORQUE_ENABLE) + le16(TORQUE_ENABLE_SIZE))
        for servo_id in self.ids:
            params.append(servo_id)
            params.append(on)
        return packet(BROADCAST_ID, INST_SYNC_WRITE, params)

    def write_goals(self, goal_cdeg):
        """One SYNC_WRITE of every servo's goal; goal_cdeg is indexed by joint."""
        for k in range(self.n):
            self._put_goal(k, goal_cdeg)
        size = finish_packet(self._raw, len(self._raw), self._out)
        self.uart.write(self._views.get(size))

    def _put_goal(self, k, goal_cdeg):
        # Servo k's int32 goal, after INST ADDR(2) LEN(2), then ID GOAL(4) per servo.
        c = counts_from_cdeg(goal_cdeg[self.joints[k]], self.centre, self.counts_per_turn,
                             self.top)
        o = HEADER_SIZE + 6 + 5 * k
        self._raw[o] = c & 0xFF
        self._raw[o + 1] = c >> 8
        self._raw[o + 2] = 0
        self._raw[o + 3] = 0

    def _send_request(self, first, count):
        raw = self._req_raw
        if count == 1:
            raw[4] = self.ids[first]
        else:
            self._fill_ids(raw, HEADER_SIZE + 5, first, count)  # after INST ADDR(2) LEN(2)
        size = finish_packet(raw, len(raw), self._req)
        self.uart.write(self._req_views.get(size))

    # ---- framing (ServoBus._parse and _find_status call these) ----------------------
    def _size_at(self, rx, p):
        if rx[p] != 0xFF or rx[p + 1] != 0xFF or rx[p + 2] != 0xFD or rx[p + 3] != 0:
            return 0
        size = HEADER_SIZE + (rx[p + 5] | (rx[p + 6] << 8))
        return size if HEADER_SIZE + 4 <= size <= len(rx) else 0

    def _check(self, rx, p, size):
        end = p + size - 2
        return busbytes.crc16(rx, p, end, busbytes.CRC16_TABLE) == rx[end] | (rx[end + 1] << 8)

    def _status_id(self, rx, p):
        # Short status packets (setup) hold no FF FF FD: nothing in them is stuffed.
        return rx[p + 4] if rx[p + 7] == INST_STATUS else -1

    def _packet(self, rx, p, size):
        if rx[p + 7] != INST_STATUS:
            return  # an echo of our own packet
        ok = self._check(rx, p, size)
        # Unstuffed after the check (the CRC covered the stuffed bytes), whatever it said.
        ok = self._data_len(rx, p, size) == READ_LEN and ok
        self._answer(p, ok)

    def _data_len(self, rx, p, size):
        """Unstuff INST, ERR and data in place; the length of the data."""
        return busbytes.unstuff(rx, p + 7, p + size - 2) - (p + 9)

    def _answer(self, p, ok):
        k = self._answered(self._rx[p + 4], ok, self._rx[p + 8])
        if k >= 0:
            self._store(k, self._rx, p + 9, self._present_out)

    def _store(self, k, rx, d, present_cdeg):
        current = rx[d] | (rx[d + 1] << 8)
        self.load[k] = current - 0x10000 if current & 0x8000 else current
        # Position is int32; only the low 24 bits are kept so that a negative value
        # never becomes a big int on a 32-bit port (positions stay far below 2**23).
        d += POSITION_AT
        pos = rx[d] | (rx[d + 1] << 8) | (rx[d + 2] << 16)
        if rx[d + 3] & 0x80:
            pos -= 0x1000000
        present_cdeg[self.joints[k]] = cdeg_from_counts(pos, self.centre, self.counts_per_turn)
