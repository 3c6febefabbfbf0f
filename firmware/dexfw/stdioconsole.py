# The board's USB serial port as the host link: sys.stdin / sys.stdout, polled without
# blocking. The real boards' HAL (dexfw.hal_machine) uses it as its Console; so does the
# virtual board's HAL (vmachine) when the supervisor gives it no console of its own.
import sys

import micropython
import select


class StdioConsole:
    """The USB serial port, polled without blocking (ipoll allocates nothing)."""

    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        # Bound once: the loop and readinto call these without a method lookup each time.
        self._ipoll = self._poll.ipoll
        self._read = self._in.readinto
        self._one = bytearray(1)

    def any(self):
        """1 when a byte waits (the loop reads only then; ipoll allocates nothing)."""
        for _ in self._ipoll(0):
            return 1
        return 0

    def readinto(self, buf):
        """Bytes waiting, up to len(buf); 0 when none. sys.stdin gives one byte at a time,
        each asked for with ipoll here (no method call a byte: issue 15's 13.6 us each on
        an RP2040, ~40 bytes a command)."""
        n = 0
        size = len(buf)
        one = self._one
        while n < size:
            for _ in self._ipoll(0):
                break
            else:
                return n  # nothing waits
            if not self._read(one):
                return n
            buf[n] = one[0]
            n += 1
        return n

    def write(self, buf):
        return self._out.write(buf)

    def claim(self):
        micropython.kbd_intr(-1)  # frames may hold 0x03: no Ctrl-C while running

    def release(self):
        micropython.kbd_intr(3)
