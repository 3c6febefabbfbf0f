"""What a hand's loop costs on each real board, and the rate that board holds (issue 15).

Every loop figure the virtual board shows was made on an x86 core; the boards are far
slower. This module is the one cost model: data tables (below, each with its source and
its uncertainty), read by

- the board descriptions' [holds_hz] tables (tests/test_targets.py keeps them equal to
  `holds_hz`), the README's board table and `dexlink flash`'s warning;
- the virtual board timed as a target (`vboard_timing`: `--target` on sim, session,
  record; the flashed config's "sim.target", read by sim/board/vtarget.py);
- bench/firmware.py, which prints the model beside the x86 costs it measures.

The model of one cycle on a target:
    cpu    = (overhead + sample + map + servo + telemetry / decimation
              + run loop + USB console + real machine calls)  [emulated RP2040 us]
             x the target's slowdown against the emulated RP2040 (its pessimistic end)
    cycle  = cpu + the I2C and SPI bus time (machine.I2C / machine.SPI block for the
             whole transfer on rp2, esp32, mimxrt and stm32: the CPU waits it out)
    rate   = 1e6 / cycle, and no more than the busiest UART line allows (a UART write
             goes to the TX buffer and does not block, but the line must carry it).
On a board with a second core (its description's second_core: the RP2040 and RP2350)
the firmware makes TELEMETRY on core 1: there the telemetry stage is core 0's share (the
snapshot, the hand-over, the write), plus a guessed contention of the two cores for the
flash cache; core 1's own time a frame is checked against the telemetry period.
Rates are rounded down to two significant figures: never above what the target holds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from dexlink import hwconfig

# ---- calibration: the emulated RP2040 -------------------------------------------------
# Source: issue 15: bench/firmware.py's cycle run by MicroPython 1.28 (RPI_PICO build) on
# an instruction-level RP2040 emulator counting Cortex-M0+ cycles at 125 MHz, viper build,
# telemetry every 10th cycle: iso16 (AS5600 + STS3215), iso22 (MT6701 + STS3215) and
# tendon16 (AS5048A chain + XL330, coupled). Per-stage microseconds, fitted per driver
# class (per joint, or fixed + per joint where two hands give two points). The emulator
# has no flash-cache misses: a real RP2040 is 1.2-1.7x slower (TARGETS["pico"]).

# Per-operation costs on the emulated RP2040 (issue 15): the changes to the cycle since
# the calibration are counted with these (each labelled GUESS: not emulated since).
METHOD_US = 13.6  # a method call
FUNCTION_US = 10.3  # a function call
LOOP_US = 3.1  # an empty loop iteration (FOR_ITER, STORE_FAST, JUMP: three bytecodes)
OPCODE_US = LOOP_US / 3  # GUESS: a simple bytecode (a load, a store, a compare)
# (Bytecodes counted from `micropython -v -v -v` listings of the code, leaving out those
# a call's figure holds: the load of the callable, the call, the POP_TOP and the return.)
# Software cost of one machine-class call (I2C, SPI, UART) and of time.ticks_us on the
# emulated RP2040 (issue 15: readfrom_mem_into 22 us, ticks_us 5.7 us; SPI and UART calls:
# GUESS, taken as the I2C call's).
CALL_US = 22.0
TICKS_US = 5.7
BUILTIN_US = TICKS_US  # GUESS: a builtin's call (len, min, ticks_diff) as ticks_us's
# Per cycle outside the stages: commands, faults, timing: measured 442 us (iso16; iso22
# 440). (The model counts this stage from today's code since, overhead_count_us below;
# OVERHEAD_US, RUN_LOOP_US and the trims that follow are the top-down figures it replaced,
# kept for overhead_top_down_us.) GUESS since (not emulated), counted per call and bytecode:
# - the loop skips FaultReporter.check_encoders (and its _encoder_change) when no encoder
#   bit changed and calls _report only on a telemetry cycle: 2.9 method calls fewer;
# - the console is read only when bytes wait (Link.waiting, the console's any()): a quiet
#   cycle calls any() where, at the calibration, it called _commands, Link.start_cycle,
#   Link.next_frame, the console's readinto (with its len and min) and BreakIn.check:
#   4 method and 2 builtin calls fewer, and 45 bytecodes (their bodies' 56 less
#   any()'s and the test's 11);
# - FaultReporter.check_servos makes its first pass itself: 1 method call fewer;
# - the servo poll's countdown (dexfw.loop READBACK_HZ): 12 bytecodes more (on average).
OVERHEAD_US = (442.0 - 2.9 * METHOD_US - (4 * METHOD_US + 2 * BUILTIN_US + 45 * OPCODE_US)
               - METHOD_US + 12 * OPCODE_US)
# GUESS: the emulated cycle is bench/firmware.py's fw.cycle(ticks_us()) call in a loop;
# Firmware.run's own work a cycle is not in it: 54 bytecodes (its deadline, slew time
# and timing statistics, the time calls' arguments), one ticks_us more and five
# two-argument time calls (ticks_diff x3, ticks_add, sleep_us), less the bench's loop
# pass, the 3 bytecodes around its call and its closure call.
RUN_LOOP_US = (54 - 3) * OPCODE_US - LOOP_US + TICKS_US + 5 * BUILTIN_US - FUNCTION_US
# GUESS: the board's USB console (dexfw.stdioconsole) answers any() through select's
# ipoll (taken as a machine call, CALL_US) and a loop pass, where the bench's memory
# console (which the calibration ran) reads two attributes (~5 bytecodes). The model's
# cycle has a quiet link (TELEOP: the host only listens). NOT MODELLED: commands coming
# in; the USB console gives a byte a read (select says only that one waits): an ipoll
# and a readinto (machine calls) and ~10 bytecodes, ~55 us a byte by these figures: a
# streamed 16-joint TARGETS (~45 bytes) is ~2.5 ms of the cycle it arrives in.
CONSOLE_US = CALL_US + LOOP_US - 5 * OPCODE_US
# ---- the loop's own work trimmed (issue 15) ----------------------------------------------
# GUESS (not emulated): counted from `micropython -v -v -v` listings of dexfw/loop.py
# before (2e7c709) and after, and of dexfw/devices.py, on the model's cycle (TELEOP, torque
# on, quiet link, configured board); bytecodes as above (a call's own load, call, POP_TOP
# and return left out: bench/opcount.py's net count). Taken off the run loop (a count:
# x LOOP_COUNT_SCALE, as RUN_LOOP_US) and the overhead (as OVERHEAD_US's other savings).
# Cross-check, x86 (micropython Unix port, best of 15 x 20000, fw.cycle a builtin no-op):
# run's own pass 0.237 -> 0.200 us, 6-8 emulated us at 155-220 per x86 us against the 24
# counted (straight-line bytecodes are cheaper on x86 than that ratio); the cycle (best of
# 15 x 2000 fw.cycle calls, iso16spi) 4.52 -> 4.29 us, 36-51 against the ~79 counted.
# - Firmware.run: the slew time is measured only after a late cycle (one that waited for
#   its deadline began a period after the last: slew_q8 set to 256), and max_cycles is
#   tested, not counted, when not given (the tests' runs count it down): its usual pass
#   (no new worst) net 35 bytecodes where it was 53, and one ticks_diff fewer.
RUN_LOOP_TRIMMED_US = BUILTIN_US + 18 * OPCODE_US
# - Firmware.cycle, every cycle: _sense and _drive written out in it (2 method calls fewer,
#   with them 2 `jm = self.jm` of 3 bytecodes, one left); the cycle count is the phase of
#   the polls and of telemetry (its update and two tests, 20 bytecodes, where the poll
#   countdown, the count and the telemetry countdown were 33); FAULT(config)'s test only
#   in an unconfigured board's cycle (6); link.reader bound at init (1): 2 method calls
#   and 23 bytecodes fewer (the quiet path net 61 where cycle, _sense and _drive were 96:
#   35, of them 12 in the device calls, below).
CYCLE_TRIMMED_US = 2 * METHOD_US + 23 * OPCODE_US
# - a poll cycle: _servos written out (a method call; its `jm` load 3, the countdown's
#   reset 4, check_servos' time argument a local 1): a method call and 8 bytecodes fewer.
POLL_TRIMMED_US = METHOD_US + 8 * OPCODE_US
# - a telemetry cycle: _report written out (a method call; its counter's reset 3 and the
#   mode argument 1): a method call and 4 bytecodes fewer.
REPORT_TRIMMED_US = METHOD_US + 4 * OPCODE_US
# - each device call (the encoders' sample, the buses' write_goals and poll): the cycle
#   calls the one device (dexfw.devices.one), where the step looped over the tuple (the
#   loop's setup and exit 4 bytecodes, a pass 4 and the arguments' A); several are
#   chained in pairs, k - 1 method calls with P bytecodes each (2 loads a device and the
#   arguments). Saved with k devices: (4 + k (4 + A)) - (2 + A + (k - 1) P) bytecodes
#   less (k - 1) method calls: one device 6 bytecodes; two, a method call for 6 + A/2 - 2.
#   (Taken off the top-down overhead, while the floors kept the loop's pass; the model
#   counts both from today's code since, OVERHEAD_PAIR_US and the floors.) {call: (A, P)}
DEVICE_CALL_ARGS = {"sample": (4, 8), "write_goals": (2, 6), "poll": (4, 8)}


def device_calls_trimmed_us(call: str, k: int) -> float:
    """The saving of one device call's site in the cycle with k devices of its kind."""
    a, p = DEVICE_CALL_ARGS[call]
    k = max(1, k)
    return (4 + k * (4 + a) - (2 + a + (k - 1) * p)) * OPCODE_US - (k - 1) * METHOD_US


