# AS5048A 14-bit magnetic encoders in an SPI daisy chain (ams AS5048A datasheet).
#
# One frame clocks one 16-bit word per chip (word k of the frame <-> joints[k]). A chip
# answers a command in the *next* frame, so each frame both asks and collects: the angle
# read is sent every frame and the answer one frame old is stored. Once every
# 4 sweeps (_DIAG_EVERY) one chip is asked for its diagnostics instead (its angle is then
# skipped for one frame); a chip raising the error flag is sent CLEAR_ERROR.
# Words: bit 15 even parity, bit 14 read (command) / error flag (answer), 13:0 address/data.
#
# A sample is one transfer and one pass over the frame (busbytes.chain_collect, viper
# where the port has it): the answers booked, the next frame's commands written in
# place (an angle read, or CLEAR_ERROR after an error flag, and every _DIAG_EVERY sweeps
# one chip's diagnostics); Python only books the diagnostics that arrive (issue 15: the
# per-chip Python calls cost ~190 us a chip on an RP2040).
import array

from dexfw.compat import const
from dexfw.drivers import busbytes
from dexfw.drivers.i2cmux import KEEP_BITS, vouch
from dexproto.catalog import COUNTER_MASK, ST_ENCODER_ERROR, ST_MAGNET_MISSING, ST_MAGNET_WEAK

_REG_CLEAR_ERROR = const(0x0001)
_REG_DIAG_AGC = const(0x3FFD)
_REG_ANGLE = const(0x3FFF)
_DIAG_OCF = const(0x0100)  # offset compensation finished: the chip is ready
_DIAG_COF = const(0x0200)  # CORDIC overflow: the angle is not valid
_DIAG_COMP_LOW = const(0x0400)  # field too strong
_DIAG_COMP_HIGH = const(0x0800)  # field too weak
_FLAG_ERROR = const(0x4000)
_DIAG_EVERY = const(4)

# What a chip's next answer holds (what it was last asked).
_ASKED_ANGLE = const(0)
_ASKED_DIAG = const(1)
_ASKED_CLEAR = const(2)


def parity(word):
    """1 when the 16-bit word has an odd number of ones."""
    word ^= word >> 8
    word ^= word >> 4
    word ^= word >> 2
    word ^= word >> 1
    return word & 1


def read_command(reg):
    """The 16-bit read command for register reg, with its even-parity bit."""
    word = 0x4000 | (reg & 0x3FFF)
    return word | (parity(word) << 15)


CMD_ANGLE = read_command(_REG_ANGLE)
CMD_DIAG = read_command(_REG_DIAG_AGC)
CMD_CLEAR = read_command(_REG_CLEAR_ERROR)


def diag_bits(diag):
    """The joint status bits for the DIAG+AGC register (data bits 13:0)."""
    if diag & _DIAG_COMP_HIGH and diag & 0xFF == 0xFF:  # gain at its limit: no magnet
        return ST_MAGNET_MISSING
    if diag & _DIAG_COF or not diag & _DIAG_OCF:
        return ST_ENCODER_ERROR
    if diag & (_DIAG_COMP_HIGH | _DIAG_COMP_LOW):
        return ST_MAGNET_WEAK
    return 0


class AS5048AChain:
    def __init__(self, spi, joints=(), cs=None):
        if cs is None:
            raise ValueError("AS5048A: the SPI bus needs a chip-select pin ('cs' in the board)")
        self.spi = spi
        self.cs = cs
        self.joints = tuple(joints)
        self.n = n = len(self.joints)
        # The frame received, the frame sent, per chip what its next answer holds, its
        # magnet bits and its joint, then the sweep count and the chip diagnosed next
        # (busbytes.chain_collect's layout), in one buffer.
        self._buf = bytearray(7 * n + 2)
        view = memoryview(self._buf)
        self._rx = view[0:2 * n]
        self._tx = view[2 * n:4 * n]
        for k in range(n):
            self._buf[6 * n + k] = self.joints[k]
        self._codes = array.array("H", [CMD_ANGLE, CMD_DIAG, CMD_CLEAR, KEEP_BITS,
                                        ST_ENCODER_ERROR, ST_MAGNET_MISSING, _DIAG_EVERY,
                                        n])
        self._vouched = array.array("H", [0] * n)  # angle at the last good diagnosis
        self.errors = 0  # parity errors and error flags since boot
        cs.value(1)
        self._prime()

    def _prime(self):
        # The first frame's answers are stale: ask for angles once so sample() collects;
        # the first sample's frame asks chip 0 for its diagnostics (chain_collect plans
        # the frames after it).
        for k in range(self.n):
            self._set_word(k, CMD_ANGLE)
            self._buf[4 * self.n + k] = busbytes.CHAIN_ANGLE
        self._transfer()
        self._set_word(0, CMD_DIAG)
        self._buf[7 * self.n] = 1 % _DIAG_EVERY  # the sweep count
        self._buf[7 * self.n + 1] = 1 % self.n  # the chip diagnosed next

    def _set_word(self, k, word):
        self._tx[2 * k] = word >> 8
        self._tx[2 * k + 1] = word & 0xFF

    def _transfer(self):
        self.cs(0)
        self.spi.write_readinto(self._tx, self._rx)
        self.cs(1)

    # Small methods: each keeps its frame on the stack (a bigger one gets a heap frame,
    # a gc_alloc per call: tests/test_vrig_frames.py).
    def sample(self, raw, status):
        """One frame: collect the answers to the previous frame, ask for the next."""
        # The transfer written out here (a method call fewer), the chip select set by
        # calling the pin (machine.Pin's fast path: no method looked up), the diagnostics
        # planned in chain_collect's pass (issue 15: per-call costs on an RP2040).
        self.cs(0)
        self.spi.write_readinto(self._tx, self._rx)
        self.cs(1)
        got = busbytes.chain_collect(self._buf, raw, status, self._codes)
        if got:
            self._book(got, raw, status)

    def _book(self, got, raw, status):
        """chain_collect's errors, and the diagnostics that arrived."""
        if got & 0xFF:
            self.errors = (self.errors + (got & 0xFF)) & COUNTER_MASK
        if got >> 8:
            self._diagnosed((got >> 8) - 1, raw, status)

    def _diagnosed(self, k, raw, status):
        j = self.joints[k]
        status[j] = (status[j] & KEEP_BITS) | self._diagnosis(k)
        self._vouch(k, raw)

    def _vouch(self, k, raw):
        vouch(self._buf[5 * self.n + k], raw, self.joints[k], self._vouched, k)

    def _diagnosis(self, k):
        bits = diag_bits(((self._rx[2 * k] << 8) | self._rx[2 * k + 1]) & 0x3FFF)
        self._buf[5 * self.n + k] = bits
        return bits
