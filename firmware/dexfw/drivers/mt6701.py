# MT6701 14-bit magnetic encoders over I2C (address 0x06), behind a TCA9548A mux.
#
# Angle[13:6] in register 0x03, angle[5:0] in bits 7:2 of 0x04; both come in one 2-byte
# register read. Bits 1:0 of 0x04 are taken as the magnetic field status Mg[1:0] of the
# chip's SSI frame (00 normal, 01 too strong, 10 too weak); a field too weak to measure
# is reported as a missing magnet.
from dexfw.compat import const
from dexfw.drivers.i2cmux import MuxedSensors
from dexproto.catalog import ST_MAGNET_MISSING, ST_MAGNET_WEAK

_ADDR = const(0x06)
_REG_ANGLE_H = const(0x03)
_FIELD_TOO_STRONG = const(0x01)
_FIELD_TOO_WEAK = const(0x02)


def magnet_bits(reg_low):
    """The joint status bits for the low byte (register 0x04) of an MT6701 angle read."""
    mg = reg_low & 0x03
    if mg & _FIELD_TOO_WEAK:
        return ST_MAGNET_MISSING
    if mg & _FIELD_TOO_STRONG:
        return ST_MAGNET_WEAK
    return 0


class MT6701Mux(MuxedSensors):
    def __init__(self, i2c, mux_addr=None, channels=None, joints=(), addr=_ADDR):
        MuxedSensors.__init__(self, i2c, addr, mux_addr, channels, joints, "MT6701")

    def _read(self, k, j, raw):
        buf = self._buf2
        self.i2c.readfrom_mem_into(self.addr, _REG_ANGLE_H, buf)
        bits = magnet_bits(buf[1])
        if not bits & ST_MAGNET_MISSING:
            raw[j] = ((buf[0] << 6) | (buf[1] >> 2)) << 2
        return bits
