# The simulated world under the virtual board: its clock, its random numbers, the pins'
# levels and the buses with their devices, built from the dexlink.json wiring.
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

# ---- the rig ----------------------------------------------------------------------------
_buses = {}  # (kind, id) -> simulated bus
operator = None
loaded = False


def bus(kind, bus_id, factory=None):
    """The simulated bus of that kind and id; made with factory() when new (or None)."""
    if not loaded:
        load_default()
    key = (kind, bus_id)
    found = _buses.get(key)
    if found is None and factory is not None:
        found = factory()
        _buses[key] = found
    return found


def load_default(path="dexlink.json"):
    """Build the rig from the board filesystem's dexlink.json; an empty rig without one."""
    try:
        import json
        with open(path) as f:
            cfg = json.load(f)
    except OSError:
        cfg = None
    load_rig(cfg)


def load_rig(cfg, rng_seed=None):
    """Build every simulated device of the config's wiring (replacing any rig)."""
    global loaded, operator
    import vrig
    _buses.clear()
    loaded = True
    if cfg is None:
        operator = None
        return
    if rng_seed is None:
        rng_seed = cfg.get("sim", {}).get("seed", 1)
    seed(rng_seed)
    operator = vrig.build(cfg, rng_seed)
