# FAULT messages of the loop: edge-triggered from the status bits the drivers set, and rate
# limited per code, so that a flapping encoder or a dead servo cannot flood the link.
#
# Each check runs every cycle: small methods (few arguments and locals, while loops) keep
# their frames on the stack (tests/test_vrig_frames.py), and nothing here allocates.
from dexfw import mapping
from dexproto import catalog as C

MASK30 = C.COUNTER_MASK  # counters stay small ints on 32-bit ports
SERVO_BAD = C.ST_SERVO_TIMEOUT | C.ST_SERVO_BAD_CHECKSUM | C.ST_SERVO_ERROR
FAULT_GAP_US = 100000  # the same fault code is sent at most every 100 ms
SLOW_FAULT_US = 1000000  # FAULT(config) and FAULT(overrun): at most once a second


class FaultReporter:
    """Sends the loop's FAULTs over `link`; watches a JointMap's encoder and servo bits."""

    def __init__(self, link, ticks_diff, jm):
        self.link = link
        self.ticks_diff = ticks_diff
        self.jm = jm
        self.last_us = [0] * len(C.FAULT_NAMES)  # when each code was last sent
        self.sent = bytearray(len(C.FAULT_NAMES))  # 1: the code was sent at least once
        self.prev_bad = bytearray(jm.n)  # encoder bits per joint at the last check
        self.prev_servo = bytearray(jm.nm)  # servo bits per motor at the last check
        self.servo_timeouts = 0  # servo timeouts the loop saw appear, since boot
        self.servo_bad_checksums = 0
        self.overruns_reported = 0  # the loop's overrun count at the last FAULT(overrun)

    def every(self, now, code, gap_us, joint=C.NO_JOINT, detail=0):
        """A FAULT, unless one with this code went out less than gap_us ago."""
        if self._recent(now, code, gap_us):
            return
        self._send(now, code, joint, detail)

    def limited(self, now, code, joint, detail):
        """A FAULT, at most one per code every FAULT_GAP_US."""
        self.every(now, code, FAULT_GAP_US, joint, detail)

    def overrun(self, now, overruns):
        """FAULT(overrun) at most once a second; detail = overruns since the last one."""
        if self._recent(now, C.FAULT_OVERRUN, SLOW_FAULT_US):
            return
        self._send(now, C.FAULT_OVERRUN, C.NO_JOINT,
                   (overruns - self.overruns_reported) & MASK30)
        self.overruns_reported = overruns

    def _recent(self, now, code, gap_us):
        return self.sent[code] and self.ticks_diff(now, self.last_us[code]) < gap_us

    def _send(self, now, code, joint, detail):
        self.sent[code] = 1
        self.last_us[code] = now
        self.link.fault(now, code, joint, detail)

    # ---- edges of the status bits (every cycle) ---------------------------------------
    def check_encoders(self, now):
        """FAULT when a joint's encoder goes bad (its goal is held by map/follow)."""
        i = self._encoder_change(0)
        while i >= 0:
            self._encoder_changed(now, i)
            i = self._encoder_change(i + 1)

    def _encoder_change(self, start):
        """The first joint from start whose encoder bits changed, or -1."""
        return mapping.first_change(self.jm.flags, self.prev_bad, mapping.ENCODER_BAD, start,
                                    self.jm.n)

    def _encoder_changed(self, now, i):
        bad = self.jm.flags[i] & mapping.ENCODER_BAD
        self.prev_bad[i] = bad
        if bad:
            self.limited(now, C.FAULT_ENCODER if bad & C.ST_ENCODER_ERROR else C.FAULT_MAGNET,
                         i, bad)

    def check_servos(self, now):
        """Count servo timeouts / bad checksums / errors as they appear; FAULT each kind."""
        # (The first pass written out: a method call fewer every cycle, 13.6 us on an RP2040.)
        jm = self.jm
        m = mapping.first_change(jm.servo_status, self.prev_servo, SERVO_BAD, 0, jm.nm)
        while m >= 0:
            self._servo_changed(now, m)
            m = self._servo_change(m + 1)

    def _servo_change(self, start):
        """The first motor from start whose servo's bad bits changed, or -1."""
        return mapping.first_change(self.jm.servo_status, self.prev_servo, SERVO_BAD, start,
                                    self.jm.nm)

    def _servo_changed(self, now, m):
        s = self.jm.servo_status[m] & SERVO_BAD
        new = s & ~self.prev_servo[m]
        self.prev_servo[m] = s
        if new & C.ST_SERVO_TIMEOUT:
            self.servo_timeouts = (self.servo_timeouts + 1) & MASK30
            self.limited(now, C.FAULT_SERVO_TIMEOUT, m, s)
        if new & C.ST_SERVO_BAD_CHECKSUM:
            self.servo_bad_checksums = (self.servo_bad_checksums + 1) & MASK30
            self.limited(now, C.FAULT_SERVO_CHECKSUM, m, s)
        if new & C.ST_SERVO_ERROR:
            self.limited(now, C.FAULT_SERVO_ERROR, m, s)