def overhead_top_down_us(cfg: dict) -> float:
    """The overhead as it was modelled until overhead_count_us: the calibration's 442 us
    less the savings counted since (OVERHEAD_US and the trims above), kept to compare."""
    polls, dec = poll_share(cfg["loop"]["hz"]), cfg["loop"]["telemetry_decimation"]
    n_enc, n_bus = len(cfg["encoders"]), len(cfg["servos"])
    return (OVERHEAD_US + TELE_OUT_TEST_US * LOOP_COUNT_SCALE - CYCLE_TRIMMED_US
            - polls * POLL_TRIMMED_US - REPORT_TRIMMED_US / dec
            - device_calls_trimmed_us("sample", n_enc)
            - device_calls_trimmed_us("write_goals", n_bus)
            - polls * device_calls_trimmed_us("poll", n_bus))


# ---- the loop's own work, counted from today's code (issue 15) ----------------------------
# GUESS (counted, not emulated). The figures above are top-down: the calibration's
# overhead (442 us, iso16) and the bench's loop less what was counted saved since. Since
# then work the calibration's overhead held went into stages that are now counted from the
# code (the floors below): the cycle's first_change call and compare into the map kernel
# (map_exo_of, in MAP_FIXED_FLOOR_US, where MAP_US booked the saving), the device loops'
# passes out of the cycle (their saving taken off the overhead while the floors kept the
# passes); and RUN_LOOP_US is a difference against the bench's loop that assumes the
# overhead still holds the bench's pass, closure call and ticks_us. So both are counted
# from today's code instead, each piece once (bench/opcount.py --overhead . prints the
# rows; TODAY_ROWS there gives the boundaries), at the per-operation figures above, on the
# model's cycle (TELEOP, torque on, quiet link, configured board, no frame out on core 1),
# and taken x COUNT_RATIO["overhead"] (below: the calibration's measured/counted for this
# work, 442 / 389 and 440 / 402, counted there with the boundaries the stages were timed
# with, cycle less the stages' bench wrappers). The trims above (CYCLE_TRIMMED_US and the
# others) are in the code counted: not subtracted again. Net bytecodes (a call's load(s),
# the call, POP_TOP and the callee's return in its figure), from `micropython -v -v -v`
# listings:
# - every cycle: run's call of cycle (a method call; its argument 1); in Firmware.cycle
#   (offsets of its listing) the sample time's store 3 (0:4) and the test whether core 1
#   has a frame out 3 (4:9, TELE_OUT_TEST_US), self._waiting() (the console's any, a
#   method call) and the half-read frame's test 5 (25:39), `jm = self.jm` 3 and the encoder
#   driver's load 1 (45:54 less the call's), map_exo_of's and drive_slewed's second load
#   (mapping's LOAD_GLOBAL: a module function's call is priced as a function's) 2, the
#   mode's load and the HOST test 8 (86:99), the torque test 3 (106:111), the bus's load 1
#   (119:124), the cycle count's update and the poll test 15 (130:151), the telemetry
#   test 5 (174:181): 49 in cycle; the bench's memory console's any() 5 (CONSOLE_US adds
#   the USB console's difference): 2 method calls and 55 bytecodes (52 without the core-1
#   test, which every board's cycle makes). Held elsewhere, not counted here: each device
#   call with its arguments (sample 4, SAMPLE_FIXED_FLOOR_US or SAMPLE_US; write_goals 2,
#   WRITE_GOALS_FLOOR_US; poll 4, POLL_FLOOR_US), map_exo_of's call, its 4 arguments and
#   the test of its result and drive_slewed's call and argument (MAP_FIXED_FLOOR_US), the
#   core-1 lock poll and write (9:25: CORE1_POLL_US, CORE1_WRITE_US), _send_telemetry's
#   call (the telemetry stage, as the bench timed it), run's own pass (RUN_PASS_US);
TELE_OUT_TEST_US = 3 * OPCODE_US
OVERHEAD_CYCLE_US = 2 * METHOD_US + 52 * OPCODE_US + TELE_OUT_TEST_US
# - a poll cycle (poll_share): the poll site's bus load 1 (151:156), check_servos' call (a
#   method call) and its self and now 2 (165:174), its body with no servo bit changed 18
#   (0:25 + 42:47: jm, first_change's 5 arguments and its second load, the while test):
#   a method and a function call (first_change, viper) and 21 bytecodes, and GUESS
#   first_change's viper pass 0.5 us a motor (as bench/opcount.py prices it at the
#   calibration);
OVERHEAD_POLL_US = (METHOD_US + FUNCTION_US + 21 * OPCODE_US, 0.5)  # (fixed, a motor)
# - a telemetry cycle (1 / decimation): the CALIBRATE test before _send_telemetry 5 (181:190);
OVERHEAD_FRAME_US = 5 * OPCODE_US
# - a device beyond the first of its kind, at each device call (sample and write_goals every
#   cycle, poll a poll cycle): a devices.Pair's call (a method call) and its body's net 6
#   (sample, poll) or 4 (write_goals), less the arguments its devices' stage holds for
#   one more call (4 and 2): a method call and 2 bytecodes.
OVERHEAD_PAIR_US = METHOD_US + 2 * OPCODE_US
# iso16spi at 1 kHz (one driver, one bus, a poll every other cycle, TELEMETRY every 10th):
# 55 + 21 / 2 + 5 / 10 = 66 bytecodes, 2.5 method and 0.5 function calls, 4 us of viper:
# 111.3 us counted, x 1.12 = 124.7 us, where the top-down figure (overhead_top_down_us) is
# 213.4: the count is lower and replaces it (the top-down figure double-books work the
# floors now hold, above; lower for every shipped hand, tests/test_targets.py).
# Cross-check on the calibration's code with its own boundaries (bench/opcount.py
# --calibration): 389 counted (216 us of calls, 167 bytecodes) for 442 measured.
# - Firmware.run's usual pass less its call of cycle (a cycle that waited for its deadline,
#   no new worst, max_cycles not given; run's listing 58:79 + 83:119 + 178:181 + 190:196):
#   two ticks_us, two ticks_diff, ticks_add and sleep_us, and 34 bytecodes. (RUN_LOOP_US
#   less RUN_LOOP_TRIMMED_US plus the bench's pass, closure call, 3 bytecodes and ticks_us
#   it takes off comes to 71.4: the same work, 2 bytecodes apart.)
RUN_PASS_US = 2 * TICKS_US + 4 * BUILTIN_US + 34 * OPCODE_US


