# The simulated operator wearing the exoskeleton: grasp and release, pinch, finger gaiting.
#
# A script of hand poses, each reached by a minimum-jerk move (position
# s = 10t^3 - 15t^4 + 6t^5: zero speed and acceleration at both ends) of a seeded
# duration, each joint's target perturbed a little (seeded) and kept inside its range.
# Poses are flexion levels per finger (0 = the joint's min, 255 = its max; a palm arch
# closes with the fingers); abduction and rotation joints (name with "abd", "spread",
# "yaw" or "rot") stay near the middle of their range, spreading a little when open.
# Integer maths only, state in arrays made once: angle_cdeg() allocates nothing.
#
# That is the "demo" behaviour. A test or a command asks for others through the virtual
# board's control channel (VirtualBoard.operator -> vfaults): "zero" holds the zero pose
# (every joint at 0), "sweep" moves one finger's joints (or all) through their whole range,
# 0 -> max -> min -> 0, again and again, while the others hold zero; "demo" resumes the
# script from wherever the hand is. What `dexlink calibrate` asks a person to do.
import array

import vfaults
import vworld

Q = 16
ONE = 1 << Q
FINGERS = vfaults.OPERATOR_FINGERS
DEMO = 0
ZERO = 1
SWEEP = 2
SWEEP_LEG_US = 600000  # one leg of a sweep (0 -> max, max -> min, min -> 0)
GAITING = ("index", "middle", "ring", "little")  # fingers that lift in turn
ABDUCTION_WORDS = ("abd", "spread", "yaw", "rot")
OPEN = 25
PERTURB = 12  # +- flexion levels
# The script's move progress is evaluated once per tick, not once per encoder read (a
# sweep reads every joint): at full speed a joint moves at most ~5 cdeg in a tick, under
# one AS5600 count (8.8 cdeg), so a 1 kHz sampler sees the same smooth curve.
TICK_US = 100


def min_jerk_q16(t):
    """Minimum-jerk position s(t) for t in 0..ONE (Q16 in, Q16 out)."""
    t2 = (t * t) >> Q
    t3 = (t2 * t) >> Q
    return (t3 * ((10 << Q) - 15 * t + 6 * t2)) >> Q


def _finger_index(name):
    name = (name or "").lower().replace("pinky", "little")
    for i in range(len(FINGERS)):
        if FINGERS[i] in name:
            return i
    return 1


def _poses(fingers_present):
    """The script: flexion level per finger slot, one tuple per pose."""
    def levels(default, **by_finger):
        return tuple(by_finger.get(f, default) for f in FINGERS)

    script = [levels(OPEN), levels(210), levels(OPEN), levels(40, thumb=150, index=160),
              levels(OPEN), levels(170)]
    for f in GAITING:
        if f in fingers_present:  # gaiting: one finger lifts while the others hold
            script.append(levels(170, **{f: 50}))
            script.append(levels(170))
    script.append(levels(OPEN))
    return tuple(script)


