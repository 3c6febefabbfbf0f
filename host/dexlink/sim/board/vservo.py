# Simulated servo buses at the packet level: Feetech STS and Dynamixel Protocol 2.0.
#
# Each servo is a register file; where it is and what load it feels come from the rig's
# physics (vworld.physics, vphysics), which it tells its goal and torque before every
# read. A bus takes the bytes the board writes, executes complete packets with a valid
# checksum (a broken one is ignored, as a servo does) and queues the status packets
# for the board to read. vfaults.servo_silent / servo_bad_checksum (per motor) make a
# servo stay quiet or answer with a wrong checksum. Steady state allocates nothing.
#
# The register maps, instruction codes and model numbers are the vendors' tables the
# firmware's drivers use too (dexfw.drivers.feetech_table, dynamixel_table): written once.
from dexfw.drivers import busbytes
from dexfw.drivers import dynamixel_table as dxl
from dexfw.drivers import feetech_table as sts
from dexproto.cobsbuf import copy_into

import vfaults
import vtarget
import vworld

# Instructions and the broadcast id: the same codes in both protocols (the tables agree).
PING = sts.INST_PING
READ = sts.INST_READ
WRITE = sts.INST_WRITE
SYNC_READ = sts.INST_SYNC_READ
SYNC_WRITE = sts.INST_SYNC_WRITE
BROADCAST = sts.BROADCAST_ID


def _address(table, name):
    """The address of register `name` in a vendor's CONTROL_TABLE ((address, size))."""
    return table[name][0]


def _put16(regs, at, value):
    regs[at] = value & 0xFF
    regs[at + 1] = (value >> 8) & 0xFF


class Servo:
    """One servo's registers, driving motor `motor` of the physics."""

    def __init__(self, servo_id, motor, centre=2048, reg_count=256):
        self.id = servo_id
        self.motor = motor
        self.regs = bytearray(reg_count)
        self.goal = centre  # what the registers hold (latched by the bus after a write)
        self.torque = 0
        vworld.physics.add_motor(motor, centre)

    def update(self):
        """Tell the physics the goal and torque held so far: it moves the motor to now."""
        vworld.physics.drive(self.motor, self.goal, self.torque)

    def position(self):
        return vworld.physics.position(self.motor)

    def load(self):
        """The load the physics gives (servo units, +-1000)."""
        return vworld.physics.load(self.motor)