def overhead_count_us(cfg: dict) -> float:
    """The cycle's own work counted (OVERHEAD_CYCLE_US and the others), emulated us, before
    COUNT_RATIO["overhead"]."""
    polls, dec = poll_share(cfg["loop"]["hz"]), cfg["loop"]["telemetry_decimation"]
    pairs = (max(0, len(cfg["encoders"]) - 1)
             + (1 + polls) * max(0, len(cfg["servos"]) - 1))
    return (OVERHEAD_CYCLE_US + polls * _linear(OVERHEAD_POLL_US, len(cfg["motors"]))
            + OVERHEAD_FRAME_US / dec + pairs * OVERHEAD_PAIR_US)


# GUESS: the calibration's null HAL answers the bus calls in Python (a method call and
# ~2 bytecodes); a real machine call that moves data costs CALL_US (22 us, issue 15's
# readfrom_mem_into). Per driver class, (fixed, per joint) such calls a cycle: I2C mux
# sweeps select and read each sensor and unselect once; the SPI chain is one transfer
# (its chip-select pin calls taken as the null HAL's); a servo bus writes its goals and
# one request (its answer's read is in READBACK_US); the PCA9685 one register write a
# servo.
MACHINE_CALLS = {"AS5600Mux": (1, 2), "MT6701Mux": (1, 2), "AS5048AChain": (1, 0),
                 "FeetechBus": (2, 0), "DynamixelBus": (2, 0), "PCA9685Servos": (0, 1)}
# The loop polls the servo buses at most READBACK_HZ times a second (dexfw.loop: at 1 kHz
# every other cycle): the read-back (READBACK_US) and the request's machine call come
# with a poll. GUESS: of the Feetech bus's fixed cost (SERVO_US), writing the goals comes
# every cycle: write_goals' call, goals_into's, the UART write (the null HAL's method,
# ~2 bytecodes) and ~8 bytecodes (12 until goals_into took n and the servos' joints in
# its conversion table: 2 attribute loads, 4 bytecodes fewer, taken off SERVO_US's fixed
# part too); the rest is its request, with a poll. The Dynamixel's
# fixed cost is all taken as every cycle's (its goals and request are framed alike, CRC
# and stuffing: no share counted). The PCA9685 has no poll.
READBACK_HZ = 500
WRITE_GOALS_US = {"FeetechBus": METHOD_US + FUNCTION_US + (METHOD_US + 2 * OPCODE_US)
                  + 8 * OPCODE_US}
POLLED = {"FeetechBus", "DynamixelBus"}
MACHINE_CALL_EXTRA_US = CALL_US - (METHOD_US + 2 * OPCODE_US)
SAMPLE_US = {  # encoder driver class -> (fixed, per joint)
    "AS5600Mux": (0.0, 127.4),  # iso16: 2038 us for 16
    "MT6701Mux": (0.0, 142.0),  # iso22: 3123 us for 22
    # GUESS: the one-pass chain (busbytes.chain_collect) is not measured on the emulator
    # (its per-chip driver measured 3059 us for 16). From the per-operation
    # figures: 5 method calls (13.6 us), the SPI call (22 us), 2 pin calls, the call into
    # viper, and per chip ~5x the work of a viper CRC-32 byte (0.61 us) in the pass. Less
    # since: the transfer written out in sample (a method call); the diagnostics planned
    # in chain_collect's pass (_plan's method call gone: it was one sweep in four, then
    # none; the pass's few more instructions a sweep not counted); the chip select set by
    # calling the pin (cs(0), machine.Pin's call slot: taken as a function call, where
    # cs.value(0) was a method call: 3.3 us fewer, twice); n in chain_collect's table (an
    # attribute load, 2 bytecodes fewer). Per chip: the viper pass with its codes in
    # locals, its indices walked and a repeated command left in place, 0.317 -> 0.285 x86
    # us for 16 chips (micropython Unix port, best of 9), x 100 (the lower ratio
    # for viper work): 0.2 us a chip less.
    "AS5048AChain": (110.0 - 2 * METHOD_US - 2 * (METHOD_US - FUNCTION_US) - 2 * OPCODE_US,
                     3.5 - 0.2),
}
GUESSED = {"AS5048AChain", "FeetechBus", "PCA9685Servos"}  # driver classes the emulator has not measured
# Map (calibration, follow, slew limit, coupling, servo frame): 133 us + 41.5 us a joint
# measured (iso16 797 us, iso22 1046 us), when clip and to_servo were per-motor Python
# loops. GUESS since they are viper too: per joint ~8 us of viper (map_exo 3, slew 1.5,
# couple 1.5, clip 1, follow and to_servo 0.5 each); the fixed part is the calls, less
# three method calls at 13.6 us since the loop calls map_exo_of, follow and slew itself
# (not through JointMap.map_exo, follow_exo, slew).
# GUESS since: the drive step is one kernel (mapping.drive_of -> to_motors: coupling,
# limits and servo frame in one pass) where JointMap.drive called couple, clip and
# to_servo: a method and a function call fewer, and 30 bytecodes of arguments (the
# per-motor passes saved in viper not counted).
# GUESS since (issue 15, not emulated): two steps each one viper call that reads the
# JointMap's arrays itself (an attribute load in native code, counted as the bytecode it
# replaces, pessimistic: no dispatch):
# - sense: mapping.map_exo_of (viper) maps and returns 1 + the first encoder edge (0:
#   none, tested as it is), where the loop called map_exo_of (1 argument bytecode), it
#   map_exo (18) and the loop first_change (9, and 2 to compare its result with 0; its
#   call and bytecodes were in OVERHEAD_US's calibration, its work is this stage's now):
#   2 function calls and 20 bytecodes fewer (30 less the call's 4 and the 6 native
#   loads);
# - drive: mapping.drive_slewed (viper: slew, then coupling, limits and servo frame),
#   where the loop called slew (12 argument bytecodes) and drive_of (1), it to_motors
#   (16): 2 function calls and 15 bytecodes fewer (29 less the call's 1 and 13 loads).
# The fixed part is below zero since. The calibration's two-hand fit (797 us for 16
# joints, 1046 for 22) put 133 us there, less than its own calls' count at these
# per-operation figures (~190 us): its split between fixed and per joint is uncertain by
# about +-100 us (+-5 us a joint), and each saving since is taken off the fixed part. By
# count the calls left (map_exo_of, follow, drive_slewed and their arguments) are ~65
# us: with 8 us a joint of viper (a GUESS) the stage would be ~190 us for iso16spi where
# the model has ~90, so it may be optimistic here by up to ~100 us (the virtual board's
# booking points the other way: sample, map and servo 707 us against 923, see
# VBOARD_EMULATED_PER_X86). Only the emulator can settle it. Cross-check of the two
# steps' saving: x86 0.30 us a cycle (iso16spi, micropython Unix port, best of 9, the
# old steps against the new), 46-66 emulated us at 155-220 emulated us per x86 us (the
# issue's per-operation ratios for calls), against the 75 counted here.
# GUESS too: an uncoupled hand's motors take their joint's goal in drive_slewed, where
# the sparse pass summed an identity row (its loads, two sign restores, a multiply):
# 3.4 ns a motor on x86 (the same measurement), x 100 (the lower ratio for viper
# work, 100-150): 0.3 us a joint less; a coupled hand still sums (COUPLING_US_PER_MOTOR:
# 0.3 more a motor).
# GUESS since (issue 15, not emulated): TELEOP's follow is folded into the sense kernel
# (jm.follow_exo, set by Firmware.set_mode: map_exo_of writes each target right after its
# joint's angle, a held joint's its goal). A TELEOP cycle no longer makes follow's call,
# its 10 argument bytecodes, the `jm = self.jm` before it (3) and the jump past the HOST
# branch (1), less the kernel's 3 native attribute loads (follow_exo, goal, target,
# counted as bytecodes as above): a function call and 11 bytecodes fewer. follow's
# per-joint viper work moves into the kernel's pass (not counted as saved). HOST,
# CALIBRATE and IDLE cycles skip TELEOP's compare (5 bytecodes) and pay the 3 loads: not
# counted (the model costs a TELEOP cycle). Cross-check: x86 0.17 us a cycle (iso16spi,
# micropython Unix port, best of 9 x 20000 calls: map_exo_of with follow_exo 0, then
# follow, 0.587 us; folded 0.417),
# 26-37 emulated us at 155-220 emulated us per x86 us, against the 21.7 counted here.
# Taken off MAP_US's fixed part; MAP_FIXED_FLOOR_US counts the calls without follow's.
FOLLOW_FOLDED_US = FUNCTION_US + (10 + 3 + 1 - 3) * OPCODE_US
MAP_US = (133.0 - 3 * 13.6 - (METHOD_US + FUNCTION_US + 30 * OPCODE_US)
          - (4 * FUNCTION_US + (20 + 15) * OPCODE_US) - FOLLOW_FOLDED_US, 8.0 - 0.3)
