# Hobby PWM servos on a PCA9685 (16-channel 12-bit PWM over I2C, NXP datasheet).
#
# A PWM servo takes a new pulse width only once per 20 ms frame, so it cannot follow a
# 1 kHz goal stream: write_goals() keeps the latest goals, and the channels are written
# one per call in rounds that start at most every 20 ms (each channel <= 50 Hz, and the
# I2C time per call is one 4-byte register write). There is no read-back: poll() does
# nothing and present positions stay as they are.
import array

from dexfw.compat import const

_MODE1 = const(0x00)
_MODE2 = const(0x01)
_LED0_ON_L = const(0x06)
_PRESCALE = const(0xFE)
_MODE1_SLEEP = const(0x10)
_MODE1_AI = const(0x20)  # register auto-increment: one write fills ON_L..OFF_H
_MODE1_RESTART = const(0x80)
_MODE2_OUTDRV = const(0x04)
_FULL_OFF = const(0x10)  # bit 4 of LEDn_OFF_H
_OSC_HZ = const(25000000)
_PWM_HZ = const(50)
_FRAME_US = const(1000000 // _PWM_HZ)
# prescale = round(25 MHz / (4096 * 50 Hz)) - 1 = 121: one count is 122 / 25 us.
_PRESCALE_50HZ = const((_OSC_HZ + 4096 * _PWM_HZ // 2) // (4096 * _PWM_HZ) - 1)


def counts_from_us(pulse_us):
    """PWM counts (0..4095) for a pulse width in microseconds at the 50 Hz prescale."""
    return pulse_us * 25 // (_PRESCALE_50HZ + 1)


class PCA9685Servos:
    NEEDS_CLOCK = True
    READBACK = False  # no present position: the loop starts these motors from their goals

    def __init__(self, i2c, addr=0x40, channels=(), joints=(), centre_us=1500,
                 us_per_90deg=1000, min_us=500, max_us=2500, clock=None):
        if clock is None:
            raise ValueError("PCA9685: needs clock= (the HAL) to stay under 50 Hz")
        self.joints = tuple(joints)
        self.channels = tuple(channels)
        self.n = len(self.joints)
        if len(self.channels) != self.n:
            raise ValueError("PCA9685: 'channels' must give one channel per joint (%d)"
                             % self.n)
        for c in self.channels:
            if not 0 <= c <= 15:
                raise ValueError("PCA9685: channel %r is not 0..15" % (c,))
        self.i2c = i2c
        self.addr = addr
        self.clock = clock
        self.centre_us = centre_us
        self.us_per_90deg = us_per_90deg
        self.min_us = min_us
        self.max_us = max_us
        self.timeouts = 0
        self.bad_checksums = 0
        self.load = array.array("h", [0] * self.n)
        self._counts = array.array("H", [counts_from_us(centre_us)] * self.n)
        self._reg = bytearray(4)  # ON_L ON_H OFF_L OFF_H of one channel
        self._on = False
        self._next = self.n  # channel index written next; n: the round is over
        self._round_start = clock.ticks_us()
        self._setup()

    def _setup(self):
        one = bytearray(1)
        for reg, value in ((_MODE1, _MODE1_SLEEP), (_PRESCALE, _PRESCALE_50HZ),
                           (_MODE2, _MODE2_OUTDRV), (_MODE1, _MODE1_AI)):
            one[0] = value
            self.i2c.writeto_mem(self.addr, reg, one)
        self.clock.sleep_us(500)  # the oscillator needs 500 us after SLEEP clears
        one[0] = _MODE1_AI | _MODE1_RESTART
        self.i2c.writeto_mem(self.addr, _MODE1, one)
        self._all_off()

    def _write_channel(self, k, off_h_extra):
        reg = self._reg  # (no more locals: the frame stays on the stack)
        reg[0] = 0
        reg[1] = 0
        reg[2] = self._counts[k] & 0xFF
        reg[3] = (self._counts[k] >> 8) | off_h_extra
        self.i2c.writeto_mem(self.addr, _LED0_ON_L + 4 * self.channels[k], reg)

    def _all_off(self):
        for k in range(self.n):
            self._write_channel(k, _FULL_OFF)

    def torque(self, on):
        """Pulses on (from the next round) or off (at once: outputs held low)."""
        self._on = bool(on)
        if not on:
            self._all_off()
            self._next = self.n

    def write_goals(self, goal_cdeg):
        """Keep the goals; write the next channel when its 20 ms frame allows."""
        for k in range(self.n):
            us = self.centre_us + goal_cdeg[self.joints[k]] * self.us_per_90deg // 9000
            if us < self.min_us:
                us = self.min_us
            elif us > self.max_us:
                us = self.max_us
            self._counts[k] = counts_from_us(us)
        if not self._on:
            return
        if self._next >= self.n:
            now = self.clock.ticks_us()
            if self.clock.ticks_diff(now, self._round_start) < _FRAME_US:
                return
            self._round_start = now
            self._next = 0
        self._write_channel(self._next, 0)
        self._next += 1

    def poll(self, present_cdeg, status):
        """No read-back on PWM servos."""
        return None
