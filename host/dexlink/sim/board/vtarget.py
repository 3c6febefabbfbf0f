# The virtual board at a real target's speed (issue 15; the model and its sources are in
# dexlink.targets, which puts the numbers in the flashed config's "sim.target").
#
# The firmware runs here on an x86 core, tens to hundreds of times faster than a board.
# vmachine brackets every machine call (bus transfers, ticks_us, sleep_us, the console)
# with enter() and leave(): the x86 time between two calls is the firmware's own
# interpretation, charged factor times over; leave() charges what the call costs on the
# target (its software, and a bus transfer that blocks the CPU there). The time owed is
# let pass (settle) before the board clock is read, so the loop's own timing, its rate
# and its overruns are the target's. Without a target (the virtual board's full speed)
# every hook returns at once. Integers only: nothing here allocates.
#
# On the real clock the host's own time passes on the board clock too: the x86 time of
# the interpretation and of the simulated devices inside the calls, a wait that woke
# late, a preemption. Past what the target would have taken, that is credit: it is
# taken off what the interpretation owes next, so the target's pace holds on average.
# It is never taken off a call's own cost: since the last settle, each call's target
# time, less only the host time its own call took, passes in full (the floor), so a bus
# transfer never takes less than its physical time plus its software share, whatever
# the host's load (a wait never returns early). On the manual clock (vworld.manual_clock)
# the host's time does not pass on the board clock: nothing is credited.
#
# A target with a second core (the Picos make TELEMETRY on core 1: dexfw.telemetry): the
# virtual board timed as one runs the single-core path, its core 0 charged with the whole
# frame (on a Pico 2, iso16spi, ~110 us a cycle where dexlink.targets gives core 0 ~24
# plus ~38 of guessed flash contention): pessimistic by ~50 us a cycle. Tried and left:
# the worker on a second x86 thread (the Unix port has no GIL, as rp2 has none). Its
# thread shares the host's CPUs with the loop's, and when it runs on the loop's CPU the
# time it takes is inside one of the loop's stretches, charged here factor times over as
# core 0's work: bench/vboard.py --target pico2 --hands iso16spi (5 s, 2 CPUs, load ~0.4,
# 2026-12-01) gave 12-15 % overrun cycles with it against 3-5 % without, at the same
# rate and CPU time a cycle (977 against 975 us). The dual-core firmware runs under the
# Unix port in tests/test_firmware_dualcore.py instead.
import time

import vworld

# The x86 clock vworld follows (CPython, where tests/fuzz runs the rig, has vworld's).
_ticks_us, _ticks_diff, _sleep_us = vworld._ticks_us, vworld._ticks_diff, vworld._sleep_us
_ticks_add = getattr(time, "ticks_add", lambda a, b: a + b)

active = False
name = "virtual"
factor_x1024 = 1024  # target us per x86 us of the reference host (dexlink.targets), x1024
probe_ref_us = 1  # the probe's time on the reference host when the factor was measured
call_us = 0  # a machine bus call's software on the target
ticks_call_us = 0  # time.ticks_us on the target
uart_txbuf = 256  # bytes a UART write buffers without blocking
turnaround_us = 0  # half-duplex line turned round before a servo answers
# A stretch between two machine calls longer than this on x86 is the host's scheduler
# (or boot-time work), not the loop: it is charged as the mean stretch so far (charged in
# full, a 1 ms preemption would become a tenth of a second on a Pico, and even clamped
# here every preemption cost the board milliseconds); on the real clock its time is credit.
CLAMP_X86_US = 60
SPIN_US = 3000  # the last this many microseconds of a wait are spun, not slept
RECALIBRATE_US = 250000  # this host's speed is measured again this often
PROBE_STEPS = 400
HOOK_BATCHES = 8
# Credit beyond this is dropped: a longer stall of the host is lost, not made up by
# running the interpretation at x86 speed for the next tens of cycles.
CREDIT_MAX_US = 20000
_CREDIT_MIN_Q = -(CREDIT_MAX_US << 10)  # the lowest _owed_q
_mark = 0  # x86 time the firmware last got the CPU back from a machine call
_owed_q = 0  # target time not yet let pass, in 1/1024 us (below 0: credit)
_floor_q = 0  # of it, the calls' own cost since the last settle: no credit cancels it
_factor_now_q = 1024  # target us per x86 us of this host as it runs now, x1024
_hook_q = 0  # x86 time of the hooks themselves in each stretch, 1/1024 us
_calibrated_at = 0
_entered = 0  # x86 time the current machine call began
_inside_q = 0  # x86 time inside machine calls, 1/1024 us (calibrate() reads it)
calls = 0  # machine calls bracketed so far
charged_q = 0  # the interpretation charged so far, 1/1024 us (a preempted stretch: the mean)


