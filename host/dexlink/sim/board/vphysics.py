# The physics under the simulated rig: where the servos are, what load they feel, and
# where the operator's hand is. The simulated devices learn these here and nowhere else:
#
#   servo buses (vservo)  --goal, torque per motor-->  physics  --position, load-->  servo buses
#   encoders (vi2c, vspi) <--joint angles of the operator's hand (physics.operator)--
#
# A physics is any object with (vworld.physics holds the rig's; vrig.build makes it):
#   add_motor(motor, centre)    wiring: a servo drives motor index `motor` (0..MAX_MOTORS-1),
#                               starting at `centre` counts
#   drive(motor, goal, torque)  the goal (counts) and torque flag the servo's registers hold
#                               now; called before every read, so the model can move to now
#   position(motor) -> counts   present position: servo counts, 4096 a turn, 2048 the
#                               centre (Feetech STS and Dynamixel X alike), servo frame
#                               (motor angle = direction * cdeg + offset, docs/interfaces.md)
#   load(motor) -> int          present load, servo units: +-1000 at stall
#   operator                    the hand the encoders read: raw_turn16(joint, now_us),
#                               angle_cdeg(joint, now_us), set_angle(joint, cdeg) (tests)
# They run in the firmware's steady-state loop: no allocation, and frames small enough for
# the stack (tests/test_vrig_frames.py, bench/vrig.py).
#
# KinematicPhysics (below) is today's model: each servo a first-order lag with a speed
# limit toward its goal, and the scripted, seeded operator of voperator. A physics world
# in another process (MuJoCo, beside the interpreter) fits the same methods: drive()
# writes a fixed-size record of goals and torque for the host (a pipe made non-blocking,
# or a shared-memory file), position() / load() and the operator's angles read the latest
# record the host wrote back, with buffers made once. vworldlink.WorldPhysics is that
# (the host's side: dexlink.sim.worldbridge); vrig.build makes it in place of
# KinematicPhysics when the supervisor attached a world to the boot; the devices, the
# drivers and the firmware do not change.
import vworld
from voperator import Operator

MAX_MOTORS = 32  # as vfaults.MAX_JOINTS and the board's config checker
TAU_US = 15000  # the lag's time constant
SPEED_COUNTS_PER_S = 3000  # about 260 deg/s
Q = 8  # positions kept in 1/256 count
SPEED_Q_PER_S = SPEED_COUNTS_PER_S << Q


class KinematicPhysics:
    """Servos that follow their goals with a lag and a speed limit; the scripted operator."""

    def __init__(self, joints, seed=1):
        self.operator = Operator(joints, seed)
        # Per motor, in lists (Dynamixel goals may pass 32-bit signed; small ints do not
        # allocate): position (1/256 count), goal, torque flag, world time last moved to.
        self.pos_q = [0] * MAX_MOTORS
        self.goal = [0] * MAX_MOTORS
        self.torque = [0] * MAX_MOTORS
        self.last_us = [0] * MAX_MOTORS

    def add_motor(self, motor, centre):
        self.pos_q[motor] = centre << Q
        self.goal[motor] = centre
        self.torque[motor] = 0
        self.last_us[motor] = vworld.now_us()

    # Per-cycle functions: MicroPython puts a call's frame on the heap (gc_alloc + gc_free
    # per call) once its locals + stack pass 11 slots; drive() is at 11 (bench/vrig.py).
    def drive(self, motor, goal, torque):
        """The servo's registers hold goal and torque; move it to now.

        The bus writes registers right after a drive() (vservo: update, then latch), so
        the values given here have held since the servo last moved. The move: a
        first-order lag (stable for any dt), speed-limited.
        """
        self.goal[motor] = goal
        self.torque[motor] = torque
        t = vworld.now_us()
        dt = t - self.last_us[motor]
        self.last_us[motor] = t
        if dt <= 0 or not torque:
            return
        step = ((goal << Q) - self.pos_q[motor]) * dt // (TAU_US + dt)
        t = SPEED_Q_PER_S * dt // 1000000  # t is now the speed limit (one slot for two)
        if step > t:
            step = t
        elif step < -t:
            step = -t
        self.pos_q[motor] += step

    def position(self, motor):
        return (self.pos_q[motor] + (1 << (Q - 1))) >> Q

    def load(self, motor):
        """A load that grows with the lag behind the goal (servo units, +-1000)."""
        if not self.torque[motor]:
            return 0
        v = (self.goal[motor] - ((self.pos_q[motor] + (1 << (Q - 1))) >> Q)) * 4
        return 1000 if v > 1000 else (-1000 if v < -1000 else v)