COUPLING_US_PER_MOTOR = 0.6 + 0.3  # tendon16's coupled map: 807 us against iso16's 797
# GUESS: ServoBus.poll reads the UART itself since (the calibration's poll called
# _receive): a method call fewer a poll, Feetech and Dynamixel alike; and its request
# marks a group of one servo without a loop: 21 bytecodes fewer (iso16spi's, tendon16's
# and iso22's buses all read one servo a request). Taken off each poll. GUESS since,
# both buses: a poll reads into the empty buffer what is there without asking any()
# first (the HAL's UART has timeout 0): any()'s call (the calibration's null-HAL method;
# a real board's is a machine call, more) and 7 bytecodes fewer (14 for the result's
# store, the three tests and readinto's arguments; 7 for the empty test and the
# arguments now). (The Feetech bus's own savings are in READBACK_US, also a poll.)
POLL_SAVED_US = METHOD_US + 21 * OPCODE_US + METHOD_US + 7 * OPCODE_US
SERVO_US = {  # servo driver class -> (fixed per bus, per motor): sync-write + one poll
    # GUESS: goals in one pass (busbytes.goals_into) are not measured on the emulator. The
    # per-servo driver measured 215 us a bus + 64 us a servo (fit of iso16, 1239 us for
    # 16 on one bus, and iso22, 1838 us for 22 on two); the pass leaves the bus's share
    # (+15 us for the call) and per servo ~3 us (a viper division and four stores). Less
    # since: the checksum in goals_into's pass and the READ packets made once, where each
    # packet was finished by finish_packet, sum_bytes and len (2 function calls and a
    # builtin, twice a cycle, and 16 and 22 bytecodes around them); per servo two more
    # viper adds (~0.6 us, a CRC-32 byte's); and 4 bytecodes of goals_into's arguments
    # (WRITE_GOALS_US).
    "FeetechBus": (230.0 - 2 * (2 * FUNCTION_US + BUILTIN_US) - (16 + 22 + 4) * OPCODE_US,
                   3.0 + 0.6),
    "DynamixelBus": (215.0, 94.75),  # tendon16: 1946 us for 16 on two buses (Feetech's fixed)
    "PCA9685Servos": (215.0, 64.0),  # GUESS: not measured; taken as the per-servo Feetech
}
# GUESS: a servo bus's answer parsed every cycle (the read-back: ~16 method and function
# calls at 10-14 us, and the checks), which the emulated figures lack: their null HAL
# never answers. Per servo bus with read-back (not the PCA9685's).
# Both: plus the answer's bytes read from the UART, which the null HAL never gave: one
# readinto straight into the empty buffer (a machine call, 22 us) and its test (~8
# bytecodes).
ANSWER_READ_US = CALL_US + 8 * OPCODE_US
READBACK_US = {
    "DynamixelBus": 200.0 + ANSWER_READ_US,
    # GUESS: 200 us as above, less the ten per-packet calls one viper pass replaced
    # (busbytes.sts_answers; _size_at, _packet, _check, _answer, _answered, _store
    # and sum_bytes, two sign_magnitude and cdeg_from_counts: 7 method calls at 13.6 us
    # and 3 function calls at 10.3 us), plus the kernel's call (10.3 us) and its work on
    # a 12-byte answer (~25 us: a viper CRC-32 byte is 0.61 us). Not emulated. Cross-
    # check: bench/firmware.py's read-back stage, x86 us scaled to the reference host
    # by the speed probe, x EMULATED_PER_X86, gave ~280 before and ~60 after (loaded
    # host, 2026-12-01); this keeps the call count's larger figure, as viper gains less
    # on armv6m than on x86 (issue 15). GUESS since (not emulated), a poll of the
    # Feetech bus (FeetechBus.poll: ServoBus.poll with the usual case written out):
    # - an answer used up whole (the usual case) empties the buffer itself: _consume's
    #   method call and copy_into's function call fewer, and 12 bytecodes (19 around
    #   them, 7 for the test on sts_answers' result and the store);
    # - _parse's lines in poll: its method call and 2 argument bytecodes fewer; the loads
    #   read back into sts_answers' io (the bus's `load` a view of them): 2 fewer;
    # - the next servo's READ (made once) written in poll: _request's and _send_request's
    #   method calls fewer, and 12 bytecodes (49 of their bodies and arguments, 37 here).
    "FeetechBus": (200.0 - (7 * 13.6 + 3 * 10.3) + 10.3 + 25.0 + ANSWER_READ_US
                   - (METHOD_US + FUNCTION_US + 12 * OPCODE_US)
                   - (METHOD_US + 4 * OPCODE_US) - (2 * METHOD_US + 12 * OPCODE_US)),
}
# ---- floors: what a stage still does, counted ------------------------------------------
# The figures above are the calibration less the savings counted since. Where the
# calibration's split was uncertain (MAP_US: two hands fitted to a fixed and a per-joint
# part) or its base a guess that counted calls only (READBACK_US's 200 us), subtracting
# can go below what the code still executes: MAP_US's fixed part went below zero, and a
# Feetech poll came to ~76 us where its listing holds two calls, two machine calls and
# ~94 bytecodes. The model never goes under a count of the code as it is: each floor
# counts the usual path's calls, machine calls and bytecodes (from `micropython -v -v -v`
# listings of the code, 2026-12-01, as above: the callable's load, the call, POP_TOP and
# the return are in a call's figure), at the per-operation figures above, and the model
# takes the larger. GUESS: OPCODE_US is a third of the empty loop's pass, which is 8
# bytecodes in MicroPython (a range loop: DUP_TOP, STORE_FAST, the increment, DUP_TOP_TWO,
# ROT_TWO, the compare, the jump): high for a loop's control, not for straight-line code
# (checked on the calibration's code, COUNT_RATIO below: the floors stand as counted).
# - map, fixed part: map_exo_of (a function call; 4 argument bytecodes and the test of its
#   result; 6 attribute loads in viper, counted as bytecodes, and 3 more for TELEOP's
#   follow folded in: FOLLOW_FOLDED_US), drive_slewed (a function call, 1 argument, 13
#   loads in viper). The per-joint viper work stays MAP_US's. (mapping's load before
#   each, a module function's second, is the cycle's own: OVERHEAD_CYCLE_US.)
MAP_FIXED_FLOOR_US = 2 * FUNCTION_US + (5 + 6 + 3 + 1 + 13) * OPCODE_US
# - a Feetech poll (FeetechBus.poll, an answer that came and was used up whole, the next
#   READ written): the method call, its bytecodes, sts_answers' call and its work on a
#   12-byte answer (25 us, as READBACK_US), the answer's readinto (CALL_US: the read-back's
#   own machine call, as ANSWER_READ_US) and the READ's write (the null HAL's method and
#   2 bytecodes, as MACHINE_CALL_EXTRA_US counts a machine call: its extra is with the
#   machine calls). Compared with the poll's share of SERVO_US and READBACK_US. Recounted
#   with the call's 4 arguments at the cycle's site (as the other device floors hold
#   theirs; OVERHEAD_CYCLE_US leaves them here): the body 92 (its listing, 0:20 + 21:26 +
#   39:82 + 102:121 + 137:141 + 169:173 + 182:231 + 232:235, sts_answers' second load in
#   it) and 4, where it was 94.
POLL_FLOOR_US = {"FeetechBus": METHOD_US + (92 + 4) * OPCODE_US + FUNCTION_US + 25.0 + CALL_US
                 + (METHOD_US + 2 * OPCODE_US)}
