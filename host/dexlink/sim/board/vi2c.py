# Simulated I2C buses and chips at register level: TCA9548A mux, AS5600, MT6701, PCA9685.
#
# A chip is a 256-byte register file with an address pointer: a write sets the pointer
# (first byte) and stores the rest; a read refreshes the registers from the world then
# returns bytes from the pointer on. Reads allocate nothing.
import vfaults
import vworld

EIO = 5

# Per mux control value: the one channel it connects, or 8 when none or several are on
# (a table made once: the sweep's find() is then one lookup, not a loop over channels).
def _only_channel(mask):
    for c in range(8):
        if mask == 1 << c:
            return c
    return 8


_ONLY_CHANNEL = bytes(_only_channel(m) for m in range(256))

# Register pointer after a byte at each register: the usual auto-increment, and the
# AS5600's, which stays on the RAW_ANGLE, ANGLE and MAGNITUDE pairs (datasheet).
_NEXT_INCREMENT = bytes((r + 1) & 0xFF for r in range(256))
_NEXT_SAME = bytes(range(256))
_AS5600_STICKY = (0x0C, 0x0E, 0x1B)
_NEXT_AS5600 = bytes(r + 1 if r in _AS5600_STICKY else
                     (r - 1 if r - 1 in _AS5600_STICKY else (r + 1) & 0xFF)
                     for r in range(256))


class I2CBus:
    def __init__(self):
        self.devices = {}  # address -> chip
        self.muxes = []
        self.conflicts = 0  # accesses that two chips behind different muxes would answer

    def add(self, addr, chip):
        if addr in self.devices:
            raise ValueError("simulated I2C: two chips at address 0x%02x" % addr)
        self.devices[addr] = chip
        if isinstance(chip, TCA9548A):
            self.muxes.append(chip)
        return chip

    def mux(self, addr):
        """The mux at addr, made on first use."""
        found = self.devices.get(addr)
        return found if found is not None else self.add(addr, TCA9548A())

    # The hot path is split into small functions on purpose: MicroPython puts a call's
    # frame on the heap (gc_alloc + gc_free per call) once locals + stack pass ~11 slots.
    def find(self, addr):
        chip = self.devices.get(addr)
        if chip is None:
            chip = self._behind_muxes(addr)
        return chip

    def _behind_muxes(self, addr):
        muxes = self.muxes
        chip = None
        for i in range(len(muxes)):  # by index: a list iterator takes 4 stack slots
            found = muxes[i].find(addr)
            if found is not None:
                if chip is not None:  # two chips would answer at once: garbage on a real bus
                    self.conflicts += 1
                    raise OSError(EIO)
                chip = found
        if chip is None:
            raise OSError(EIO)  # no ACK, as machine.I2C reports it
        return chip


class RegisterChip:
    NEXT = _NEXT_INCREMENT  # the pointer after each register (next_table())

    def __init__(self):
        self.regs = bytearray(256)
        self.ptr = 0
        self.pointer_writes = 0  # how often the pointer was set (tests count bus work)
        self.reads = 0

    def write(self, buf, start=0):
        """An I2C write: buf[start] is the register address, the rest is data."""
        self.pointer_writes += 1
        self.ptr = buf[start]
        for i in range(start + 1, len(buf)):
            self.store(self.ptr, buf[i])
            self.ptr = self.next_ptr(self.ptr)

    def write_at(self, reg, buf):
        self.pointer_writes += 1
        self.ptr = reg
        for i in range(len(buf)):
            self.store(self.ptr, buf[i])
            self.ptr = self.next_ptr(self.ptr)

    def set_pointer(self, reg):
        self.pointer_writes += 1
        self.ptr = reg

    def read_into(self, buf):
        self.reads += 1
        self.refresh()
        regs = self.regs
        nxt = self.next_table()  # fixed for the whole read
        ptr = self.ptr
        for i in range(len(buf)):
            buf[i] = regs[ptr]
            ptr = nxt[ptr]
        self.ptr = ptr

    def store(self, reg, value):
        self.regs[reg] = value

    def next_table(self):
        return self.NEXT

    def next_ptr(self, reg):
        return self.next_table()[reg]

    def refresh(self):
        pass


