# The HAL of i.MX RT boards (Teensy 4.x): buses on their fixed pins (hal_fixedpins); a pin
# number n of the board description is the silkscreen's, machine's "Dn".
import machine

from dexfw.hal_fixedpins import (I2C, SPI, UART, VIRTUAL, Console, sleep_us,  # noqa: F401
                                 ticks_add, ticks_diff, ticks_us)
from dexfw.hal_fixedpins import named_pin as _named_pin


class Pin:
    OUT = machine.Pin.OUT

    def __new__(cls, n, mode=-1):
        return _named_pin("D%d" % n, mode)
