# AS5048A 14-bit magnetic encoders in an SPI daisy chain (ams AS5048A datasheet).
#
# One frame clocks one 16-bit word per chip (word k of the frame <-> joints[k]). A chip
# answers a command in the *next* frame, so each frame both asks and collects: the angle
# read is sent every frame and the answer one frame old is stored. Once every
# 4 sweeps (_DIAG_EVERY) one chip is asked for its diagnostics instead (its angle is then
# skipped for one frame); a chip raising the error flag is sent CLEAR_ERROR.
# Words: bit 15 even parity, bit 14 read (command) / error flag (answer), 13:0 address/data.
import array

from dexfw.compat import const
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
        self._tx = bytearray(2 * n)
        self._rx = bytearray(2 * n)
        self._asked = bytearray(n)  # what each chip's next answer holds
        self._magnet = bytearray(n)  # last diagnostic bits per chip
        self._vouched = array.array("H", [0] * n)  # angle at the last good diagnosis
        self._clear = bytearray(n)  # 1: send CLEAR_ERROR to this chip next frame
        self._diag_next = 0
        self._sweeps = 0
        self.errors = 0  # parity errors and error flags since boot
        cs.value(1)
        self._prime()

    def _prime(self):
        # The first frame's answers are stale: ask for angles once so sample() collects.
        for k in range(self.n):
            self._set_word(k, CMD_ANGLE)
            self._asked[k] = _ASKED_ANGLE
        self._transfer()

    def _set_word(self, k, word):
        self._tx[2 * k] = word >> 8
        self._tx[2 * k + 1] = word & 0xFF

    def _transfer(self):
        self.cs.value(0)
        self.spi.write_readinto(self._tx, self._rx)
        self.cs.value(1)

    def _plan(self):
        """Choose each chip's command for this frame."""
        diag = -1
        if self._sweeps == 0:
            diag = self._diag_next
            self._diag_next = (diag + 1) % self.n
        self._sweeps = (self._sweeps + 1) % _DIAG_EVERY  # kept small: it never stops counting
        for k in range(self.n):
            if self._clear[k]:
                self._clear[k] = 0
                self._set_word(k, CMD_CLEAR)
            elif k == diag:
                self._set_word(k, CMD_DIAG)
            else:
                self._set_word(k, CMD_ANGLE)

    def sample(self, raw, status):
        """One frame: collect the answers to the previous frame, ask for the next."""
        self._plan()
        self._transfer()
        for k in range(self.n):
            self._sample_one(k, raw, status)

    # Small methods: each keeps its frame on the stack (a bigger one gets a heap frame,
    # a gc_alloc per call: tests/test_vrig_frames.py).
    def _sample_one(self, k, raw, status):
        j = self.joints[k]
        status[j] = (status[j] & KEEP_BITS) | self._collect(k, j, raw)
        self._note_asked(k)

    def _note_asked(self, k):
        """Remember what chip k was sent this frame: its next answer holds that."""
        sent = (self._tx[2 * k] << 8) | self._tx[2 * k + 1]
        if sent == CMD_CLEAR:
            self._asked[k] = _ASKED_CLEAR
        elif sent == CMD_DIAG:
            self._asked[k] = _ASKED_DIAG
        else:
            self._asked[k] = _ASKED_ANGLE

    def _collect(self, k, j, raw):
        word = (self._rx[2 * k] << 8) | self._rx[2 * k + 1]
        if parity(word) or word & _FLAG_ERROR:
            # A parity error, or the chip saw a bad command: clear its flag next frame.
            self.errors = (self.errors + 1) & COUNTER_MASK
            if word & _FLAG_ERROR:
                self._clear[k] = 1
            return self._magnet[k] | ST_ENCODER_ERROR
        if self._asked[k] == _ASKED_DIAG:
            self._diagnosed(k, j, raw, word)
        elif self._asked[k] == _ASKED_ANGLE and not self._magnet[k] & ST_MAGNET_MISSING:
            raw[j] = (word & 0x3FFF) << 2
        return self._magnet[k]

    def _diagnosed(self, k, j, raw, word):
        self._magnet[k] = diag_bits(word & 0x3FFF)
        vouch(self._magnet[k], raw, j, self._vouched, k)
