# The real boards' HAL: machine's buses with integer pins, the time module's ticks, and
# the USB serial REPL port as the host link (docs/interfaces.md, "The HAL module").
import time

import machine

from dexfw.stdioconsole import StdioConsole as Console  # noqa: F401  (the HAL's Console)

ticks_us = time.ticks_us
ticks_diff = time.ticks_diff
ticks_add = time.ticks_add
sleep_us = time.sleep_us
Pin = machine.Pin
VIRTUAL = False


def I2C(id, scl, sda, freq):
    return machine.I2C(id, scl=machine.Pin(scl), sda=machine.Pin(sda), freq=freq)


def SPI(id, sck, mosi, miso, baudrate):
    return machine.SPI(id, baudrate=baudrate, sck=machine.Pin(sck), mosi=machine.Pin(mosi),
                       miso=machine.Pin(miso))


def UART(id, baudrate, tx, rx):
    # timeout=0: reads return what is there; the servo drivers never wait on the bus.
    return machine.UART(id, baudrate=baudrate, tx=machine.Pin(tx), rx=machine.Pin(rx),
                        timeout=0, timeout_char=0)
