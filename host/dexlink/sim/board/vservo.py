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
# Instructions: the same codes in both protocols.
PING = 0x01
READ = 0x02
WRITE = 0x03
SYNC_READ = 0x82
SYNC_WRITE = 0x83
BROADCAST = 0xFE


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
    """Bytes in from the board, status packets out; subclasses speak the protocol:
    MIN_PACKET, size_at(p) (a packet's size if one starts at inbuf[p], else 0),
    run_packet(p, size) (check it and execute it; False when its checksum is bad),
    ADDR_BYTES (width of the addresses and lengths in instructions), write_regs, status.
    """

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

    # packets ----------------------------------------------------------------------
    def parse(self):
        """Execute every whole packet in inbuf; return how many bytes were used."""
        n = self.n_in
        p = 0
        while n - p >= self.MIN_PACKET:
            size = self.size_at(p)
            if size == 0:
                p += 1
                continue
            if n - p < size:
                break
            if self.run_packet(p, size):
                self.packets += 1
            else:
                self.bad_packets += 1
            p += size
        return p

    def field(self, at):
        """An address or length of an instruction (ADDR_BYTES wide, little-endian)."""
        buf = self.inbuf
        return buf[at] if self.ADDR_BYTES == 1 else buf[at] | (buf[at + 1] << 8)

    def execute(self, sid, inst, at, n_params):
        """One instruction with its parameters at inbuf[at:at + n_params]."""
        buf = self.inbuf
        w = self.ADDR_BYTES
        if inst == SYNC_WRITE:  # addr len [id data*len]*
            addr = self.field(at)
            length = self.field(at + w)
            i = at + 2 * w
            while i + length < at + n_params:
                s = self.servos.get(buf[i])
                if s is not None:
                    self.write_regs(s, addr, buf, i + 1, length)
                i += length + 1
        elif inst == SYNC_READ:  # addr len ids
            addr = self.field(at)
            length = self.field(at + w)
            for i in range(at + 2 * w, at + n_params):
                s = self.servos.get(buf[i])
                if s is not None:
                    self.status(s, addr, length)
        elif sid == BROADCAST:
            if inst == WRITE:
                for s in self.order:
                    self.write_regs(s, self.field(at), buf, at + w, n_params - w)
        else:
            s = self.servos.get(sid)
            if s is None:
                return
            if inst == READ:  # addr len
                self.status(s, self.field(at), self.field(at + w))
            elif inst == WRITE:  # addr data...
                self.write_regs(s, self.field(at), buf, at + w, n_params - w)
                self.status(s, 0, 0)
            elif inst == PING:
                self.status(s, 0, 0)

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

    # FF FF ID LEN INST P... CHK, LEN = params + 2, CHK = ~(ID + LEN + INST + sum(P))
    MIN_PACKET = 6
    ADDR_BYTES = 1

    def size_at(self, p):
        buf = self.inbuf
        if buf[p] != 0xFF or buf[p + 1] != 0xFF or buf[p + 2] == 0xFF:
            return 0
        size = buf[p + 3] + 4
        return size if size >= 6 else 0

    def run_packet(self, p, size):
        buf = self.inbuf
        if (0xFF ^ busbytes.sum_bytes(buf, p + 2, p + size - 1)) != buf[p + size - 1]:
            return False  # a servo ignores a broken packet
        self.execute(buf[p + 2], buf[p + 4], p + 5, size - 6)
        return True

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

    # FF FF FD 00 ID LEN_L LEN_H INST P... CRC_L CRC_H, byte-stuffed, CRC-16 (0x8005)
    MIN_PACKET = 10
    ADDR_BYTES = 2

    def size_at(self, p):
        buf = self.inbuf
        if buf[p] != 0xFF or buf[p + 1] != 0xFF or buf[p + 2] != 0xFD or buf[p + 3] != 0:
            return 0
        size = 7 + (buf[p + 5] | (buf[p + 6] << 8))
        return size if 10 <= size <= len(buf) else 0

    def run_packet(self, p, size):
        buf = self.inbuf
        end = p + size - 2
        if busbytes.crc16(buf, p, end, busbytes.CRC16_TABLE) != buf[end] | (buf[end + 1] << 8):
            return False  # a servo ignores a broken packet
        n_params = busbytes.unstuff(buf, p + 7, end) - (p + 8)
        self.execute(buf[p + 4], buf[p + 7], p + 8, n_params)
        return True

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