def configure(cfg):
    """Take the timing from a config's "sim.target" (none: the full x86 speed)."""
    global active, name, factor_x1024, probe_ref_us, call_us, ticks_call_us, uart_txbuf
    global turnaround_us, _owed_q, _floor_q, _mark
    t = ((cfg or {}).get("sim") or {}).get("target")
    active = False
    _owed_q = _floor_q = 0
    name = "virtual"
    if t is None:
        return
    name = t["name"]
    factor_x1024 = t["cpu_x1024"]
    probe_ref_us = t["probe_ref_us"]
    call_us = t["call_us"]
    ticks_call_us = t["ticks_us"]
    uart_txbuf = t["uart_txbuf"]
    turnaround_us = t["turnaround_us"]
    for _ in range(len(_probes) - 1):  # a full set at once: one preempted probe is not the speed
        _recent_median(probe_us())
    calibrate()
    _mark = _ticks_us()


def enter():
    """A machine call begins: the firmware ran since the last one; on the target that
    stretch, less the hooks' own share, takes factor times as long as it did here."""
    global _owed_q, _entered, charged_q
    if active:
        _entered = _ticks_us()
        d = _ticks_diff(_entered, _mark)
        if d <= CLAMP_X86_US:
            c = ((d << 10) - _hook_q) * _factor_now_q >> 10
        elif calls:  # preempted: its own work is not known; the mean stretch's is the guess
            c = charged_q // calls
        else:
            c = ((CLAMP_X86_US << 10) - _hook_q) * _factor_now_q >> 10
        charged_q += c
        if not vworld._manual:  # the stretch has passed on the board clock (a preemption too)
            c -= d << 10
        _owed_q += c


def leave(target_us):
    """A machine call ends, having cost target_us on the target; on the real clock the
    x86 time it took here (the simulated devices' work) has passed already."""
    global _owed_q, _floor_q, _mark, _inside_q, calls
    if active:
        _mark = _ticks_us()
        inside = _ticks_diff(_mark, _entered) << 10
        _inside_q += inside
        if vworld._manual:  # the host's time is not the board's
            inside = 0
        t = target_us << 10
        _owed_q += t - inside
        if t > inside:
            _floor_q += t - inside
        calls += 1


def settle():
    """Let the owed time pass (before the board clock is read, or the board sleeps): all
    of it, and never less than the calls' own cost since the last settle."""
    global _owed_q, _floor_q, _mark, _entered
    if not active:
        return
    pay = _owed_q if _owed_q > _floor_q else _floor_q
    _floor_q = 0
    if pay >= 1024:
        pay >>= 10
        _owed_q -= (pay + _pass(pay)) << 10
    if _owed_q < _CREDIT_MIN_Q:
        _owed_q = _CREDIT_MIN_Q
    if _ticks_diff(_ticks_us(), _calibrated_at) > RECALIBRATE_US:
        calibrate()
    _mark = _entered = _ticks_us()  # what was paid is not the call's own time


def idle():
    """The board slept on purpose (sleep_us): that time is nobody's debt or credit."""
    global _mark, _entered
    _mark = _entered = _ticks_us()


def owed_us():
    return _owed_q >> 10


def _pass(us):
    """Let us microseconds pass on the board clock; return how much more passed (a wait
    never returns early; a sleeping or preempted one may return late)."""
    if vworld._manual:  # a test's manual clock (vworld.manual_clock): the world moves on
        vworld.advance_us(us)
        return 0
    # Sleep most of a long wait, spin the rest: a sleeping process wakes late, by the
    # timer slack (~60 us) on a quiet host and by milliseconds on a busy one.
    end = _ticks_add(_ticks_us(), us)
    if us > SPIN_US:
        _sleep_us(us - SPIN_US)
    while _ticks_diff(end, _ticks_us()) > 0:
        pass
    late = _ticks_diff(_ticks_us(), end)
    return late if late > 0 else 0


