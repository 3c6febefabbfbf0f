# The physics of a world in another process (dexlink.world.World, stepped by the host's
# world bridge, dexlink.sim.worldbridge), behind the interface of vphysics: the servos
# hand their goals and torque to the host, and read back the positions and loads the
# world's physics gives; the encoders read the world's operator.
#
# Two pipes, inherited from the supervisor, their numbers in the environment variable
# WORLD_ENV ("STATE_FD,GOAL_FD"), both made non-blocking by the host:
#
#   board -> host (GOAL_FD)   goal record: torque mask (bit per motor), then per motor
#                             the goal in servo-frame cdeg (0 = servo centre); written
#                             when a goal or the torque changed, at most once per
#                             LINK_PERIOD_US of world time
#   host -> board (STATE_FD)  state record: per motor the present position (servo-frame
#                             cdeg) and load (servo units, +-1000), then per exoskeleton
#                             joint the operator's angle (cdeg); one per physics step.
#                             The board reads what waits and keeps the latest.
#
# Records are little-endian int32 arrays shorter than PIPE_BUF: they arrive whole. The
# host loads this file as a plain module for the layout (dexlink.sim.boardcode), so the
# top level holds constants and CPython-compatible code only.
import os

WORLD_ENV = "DEXLINK_WORLD_FDS"
MAX_MOTORS = 32  # as vphysics.MAX_MOTORS
MAX_JOINTS = 32  # as vfaults.MAX_JOINTS
GOAL_WORDS = 1 + MAX_MOTORS
GOAL_SIZE = 4 * GOAL_WORDS
STATE_POS = 0  # word offsets in the state record
STATE_LOAD = MAX_MOTORS
STATE_EXO = 2 * MAX_MOTORS
STATE_WORDS = 2 * MAX_MOTORS + MAX_JOINTS
STATE_SIZE = 4 * STATE_WORDS
LINK_PERIOD_US = 1000  # the host steps every 2 ms: no need to talk more often
COUNTS_PER_TURN = 4096


def attached_fds():
    """(state_fd, goal_fd) when the supervisor attached a world to this boot, else None."""
    value = os.getenv(WORLD_ENV)
    if not value:
        return None
    state_fd, goal_fd = value.split(",")
    return int(state_fd), int(goal_fd)


def _get32(buf, word):
    at = 4 * word
    v = buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)
    return v - 0x100000000 if v & 0x80000000 else v


def _put32(buf, word, v):
    at = 4 * word
    buf[at] = v & 0xFF
    buf[at + 1] = (v >> 8) & 0xFF
    buf[at + 2] = (v >> 16) & 0xFF
    buf[at + 3] = (v >> 24) & 0xFF


class WorldOperator:
    """The operator's hand as the world's host sends it: the encoders' raw readings.

    raw_turn16/set_angle repeat voperator.Operator's on purpose: the host loads this file
    as a plain module for its record layout, where voperator (and its vworld) is not
    importable, so this file imports no other rig module."""

    def __init__(self, joints, state):
        import array
        n = len(joints)
        self.n = n
        self.state = state  # the WorldPhysics's latest state record (read in place)
        self.zero = array.array("i", [j.get("zero_turn16", 0) for j in joints])
        # raw_turn16 inverts the board's mapping, as voperator.Operator.raw_turn16 does.
        self.turn_num = array.array("i", [j.get("direction", 1) * 65536 * 4096 for j in joints])
        self.turn_den = array.array("i", [36000 * (j.get("scale_q12", 4096) or 4096)
                                          for j in joints])
        self.hold = array.array("i", [0] * n)
        self.hold_mask = bytearray(n)
        self.sync = None  # set by WorldPhysics: reads the pipe before an encoder read

    def angle_cdeg(self, j, now):
        if self.hold_mask[j]:
            return self.hold[j]
        self.sync(now)
        return _get32(self.state, STATE_EXO + j)

    def raw_turn16(self, j, now):
        den = self.turn_den[j]
        d = (self.angle_cdeg(j, now) * self.turn_num[j] + (den >> 1)) // den
        return (self.zero[j] + d) & 0xFFFF

    def set_angle(self, j, cdeg):
        """Pin joint j at an angle (tests); set_angle(j, None) lets the world move it."""
        if cdeg is None:
            self.hold_mask[j] = 0
        else:
            self.hold[j] = cdeg
            self.hold_mask[j] = 1


