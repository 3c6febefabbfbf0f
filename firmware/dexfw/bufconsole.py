# A Console over memory: the loop's host link without a serial port. Tests feed it
# frames and read back what the firmware wrote; the bench drives the loop with it.
# Same methods as hal.Console; writing copies into a buffer made once.
from dexproto.cobsbuf import copy_into


class BufferConsole:
    def __init__(self, rx_size=4096, tx_size=65536):
        self.rx = bytearray(rx_size)
        self.rx_start = 0
        self.rx_end = 0
        self.tx = bytearray(tx_size)
        self.tx_len = 0
        self.tx_overflow = 0  # bytes dropped because tx was full
        self.claimed = False

    def feed(self, data):
        """Queue bytes for the firmware to read (test side)."""
        if self.rx_start == self.rx_end:
            self.rx_start = self.rx_end = 0
        if self.rx_end + len(data) > len(self.rx):
            raise ValueError("BufferConsole: rx buffer full")
        self.rx_end = copy_into(data, 0, len(data), self.rx, self.rx_end)

    def take(self):
        """What the firmware wrote since the last take (test side)."""
        out = bytes(self.tx[:self.tx_len])
        self.tx_len = 0
        return out

    def any(self):
        """Bytes waiting to be read (the loop reads only when some do)."""
        return self.rx_end - self.rx_start

    def readinto(self, buf):
        n = min(len(buf), self.rx_end - self.rx_start)
        if n <= 0:
            return 0
        copy_into(self.rx, self.rx_start, self.rx_start + n, buf, 0)
        self.rx_start += n
        return n

    def write(self, buf):
        n = len(buf)
        if self.tx_len + n > len(self.tx):
            self.tx_overflow += n
            return 0
        self.tx_len = copy_into(buf, 0, n, self.tx, self.tx_len)
        return n

    def claim(self):
        self.claimed = True

    def release(self):
        self.claimed = False
