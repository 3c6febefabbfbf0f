# The hand's joints and motors as arrays, made once from the config, plus the steps of
# the loop that work on them (through dexfw.mapping). No allocation after __init__.
from array import array

from dexfw import mapping
from dexfw.mapping import UNKNOWN


def _h(n, value=0):
    return array("h", [value] * n)


class JointMap:
    """Calibration, limits, goals and present positions of n joints driving nm motors."""

    def __init__(self, joints, motors, coupling, hz):
        n = self.n = len(joints)
        nm = self.nm = len(motors)
        self.raw = array("H", [0] * n)
        self.enc_status = bytearray(n)
        self.flags = bytearray(n)
        self.exo = _h(n)
        self.goal = _h(n)
        self.target = _h(n)
        self.host = _h(n)  # the last TARGETS from the host
        # 1 in TELEOP (the loop's set_mode): mapping.map_exo_of then sets the targets as it
        # maps (target = exo, a held joint's its goal), where the loop called follow after
        # it: one call a cycle fewer (issue 15). 0: the targets are left alone.
        self.follow_exo = 0
        self._no_flags = bytearray(n)  # host targets are followed whatever the encoders say
        self.zero = array("H", [0] * n)
        self.direction = array("b", [1] * n)
        self.scale = _h(n)
        self.dscale = _h(n)
        self.lo = _h(n)
        self.hi = _h(n)
        # zero, dscale, lo, hi per joint in one array (the table mapping.map_exo_of reads:
        # the sense step's call then fits its frame), kept with them by set_joint.
        self.jtab = _h(mapping.JOINT_FIELDS * n)
        self.speed = array("H", [1] * n)
        self.step = _h(n, 1)  # slew limit over one configured period
        self.slew_q8 = 256  # time since the last cycle, 1/256 periods (the loop sets it)
        self.hz = hz
        for i in range(n):
            j = joints[i]
            self.set_joint(i, j["zero_turn16"], j["direction"], j["scale_q12"], j["min_cdeg"],
                           j["max_cdeg"], j["max_speed_cdeg_per_ms"])
        self.motor = _h(nm)
        self.servo_goal = _h(nm)
        self.present = _h(nm, UNKNOWN)  # servo frame, filled by the servo drivers' poll
        self.present_motor = _h(nm, UNKNOWN)
        self.servo_status = bytearray(nm)
        self.report_status = bytearray(nm)  # servo_status as telemetry reports it
        self.pack_body = None  # where mapping.pack_joints_of packs the joints (the loop's)
        self.pack_at = 0
        self.blind = bytearray(nm)  # 1: the motor's servo cannot report its position
        self.mdir = _h(nm)
        self.moff = _h(nm)
        for m in range(nm):
            self.mdir[m] = motors[m]["direction"]
            self.moff[m] = motors[m]["offset_cdeg"]
        self.coupled = coupling is not None
        self._make_coupling(coupling)
        # mapping.to_motors' table: per motor its b (coupling), limits, direction and
        # servo offset.
        self.mtab = _h(mapping.MOTOR_FIELDS * nm)
        for m in range(nm):
            t = mapping.MOTOR_FIELDS * m
            self.mtab[t + mapping.MOTOR_B] = self.cb[m]
            self.mtab[t + mapping.MOTOR_LO] = motors[m]["min_cdeg"]
            self.mtab[t + mapping.MOTOR_HI] = motors[m]["max_cdeg"]
            self.mtab[t + mapping.MOTOR_DIR] = self.mdir[m]
            self.mtab[t + mapping.MOTOR_OFF] = self.moff[m]
        self.limit_goals()

    def _make_coupling(self, coupling):
        """The coupling matrix as sparse rows (identity when there is none)."""
        nm = self.nm
        cols, coefs, b = [], [], [0] * nm
        start = [0]
        for m in range(nm):
            if coupling is None:
                cols.append(m)
                coefs.append(4096)
            else:
                row = coupling["a_q12"][m]
                for j in range(len(row)):
                    if row[j]:
                        cols.append(j)
                        coefs.append(row[j])
                b[m] = coupling["b_cdeg"][m]
            start.append(len(cols))
        self.inverse = _inverse_q12(coupling["a_q12"]) if coupling is not None else None
        self.cstart = array("H", start)
        self.ccol = bytearray(cols)
        self.ccoef = array("h", coefs)
        self.cb = array("h", b)

    def set_joint(self, i, zero, direction, scale, lo, hi, speed):
        """Calibration and limits of joint i (values already checked by dexfw.config)."""
        self.zero[i] = zero
        self.direction[i] = direction
        self.scale[i] = scale
        self.dscale[i] = scale if direction > 0 else -scale
        self.lo[i] = lo
        self.hi[i] = hi
        t = mapping.JOINT_FIELDS * i
        self.jtab[t + mapping.JOINT_ZERO] = zero - 65536 if zero >= 32768 else zero
        self.jtab[t + mapping.JOINT_DSCALE] = self.dscale[i]
        self.jtab[t + mapping.JOINT_LO] = lo
        self.jtab[t + mapping.JOINT_HI] = hi
        self.speed[i] = speed
        self.step[i] = self._step(speed)

    def _step(self, speed):
        """Slew limit per configured period (cdeg) from cdeg/ms and the loop rate; at
        least 1. slew() scales it by the time the cycle really took (slew_q8)."""
        return max(1, min(32767, speed * 1000 // self.hz))

    def set_rate(self, hz):
        self.hz = hz
        for i in range(self.n):
            self.step[i] = self._step(self.speed[i])

    def joint_values(self, i):
        """(joint, zero, direction, scale, min, max, speed): the JOINT_CONFIG fields."""
        return (i, self.zero[i], self.direction[i], self.scale[i], self.lo[i], self.hi[i],
                self.speed[i])

    def limit_goals(self):
        """Keep goals and targets inside the joint ranges (after a range changed)."""
        for i in range(self.n):
            for a in (self.goal, self.target, self.host):
                a[i] = min(max(a[i], self.lo[i]), self.hi[i])

    # The steps of one cycle
    def follow_host(self):
        mapping.follow(self.host, self._no_flags, self.goal, self.target, self.n)

    def hold(self):
        """Targets where the goals are: the hand stays."""
        mapping.follow(self.goal, self.flags, self.goal, self.target, self.n)

    def drive(self):
        """Goals -> motors (coupling) -> servo frame."""
        mapping.drive_of(self)

    def read_present(self):
        """Present positions in the motor frame; return how many are still unknown."""
        return mapping.from_servo(self.present, self.mdir, self.moff, self.present_motor,
                                  self.nm)

    def mark_unread(self, bit):
        """report_status: servo_status, plus `bit` on motors not read back yet that can be.

        The drivers own servo_status (and the loop's FAULT edges come from it): a servo
        that has not answered yet is only marked in what goes to the host, so a dataset
        can drop its placeholder present position (PRESENT_UNKNOWN).
        """
        mapping.mark_unread(self.servo_status, self.present_motor, self.blind,
                            self.report_status, bit, self.nm)

    def unknown_present(self):
        """How many motors that can report their position have not reported it yet."""
        self.read_present()
        unknown = 0
        for m in range(self.nm):
            if self.present_motor[m] == UNKNOWN and not self.blind[m]:
                unknown += 1
        return unknown

    def goals_from_present(self):
        """Set goals (and targets) to where the hand is, so a mode change never jumps.

        One to one: each joint's goal is its motor's present position. Coupled: the joint
        angles that put the motors where they are, q = A^-1 (m - b) (a mode change, not
        the steady state: big ints are allowed here). A servo without read-back (PWM)
        reports nothing: those goals stay where they were, as do a coupled hand's when
        A cannot be inverted. Returns False while a motor that can report its position
        has not yet.
        """
        if self.unknown_present():
            return False
        pm = self.present_motor
        if not self.coupled:
            for i in range(self.n):
                if not self.blind[i]:
                    self.goal[i] = min(max(pm[i], self.lo[i]), self.hi[i])
        elif self.inverse is not None and not any(self.blind):
            for i in range(self.n):
                row = self.inverse[i]
                acc = 2048
                for k in range(self.nm):
                    acc += row[k] * (pm[k] - self.cb[k])
                self.goal[i] = min(max(acc >> 12, self.lo[i]), self.hi[i])
        for i in range(self.n):
            self.target[i] = self.goal[i]
            self.host[i] = self.goal[i]
        return True

    def set_host_targets(self, payload, at, n):
        """HOST targets from n little-endian int16 at payload[at:], clipped to the ranges."""
        i = 0
        while i < n:  # no range(): it would take the frame past the on-stack limit
            v = payload[at] | (payload[at + 1] << 8)
            if v >= 32768:
                v -= 65536
            if v < self.lo[i]:
                v = self.lo[i]
            elif v > self.hi[i]:
                v = self.hi[i]
            self.host[i] = v
            at += 2
            i += 1


def _inverse_q12(a_q12):
    """A^-1 in 1/4096 (Gauss-Jordan in floats, at boot), or None if A is not square,
    singular, or has an inverse too large for int16 entries."""
    n = len(a_q12)
    if n == 0 or any(len(row) != n for row in a_q12):
        return None
    m = [[v / 4096 for v in a_q12[r]] + [1.0 if c == r else 0.0 for c in range(n)]
         for r in range(n)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[piv][col]) < 1e-6:
            return None
        m[col], m[piv] = m[piv], m[col]
        p = m[col][col]
        m[col] = [v / p for v in m[col]]
        for r in range(n):
            if r != col and m[r][col]:
                f = m[r][col]
                m[r] = [v - f * w for v, w in zip(m[r], m[col])]
    inv = [[round(v * 4096) for v in row[n:]] for row in m]
    for row in inv:
        for v in row:
            if not -32767 <= v <= 32767:
                return None
    return inv
