# The HAL of ports whose hardware buses sit on fixed pins per bus id (mimxrt, stm32):
# machine.I2C / SPI / UART take the id and the speed only (passing pins is refused
# there); the board description's pin numbers say where to wire, and the chip-select
# pin is the one made here, named the port's way (hal_mimxrt, hal_stm32 give PIN_NAME).
import machine

# The clock, the console and the rest as the other boards have them.
from dexfw.hal_machine import (VIRTUAL, Console, sleep_us, ticks_add,  # noqa: F401
                               ticks_diff, ticks_us)


def I2C(id, scl, sda, freq):
    return machine.I2C(id, freq=freq)


def SPI(id, sck, mosi, miso, baudrate):
    return machine.SPI(id, baudrate=baudrate)


def UART(id, baudrate, tx, rx):
    # timeout=0: reads return what is there; the servo drivers never wait on the bus.
    return machine.UART(id, baudrate=baudrate, timeout=0, timeout_char=0)


def named_pin(name, mode):
    """machine.Pin by the port's name for it (a plain number is not accepted there)."""
    return machine.Pin(name, mode)
