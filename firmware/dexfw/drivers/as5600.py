# AS5600 12-bit magnetic encoders behind a TCA9548A mux (ams AS5600 datasheet).
#
# RAW_ANGLE (0x0C/0x0D) rather than ANGLE: ANGLE has hysteresis at the wrap point.
# Reading RAW_ANGLE leaves the chip's register pointer in place, so after one pointer
# write a bare 2-byte read returns the angle again: half the bus time of a register read.
# The magnet status (MD/ML/MH) is read for one sensor per sweep, spreading its cost.
import array

from dexfw.compat import const
from dexfw.drivers.i2cmux import MuxedSensors, vouch
from dexproto.catalog import ST_MAGNET_MISSING, ST_MAGNET_WEAK

_ADDR = const(0x36)
_REG_STATUS = const(0x0B)
_REG_RAW_ANGLE = const(0x0C)
_STATUS_MH = const(0x08)  # magnet too strong
_STATUS_ML = const(0x10)  # magnet too weak
_STATUS_MD = const(0x20)  # magnet detected


def magnet_bits(reg_status):
    """The joint status bits for an AS5600 STATUS register value."""
    if not reg_status & _STATUS_MD:
        return ST_MAGNET_MISSING
    if reg_status & (_STATUS_ML | _STATUS_MH):
        return ST_MAGNET_WEAK
    return 0


class AS5600Mux(MuxedSensors):
    def __init__(self, i2c, mux_addr=0x70, channels=None, joints=(), addr=_ADDR):
        MuxedSensors.__init__(self, i2c, addr, mux_addr, channels, joints, "AS5600")
        self._pointer_ok = bytearray(self.n)  # 1: the chip's pointer is at RAW_ANGLE
        self._magnet = bytearray(self.n)  # last magnet bits read, per sensor
        self._vouched = array.array("H", [0] * self.n)  # angle at the last good status
        self._check = 0  # the sensor whose STATUS is read in the next sweep

    # Few locals on purpose: past 11 slots of locals + stack, MicroPython puts a call's
    # frame on the heap (gc_alloc + gc_free), and this runs once per sensor per cycle.
    def _read(self, k, j, raw):
        if k == self._check:
            self._check_magnet(k, j, raw)
        if self._pointer_ok[k]:
            self.i2c.readfrom_into(self.addr, self._buf2)
        else:
            self.i2c.readfrom_mem_into(self.addr, _REG_RAW_ANGLE, self._buf2)
            self._pointer_ok[k] = 1
        bits = self._magnet[k]
        if not bits & ST_MAGNET_MISSING:  # without a magnet the angle is noise: keep the last
            raw[j] = (((self._buf2[0] & 0x0F) << 8) | self._buf2[1]) << 4
        return bits

    def _check_magnet(self, k, j, raw):
        self.i2c.readfrom_mem_into(self.addr, _REG_STATUS, self._buf1)
        bits = magnet_bits(self._buf1[0])
        vouch(bits, raw, j, self._vouched, k)
        self._magnet[k] = bits
        self._pointer_ok[k] = 0

    def _lost(self, k):
        self._pointer_ok[k] = 0

    def _sweep_done(self):
        self._check += 1
        if self._check >= self.n:
            self._check = 0