# - a Feetech bus's goals every cycle: write_goals (a method call, 2 argument bytecodes),
#   goals_into (a function call, 6 bytecodes), the UART write (the null HAL's method, 4
#   bytecodes). (Until the cycle called the one bus straight, also _drive's loop pass over
#   the buses, 3.1 us, and 2 bytecodes of its setup: the code has them no more, and the
#   overhead, counted since, does not take their saving off a second time.)
WRITE_GOALS_FLOOR_US = {"FeetechBus": METHOD_US + FUNCTION_US
                        + (METHOD_US + 2 * OPCODE_US) + (2 + 6 + 4) * OPCODE_US}
# - the AS5048A chain's fixed part: sample (a method call, 4 argument bytecodes; _sense's
#   loop pass over the encoders no more, as above), the chip select twice (a pin call, taken as a function
#   call, 3 bytecodes each), write_readinto (the null HAL's method, 6 bytecodes),
#   chain_collect (a function call, 6 bytecodes), the test of its result (3).
SAMPLE_FIXED_FLOOR_US = {"AS5048AChain": METHOD_US + 4 * OPCODE_US
                         + 2 * (FUNCTION_US + 3 * OPCODE_US)
                         + (METHOD_US + 2 * OPCODE_US) + 6 * OPCODE_US
                         + FUNCTION_US + (6 + 3) * OPCODE_US}
# ---- the counting checked against the calibration (bench/opcount.py) ----------------------
# Counted bottom-up on the code the emulated figures were measured on (4b54371^: `git
# worktree add /tmp/calib 4b54371^; .venv/bin/python bench/opcount.py --calibration
# /tmp/calib`), as bench/firmware.py timed it there (its loop pass and the stage's closure
# call, the null HAL, viper, TELEOP): calls at METHOD_US, FUNCTION_US, BUILTIN_US,
# TICKS_US, a loop's control (a range or while loop's increment, test and jump: 8
# bytecodes) at LOOP_US a pass, the other bytecodes at OPCODE_US, viper work as guessed
# above (mapping 6.5 us a joint, a CRC-32 and COBS byte from issue 15, pack_joints 3 us a
# joint and a copied byte 0.3 us: GUESS), struct.pack_into 5.7 us + 3.9 us a value
# (GUESS, from issue 15's 258 us body). Measured / counted, emulated us:
#   sample iso16 (AS5600 mux)   2038 / 2353 = 0.87   (calls 1138 us, 1176 bytecodes)
#   servo iso16, iso22 (STS)    1239 / 1675 = 0.74, 1838 / 2449 = 0.75 (per-servo goal
#     packing in Python then; a poll a third of the time expiring and asking anew)
#   map iso16, iso22             797 /  983 = 0.81, 1046 / 1264 = 0.83
#   telemetry iso16, iso22      1340 / 1525 = 0.88, 1651 / 1892 = 0.87
#   overhead iso16, iso22        442 /  389 = 1.14,  440 /  402 = 1.09 (the cycle's own
#     straight-line work: its calls, attribute loads and tests; cycle - stages as timed)
# With every bytecode at OPCODE_US (a loop's control too): map 0.69-0.70, telemetry 0.77-
# 0.78, sample 0.84, servo 0.69-0.71. Within +-21 % of one another (0.74-1.14): counting
# at these figures is about right; the drivers' and the data stages' bytecodes (array
# and attribute loads, arithmetic) fit at 0.6-0.8 us, not 1.03, and the cycle's own
# straight-line work (calls with arguments, attribute loads, tests) counts ~12 % low.
# GUESS, the rule: a figure
# counted from today's code with no emulated figure under it is taken at its count x the
# ratio of the stage whose code it is like, and never below its count (a ratio under 1
# leaves it: the viper and pack_into guesses inside the counts, and the map's fixed part
# against its per-joint part, are too uncertain to lower a figure by):
# - the loop's own straight-line work, counted only: the cycle's own work (the overhead
#   stage, overhead_count_us, which replaced OVERHEAD_US's 442 less savings), run's pass
#   (RUN_PASS_US) and core 0's share of telemetry on a second core (hand-off, the write
#   less its machine call, the polls): the overhead's own ratio, x 1.12;
# - the floors (map 0.82, sample 0.87, the servo's 0.745): as counted;
# - the USB console (a machine call, CALL_US, measured): as it is.
COUNT_RATIO = {"sample": 0.87, "servo": 0.745, "map": 0.82, "telemetry": 0.875,
               "overhead": 1.12}