class WorldPhysics:
    """vphysics's interface over the two pipes to the host's world (see the module doc)."""

    def __init__(self, joints, fds):
        import vworld  # here, not at the top: the host loads this file without the rig
        self._now = vworld.now_us
        state_fd, goal_fd = fds
        self._state_in = open(state_fd, "rb")
        self._goal_out = open(goal_fd, "wb")
        # The latest record from the host. Read in place: the host's writes are whole
        # records, so a read takes one whole or none (and a slice copy would allocate).
        self.state = bytearray(STATE_SIZE)
        self.goals = bytearray(GOAL_SIZE)  # what the board sends (word 0: torque mask)
        self.centre = [2048] * MAX_MOTORS
        self.torque = bytearray(MAX_MOTORS)
        self.dirty = False
        self.last_sent_us = -LINK_PERIOD_US
        self.last_read_us = -LINK_PERIOD_US
        self.records = 0  # state records taken since boot
        self.lost_goals = 0  # goal records the full pipe refused
        self.operator = WorldOperator(joints, self.state)
        self.operator.sync = self.sync

    def add_motor(self, motor, centre):
        self.centre[motor] = centre
        _put32(self.goals, 1 + motor, 0)
        if self.torque[motor]:
            self._toggle_torque(motor)

    # Per-cycle functions: small frames (MicroPython puts a frame of more than 11 slots on
    # the heap; tests/test_world_board.py checks them as tests/test_vrig_frames.py does).
    def drive(self, motor, goal, torque):
        """Note the goal (servo-frame cdeg) and torque; send them when changed."""
        goal = ((goal - self.centre[motor]) * 36000 + 2048) // COUNTS_PER_TURN  # now cdeg
        if _get32(self.goals, 1 + motor) != goal:
            _put32(self.goals, 1 + motor, goal)
            self.dirty = True
        if self.torque[motor] != (1 if torque else 0):
            self._toggle_torque(motor)
        self.sync(self._now())

    def _toggle_torque(self, motor):
        self.torque[motor] ^= 1
        _put32(self.goals, 0, _get32(self.goals, 0) ^ (1 << motor))
        self.dirty = True

    def sync(self, now):
        """Send the goals if they changed, take the host's latest state (once a period)."""
        if self.dirty and now - self.last_sent_us >= LINK_PERIOD_US:
            self.last_sent_us = now
            self._send()
        if now - self.last_read_us < LINK_PERIOD_US:
            return
        self.last_read_us = now
        while self._state_in.readinto(self.state) == STATE_SIZE:  # None: nothing waits
            self.records += 1

    def _send(self):
        self.dirty = False
        try:
            self._goal_out.write(self.goals)
        except OSError:  # the pipe is full (the host stalls): the next sync resends
            self.lost_goals += 1
            self.dirty = True

    def position(self, motor):
        cdeg = _get32(self.state, STATE_POS + motor)
        return self.centre[motor] + (cdeg * COUNTS_PER_TURN + 18000) // 36000

    def load(self, motor):
        return _get32(self.state, STATE_LOAD + motor)


# ---- the host's side of the layout (CPython) ------------------------------------------
def encode_state(positions_cdeg, loads, exo_cdeg):
    """One state record from three int sequences (the host's bridge)."""
    buf = bytearray(STATE_SIZE)
    for k in range(len(positions_cdeg)):
        _put32(buf, STATE_POS + k, int(positions_cdeg[k]))
    for k in range(len(loads)):
        _put32(buf, STATE_LOAD + k, int(loads[k]))
    for k in range(len(exo_cdeg)):
        _put32(buf, STATE_EXO + k, int(exo_cdeg[k]))
    return bytes(buf)


def decode_goals(record):
    """(torque mask, [goal cdeg per motor]) of one goal record."""
    return _get32(record, 0), [_get32(record, 1 + k) for k in range(MAX_MOTORS)]
