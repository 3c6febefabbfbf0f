# The virtual board's HAL: machine-like I2C / SPI / UART / Pin over the simulated rig,
# the board clock (world time skewed by vfaults.clock_ppm) and the host Console.
#
# The firmware imports this module by the name in dexlink.json ("hal": "vmachine") and
# uses it exactly like dexfw.hal_machine on a real board (docs/interfaces.md). The rig is
# built from dexlink.json in the current directory on first use of a bus, or from
# load_rig(cfg) called before any bus is made (vrig).
import vfaults
import vi2c
import vrig
import vspi
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
    if us > 0:
        vworld.advance_us(us * 1000000 // (1000000 + vfaults.clock_ppm))


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

    def writeto(self, addr, buf, stop=True):
        chip = self._bus.find(addr)
        if len(buf):
            chip.write(buf)
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        self._bus.find(addr).read_into(buf)

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        chip = self._bus.find(addr)
        chip.set_pointer(memaddr)
        chip.read_into(buf)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self._bus.find(addr).write_at(memaddr, buf)

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
        self._bus.write_readinto(wbuf, rbuf)

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


class UART:
    def __init__(self, id, baudrate=115200, tx=None, rx=None, bits=8, parity=None, stop=1,
                 timeout=0, rxbuf=256, txbuf=256):
        self.id = id
        self.baudrate = baudrate
        self._line = vrig.bus("uart", id) or _NoLine()

    def write(self, buf):
        return self._line.write(buf)

    def any(self):
        return self._line.any()

    def readinto(self, buf, nbytes=-1):
        if nbytes < 0 or nbytes > len(buf):
            nbytes = len(buf)
        return self._line.readinto(buf, nbytes) or None

    def read(self, nbytes=-1):
        n = self.any() if nbytes < 0 else min(nbytes, self.any())
        if not n:
            return None
        buf = bytearray(n)
        self._line.readinto(buf, n)
        return bytes(buf)


# ---- the host link --------------------------------------------------------------------
try:
    from vconsole import Console  # the supervisor's: pty, Ctrl-C handling, fault channel
except ImportError:
    from dexfw.stdioconsole import StdioConsole

    class Console(StdioConsole):
        """Minimal stand-in: the boards' stdio console, applying pending fault injections."""

        def readinto(self, buf):
            vfaults.poll()
            return StdioConsole.readinto(self, buf)