class PacketBus:
    """Bytes in from the board, status packets out; subclasses speak the protocol:
    MIN_PACKET, size_at(p) (a packet's size if one starts at inbuf[p], else 0),
    run_packet(p, size) (check it and execute it; False when its checksum is bad),
    ADDR_BYTES (width of the addresses and lengths in instructions), EEPROM_END and
    eeprom_locked(s) (the write-protected area), latch(s) (act on written registers),
    _present(s) (dynamics -> registers) and _reply(s, addr, length) (the status packet).
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
        # Line timing, only for a virtual board timed as a target (vtarget; baud 0: the
        # bytes are there at once): world us when the wire is free, when the queued
        # answers have all arrived, and the answering servo's return delay.
        self.baud = 0
        self.turnaround_us = 0
        self.wire_free = 0
        self.ready_at = 0
        self._return_delay_us = 0

    def set_timing(self, baudrate, turnaround_us):
        """Carry bytes at baudrate; a servo answers turnaround_us after the line is free
        plus its own return delay."""
        self.baud = baudrate
        self.turnaround_us = turnaround_us

    def backlog_us(self):
        """Line time still to go for the bytes written so far."""
        left = self.wire_free - vworld.now_us()
        return left if left > 0 else 0

    def _on_wire(self, gap_us, n):
        """n bytes go on the wire gap_us after it is free (or now, when it is idle)."""
        start = self.wire_free
        now = vworld.now_us()
        if start < now:
            start = now
        self.wire_free = start + gap_us + vtarget.uart_us(n, self.baud)

    def add(self, servo):
        if servo.id in self.servos:
            raise ValueError("simulated servo bus: id %d wired twice" % servo.id)
        self.servos[servo.id] = servo
        self.order.append(servo)
        return servo

    # the board's side ------------------------------------------------------------
    def write(self, buf):
        n = len(buf)
        if self.baud:
            self._on_wire(0, n)
        if n > len(self.inbuf) - self.n_in:
            self.n_in = 0  # overflow: the line is garbage, start over
        self.n_in = copy_into(buf, 0, n, self.inbuf, self.n_in)
        used = self.parse()
        if used:
            self.n_in = copy_into(self.inbuf, used, self.n_in, self.inbuf, 0)
        return n

    def any(self):
        if self.baud and vworld.now_us() < self.ready_at:
            return 0  # still on the wire
        return self.out_end - self.out_start

    def readinto(self, buf, nbytes):
        n = self.any()
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
        if self.baud:
            self._on_wire(self.turnaround_us + self._return_delay_us, n)
            self.ready_at = self.wire_free

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

    # The per-packet and per-servo functions below are kept small on purpose: MicroPython
    # puts a call's frame on the heap (gc_alloc + gc_free, ~18k instructions on a used
    # heap) once its locals + stack pass 11 slots, and these run for every servo in
    # every cycle. Check with mpy-cross before growing one.
    def execute(self, sid, inst, at, n_params):
        """One instruction with its parameters at inbuf[at:at + n_params]."""
        if inst == SYNC_WRITE:
            self._sync_write(at, at + n_params)
        elif inst == SYNC_READ:
            self._sync_read(at, at + n_params)
        elif sid == BROADCAST:
            if inst == WRITE:
                self._broadcast_write(at, n_params)
        else:
            self._instruction(self.servos.get(sid), inst, at, n_params)

    def _sync_write(self, at, end):  # addr len [id data*len]*
        length = self.field(at + self.ADDR_BYTES)
        i = at + 2 * self.ADDR_BYTES
        while i + length < end:
            self._sync_write_one(self.servos.get(self.inbuf[i]), at, i + 1, length)
            i += length + 1

    def _sync_write_one(self, s, at, data, length):
        if s is not None:
            self.write_regs(s, self.field(at), data, length)

    def _sync_read(self, at, end):  # addr len ids
        i = at + 2 * self.ADDR_BYTES
        while i < end:
            self._sync_read_one(self.servos.get(self.inbuf[i]), at)
            i += 1

    def _sync_read_one(self, s, at):
        if s is not None:
            self.status(s, self.field(at), self.field(at + self.ADDR_BYTES))

    def _broadcast_write(self, at, n_params):
        w = self.ADDR_BYTES
        for s in self.order:
            self.write_regs(s, self.field(at), at + w, n_params - w)

    def _instruction(self, s, inst, at, n_params):
        if s is None:
            return
        if inst == READ:  # addr len
            self.status(s, self.field(at), self.field(at + self.ADDR_BYTES))
        elif inst == WRITE:  # addr data...
            w = self.ADDR_BYTES
            self.write_regs(s, self.field(at), at + w, n_params - w)
            self.status(s, 0, 0)
        elif inst == PING:
            self.status(s, 0, 0)

    def write_regs(self, s, addr, at, length):
        """Store inbuf[at:at + length] from register addr on; the EEPROM area (below
        EEPROM_END) only while the servo lets it be written (eeprom_locked)."""
        s.update()
        if addr < self.EEPROM_END or addr + length > len(s.regs):
            self._write_checked(s, addr, at, length)
        else:  # the steady state: goals, in RAM
            copy_into(self.inbuf, at, at + length, s.regs, addr)
        self.latch(s)

    def _write_checked(self, s, addr, at, length):
        if addr + length > len(s.regs):  # the byte loop this replaced failed the same way
            raise IndexError("simulated servo %d: registers %d..%d"
                             % (s.id, addr, addr + length - 1))
        ram = self.EEPROM_END - addr  # bytes before the RAM area
        if ram > length:
            ram = length
        if ram > 0 and not self.eeprom_locked(s):
            s.eeprom_writes += ram
            copy_into(self.inbuf, at, at + ram, s.regs, addr)
        if ram < 0:
            ram = 0
        if ram < length:
            copy_into(self.inbuf, at + ram, at + length, s.regs, addr + ram)

    def status(self, s, addr, length):
        """Queue s's status packet with its registers addr..addr + length - 1."""
        if not self.answers(s):
            return
        if addr + length > len(s.regs):  # the byte loop this replaced failed the same way
            raise IndexError("simulated servo %d: registers %d..%d"
                             % (s.id, addr, addr + length - 1))
        s.update()
        self._return_delay_us = 2 * s.regs[self.REG_RETURN_DELAY]  # 2 us a unit (both vendors)
        self._present(s)  # subclass: dynamics -> present-state registers
        self._reply(s, addr, length)  # subclass: the packet

    # helpers for subclasses -------------------------------------------------------
    def answers(self, servo):
        """Whether servo answers at all (not silenced by a fault)."""
        return not vfaults.servo_silent[servo.motor]

    def corrupt(self, servo):
        return vfaults.servo_bad_checksum[servo.motor]