# ---- this host's speed now -------------------------------------------------------------
# The factor holds for the reference host; this one, or this one under load, runs the
# same code slower or faster. A probe of firmware-like work (method calls, attributes,
# bytes, small ints) timed here against its time there scales the factor; and the
# hooks' own time, charged in every stretch, is measured and left out.
class _Probe:
    def __init__(self):
        self.buf = bytearray(32)
        self.acc = 0

    def step(self, i):
        b = self.buf
        b[i & 31] = (self.acc + i) & 0xFF
        self.acc = (self.acc + b[(i * 7) & 31]) & 0xFFFF

    def hooked(self):  # what a machine call adds to a stretch: its own hooks
        enter()
        leave(0)


_probe = _Probe()


def probe_us():
    """The x86 time of PROBE_STEPS steps of the probe, run as the firmware's stretches run:
    once, from where the board last waited (cold caches, a busy host)."""
    t0 = _ticks_us()
    for i in range(PROBE_STEPS):
        _probe.step(i)
    d = _ticks_diff(_ticks_us(), t0)
    return d if d > 0 else 1


_probes = [0] * 9  # the last probes: their median is this host's speed now (a preempted
_probe_at = 0  # probe is an outlier, not the rule)


def _recent_median(us):
    """The median of the last probes (fewer at first), with no list made."""
    global _probe_at
    _probes[_probe_at] = us
    _probe_at = (_probe_at + 1) % len(_probes)
    best = us
    best_gap = 1 << 30
    i = 0
    while i < len(_probes):  # the probe with as many above it as below it
        gap = _imbalance(_probes[i])
        if gap < best_gap:
            best = _probes[i]
            best_gap = gap
        i += 1
    return best


def _imbalance(p):
    """|probes below p - probes above p| (no probe yet: never the median)."""
    if not p:
        return 1 << 30
    n = 0
    i = 0
    while i < len(_probes):
        q = _probes[i]
        if q and q < p:
            n += 1
        elif q > p:
            n -= 1
        i += 1
    return n if n >= 0 else -n


def calibrate():
    """Measure this host's speed and the hooks' cost now; the clock moves on meanwhile
    but nothing of it is owed (nor are the hooks' calls counted)."""
    global active, _factor_now_q, _hook_q, _owed_q, _floor_q, _mark, _calibrated_at
    global calls, charged_q
    owed = _owed_q
    floor = _floor_q
    n = calls
    charged = charged_q
    active = True
    _hook_q = 0
    _hook_q = _hook_cost()
    _factor_now_q = factor_x1024 * probe_ref_us // _recent_median(probe_us())
    _owed_q = owed
    _floor_q = floor
    calls = n
    charged_q = charged
    _calibrated_at = _ticks_us()
    _mark = _calibrated_at


def _hook_cost():
    """The hooks' own x86 time in a stretch (1/1024 us): rounds of a call with nothing
    in it, less the time inside the calls; the quickest of a few batches (a batch the
    host preempted says nothing about the hooks)."""
    global _mark
    best = 1 << 40
    for _ in range(HOOK_BATCHES):
        inside = _inside_q
        _mark = t0 = _ticks_us()
        for _ in range(PROBE_STEPS // HOOK_BATCHES):
            _probe.hooked()
        t0 = (_ticks_diff(_ticks_us(), t0) << 10) - (_inside_q - inside)
        if t0 < best:
            best = t0
    return best // (PROBE_STEPS // HOOK_BATCHES)


def i2c_us(nbytes, freq):
    """Bus time of an I2C transfer of nbytes (address byte included): start, 9 clocks a
    byte (8 bits and the ACK), stop."""
    return ((2 + 9 * nbytes) * 1000000 + freq - 1) // freq


def spi_us(nbytes, baudrate):
    return (8 * nbytes * 1000000 + baudrate - 1) // baudrate


def uart_us(nbytes, baudrate):
    """Line time of nbytes at 8N1: 10 bits a byte."""
    return (10 * nbytes * 1000000 + baudrate - 1) // baudrate
