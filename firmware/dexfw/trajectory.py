# Timed joint goals (TARGET_POINTS) played at the loop rate.
#
# A policy sends action chunks a few times a second; the loop runs at up to 1 kHz. Each
# chunk arrives as points on the board's clock (the host maps its observation's capture
# time there), and every cycle sample() writes the goal for that instant into the joint
# map's host targets, interpolated between the points around it: a cubic Hermite curve with
# Catmull-Rom tangents, so the goal and its speed are continuous, also across the point
# where one chunk hands over to the next. The loop's speed and joint limits act after it,
# as on TARGETS.
#
# Chunks overlap: a chunk replaces the queued points from its first time on
# (catalog.POINTS_REPLACE), the frames after the first of a chunk that needs several are
# appended. Points already past on arrival are dropped. When a chunk starts later than
# now and nothing queued lies ahead, it starts from where the goals are now (an anchor
# point at now), so a first chunk, or one after a gap, slides in instead of jumping.
# When the points run out the last one is held (then the watchdog rules as with TARGETS).
#
# Integers only, buffers made once (a ring of POINTS_CAPACITY points): nothing in sample()
# or in taking a chunk allocates. Per-cycle methods keep few locals and arguments so their
# frames stay on MicroPython's stack (tests/test_vrig_frames.py); the per-joint blend has a
# viper twin in dexfw.trajectory_viper.
from array import array

from dexfw import mapping
from dexfw.compat import const
from dexfw.link import head_size
from dexproto import catalog as C
from dexproto.frame import HEADER_SIZE as BODY  # a received body starts here

CAPACITY = C.POINTS_CAPACITY  # a power of two: ring indices wrap with a mask
_WRAP = const(31)  # CAPACITY - 1 (checked below)
HEAD_SIZE = head_size(C.TARGET_POINTS)  # t0_us (u32), step_us (u32), flags (u8)
# How the goal moves between two points (SHAPE_CUBIC on the board; the others are for
# the benchmark's comparison): held until the next point, a straight line, or cubic.
SHAPE_STEP = 0
SHAPE_LINEAR = 1
SHAPE_CUBIC = 2
# Trajectory.k: the cycle's segment for blend(): rows (q offsets) of the points before,
# at the start of, at the end of and after it; Hermite weights (1/4096) of the end point
# and of the two tangents; tangent scales (1/4096) from the points' spacing; joints.
_A = const(0)
_B = const(1)
_C = const(2)
_D = const(3)
_W01 = const(4)
_W10 = const(5)
_W11 = const(6)
_RA = const(7)
_RB = const(8)
_N = const(9)

assert CAPACITY == _WRAP + 1 and CAPACITY & _WRAP == 0


def blend_py(q, k, out):
    """out[j] = the cycle's point on the segment k describes, for the k[9] joints (cdeg).

    x = p_b + w01 (p_c - p_b) + w10 T_b + w11 T_c, with the tangents T_b = (p_c - p_a) ra,
    T_c = (p_d - p_b) rb already scaled to the segment's length: all within 2^29. (Three
    arguments, the joint count in k: the frame then fits MicroPython's stack.)
    """
    j = 0
    while j < k[9]:
        b = q[k[1] + j]
        x = q[k[2] + j] - q[k[0] + j]
        x = k[5] * (x * k[7] >> 12)
        x += k[6] * ((q[k[3] + j] - b) * k[8] >> 12)
        x += k[4] * (q[k[2] + j] - b)
        x = b + ((x + 2048) >> 12)
        out[j] = -32767 if x < -32767 else (32767 if x > 32767 else x)
        j += 1


blend = blend_py
VIPER = False
try:
    # Its own module: a port without the viper emitter refuses the whole file at compile
    # time; then only this import fails and blend_py stays.
    from dexfw.trajectory_viper import blend as _blend_viper

    blend = _blend_viper
    VIPER = True
except (ImportError, SyntaxError):
    pass  # CPython, or a port without the viper emitter


def select(viper):
    """Use the viper blend (when the port has it) or the plain one; True if viper."""
    global blend
    blend = _blend_viper if viper and VIPER else blend_py
    return viper and VIPER


def _ratio(h, span):
    """h / span in 1/4096 (0 < h <= span), small ints whatever the times."""
    while span > 0xFFFF:
        span >>= 1
        h >>= 1
    return (h << 12) // span