class FeetechBus(PacketBus):
    # STS register map (little-endian), from the vendor table
    REG_MODEL = _address(sts.CONTROL_TABLE, "Model_Number")
    REG_ID = _address(sts.CONTROL_TABLE, "ID")
    REG_RETURN_DELAY = _address(sts.CONTROL_TABLE, "Return_Delay_Time")
    REG_TORQUE = _address(sts.CONTROL_TABLE, "Torque_Enable")
    REG_GOAL = _address(sts.CONTROL_TABLE, "Goal_Position")
    REG_LOCK = _address(sts.CONTROL_TABLE, "Lock")
    REG_POSITION = _address(sts.CONTROL_TABLE, "Present_Position")
    REG_SPEED = _address(sts.CONTROL_TABLE, "Present_Velocity")
    REG_LOAD = _address(sts.CONTROL_TABLE, "Present_Load")
    REG_VOLTAGE = _address(sts.CONTROL_TABLE, "Present_Voltage")
    REG_TEMPERATURE = _address(sts.CONTROL_TABLE, "Present_Temperature")
    LOAD_SIGN = 1 << sts.SIGN_BIT["Present_Load"]  # sign-and-magnitude

    def add_servo(self, servo_id, motor, model="sts3215"):
        s = self.add(Servo(servo_id, motor))
        _put16(s.regs, self.REG_MODEL, sts.MODEL_NUMBERS[model][0])
        s.regs[self.REG_ID] = servo_id
        s.regs[self.REG_RETURN_DELAY] = 250  # factory default: 500 us
        s.regs[self.REG_LOCK] = 1
        s.regs[self.REG_VOLTAGE] = 74  # 7.4 V
        s.regs[self.REG_TEMPERATURE] = 30  # 30 C
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

    EEPROM_END = sts.EEPROM_END

    def eeprom_locked(self, s):
        return s.regs[self.REG_LOCK]

    def latch(self, s):
        """Act on the registers just written."""
        s.torque = s.regs[self.REG_TORQUE]
        s.goal = s.regs[self.REG_GOAL] | (s.regs[self.REG_GOAL + 1] << 8)

    def _present(self, s):
        """The present position and load registers, from the servo's dynamics."""
        pos = s.position()
        s.regs[self.REG_POSITION] = pos & 0xFF
        s.regs[self.REG_POSITION + 1] = pos >> 8
        load = s.load()
        mag = (-load | self.LOAD_SIGN) if load < 0 else load
        s.regs[self.REG_LOAD] = mag & 0xFF
        s.regs[self.REG_LOAD + 1] = mag >> 8

    def _reply(self, s, addr, length):
        r = self.reply
        r[0] = r[1] = 0xFF
        r[2] = s.id
        r[3] = length + 2
        r[4] = 0  # no error bits
        copy_into(s.regs, addr, addr + length, r, 5)
        self._checksum_and_send(s, 5 + length)

    def _checksum_and_send(self, s, end):
        r = self.reply
        r[end] = 0xFF ^ busbytes.sum_bytes(r, 2, end)
        if self.corrupt(s):
            r[end] ^= 0x5A
        self.send(r, end + 1)


