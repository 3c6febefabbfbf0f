# The virtual board's HAL: machine-like I2C / SPI / UART / Pin over the simulated rig,
# the board clock (world time skewed by vfaults.clock_ppm) and the host Console.
#
# The firmware imports this module by the name in dexlink.json ("hal": "vmachine") and
# uses it exactly like dexfw.hal_machine on a real board (docs/interfaces.md). The rig is
# built from dexlink.json in the current directory on first use of a bus, or from
# load_rig(cfg) called before any bus is made (vrig).
#
# Timed as a real target (vtarget, from the config's "sim.target"): every call below is
# bracketed by vtarget.enter() / leave(cost on the target); I2C and SPI transfers block
# for their bus time as machine.I2C / SPI do on the boards, a UART write only once the
# TX buffer is full; the board clock lets the owed time pass before it is read.
import vfaults
import vi2c
import vrig
import vspi
import vtarget
import vworld

VIRTUAL = True  # HELLO_REPLY reports CAP_VIRTUAL
TICKS_PERIOD = 1 << 30  # as time.ticks_us on the boards
TICKS_MAX = TICKS_PERIOD - 1
TICKS_HALF = TICKS_PERIOD >> 1

load_rig = vrig.load_rig
manual_clock = vworld.manual_clock
advance_us = vworld.advance_us

# ---- the board clock ----------------------------------------------------------------
_board_us = 0
_board_frac = 0  # remainder, in 1e-6 us, of the skew not yet turned into whole us
_board_world = vworld.now_us()


def ticks_us():
    """The board's microsecond clock: world time scaled by (1 + clock_ppm / 1e6), wrapping."""
    vtarget.enter()
    vtarget.settle()
    now = _board_ticks()
    vtarget.leave(vtarget.ticks_call_us)
    return now


def _board_ticks():
    global _board_us, _board_frac, _board_world
    world = vworld.now_us()
    num = (world - _board_world) * (1000000 + vfaults.clock_ppm) + _board_frac
    _board_world = world
    whole = num // 1000000
    _board_frac = num - whole * 1000000
    _board_us += whole
    return _board_us & TICKS_MAX


def ticks_diff(a, b):
    return ((a - b + TICKS_HALF) & TICKS_MAX) - TICKS_HALF


def ticks_add(a, delta):
    return (a + delta) & TICKS_MAX


def sleep_us(us):
    """Sleep `us` of board time (world time differs by the clock's skew)."""
    vtarget.enter()
    vtarget.settle()
    if us > 0:
        vworld.advance_us(us * 1000000 // (1000000 + vfaults.clock_ppm))
    vtarget.idle()
    vtarget.leave(0)


# ---- pins and buses ------------------------------------------------------------------
class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, n, mode=-1, pull=-1, value=None):
        if not 0 <= n < vworld.MAX_PINS:
            raise ValueError("vmachine: pin %r is not 0..%d" % (n, vworld.MAX_PINS - 1))
        self.n = n
        if value is not None:
            vworld.pins[n] = 1 if value else 0

    def value(self, v=None):
        if v is None:
            return vworld.pins[self.n]
        vworld.pins[self.n] = 1 if v else 0

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        vworld.pins[self.n] = 1

    def off(self):
        vworld.pins[self.n] = 0


class I2C:
    def __init__(self, id, scl=None, sda=None, freq=400000, timeout=50000):
        self.id = id
        self.freq = freq
        self._bus = vrig.bus("i2c", id, vi2c.I2CBus)

    # Bus time: the address byte, the data, and for a register access the register
    # address then a repeated start and the address again (addrsize / 8 bytes of it).
    def writeto(self, addr, buf, stop=True):
        vtarget.enter()
        chip = self._bus.find(addr)
        if len(buf):
            chip.write(buf)
        self._took(1 + len(buf))
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        vtarget.enter()
        self._bus.find(addr).read_into(buf)
        self._took(1 + len(buf))

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        vtarget.enter()
        chip = self._bus.find(addr)
        chip.set_pointer(memaddr)
        chip.read_into(buf)
        self._took(2 + (addrsize >> 3) + len(buf))

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        vtarget.enter()
        self._bus.find(addr).write_at(memaddr, buf)
        self._took(1 + (addrsize >> 3) + len(buf))

    def _took(self, nbytes):
        vtarget.leave(vtarget.call_us + vtarget.i2c_us(nbytes, self.freq))

    def readfrom(self, addr, nbytes, stop=True):
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf)
        return bytes(buf)

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf)
        return bytes(buf)

    def scan(self):
        found = []
        for addr in range(0x08, 0x78):
            try:
                self._bus.find(addr)
                found.append(addr)
            except OSError:
                pass
        return found


