# Simulated servo buses at the packet level: Feetech STS and Dynamixel Protocol 2.0.
#
# Each servo is a register file plus dynamics: it moves toward its goal with a
# first-order lag (time constant TAU_US) and a speed limit, only while torque is on.
# A bus takes the bytes the board writes, executes complete packets with a valid
# checksum (a broken one is ignored, as a servo does) and queues the status packets
# for the board to read. vfaults.servo_silent / servo_bad_checksum (per motor) make a
# servo stay quiet or answer with a wrong checksum. Steady state allocates nothing.
from dexfw.drivers import busbytes
from dexproto.cobsbuf import copy_into

import vfaults
import vworld

TAU_US = 15000
SPEED_COUNTS_PER_S = 3000  # about 260 deg/s
Q = 8  # position kept in 1/256 count


class Servo:
    def __init__(self, servo_id, motor, centre=2048, reg_count=256):
        self.id = servo_id
        self.motor = motor
        self.regs = bytearray(reg_count)
        self.pos_q = centre << Q
        self.goal = centre
        self.torque = 0
        self.last_us = vworld.now_us()
        self.moves = 0

    def update(self):
        now = vworld.now_us()
        dt = now - self.last_us
        self.last_us = now
        if dt <= 0 or not self.torque:
            return
        err = (self.goal << Q) - self.pos_q
        step = err * dt // (TAU_US + dt)  # first-order lag, stable for any dt
        limit = (SPEED_COUNTS_PER_S << Q) * dt // 1000000
        if step > limit:
            step = limit
        elif step < -limit:
            step = -limit
        self.pos_q += step

    def position(self):
        return (self.pos_q + (1 << (Q - 1))) >> Q

    def load(self):
        """A load that grows with the lag behind the goal (servo units, +-1000)."""
        e = self.goal - self.position()
        v = e * 4 if self.torque else 0
        return 1000 if v > 1000 else (-1000 if v < -1000 else v)


class PacketBus:
    """Bytes in from the board, status packets out; subclasses speak the protocol."""

    def __init__(self):
        self.servos = {}  # id -> Servo
        self.order = []
        self.inbuf = bytearray(1024)
        self.n_in = 0
        self.outbuf = bytearray(4096)
        self.out_start = 0
        self.out_end = 0
        self.reply = bytearray(300)
        self.packets = 0
        self.bad_packets = 0

    def add(self, servo):
        if servo.id in self.servos:
            raise ValueError("simulated servo bus: id %d wired twice" % servo.id)
        self.servos[servo.id] = servo
        self.order.append(servo)
        return servo

    # the board's side ------------------------------------------------------------
    def write(self, buf):
        n = len(buf)
        if n > len(self.inbuf) - self.n_in:
            self.n_in = 0  # overflow: the line is garbage, start over
        self.n_in = copy_into(buf, 0, n, self.inbuf, self.n_in)
        used = self.parse()
        if used:
            self.n_in = copy_into(self.inbuf, used, self.n_in, self.inbuf, 0)
        return n

    def any(self):
        return self.out_end - self.out_start

    def readinto(self, buf, nbytes):
        n = self.out_end - self.out_start
        if nbytes < n:
            n = nbytes
        copy_into(self.outbuf, self.out_start, self.out_start + n, buf, 0)
        self.out_start += n
        if self.out_start == self.out_end:
            self.out_start = self.out_end = 0
        return n

    def send(self, buf, n):
        if self.out_end + n > len(self.outbuf):  # the board is not reading: drop old
            self.out_start = self.out_end = 0
        self.out_end = copy_into(buf, 0, n, self.outbuf, self.out_end)

    # helpers for subclasses -------------------------------------------------------
    def answers(self, servo):
        """Whether servo answers at all (not silenced by a fault)."""
        return not vfaults.servo_silent[servo.motor]

    def corrupt(self, servo):
        return vfaults.servo_bad_checksum[servo.motor]