LOOP_COUNT_SCALE = max(1.0, COUNT_RATIO["overhead"])  # applied to counts only, never below
TELEMETRY_US = (511.0, 51.8)  # per frame, fixed + per joint: 16 joints 1340 us, 22 1651 us
# GUESS: since those figures, two plain per-motor loops inside each TELEMETRY are viper
# (mapping.from_servo and mark_unread: the present positions in the motor frame and the
# unread marks). Per motor less: two loop iterations (3.1 us each) and ~7 array loads and
# stores (~1 us each, a guess) against ~1 us of viper; per frame one function call more
# (10.3 us). Kept apart from TELEMETRY_US, which is the calibration. Not emulated.
TELEMETRY_PRESENT_US = (10.3, -(2 * 3.1 + 7 * 1.0 - 1.0))
# ---- the second core (boards whose description says second_core: RP2040, RP2350) --------
# There TELEMETRY is made on core 1 (dexfw.telemetry): on a telemetry cycle core 0 copies
# what a frame holds and hands it over; core 1 packs, CRCs and COBS-encodes it; core 0
# writes the finished frame at the start of a later cycle. GUESS (not emulated), counted
# per operation with the figures above. Per frame on core 0:
# - the hand-off (Core1Telemetry.hand_off, where the single-core path calls
#   replies.send_telemetry): its method call, _snap's and the lock's release (a method
#   call each), the viper copy's function call; bytecodes: the busy test (4), the copy's
#   9 arguments (23), the 6 head values copied (24), the sequence number (5), the mark
#   that a frame is out (3); the copy itself, per joint 3 and per motor 2 viper loads and
#   stores (SNAPSHOT_COPY_US each);
# - the write (Core1Telemetry.write): its method call, the USB console's write method
#   (dexfw.stdioconsole) and the stream's write in it (a machine call), len (a builtin)
#   and ~34 bytecodes (the sequence test, the out mark, the count);
# - while a frame is out, each cycle's start asks core 1 (the lock's acquire(0): a method
#   call, and 2 bytecodes): the cycles core 1 takes, rounded up, and the one that writes.
HANDOFF_US = 3 * METHOD_US + FUNCTION_US + (4 + 23 + 24 + 5 + 3) * OPCODE_US
SNAPSHOT_COPY_US = 0.2  # GUESS: a viper load and store, a third of a CRC-32 byte's 0.61 us
CORE1_WRITE_US = 2 * METHOD_US + CALL_US + BUILTIN_US + 34 * OPCODE_US
CORE1_POLL_US = METHOD_US + 2 * OPCODE_US
# Every board, every cycle: the loop tests whether a frame is out (TELE_OUT_TEST_US, in
# OVERHEAD_CYCLE_US).
# Core 1's work per frame: the single-core frame's (TELEMETRY_US and TELEMETRY_PRESENT_US:
# the same packing, CRC and COBS), less the write to the bench's memory console that the
# calibration's figure holds (dexfw.bufconsole: a method call, two len, copy_into's call,
# ~15 bytecodes; its per-byte copy left in: pessimistic), plus the worker's lock calls
# (acquire, release), its _make call and ~8 bytecodes of its loop (GUESS).
CORE1_FRAME_EXTRA_US = (3 * METHOD_US + 8 * OPCODE_US
                        - (METHOD_US + 2 * BUILTIN_US + FUNCTION_US + 15 * OPCODE_US))
# GUESS, pessimistic: the two cores share the flash's XIP cache (16 kB on both chips) and
# its QSPI bus, and both run the interpreter from flash (rp2 keeps MicroPython's VM there;
# viper code is on the heap, in RAM). While core 1 makes a frame each core misses more
# and waits for the other's fetches: taken as 30 % more CPU time on both (the RP2040's
# cache misses alone cost 1.2-1.7x against the emulator, TARGETS["pico"]; a second core
# running other code through the same cache is taken at about half that again). Core 1
# sleeps between frames (WFE, in the lock's acquire) and fetches nothing, so core 0 is
# slowed only while core 1 works: like the telemetry stage this is spread over the
# cycles, core 0's CPU time x CONTENTION x core 1's duty (its frame time over the
# telemetry period: at the configured rate, or the board's own if it cannot hold that).
# A cycle that overlaps core 1's work is up to 30 % slower than this mean.
CONTENTION = 0.30
# The x86 core bench/firmware.py runs on against the emulated RP2040: emulated us per x86
# us, per stage 136-167 (iso16, iso22, tendon16 on this project's build host, 2026-12-01;
# the issue's own host measured 124 for a whole cycle). The virtual board scales its x86
# time by this, times the target's slowdown: +-15 % between stages, +-25 % between hosts.
EMULATED_PER_X86 = 155.0
# Inside the virtual board the firmware's x86 time between machine calls is ~3x the
# bench's (2026-12-01, iso16, iso22, iso16spi and tendon16 alike: the simulated devices
# run between the stretches and evict the caches): the virtual board scales by this
# instead, times the target's slowdown. Fitted on the hands whose encoder drivers the
# emulator measured (iso16, iso22). Checked with bench/vboard.py --target pico (2026-12-01,
# 2 cores shared by 5 sessions, load average 3-8): the board's CPU time a cycle over the
# model's 1.15 (iso16: 123 Hz against the model's 136) and 0.98 (iso22: 84 Hz against 83).
# Uncertainty +-30 % (of it the host's load +-15 % between runs). (Before, 102 Hz against
# 130 under heavy load: every host preemption inside the firmware's stretches was charged
# as up to 60 x86 us of work, 6 ms on a Pico, and its real time never credited.)
# OUTSIDE it: the hands on an SPI encoder chain, 0.70 (iso16spi: 781 Hz against 546) and
# 0.45 (tendon16: 453 Hz against 206). The board follows the firmware's x86 costs: its
# iso16spi/iso16 ratio against the model's (1.64) is bench/firmware.py's own cross-check
# (x86 cycle x EMULATED_PER_X86 against the table: 522 against 1061 for iso16spi, 2552
# against 3167 for iso16, quiet host). Not viper's doing: per operation, issue 15's
# emulated figures over this host's x86 time are 100-150 for viper CRC-32 and COBS of 100
# bytes, 155-220 for calls, loop passes and ticks_us, so x86 time rather overstates a
# viper-heavy cycle. The difference lies in what no emulation measured for this firmware:
# the chain (GUESS) and the stages every hand shares (map, servo, telemetry, overhead, run
# loop, console: older figures less GUESSed savings), most of a light cycle. Booked by
# stage in the board (iso16spi, once, 2026-12-01): sampling, mapping and servos 707 us
# against the model's 923, the rest of a cycle (overhead, run loop, console, telemetry)
# ~300 us against 871. The model is likely pessimistic there; only the emulator can
# settle it. Meanwhile the virtual board shows those hands faster than the model does
# (bench/vboard.py flags them).
VBOARD_EMULATED_PER_X86 = 60.0
VBOARD_UNCERTAINTY = 0.3  # of the CPU time a cycle, virtual board against the model
# The speed probe (sim/board/vtarget.probe_us) on that host in that state (bench/firmware.py
# prints it beside the iso16 cycle): the virtual board scales the factor by this over the
# probe's time where it runs, so a slower or busier host does not slow the target down.
X86_PROBE_US = 46


@dataclass(frozen=True)
class Target:
    """A real board's speed: its time for the emulated RP2040's microsecond, (low, high)."""

    name: str  # its description in hardware/boards/
    port: str  # the MicroPython port
    cpu: str
    slowdown: tuple[float, float]  # target us per emulated-RP2040 us: optimistic, pessimistic
    source: str  # where slowdown comes from
    measured: bool  # False: the slowdown is a guess from published benchmarks or clocks
    uart_txbuf: int = 256  # bytes a UART write leaves in the TX buffer without blocking
    turnaround_us: int = 10  # half-duplex adaptor: line turned round before a servo answers

    @property
    def factor(self) -> float:
        """The slowdown the model uses: its pessimistic end."""
        return self.slowdown[1]


TARGETS = {t.name: t for t in (
    Target("pico", "rp2", "RP2040, Cortex-M0+ 125 MHz", (1.2, 1.7),
           "emulated RP2040 (issue 15) times 1.2-1.7 for the flash-cache misses the emulator "
           "does not have", True),
    Target("pico2", "rp2", "RP2350, Cortex-M33 150 MHz", (1.2 / 2.0, 1.7 / 1.8),
           "published MicroPython benchmarks: RP2350 1.8-2x a real RP2040", False),
    Target("esp32s3", "esp32", "ESP32-S3, Xtensa LX7 240 MHz", (1.2 / 2.4, 1.7 / 2.0),
           "published MicroPython benchmarks: ESP32-S3 about 2.2x (2.0-2.4x) a real RP2040",
           False),
    Target("teensy41", "mimxrt", "i.MX RT1062, Cortex-M7 600 MHz", (1.2 / 10.0, 1.7 / 6.0),
           "GUESS from the clock and the M7's dual issue and caches: 6-10x a real RP2040", False),
    Target("nucleo_h743", "stm32", "STM32H743, Cortex-M7 400 MHz", (1.2 / 7.0, 1.7 / 4.0),
           "GUESS from the clock (MicroPython's 400 MHz default) and the M7: 4-7x a real "
           "RP2040", False),
)}
VIRTUAL = "virtual"  # no model: the virtual board at this host's full speed