class Trajectory:
    """The queued points of a JointMap's joints, and the goal they give at each instant."""

    def __init__(self, jm, ticks_diff, ticks_add):
        self.jm = jm
        self.diff = ticks_diff
        self.add = ticks_add
        self.t = array("i", [0] * CAPACITY)  # board time of each point
        self.q = array("h", [0] * (CAPACITY * max(1, jm.n)))  # its goals, a row per point
        self.k = array("h", [0] * 10)
        self.k[_N] = jm.n
        self.first = 0  # ring index of the oldest point
        self.count = 0
        self.shape = SHAPE_CUBIC
        self.dropped = 0  # points already past when they arrived
        self.refused = 0  # chunks refused for want of room (NACK busy)
        # The chunk being taken: checked by check(), queued by insert().
        self._t0 = 0
        self._step = 0
        self._n_points = 0
        self._skip = 0  # its first points, already past
        self._keep = 0  # queued points that stay
        self._anchor = False
        # The cycle's segment: ring indices of its start (-1: none prepared; anything that
        # changes the queue resets it), the points before, after, and after that; its
        # length in us. Rows and tangents change only when the segment does.
        self._seg = -1
        self._a = 0
        self._c = 0
        self._d = 0
        self._h = 1

    def clear(self):
        """Forget every point (TARGETS take over, a mode change, the watchdog)."""
        self.count = 0
        self._seg = -1

    def _last(self):
        return (self.first + self.count - 1) & _WRAP

    # ---- taking a chunk ----------------------------------------------------------------
    def check(self, p, body_len, now):
        """A received TARGET_POINTS (body at p[BODY:]) at board time now: 0 if it can be
        queued (then insert() does), else NACK error << 8 | field index."""
        n = self.jm.n
        size = body_len - HEAD_SIZE
        if n == 0 or size <= 0 or size % (n + n):
            return C.ERR_BAD_LENGTH << 8 | C.NO_JOINT
        self._n_points = size // (n + n)
        if p[BODY + 3] & 0xC0:  # 2^30 and above: not a board time
            return C.ERR_BAD_VALUE << 8
        self._t0 = p[BODY] | p[BODY + 1] << 8 | p[BODY + 2] << 16 | p[BODY + 3] << 24
        if p[BODY + 7]:  # 2^24 us and above: far over the longest step
            return C.ERR_BAD_VALUE << 8 | 1
        self._step = p[BODY + 4] | p[BODY + 5] << 8 | p[BODY + 6] << 16
        if self._step == 0 or self._step > C.POINTS_MAX_STEP_US:
            return C.ERR_BAD_VALUE << 8 | 1
        if p[BODY + 8] & ~C.POINTS_REPLACE:
            return C.ERR_BAD_VALUE << 8 | 2
        if (p[BODY + 8] or not self.count) and self.diff(self._t0, now) > C.POINTS_MAX_AHEAD_US:
            return C.ERR_BAD_VALUE << 8  # a chunk that far ahead: a clock gone wrong
        return self._fit(p[BODY + 8] & C.POINTS_REPLACE, now)

    def _fit(self, replace, now):
        """Which points go and stay; ERR_BUSY when they would not fit (nothing changes)."""
        late = self.diff(now, self._t0)
        self._skip = 0 if late < 0 else min(late // self._step + 1, self._n_points)
        keep = self.count
        if replace:
            while keep and self.diff(self.t[(self.first + keep - 1) & _WRAP], self._t0) >= 0:
                keep -= 1
        elif keep and not self._continues():
            return C.ERR_BAD_VALUE << 8
        self._keep = keep
        return self._room(now)

    def _continues(self):
        """An append starts after the last queued point, by at most the longest step."""
        gap = self.diff(self._t0, self.t[self._last()])
        return 0 < gap <= C.POINTS_MAX_STEP_US

    def _room(self, now):
        """An anchor when nothing kept lies ahead; ERR_BUSY if the points would not fit."""
        keep = self._keep
        self._anchor = not keep or self.diff(now, self.t[(self.first + keep - 1) & _WRAP]) > 0
        if keep + self._anchor + self._n_points - self._skip > CAPACITY:
            self.refused += 1
            return C.ERR_BUSY << 8 | C.NO_JOINT
        return 0

    def insert(self, p, now):
        """Queue the chunk check() accepted: anchor first (goals now), then its points not
        past, clipped to the joint ranges."""
        self.dropped = (self.dropped + self._skip) & C.COUNTER_MASK
        if self._skip >= self._n_points:
            return  # all past: what is queued stays
        self._seg = -1
        self.count = self._keep
        if self._anchor:
            self._push(now)
            self._copy_goals(self._last())
        i = self._skip
        while i < self._n_points:
            self._push(self.add(self._t0, i * self._step))
            self._take_row(p, BODY + HEAD_SIZE + 2 * i * self.jm.n, self._last())
            i += 1

    def _push(self, t):
        self.t[(self.first + self.count) & _WRAP] = t
        self.count += 1

    def _copy_goals(self, r):
        jm = self.jm
        n = jm.n
        q = self.q
        j = 0
        while j < n:
            q[r * n + j] = jm.goal[j]
            j += 1

    def _take_row(self, p, at, r):
        """Row r from n little-endian int16 at p[at:], clipped to the joint ranges."""
        r *= self.jm.n
        end = r + self.jm.n
        while r < end:
            v = p[at] | (p[at + 1] << 8)
            self.q[r] = v - 65536 if v >= 32768 else v
            at += 2
            r += 1
        self._clip_row(end - self.jm.n)

    def _clip_row(self, r):
        jm = self.jm
        q = self.q
        j = 0
        while j < jm.n:
            q[r + j] = min(max(q[r + j], jm.lo[j]), jm.hi[j])
            j += 1

    # ---- every cycle -------------------------------------------------------------------
    def sample(self, now):
        """jm.host = the goals for board time now. Past the last point: it is held and the
        queue is empty (count 0); before the first: host stays as it is."""
        self._drop_played(now)
        if self._segment(now):
            jm = self.jm
            blend(self.q, self.k, jm.host)
            mapping.clip(jm.host, jm.lo, jm.hi, jm.n)

    def _drop_played(self, now):
        """Drop points before the segment now lies in, but the one its tangent needs."""
        while self.count >= 3 and self.diff(now, self.t[(self.first + 2) & _WRAP]) >= 0:
            self.first = (self.first + 1) & _WRAP
            self.count -= 1
            self._seg = -1

    def _segment(self, now):
        """Prepare k for the segment holding now; False when there is none to blend."""
        i = self.first
        if self.diff(self.t[i], now) > 0:
            return False
        if self.count >= 2 and self.diff(now, self.t[(i + 1) & _WRAP]) >= 0:
            i = (i + 1) & _WRAP
        if i == self._last():
            self._hold(i)
            return False
        if i != self._seg:
            self._seg = i
            self._rows(i)
            self._h = self.diff(self.t[self._c], self.t[i])
            self._tangents(i, self._h)
        self._basis(self.diff(now, self.t[i]), self._h)
        return True

    def _hold(self, i):
        """The last point: its goals, and an empty queue."""
        jm = self.jm
        n = jm.n
        j = 0
        while j < n:
            jm.host[j] = self.q[i * n + j]
            j += 1
        self.count = 0
        self._seg = -1

    def _rows(self, i):
        """k's rows: the points before i, i, after i and after that (ends repeat)."""
        self._a = i if i == self.first else (i - 1) & _WRAP
        self._c = (i + 1) & _WRAP
        self._d = self._c if self._c == self._last() else (self._c + 1) & _WRAP
        k = self.k
        n = self.jm.n
        k[_A] = self._a * n
        k[_B] = i * n
        k[_C] = self._c * n
        k[_D] = self._d * n

    def _tangents(self, i, h):
        """The tangent at a point spans its neighbours (at an end, the segment itself)."""
        t = self.t
        span = self.diff(t[self._c], t[self._a]) if self._a != i else h
        self.k[_RA] = _ratio(h, span)
        span = self.diff(t[self._d], t[i]) if self._d != self._c else h
        self.k[_RB] = _ratio(h, span)

    def _basis(self, s, h):
        """Weights at s of h (0 <= s < h, us) for the shape in use, in 1/4096."""
        k = self.k
        while h > 0xFFFF:
            h >>= 1
            s >>= 1
        u = (s << 12) // h
        if self.shape != SHAPE_CUBIC:
            k[_W01] = u if self.shape == SHAPE_LINEAR else 0
            k[_W10] = 0
            k[_W11] = 0
            return
        u2 = (u * u) >> 12
        u3 = (u2 * u) >> 12
        k[_W01] = 3 * u2 - 2 * u3
        k[_W10] = u3 - 2 * u2 + u
        k[_W11] = u3 - u2