class SPI:
    def __init__(self, id, sck=None, mosi=None, miso=None, baudrate=1000000):
        self.id = id
        self.baudrate = baudrate
        self._bus = vrig.bus("spi", id, vspi.SPIBus)

    def write_readinto(self, wbuf, rbuf):
        vtarget.enter()
        self._bus.write_readinto(wbuf, rbuf)
        vtarget.leave(vtarget.call_us + vtarget.spi_us(len(wbuf), self.baudrate))

    def write(self, buf):
        self._bus.write_readinto(buf, bytearray(len(buf)))

    def readinto(self, buf, write=0):
        self._bus.write_readinto(bytes([write]) * len(buf), buf)


class _NoLine:
    """A UART with nothing on it: writes vanish, nothing comes back."""

    def write(self, buf):
        return len(buf)

    def any(self):
        return 0

    def readinto(self, buf, nbytes):
        return 0

    def set_timing(self, baudrate, turnaround_us):
        pass

    def backlog_us(self):
        return 0


class UART:
    def __init__(self, id, baudrate=115200, tx=None, rx=None, bits=8, parity=None, stop=1,
                 timeout=0, rxbuf=256, txbuf=256):
        self.id = id
        self.baudrate = baudrate
        self._line = vrig.bus("uart", id) or _NoLine()
        if vtarget.active:  # the line carries bytes at the baud rate (vservo.PacketBus)
            self._line.set_timing(baudrate, vtarget.turnaround_us)

    def write(self, buf):
        vtarget.enter()
        n = self._line.write(buf)
        vtarget.leave(vtarget.call_us + self._blocked_us())
        return n

    def _blocked_us(self):
        """A write returns once its bytes are in the TX buffer: it waits for the line
        only for what does not fit."""
        backlog = self._line.backlog_us()
        room = vtarget.uart_us(vtarget.uart_txbuf, self.baudrate)
        return backlog - room if backlog > room else 0

    def any(self):
        vtarget.enter()
        n = self._line.any()
        vtarget.leave(vtarget.call_us)
        return n

    def readinto(self, buf, nbytes=-1):
        vtarget.enter()
        if nbytes < 0 or nbytes > len(buf):
            nbytes = len(buf)
        n = self._line.readinto(buf, nbytes)
        vtarget.leave(vtarget.call_us)
        return n or None

    def read(self, nbytes=-1):
        n = self.any() if nbytes < 0 else min(nbytes, self.any())
        if not n:
            return None
        buf = bytearray(n)
        self._line.readinto(buf, n)
        return bytes(buf)


# ---- the host link --------------------------------------------------------------------
try:
    from vconsole import Console as _HostConsole  # the supervisor's: pty, Ctrl-C, faults

    class Console(_HostConsole):
        """The host link; its pipe's x86 time is not the firmware's (vtarget)."""

        def readinto(self, buf):
            vtarget.enter()
            n = _HostConsole.readinto(self, buf)
            vtarget.leave(0)
            return n

        def write(self, buf):
            vtarget.enter()
            n = _HostConsole.write(self, buf)
            vtarget.leave(0)
            return n
except ImportError:
    from dexfw.stdioconsole import StdioConsole

    class Console(StdioConsole):
        """Minimal stand-in: the boards' stdio console, applying pending fault injections."""

        def any(self):
            vfaults.poll()  # the loop asks every cycle, and reads only when bytes wait
            return StdioConsole.any(self)

        def readinto(self, buf):
            vfaults.poll()
            return StdioConsole.readinto(self, buf)