def target(name: str) -> Target:
    """The target of that board name; a UserError naming the known ones otherwise."""
    if name not in TARGETS:
        raise hwconfig.HwConfigError("%s: no timing model for this board (targets: %s, or %s "
                                     "for full speed)" % (name, ", ".join(TARGETS), VIRTUAL))
    return TARGETS[name]


# ---- the model --------------------------------------------------------------------------
@dataclass(frozen=True)
class CycleCost:
    """One hand's cycle on one target, in target microseconds."""

    hand: str
    target: Target
    hz: int  # the rate the hand asks for
    stages: dict  # stage -> target us per cycle (telemetry: per frame / decimation)
    cpu_us: float
    blocking_us: float  # I2C + SPI transfers the CPU waits out
    uart_us: float  # the busiest UART line's time per cycle
    guessed: tuple  # what of this figure is a guess (driver classes, the slowdown)
    core1_us: float = 0.0  # a TELEMETRY frame's time on core 1 (0: no second core)
    core1_period_us: float = 0.0  # the time core 1 has for it: the telemetry period

    @property
    def core1_load(self) -> float:
        """The share of core 1's time its frames take (above 1: frames skipped)."""
        return self.core1_us / self.core1_period_us if self.core1_period_us else 0.0

    @property
    def cycle_us(self) -> float:
        return self.cpu_us + self.blocking_us

    @property
    def max_hz(self) -> float:
        """The highest rate the model gives (unrounded)."""
        return min(1e6 / self.cycle_us, 1e6 / self.uart_us if self.uart_us else math.inf)

    @property
    def holds_hz(self) -> int:
        """The rate the board holds, rounded down to two significant figures."""
        return round_down(self.max_hz)

    @property
    def headroom(self) -> float:
        """Spare fraction of the hand's period (negative: over budget)."""
        return 1.0 - max(self.cycle_us, self.uart_us) * self.hz / 1e6


