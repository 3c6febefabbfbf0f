# The HAL of STM32 boards: buses on their fixed pins (hal_fixedpins); a pin number n of
# the board description is port * 16 + bit (PB8 = 1 * 16 + 8 = 24), machine's "B8".
import machine

from dexfw.hal_fixedpins import (I2C, SPI, UART, VIRTUAL, Console, sleep_us,  # noqa: F401
                                 ticks_add, ticks_diff, ticks_us)
from dexfw.hal_fixedpins import named_pin as _named_pin

_PORTS = "ABCDEFGHIJK"


class Pin:
    OUT = machine.Pin.OUT

    def __new__(cls, n, mode=-1):
        return _named_pin("%s%d" % (_PORTS[n >> 4], n & 15), mode)
