# Sensors with one fixed I2C address, several behind a TCA9548A multiplexer.
#
# The AS5600 (0x36) and the MT6701 (0x06) cannot share a bus segment, so each sits on its
# own mux channel. The sweep selects each channel in turn (one 1-byte write: bit n of
# the mux's control register enables channel n) and lets the chip class read it.
from dexproto.catalog import COUNTER_MASK, ST_ENCODER_ERROR, ST_MAGNET_MISSING, ST_MAGNET_WEAK

ENCODER_BITS = ST_MAGNET_MISSING | ST_MAGNET_WEAK | ST_ENCODER_ERROR
KEEP_BITS = 0xFF ^ ENCODER_BITS


def vouch(bits, raw, j, vouched, k):
    """After a magnet check of sensor k (joint j): without a magnet the angles read since
    the last good check may be noise, so go back to the angle that check vouched for;
    with one, vouch for this angle."""
    if bits & ST_MAGNET_MISSING:
        raw[j] = vouched[k]
    else:
        vouched[k] = raw[j]


class MuxedSensors:
    """A sweep over sensors at `addr`, one per channel of the mux at `mux_addr`.

    `mux_addr=None`: a single sensor straight on the bus. Subclasses implement
    `_read(k, j, raw)` returning the sensor's status bits (raising OSError on a bus error).
    """

    def __init__(self, i2c, addr, mux_addr, channels, joints, chip):
        self.i2c = i2c
        self.addr = addr
        self.mux_addr = mux_addr
        self.joints = tuple(joints)
        n = len(self.joints)
        if mux_addr is None:
            if n != 1:
                raise ValueError("%s: %d joints need a mux (mux_addr), only one %s fits a bus"
                                 % (chip, n, chip))
            channels = (0,)
        elif channels is None or len(channels) != n:
            raise ValueError("%s: 'channels' must give one mux channel per joint (%d)"
                             % (chip, n))
        for c in channels:
            if not 0 <= c <= 7:
                raise ValueError("%s: mux channel %r is not 0..7" % (chip, c))
        self.channels = tuple(channels)
        self.n = n
        # One control byte per channel, made once: selecting allocates nothing.
        self._select = tuple(bytearray((1 << c,)) for c in self.channels)
        self._none = bytearray(1)
        self._buf1 = bytearray(1)
        self._buf2 = bytearray(2)
        self.errors = 0  # bus errors since boot
        self._raw = None  # sample()'s raw array, during a sweep

    def sample(self, raw, status):
        """Read every sensor once: raw[j] (turn16) and the encoder bits of status[j]."""
        self._raw = raw  # kept here for _try_read: one argument less keeps its frame small
        for k in range(self.n):
            j = self.joints[k]
            status[j] = (status[j] & KEEP_BITS) | self._try_read(k)
        if self.mux_addr is not None:
            self._unselect()
        self._sweep_done()

    # The sweep is split in small methods: each keeps its frame on the stack (a bigger
    # one gets a heap frame, a gc_alloc per call: tests/test_vrig_frames.py).
    def _try_read(self, k):
        """Sensor k's status bits (ST_ENCODER_ERROR after a bus error)."""
        try:
            if self.mux_addr is not None:
                self.i2c.writeto(self.mux_addr, self._select[k])
            return self._read(k, self.joints[k], self._raw)
        except OSError:
            self.errors = (self.errors + 1) & COUNTER_MASK
            self._lost(k)
            return ST_ENCODER_ERROR

    def _unselect(self):
        # Leave no channel connected: another mux on this bus may hold sensors at the
        # same address, and two chips answering one read would garble it.
        try:
            self.i2c.writeto(self.mux_addr, self._none)
        except OSError:
            self.errors = (self.errors + 1) & COUNTER_MASK

    def _lost(self, k):
        """Called after a bus error on sensor k (its register pointer is unknown)."""

    def _sweep_done(self):
        """Called after each sweep."""