def round_down(hz: float) -> int:
    """hz rounded down to two significant figures (1234 -> 1200, 157 -> 150)."""
    if hz < 10:
        return int(hz)
    step = 10 ** (int(math.log10(hz)) - 1)
    return int(hz // step * step)


def _linear(table: tuple, n: int) -> float:
    return table[0] + table[1] * n


def poll_share(hz: int) -> float:
    """The servo polls a cycle at a loop rate of hz (dexfw.loop's READBACK_HZ rule)."""
    return 1.0 / max(1, hz // READBACK_HZ)


def machine_calls(group: dict) -> int:
    """The data-moving machine calls a cycle of one driver group (MACHINE_CALLS)."""
    fixed, per_joint = MACHINE_CALLS[group["cls"]]
    if group["cls"].endswith("Mux") and group.get("args", {}).get("mux_addr") is None:
        fixed, per_joint = 0, 1  # no mux to select: a read a sensor
    return fixed + per_joint * len(group["joints"])


def emulated_stages(cfg: dict) -> tuple[dict, list]:
    """(stage -> emulated RP2040 us per cycle, guessed driver classes) of a compiled config."""
    guessed = []
    n = len(cfg["joints"])
    sample = servo = 0.0
    floored = MAP_US[0] < MAP_FIXED_FLOOR_US  # stages taken at their counted floor
    calls = sum(machine_calls(g) for g in cfg["encoders"] + cfg["servos"])
    polls = poll_share(cfg["loop"]["hz"])
    for g in cfg["encoders"]:
        fixed, per_joint = SAMPLE_US[g["cls"]]
        floor = SAMPLE_FIXED_FLOOR_US.get(g["cls"], 0.0)
        floored += fixed < floor
        sample += max(fixed, floor) + per_joint * len(g["joints"])
    for g in cfg["servos"]:
        fixed, per_motor = SERVO_US[g["cls"]]
        servo += per_motor * len(g["joints"])
        if g["cls"] in POLLED:
            goals = WRITE_GOALS_US.get(g["cls"], fixed)
            poll = fixed - goals - POLL_SAVED_US + READBACK_US[g["cls"]]
            floor = POLL_FLOOR_US.get(g["cls"], 0.0), WRITE_GOALS_FLOOR_US.get(g["cls"], 0.0)
            floored += (poll < floor[0]) + (goals < floor[1])
            servo += max(goals, floor[1]) + polls * max(poll, floor[0])
            calls -= 1 - polls  # the request's machine call: with a poll
        else:
            servo += fixed
    for g in cfg["encoders"] + cfg["servos"]:
        if g["cls"] in GUESSED and "the %s's cost" % g["cls"] not in guessed:
            guessed.append("the %s's cost" % g["cls"])
    mapping = max(MAP_US[0], MAP_FIXED_FLOOR_US) + MAP_US[1] * n
    if cfg.get("coupling"):
        mapping += COUPLING_US_PER_MOTOR * len(cfg["motors"])
    dec = cfg["loop"]["telemetry_decimation"]
    telemetry = _linear(TELEMETRY_US, n) / dec
    stages = {"overhead": overhead_count_us(cfg) * COUNT_RATIO["overhead"], "sample": sample,
              "map": mapping, "servo": servo,
              "telemetry": telemetry,
              "telemetry_present": _linear(TELEMETRY_PRESENT_US, len(cfg["motors"])) / dec,
              "run_loop": RUN_PASS_US * LOOP_COUNT_SCALE, "console": CONSOLE_US,
              "machine_calls": calls * MACHINE_CALL_EXTRA_US}
    guessed.append("the map stage's cost per joint")
    guessed.append("the calls saved since the calibration, the loop's own work and run's "
                   "pass (counted), the USB console, the real machine calls and the goals' "
                   "share of a servo bus (counted per operation)")
    guessed.append("the viper present positions' saving in telemetry")
    if floored:
        guessed.append("the bytecodes' cost in the stages counted from the code (floors)")
    if any(g["cls"] != "PCA9685Servos" for g in cfg["servos"]):
        guessed.append("the read-back's cost")
    return stages, guessed


def second_core(board: str) -> bool:
    """Whether the firmware makes TELEMETRY on a second core on that shipped board."""
    return bool(hwconfig.load_board(board).get("second_core"))


def _core1(cfg: dict, stages: dict, t: Target, blocking: float,
           guessed: list) -> tuple[float, float]:
    """On a second-core board: the telemetry stages become core 0's share, a contention
    stage is added (stages in target us, changed in place); (core 1's time a frame, the
    telemetry period), target us. The period is the configured one, or the cycle's when
    the board cannot hold that (a few rounds: the cycle depends on the contention)."""
    dec = cfg["loop"]["telemetry_decimation"]
    frame = (_linear(TELEMETRY_US, len(cfg["joints"]))
             + _linear(TELEMETRY_PRESENT_US, len(cfg["motors"])) + CORE1_FRAME_EXTRA_US)
    core1 = frame * t.factor * (1 + CONTENTION)
    stages["telemetry_present"] = 0.0  # on core 1
    period = 1e6 / cfg["loop"]["hz"]
    for _ in range(8):
        polls = math.ceil(core1 / period) + 1
        core0 = ((HANDOFF_US + CORE1_WRITE_US - CALL_US + polls * CORE1_POLL_US)
                 * LOOP_COUNT_SCALE + CALL_US
                 + SNAPSHOT_COPY_US * (3 * len(cfg["joints"]) + 2 * len(cfg["motors"])))
        stages["telemetry"] = core0 * t.factor / dec
        stages["contention"] = 0.0
        duty = min(1.0, core1 / (dec * period))
        stages["contention"] = sum(stages.values()) * CONTENTION * duty
        period = max(1e6 / cfg["loop"]["hz"], sum(stages.values()) + blocking)
    guessed.append("the second core's share of telemetry and the cores' contention for the "
                   "flash cache")
    return core1, dec * period


def cycle_cost(cfg: dict, target_name: str) -> CycleCost:
    """The model of a compiled config's cycle on a target."""
    t = target(target_name)
    stages, guessed = emulated_stages(cfg)
    stages = {k: v * t.factor for k, v in stages.items()}
    stages["contention"] = 0.0
    buses = cfg["board"]["buses"]
    blocking = uart = 0.0
    for bus, us in hwconfig.bus_time_us(cfg).items():
        if buses[bus]["kind"] == "uart":
            uart = max(uart, us)
        else:
            blocking += us
    core1 = core1_period = 0.0
    if second_core(target_name):
        core1, core1_period = _core1(cfg, stages, t, blocking, guessed)
    if not t.measured:
        guessed.append("the %s's slowdown" % t.name)
    return CycleCost(cfg["hand"], t, cfg["loop"]["hz"], stages, sum(stages.values()),
                     blocking, uart, tuple(guessed), core1, core1_period)


# ---- HOST mode: a streamed command coming in over the USB console -----------------------
# The rates above are a TELEOP cycle's with a quiet link (the host only listens). In HOST
# mode the host streams TARGETS (or chunks of timed points), and the cycle a frame arrives
# in reads and handles it. MicroPython's stdin gives a USB console's bytes one at a time
# (select says only that one waits, and a longer read blocks until it is full), so
# dexfw.stdioconsole's readinto asks ipoll and reads one byte, per byte: two C method
# calls (taken as machine calls, CALL_US: GUESS) and 25 bytecodes (its listing's loop:
# `bench/opcount.py firmware/dexfw/stdioconsole.py readinto`), and the frame's COBS
# decoding and CRC-32 in viper (~1.4 us a byte: issue 15's 100-byte figures).
COMMAND_BYTE_US = 2 * CALL_US + 25 * OPCODE_US + 1.4
# GUESS: the rest of a TARGETS' handling, per frame: Link.next_frame, FrameReader.feed,
# _collect and _complete, the dispatch, the TARGETS handler, the apply-once test and mark,
# set_host_targets and points.clear, the ACK (ack, send, FrameWriter.finish): ~12 method
# calls and ~80 bytecodes, a pack_into (a builtin), the ACK's COBS and CRC (9 bytes) and
# its write (a machine call). Not counted from listings.
COMMAND_FIXED_US = 12 * METHOD_US + 80 * OPCODE_US + BUILTIN_US + 9 * 1.4 + CALL_US
STREAM_HZ = 100  # the host's usual TARGETS rate (dexlink teleop and run-policy send goals at
# the input's or the policy's rate; 100 Hz is teleop's resend rate)


def targets_frame_bytes(n_joints: int) -> int:
    """A TARGETS frame's bytes on the wire: header, 2 bytes a joint, CRC, COBS's code byte
    and the delimiter (one code byte: the payload is under 254 bytes)."""
    from dexproto import catalog
    return catalog.HEADER_SIZE + 2 * n_joints + catalog.CRC_SIZE + 2


@dataclass(frozen=True)
class CommandCost:
    """A streamed TARGETS on a USB console, in target us (HOST mode)."""

    frame_bytes: int
    us: float  # added to the cycle the frame arrives in
    cycle_us: float  # that cycle (the TELEOP cycle's plus this)
    stream_hz: int
    mean_cycle_us: float  # a cycle on average, TARGETS arriving at stream_hz
    uart_us: float  # the busiest UART line's time a cycle (bounds the rate as in CycleCost)

    @property
    def holds_hz(self) -> int:
        """The rate the loop holds on average with the stream (overruns on the cycles a
        frame arrives in whenever cycle_us is over the period)."""
        return round_down(min(1e6 / self.mean_cycle_us,
                              1e6 / self.uart_us if self.uart_us else math.inf))


def host_stream_cost(cfg: dict, target_name: str, stream_hz: int = STREAM_HZ) -> CommandCost:
    """What a streamed TARGETS costs a compiled config's loop on a board with a USB
    console (HOST mode), on top of cycle_cost's quiet-link cycle."""
    t = target(target_name)
    base = cycle_cost(cfg, target_name)
    nbytes = targets_frame_bytes(len(cfg["joints"]))
    us = (COMMAND_FIXED_US + COMMAND_BYTE_US * nbytes) * t.factor
    per_cycle = min(1.0, stream_hz / cfg["loop"]["hz"])  # frames a cycle, on average
    return CommandCost(nbytes, us, base.cycle_us + us, stream_hz,
                       base.cycle_us + us * per_cycle, base.uart_us)


def hand_cost(hand, board: str) -> CycleCost:
    """The model of a hand (name or file) compiled for a shipped board."""
    return cycle_cost(hwconfig.compile_config(hand, board, calibration=False), board)


def stated_rates(board: str) -> dict:
    """The [holds_hz] table of a board description: {hand name: Hz}."""
    table = hwconfig.read_toml(hwconfig.board_path(board)).get("holds_hz", {})
    return dict(table) if isinstance(table, dict) else {}


def rate_warning(cfg: dict, name: str) -> str | None:
    """A warning when the hand asks for more than the board `name` holds, with the
    numbers; None when it fits or that board has no model."""
    if name not in TARGETS:
        return None
    c = cycle_cost(cfg, name)
    if c.holds_hz >= c.hz:
        return None
    bus = ", I2C/SPI waits %.0f us" % c.blocking_us if c.blocking_us else ""
    return ("%s asks for %d Hz, but %s holds about %d Hz by the cost model (cycle %.0f us: "
            "CPU %.0f us%s%s): the loop will overrun; lower [loop] hz or use a faster board "
            "(bench/firmware.py prints the model)"
            % (cfg["hand"], c.hz, name, c.holds_hz, c.cycle_us, c.cpu_us, bus,
               "; model guesses " + ", ".join(c.guessed) if c.guessed else ""))


# ---- the virtual board timed as a target -------------------------------------------------
def vboard_timing(name: str) -> dict | None:
    """What the virtual board needs to run at the target's speed (the flashed config's
    "sim.target"; None for the virtual board's full speed). Integers: the board side
    keeps its arithmetic allocation-free."""
    if name == VIRTUAL:
        return None
    t = target(name)
    return {"name": t.name,
            "cpu_x1024": round(VBOARD_EMULATED_PER_X86 * t.factor * 1024),
            "probe_ref_us": X86_PROBE_US,
            "call_us": max(1, round(CALL_US * t.factor)),
            "ticks_us": max(1, round(TICKS_US * t.factor)),
            "uart_txbuf": t.uart_txbuf, "turnaround_us": t.turnaround_us}


def hand_board(hand) -> str | None:
    """The board a hand file says it is made for (its top-level `board`), or None."""
    value = hwconfig.load_hand(hand).get("board")
    return value if isinstance(value, str) else None


def resolve_target(hand, asked: str | None) -> str:
    """The target a virtual board runs as: the one asked for, else the board the hand is
    made for, else the virtual board's full speed."""
    name = asked or (hand_board(hand) if hand is not None else None) or VIRTUAL
    if name != VIRTUAL:
        target(name)
    return name
