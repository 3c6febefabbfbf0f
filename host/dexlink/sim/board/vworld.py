# The simulated world under the virtual board: its clock, its random numbers, the pins'
# levels, and the slots the rig's builder (vrig) fills: the buses with their devices, the
# physics and the operator's hand. Every simulated device reads the world from here; this
# module imports none of them (a leaf: no import cycle).
#
# Runs inside the MicroPython Unix port (64-bit: ints below 2**62 are small, so the
# integer maths here never allocates). World time moves the operator and the servos;
# the board's own clock (vmachine.ticks_us) is this time skewed by vfaults.clock_ppm.
import time

try:
    _ticks_us, _ticks_diff, _sleep_us = time.ticks_us, time.ticks_diff, time.sleep_us
except AttributeError:  # CPython (tests/fuzz/fuzz_firmware.py runs the rig there too)
    def _ticks_us():
        return time.monotonic_ns() // 1000

    def _ticks_diff(a, b):
        return a - b

    def _sleep_us(us):
        time.sleep(us / 1e6)

# ---- world time -------------------------------------------------------------------
_manual = False
_world_us = 0
_last_real = _ticks_us()


def now_us():
    """World time in microseconds since start (never wraps)."""
    global _world_us, _last_real
    if not _manual:
        t = _ticks_us()
        _world_us += _ticks_diff(t, _last_real)
        _last_real = t
    return _world_us


def manual_clock(on=True):
    """Stop following real time: the world only moves by advance_us() (tests)."""
    global _manual, _last_real
    now_us()
    _manual = on
    _last_real = _ticks_us()


def advance_us(us):
    """Move world time on by `us` (manual clock), or sleep that long (real clock)."""
    global _world_us
    if _manual:
        _world_us += us
    else:
        _sleep_us(us)


# ---- random numbers (xorshift32, seeded) ---------------------------------------------
_rng = 1


def seed(value):
    global _rng
    _rng = (value & 0xFFFFFFFF) or 1


def rand32():
    global _rng
    x = _rng
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    _rng = x
    return x


def noise(lsb_per_256):
    """-1, 0 or +1: +-1 with probability lsb_per_256/256 each way (a quantiser's dither)."""
    r = rand32() & 0x1FF
    if r < lsb_per_256:
        return -1
    if r >= 512 - lsb_per_256:
        return 1
    return 0


# ---- pins -----------------------------------------------------------------------------
MAX_PINS = 64
pins = bytearray(b"\x01" * MAX_PINS)  # level per pin number (idle high)

# ---- what the rig put in the world (vrig builds it; this module imports no other) ------
# The buses with their simulated devices, by (kind, id): what vmachine's I2C / SPI / UART
# objects talk to.
_buses = {}
# The physics under the rig (vphysics): where the servos are and what load they feel,
# given their goals and torque. None until a rig is built.
physics = None
# The operator's hand the encoders read: raw_turn16(joint, now) (and angle_cdeg, set_angle
# for tests). The physics provides it (the scripted voperator.Operator today).
operator = None


def bus(kind, bus_id, factory=None):
    """The simulated bus of that kind and id; made with factory() when new (or None)."""
    key = (kind, bus_id)
    found = _buses.get(key)
    if found is None and factory is not None:
        found = factory()
        _buses[key] = found
    return found


def clear():
    """An empty world: no buses, no physics, no operator (a new rig is about to be built)."""
    global physics, operator
    _buses.clear()
    physics = None
    operator = None