class FeetechBus(PacketBus):
    # STS register map (little-endian)
    REG_RETURN_DELAY = 7
    REG_TORQUE = 40
    REG_GOAL = 42
    REG_LOCK = 55
    REG_POSITION = 56
    REG_SPEED = 58
    REG_LOAD = 60

    def add_servo(self, servo_id, motor):
        s = self.add(Servo(servo_id, motor))
        s.regs[self.REG_RETURN_DELAY] = 250  # factory default: 500 us
        s.regs[self.REG_LOCK] = 1
        s.regs[5] = servo_id
        s.regs[62] = 74  # 7.4 V
        s.regs[63] = 30  # 30 C
        s.eeprom_writes = 0
        return s

    def parse(self):
        buf = self.inbuf
        n = self.n_in
        p = 0
        while n - p >= 6:
            if buf[p] != 0xFF or buf[p + 1] != 0xFF or buf[p + 2] == 0xFF:
                p += 1
                continue
            size = buf[p + 3] + 4
            if size < 6:
                p += 1
                continue
            if n - p < size:
                break
            if (0xFF ^ busbytes.sum_bytes(buf, p + 2, p + size - 1)) == buf[p + size - 1]:
                self.packets += 1
                self.execute(buf[p + 2], buf[p + 4], p + 5, size - 6)
            else:
                self.bad_packets += 1
            p += size
        return p

    def execute(self, sid, inst, at, n_params):
        buf = self.inbuf
        if inst == 0x83:  # SYNC_WRITE addr len [id data*len]*
            addr = buf[at]
            length = buf[at + 1]
            i = at + 2
            while i + length < at + n_params:
                s = self.servos.get(buf[i])
                if s is not None:
                    self.write_regs(s, addr, buf, i + 1, length)
                i += length + 1
        elif inst == 0x82:  # SYNC_READ addr len ids
            for i in range(at + 2, at + n_params):
                s = self.servos.get(buf[i])
                if s is not None:
                    self.status(s, buf[at], buf[at + 1])
        elif sid == 0xFE:
            if inst == 0x03:
                for s in self.order:
                    self.write_regs(s, buf[at], buf, at + 1, n_params - 1)
        else:
            s = self.servos.get(sid)
            if s is None:
                return
            if inst == 0x02:  # READ addr len
                self.status(s, buf[at], buf[at + 1])
            elif inst == 0x03:  # WRITE addr data...
                self.write_regs(s, buf[at], buf, at + 1, n_params - 1)
                self.status(s, 0, 0)
            elif inst == 0x01:  # PING
                self.status(s, 0, 0)

    def write_regs(self, s, addr, src, at, length):
        s.update()
        for i in range(length):
            reg = addr + i
            if reg < 40 and s.regs[self.REG_LOCK]:
                continue  # EEPROM area is locked
            if reg < 40:
                s.eeprom_writes += 1
            s.regs[reg] = src[at + i]
        s.torque = s.regs[self.REG_TORQUE]
        s.goal = s.regs[self.REG_GOAL] | (s.regs[self.REG_GOAL + 1] << 8)

    def status(self, s, addr, length):
        if not self.answers(s):
            return
        s.update()
        pos = s.position()
        s.regs[self.REG_POSITION] = pos & 0xFF
        s.regs[self.REG_POSITION + 1] = pos >> 8
        load = s.load()
        mag = -load if load < 0 else load
        mag |= 0x400 if load < 0 else 0
        s.regs[self.REG_LOAD] = mag & 0xFF
        s.regs[self.REG_LOAD + 1] = mag >> 8
        r = self.reply
        r[0] = r[1] = 0xFF
        r[2] = s.id
        r[3] = length + 2
        r[4] = 0  # no error bits
        for i in range(length):
            r[5 + i] = s.regs[addr + i]
        r[5 + length] = 0xFF ^ busbytes.sum_bytes(r, 2, 5 + length)
        if self.corrupt(s):
            r[5 + length] ^= 0x5A
        self.send(r, 6 + length)