class Operator:
    def __init__(self, joints, seed=1):
        n = len(joints)
        self.n = n
        self.min_cdeg = array.array("i", [j.get("min_cdeg", -9000) for j in joints])
        self.max_cdeg = array.array("i", [j.get("max_cdeg", 9000) for j in joints])
        self.zero = array.array("i", [j.get("zero_turn16", 0) for j in joints])
        self.direction = array.array("i", [j.get("direction", 1) for j in joints])
        self.scale_q12 = array.array("i", [j.get("scale_q12", 4096) or 4096 for j in joints])
        # raw_turn16's per-joint constants: turn16 = zero + (q * num + den / 2) // den
        self.turn_num = array.array("i", [d * 65536 * 4096 for d in self.direction])
        self.turn_den = array.array("i", [36000 * s for s in self.scale_q12])
        self.tick = -1  # the tick `progress` (min-jerk s of the move, Q16) was made for
        self.progress = 0
        self.finger = bytearray(_finger_index(j.get("finger") or j.get("name")) for j in joints)
        self.abduction = bytearray(n)
        for i in range(n):
            name = (joints[i].get("name") or "").lower()
            for w in ABDUCTION_WORDS:
                if w in name:
                    self.abduction[i] = 1
        present = [FINGERS[f] for f in self.finger]
        self.script = _poses(present)
        self.step = 0
        self.start = array.array("i", [0] * n)  # pose at the segment's start, cdeg
        self.end = array.array("i", [0] * n)  # pose at its end
        self.hold = array.array("i", [0] * n)  # fixed override (tests), with hold_mask
        self.hold_mask = bytearray(n)
        self.t0 = 0
        self.duration = 1
        self.behaviour = DEMO
        self.requests = 0  # vfaults.operator_requests already followed
        self.sweeping = bytearray(n)  # joints the sweep moves
        self.since = 0  # world time the behaviour started
        self.sweep_now = -1  # the time sweep_leg and sweep_progress were made for
        self.sweep_leg = 0
        self.sweep_progress = 0
        vworld.seed(seed)
        self._pose_into(self.end, self.script[0])
        for i in range(n):
            self.start[i] = self.end[i]
        self.t0 = vworld.now_us()
        self._next_segment()

    def _pose_into(self, target, levels):
        for i in range(self.n):
            lo = self.min_cdeg[i]
            span = self.max_cdeg[i] - lo
            if self.abduction[i]:
                level = 128 + (20 if levels[self.finger[i]] <= OPEN else 0)
            else:
                level = levels[self.finger[i]]
            level += (vworld.rand32() % (2 * PERTURB + 1)) - PERTURB
            level = 0 if level < 0 else (255 if level > 255 else level)
            target[i] = lo + span * level // 255

    def _next_segment(self):
        for i in range(self.n):
            self.start[i] = self.end[i]
        self.step = (self.step + 1) % len(self.script)
        self._pose_into(self.end, self.script[self.step])
        self.t0 += self.duration
        self.duration = 500000 + vworld.rand32() % 700000
        self.tick = -1

    def angle_cdeg(self, j, now):
        """Joint j's angle at world time `now` (us)."""
        if self.requests != vfaults.operator_requests:
            self._follow_request(now)
        if self.hold_mask[j]:
            return self.hold[j]
        if self.behaviour == ZERO:
            return 0
        if self.behaviour == SWEEP:
            return self._sweep_cdeg(j, now) if self.sweeping[j] else 0
        return self._demo_cdeg(j, now)

    def _follow_request(self, now):
        """Switch to the behaviour asked for last (a change of task: not the steady state)."""
        self.requests = vfaults.operator_requests
        behaviour = vfaults.operator_behaviour
        if behaviour == DEMO and self.behaviour != DEMO:
            # Resume the script from the pose the hand is in, not with a jump.
            for i in range(self.n):
                self.end[i] = self.angle_cdeg(i, now)
            self.t0 = now
            self.duration = 0
            self._next_segment()
        finger = vfaults.operator_finger
        for i in range(self.n):
            self.sweeping[i] = 1 if finger < 0 or self.finger[i] == finger else 0
        self.behaviour = behaviour if 0 <= behaviour <= SWEEP else DEMO
        self.since = now
        self.sweep_now = -1

    def _sweep_cdeg(self, j, now):
        if now != self.sweep_now:
            self._sweep_advance(now)
        s = self.sweep_progress
        lo = self.min_cdeg[j]
        hi = self.max_cdeg[j]
        if self.sweep_leg == 0:
            return (hi * s) >> Q
        if self.sweep_leg == 1:
            return hi + (((lo - hi) * s) >> Q)
        return lo - ((lo * s) >> Q)

    def _sweep_advance(self, now):
        """The sweep's leg and progress at `now` (once per time, for every joint)."""
        t = (now - self.since) % (3 * SWEEP_LEG_US)
        self.sweep_leg = t // SWEEP_LEG_US
        self.sweep_progress = min_jerk_q16(((t - self.sweep_leg * SWEEP_LEG_US) << Q)
                                           // SWEEP_LEG_US)
        self.sweep_now = now

    def _demo_cdeg(self, j, now):
        tick = now - now % TICK_US
        if tick != self.tick:
            self._advance(tick)
        a = self.start[j]
        return a + (((self.end[j] - a) * self.progress) >> Q)

    def _advance(self, tick):
        """The move's progress at world time `tick` (once per tick, for every joint)."""
        while tick - self.t0 >= self.duration:
            self._next_segment()
        t = tick - self.t0
        self.progress = min_jerk_q16((t << Q) // self.duration) if t > 0 else 0
        self.tick = tick

    def raw_turn16(self, j, now):
        """What an ideal encoder on joint j reads: the inverse of the board's mapping."""
        den = self.turn_den[j]
        d = (self.angle_cdeg(j, now) * self.turn_num[j] + (den >> 1)) // den
        return (self.zero[j] + d) & 0xFFFF

    def set_angle(self, j, cdeg):
        """Pin joint j at an angle (tests); set_angle(j, None) lets it move again."""
        if cdeg is None:
            self.hold_mask[j] = 0
        else:
            self.hold[j] = cdeg
            self.hold_mask[j] = 1
