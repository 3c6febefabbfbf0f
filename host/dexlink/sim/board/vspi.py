# A simulated SPI bus and an AS5048A daisy chain at the word level.
#
# While its chip-select pin is low, a frame of 16-bit words goes through the chain, word
# k to and from chip k. A chip answers each command in the *next* frame (pipelined), with
# even parity in bit 15 and its error flag in bit 14; a command with bad parity sets the
# flag, reading CLEAR_ERROR (0x0001) clears it.
import vfaults
import vworld

REG_CLEAR_ERROR = 0x0001
REG_DIAG_AGC = 0x3FFD
REG_MAGNITUDE = 0x3FFE
REG_ANGLE = 0x3FFF


def parity(word):
    word ^= word >> 8
    word ^= word >> 4
    word ^= word >> 2
    word ^= word >> 1
    return word & 1


def _angle(j):
    """The 14-bit angle a chip on joint j reads now (noise without its magnet)."""
    if vfaults.magnet_missing[j]:
        return vworld.rand32() & 0x3FFF
    raw = vworld.operator.raw_turn16(j, vworld.now_us())
    return (((raw + 2) >> 2) + vworld.noise(24)) & 0x3FFF


class SPIBus:
    def __init__(self):
        self.chains = []

    def add_chain(self, cs, joints):
        chain = AS5048AChain(cs, joints)
        self.chains.append(chain)
        return chain

    # Hot-path functions stay small: past 11 slots of locals + stack MicroPython puts a
    # call's frame on the heap (gc_alloc + gc_free per call).
    def write_readinto(self, wbuf, rbuf):
        chain = self._selected()
        if chain is not None:
            chain.transfer(wbuf, rbuf)
            return
        for i in range(len(rbuf)):  # nobody selected: MISO floats high
            rbuf[i] = 0xFF

    def _selected(self):
        """The first chain whose chip-select is low, or None."""
        chains = self.chains
        for i in range(len(chains)):  # by index: a list iterator takes 4 stack slots
            if vworld.pins[chains[i].cs] == 0:
                return chains[i]
        return None


class AS5048AChain:
    def __init__(self, cs, joints):
        self.cs = cs
        self.joints = tuple(joints)
        n = len(self.joints)
        self.answer = [0] * n  # what each chip shifts out in the next frame
        self.error_flag = bytearray(n)
        self.corrupt_next = bytearray(n)  # tests: flip a bit of chip k's next answer
        self.frames = 0
        self.bad_commands = 0

    def transfer(self, wbuf, rbuf):
        self.frames += 1
        for k in range(len(self.joints)):
            if 2 * k + 1 >= len(wbuf):
                break
            self._word(k, wbuf, rbuf)

    def _word(self, k, wbuf, rbuf):
        """Chip k shifts out its last answer and takes in its next command."""
        out = self.answer[k]
        if self.corrupt_next[k]:
            self.corrupt_next[k] = 0
            out ^= 0x0004
        rbuf[2 * k] = out >> 8
        rbuf[2 * k + 1] = out & 0xFF
        out = (wbuf[2 * k] << 8) | wbuf[2 * k + 1]  # the command word
        self.answer[k] = self._command(k, out)

    def _command(self, k, cmd):
        """Execute one command word; return the answer word for the next frame."""
        if parity(cmd):
            self.bad_commands += 1
            self.error_flag[k] = 1
            data = 0
        elif cmd & 0x4000:
            data = self._read(k, cmd & 0x3FFF)
        else:
            data = 0  # writes are not simulated (zero position lives on the host)
        word = data & 0x3FFF
        if self.error_flag[k]:
            word |= 0x4000
        return word | (parity(word) << 15)

    def _read(self, k, reg):
        j = self.joints[k]
        if reg == REG_ANGLE:
            return _angle(j)
        missing = vfaults.magnet_missing[j]
        if reg == REG_DIAG_AGC:
            return (0x0100 | 0x0800 | 0xFF) if missing else (0x0100 | 0x58)
        if reg == REG_MAGNITUDE:
            return 0 if missing else 0x0F00
        if reg == REG_CLEAR_ERROR:
            flags = self.error_flag[k]
            self.error_flag[k] = 0
            return flags
        return 0