class DynamixelBus(PacketBus):
    # X-series register map (little-endian)
    REG_RETURN_DELAY = 9
    REG_TORQUE = 64
    REG_GOAL = 116
    REG_CURRENT = 126
    REG_VELOCITY = 128
    REG_POSITION = 132

    def add_servo(self, servo_id, motor):
        s = self.add(Servo(servo_id, motor))
        s.regs[7] = servo_id
        s.regs[self.REG_RETURN_DELAY] = 250
        s.regs[68] = 2  # Status_Return_Level: answer everything
        s.eeprom_writes = 0
        return s

    def parse(self):
        buf = self.inbuf
        n = self.n_in
        p = 0
        while n - p >= 10:
            if buf[p] != 0xFF or buf[p + 1] != 0xFF or buf[p + 2] != 0xFD or buf[p + 3] != 0:
                p += 1
                continue
            size = 7 + (buf[p + 5] | (buf[p + 6] << 8))
            if size < 10 or size > len(buf):
                p += 1
                continue
            if n - p < size:
                break
            end = p + size - 2
            if busbytes.crc16(buf, p, end, busbytes.CRC16_TABLE) == buf[end] | (buf[end + 1] << 8):
                self.packets += 1
                n_params = busbytes.unstuff(buf, p + 7, end) - (p + 8)
                self.execute(buf[p + 4], buf[p + 7], p + 8, n_params)
            else:
                self.bad_packets += 1
            p += size
        return p

    def execute(self, sid, inst, at, n_params):
        buf = self.inbuf
        if inst == 0x83:  # SYNC_WRITE addr(2) len(2) [id data*len]*
            addr = buf[at] | (buf[at + 1] << 8)
            length = buf[at + 2] | (buf[at + 3] << 8)
            i = at + 4
            while i + length < at + n_params:
                s = self.servos.get(buf[i])
                if s is not None:
                    self.write_regs(s, addr, buf, i + 1, length)
                i += length + 1
        elif inst == 0x82:  # SYNC_READ addr(2) len(2) ids
            addr = buf[at] | (buf[at + 1] << 8)
            length = buf[at + 2] | (buf[at + 3] << 8)
            for i in range(at + 4, at + n_params):
                s = self.servos.get(buf[i])
                if s is not None:
                    self.status(s, addr, length)
        elif sid == 0xFE:
            if inst == 0x03:
                for s in self.order:
                    self.write_regs(s, buf[at] | (buf[at + 1] << 8), buf, at + 2, n_params - 2)
        else:
            s = self.servos.get(sid)
            if s is None:
                return
            if inst == 0x02:
                self.status(s, buf[at] | (buf[at + 1] << 8), buf[at + 2] | (buf[at + 3] << 8))
            elif inst == 0x03:
                self.write_regs(s, buf[at] | (buf[at + 1] << 8), buf, at + 2, n_params - 2)
                self.status(s, 0, 0)
            elif inst == 0x01:
                self.status(s, 0, 0)

    def write_regs(self, s, addr, src, at, length):
        s.update()
        for i in range(length):
            reg = addr + i
            if reg < 64 and s.torque:
                continue  # EEPROM area is writable only with torque off
            if reg < 64:
                s.eeprom_writes += 1
            s.regs[reg] = src[at + i]
        s.torque = s.regs[self.REG_TORQUE]
        g = self.REG_GOAL
        s.goal = s.regs[g] | (s.regs[g + 1] << 8) | (s.regs[g + 2] << 16)

    def status(self, s, addr, length):
        if not self.answers(s):
            return
        s.update()
        _put32(s.regs, self.REG_POSITION, s.position())
        _put32(s.regs, self.REG_VELOCITY, 0)
        cur = s.load()
        s.regs[self.REG_CURRENT] = cur & 0xFF
        s.regs[self.REG_CURRENT + 1] = (cur >> 8) & 0xFF
        raw = self.reply  # unstuffed packet in the first half, stuffed in the second
        raw[0] = raw[1] = 0xFF
        raw[2] = 0xFD
        raw[3] = 0
        raw[4] = s.id
        raw[7] = 0x55
        raw[8] = 0  # no error
        for i in range(length):
            raw[9 + i] = s.regs[addr + i]
        out = self.stuffed
        for i in range(7):
            out[i] = raw[i]
        end = busbytes.stuff(raw, 7, 9 + length, out, 7)
        size = end - 7 + 2
        out[5] = size & 0xFF
        out[6] = size >> 8
        crc = busbytes.crc16(out, 0, end, busbytes.CRC16_TABLE)
        if self.corrupt(s):
            crc ^= 0x1234
        out[end] = crc & 0xFF
        out[end + 1] = crc >> 8
        self.send(out, end + 2)

    def __init__(self):
        PacketBus.__init__(self)
        self.stuffed = bytearray(600)


def _put32(regs, at, value):
    value &= 0xFFFFFFFF
    regs[at] = value & 0xFF
    regs[at + 1] = (value >> 8) & 0xFF
    regs[at + 2] = (value >> 16) & 0xFF
    regs[at + 3] = (value >> 24) & 0xFF
