# The real boards' HAL: machine's buses with integer pins, the time module's ticks, and
# the USB serial REPL port as the host link (docs/interfaces.md, "The HAL module").
import sys
import time

import machine
import micropython
import select

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


class Console:
    """The USB serial port, polled without blocking (ipoll allocates nothing)."""

    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._one = bytearray(1)

    def _ready(self):
        for _ in self._poll.ipoll(0):
            return True
        return False

    def readinto(self, buf):
        """Bytes waiting, up to len(buf); 0 when none (sys.stdin gives one byte at a time)."""
        n = 0
        size = len(buf)
        one = self._one
        while n < size and self._ready():
            if not self._in.readinto(one):
                break
            buf[n] = one[0]
            n += 1
        return n

    def write(self, buf):
        return self._out.write(buf)

    def claim(self):
        micropython.kbd_intr(-1)  # frames may hold 0x03: no Ctrl-C while running

    def release(self):
        micropython.kbd_intr(3)