class TCA9548A(RegisterChip):
    """An 8-channel mux: its one control register's bit n connects channel n."""

    def __init__(self):
        RegisterChip.__init__(self)
        self.channels = [{} for _ in range(8)]
        self.selects = 0

    def add(self, channel, addr, chip):
        self.channels[channel][addr] = chip
        return chip

    def write(self, buf, start=0):
        self.selects += 1
        self.regs[0] = buf[len(buf) - 1]

    def read_into(self, buf):
        for i in range(len(buf)):
            buf[i] = self.regs[0]

    def find(self, addr):
        only = _ONLY_CHANNEL[self.regs[0]]
        if only < 8:  # the sweep's case: one channel on
            return self.channels[only].get(addr)
        return self._find_any(addr)

    def _find_any(self, addr):
        mask = self.regs[0]
        for c in range(8):
            if mask & (1 << c):
                chip = self.channels[c].get(addr)
                if chip is not None:
                    return chip
        return None


class MagneticEncoder(RegisterChip):
    """An encoder on exoskeleton joint `joint`, quantised to `bits`, with a little noise."""

    def __init__(self, joint, bits):
        RegisterChip.__init__(self)
        self.joint = joint
        self.shift = 16 - bits
        self.mask = (1 << bits) - 1
        self.half_lsb = 1 << (self.shift - 1)

    def counts(self, missing):
        """The angle in the chip's counts now (noise when the magnet is `missing`)."""
        if missing:
            return vworld.rand32() & self.mask
        raw = vworld.operator.raw_turn16(self.joint, vworld.now_us())
        return (((raw + self.half_lsb) >> self.shift) + vworld.noise(24)) & self.mask


class AS5600(MagneticEncoder):
    # RAW_ANGLE, ANGLE and MAGNITUDE reads keep the pointer on the pair (datasheet).
    STICKY = _AS5600_STICKY
    NEXT = _NEXT_AS5600

    def __init__(self, joint):
        MagneticEncoder.__init__(self, joint, 12)
        self.regs[0x1A] = 0x80  # AGC mid-range

    def refresh(self):
        missing = vfaults.magnet_missing[self.joint]
        c = self.counts(missing)
        regs = self.regs
        regs[0x0C] = regs[0x0E] = c >> 8
        regs[0x0D] = regs[0x0F] = c & 0xFF
        if missing:
            regs[0x0B] = 0x10  # ML: too weak, MD clear
            regs[0x1A] = 0xFF
        else:
            regs[0x0B] = 0x20  # MD
            regs[0x1A] = 0x80


class MT6701(MagneticEncoder):
    def __init__(self, joint):
        MagneticEncoder.__init__(self, joint, 14)

    def refresh(self):
        missing = vfaults.magnet_missing[self.joint]
        c = self.counts(missing)
        self.regs[0x03] = c >> 6
        self.regs[0x04] = ((c & 0x3F) << 2) | (0x02 if missing else 0)


class PCA9685(RegisterChip):
    """16 PWM channels; records when each channel's pulse was last written (world us)."""

    def __init__(self, channels, joints):
        RegisterChip.__init__(self)
        self.regs[0x00] = 0x11  # MODE1 after power-up: SLEEP | ALLCALL
        self.regs[0xFE] = 0x1E
        self.channel_writes = [0] * 16
        self.last_write_us = [-1] * 16
        self.min_interval_us = [1 << 40] * 16
        self.joint_of_channel = bytearray(b"\xff" * 16)
        for k in range(len(channels)):
            self.joint_of_channel[channels[k]] = joints[k]

    def next_table(self):
        return _NEXT_INCREMENT if self.regs[0] & 0x20 else _NEXT_SAME  # MODE1 AI bit

    def store(self, reg, value):
        if reg == 0xFE and not self.regs[0] & 0x10:
            return  # PRESCALE is only writable in SLEEP
        self.regs[reg] = value
        if 0x06 <= reg < 0x46 and (reg - 0x06) % 4 == 3:  # OFF_H: the channel is complete
            ch = (reg - 0x06) // 4
            now = vworld.now_us()
            if self.last_write_us[ch] >= 0:
                gap = now - self.last_write_us[ch]
                if gap < self.min_interval_us[ch]:
                    self.min_interval_us[ch] = gap
            self.last_write_us[ch] = now
            self.channel_writes[ch] += 1

    def pulse_us(self, ch):
        """The pulse width channel ch outputs (0 when fully off)."""
        base = 0x06 + 4 * ch
        if self.regs[base + 3] & 0x10:
            return 0
        on = self.regs[base] | ((self.regs[base + 1] & 0x0F) << 8)
        off = self.regs[base + 2] | ((self.regs[base + 3] & 0x0F) << 8)
        return ((off - on) & 0xFFF) * (self.regs[0xFE] + 1) * 1000000 // 25000000