class DynamixelBus(PacketBus):
    # X-series register map (little-endian), from the vendor table
    REG_MODEL = _address(dxl.CONTROL_TABLE, "Model_Number")
    REG_ID = _address(dxl.CONTROL_TABLE, "ID")
    REG_RETURN_DELAY = _address(dxl.CONTROL_TABLE, "Return_Delay_Time")
    REG_STATUS_RETURN = _address(dxl.CONTROL_TABLE, "Status_Return_Level")
    REG_TORQUE = _address(dxl.CONTROL_TABLE, "Torque_Enable")
    REG_GOAL = _address(dxl.CONTROL_TABLE, "Goal_Position")
    REG_CURRENT = _address(dxl.CONTROL_TABLE, "Present_Current")
    REG_VELOCITY = _address(dxl.CONTROL_TABLE, "Present_Velocity")
    REG_POSITION = _address(dxl.CONTROL_TABLE, "Present_Position")

    def add_servo(self, servo_id, motor, model="xm430"):
        s = self.add(Servo(servo_id, motor))
        _put16(s.regs, self.REG_MODEL, dxl.MODEL_NUMBERS[model][0])
        s.regs[self.REG_ID] = servo_id
        s.regs[self.REG_RETURN_DELAY] = 250  # factory default: 500 us
        s.regs[self.REG_STATUS_RETURN] = 2  # answer everything
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
        if not self._crc_ok(p, p + size - 2):
            return False  # a servo ignores a broken packet
        self._run(p, p + size - 2)
        return True

    def _run(self, p, end):
        """The packet at p, CRC at end: ID at p + 4, INST at p + 7, stuffed params."""
        n_params = busbytes.unstuff(self.inbuf, p + 7, end) - (p + 8)
        self.execute(self.inbuf[p + 4], self.inbuf[p + 7], p + 8, n_params)

    def _crc_ok(self, p, end):
        buf = self.inbuf
        return busbytes.crc16(buf, p, end, busbytes.CRC16_TABLE) == buf[end] | (buf[end + 1] << 8)

    EEPROM_END = dxl.EEPROM_END

    def eeprom_locked(self, s):
        return s.torque  # the EEPROM area is writable only with torque off

    def latch(self, s):
        """Act on the registers just written."""
        s.torque = s.regs[self.REG_TORQUE]
        g = self.REG_GOAL
        s.goal = s.regs[g] | (s.regs[g + 1] << 8) | (s.regs[g + 2] << 16)

    def _present(self, s):
        """The present position, velocity and current registers, from the dynamics."""
        _put32(s.regs, self.REG_POSITION, s.position())
        _put32(s.regs, self.REG_VELOCITY, 0)
        cur = s.load()
        s.regs[self.REG_CURRENT] = cur & 0xFF
        s.regs[self.REG_CURRENT + 1] = (cur >> 8) & 0xFF

    def _reply(self, s, addr, length):
        raw = self.reply  # unstuffed packet in the first half, stuffed in the second
        raw[0] = raw[1] = 0xFF
        raw[2] = 0xFD
        raw[3] = 0
        raw[4] = s.id
        raw[7] = dxl.INST_STATUS
        raw[8] = 0  # no error
        copy_into(s.regs, addr, addr + length, raw, 9)
        self._stuff_and_send(s, 9 + length)

    def _stuff_and_send(self, s, raw_end):
        copy_into(self.reply, 0, 7, self.stuffed, 0)
        end = busbytes.stuff(self.reply, 7, raw_end, self.stuffed, 7)
        self._crc_and_send(s, end)

    def _crc_and_send(self, s, end):
        out = self.stuffed
        out[5] = (end - 5) & 0xFF  # LEN: the stuffed instruction, parameters and CRC
        out[6] = (end - 5) >> 8
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
