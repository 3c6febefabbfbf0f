"""Count the bytecodes a MicroPython function executes, from its listing (cost model, issue 15).

dexlink.targets prices the firmware's cycle per call (METHOD_US, FUNCTION_US, BUILTIN_US)
and per bytecode (OPCODE_US). This prints a function's listing (`micropython -v -v -v`,
which lists every code block it compiles) and counts the instructions on a path given
as offset ranges, so a count in the model can be checked and redone:

    .venv/bin/python bench/opcount.py firmware/dexfw/loop.py cycle          # listing
    .venv/bin/python bench/opcount.py firmware/dexfw/loop.py cycle all      # every instruction
    .venv/bin/python bench/opcount.py firmware/dexfw/mapping.py clip "0:4 + 16*(4:12 + 21:29 + 38:46) + 42:49"
    git worktree add /tmp/calib 4b54371^    # the code issue 15's emulated figures ran
    .venv/bin/python bench/opcount.py --calibration /tmp/calib   # measured against counted
    .venv/bin/python bench/opcount.py --overhead .    # today's cycle's own work (iso16spi)

A path is arithmetic over ranges a:b (the instructions at offsets a <= offset < b):
`16*(4:12 + 21:29)` is a loop body taken 16 times. "all" counts every instruction once
(straight-line functions). The file is compiled by running it: its imports fail at once
(no MICROPYPATH), after the listing is printed. NAME may be 'name@line' when two code
blocks share a name (the line the block starts at, from the listing's "line=").

Besides the count it prints the calls on the path (CALL_FUNCTION, CALL_METHOD) and the
net count the model uses: a call's figure holds the load of the callable (and a method's
receiver: one load each, 2 for a method, 1 for a function), the call and its POP_TOP
(when the result is dropped); a module's function (mapping.f()) is a CALL_METHOD here,
priced as a function call: add 1 to the net count for each;
the callee's return (a constant's load + RETURN_VALUE, or RETURN_VALUE) is its own
figure's too, so a counted function body leaves out the return its path ends with
(--body: write the path's ranges in execution order).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

MICROPYTHON = Path(sys.executable).parent / "micropython"  # the venv's, as bench/firmware.py
BLOCK = re.compile(r"^File (.*), code block '(.*)' \(descriptor")
INSTR = re.compile(r"^(\d+) ([A-Z_]+)(.*)$")
LINE = re.compile(r"^\s+bc=0 line=(\d+)")


def listings(path) -> list:
    """[(name, first line, [(offset, opcode, argument)])] of every code block in a file."""
    out = subprocess.run([str(MICROPYTHON), "-v", "-v", "-v", str(path)], capture_output=True,
                         text=True, env={"MICROPYPATH": "/nonexistent"}).stdout
    blocks = []
    for line in out.splitlines():
        m = BLOCK.match(line)
        if m:
            blocks.append([m.group(2), 0, []])
            continue
        if not blocks:
            continue
        m = LINE.match(line)
        if m and not blocks[-1][1] and m.group(1) != "1":  # each block opens with line=1
            blocks[-1][1] = int(m.group(1))
            continue
        m = INSTR.match(line)
        if m:
            blocks[-1][2].append((int(m.group(1)), m.group(2), m.group(3).strip()))
    return blocks


def block(path, name: str) -> list:
    """The instructions of code block `name` (or 'name@line') in the file."""
    want, _, at = name.partition("@")
    found = [b for b in listings(path) if b[0] == want and (not at or b[1] == int(at))]
    if len(found) != 1:
        raise SystemExit("%s: %d code blocks named %s (use name@line)" % (path, len(found), name))
    return found[0][2]


def count(instrs: list, spec: str) -> tuple:
    """(instructions, calls, the last two opcodes) on the path `spec` (see the module's
    docstring). A call is its opcode, with "+POP_TOP" when its result is dropped."""
    end = []
    next_op = {here[0]: there[1] for here, there in zip(instrs, instrs[1:])}

    def rng(lo, hi):
        sel = [i for i in instrs if lo <= i[0] < hi]
        end[:] = [i[1] for i in sel[-2:]]  # the path's end: its return, for --body
        return Counted(len(sel), [i[1] + ("+POP_TOP" if next_op.get(i[0]) == "POP_TOP" else "")
                                  for i in sel if i[1] in ("CALL_FUNCTION", "CALL_METHOD")])

    if spec == "all":
        spec = "0:%d" % (instrs[-1][0] + 1)
    expr = re.sub(r"(\d+):(\d+)", r"rng(\1,\2)", spec)
    c = eval(expr, {"__builtins__": {}}, {"rng": rng})  # arithmetic over ranges only
    return c.n, c.calls, end


class Counted:
    """A count and the calls in it; + and integer * keep both."""

    def __init__(self, n, calls):
        self.n, self.calls = n, list(calls)

    def __add__(self, other):
        return Counted(self.n + other.n, self.calls + other.calls)

    def __rmul__(self, k):
        return Counted(k * self.n, self.calls * k)

    __mul__ = __rmul__


def net(end: list, n: int, calls: list, body: bool) -> int:
    """The bytecodes a count leaves to OPCODE_US once the calls' figures hold theirs."""
    held = sum((3 if c.startswith("CALL_METHOD") else 2) + c.endswith("+POP_TOP")
               for c in calls)  # load(s), call, POP_TOP (a used result: no POP_TOP)
    if body:
        held += 2 if end[-2:-1] and end[-2].startswith("LOAD_CONST") else 1
    return n - held


# ---- the calibration's code, counted ----------------------------------------------------
# issue 15's emulated figures were made on the code of 4b54371^ (bench/firmware.py's
# stages over its null HAL, iso16 and iso22, viper build, TELEOP, torque on, quiet link).
# Each stage as timed: per_call_us's loop pass (LOOP_US) and the stage closure's call
# (FUNCTION_US), then the closure's body and everything it calls, on the path the bench
# takes (checked by running that code: motors inside their limits, direction +1,
# present positions 0 and known, no encoder or servo bit changing, no bytes from the
# host). Rows: (file under the worktree, code block, path, times, kind). times: how often
# a cycle takes the path, arithmetic over n (joints, = servos here), e (encoder groups)
# and b (servo buses), negative for what is taken off. kind: "body", a function's body
# (its return is in its call's figure); "pass", a loop body's pass; "loop", a loop's
# control (increment, test, jump), priced a pass at LOOP_US, the measured empty loop
# (8 bytecodes in a range loop). "overhead" is the cycle's timed work less the four
# stages' (bench/firmware.py's cycle_dec10 - sample - map - servo - telemetry/10): the
# stage calls themselves cancel, their wrappers do not. Calls are priced apart
# (calib_calls), with the viper work.
D = "firmware/dexfw/"
BENCH = "bench.py"  # bench/firmware.py's SCRIPT, written out by calibration()
NULLHAL = "nullhal.py"  # and its null HAL
CALIB_ROWS = {
    "map": [  # mapping_: jm.map_exo(); jm.follow_exo(); jm.slew(); jm.drive()
        (BENCH, "mapping_", "all", "1", "body"),
        (D + "joints.py", "map_exo", "all", "1", "body"),
        (D + "mapping.py", "map_exo_of", "all", "1", "body"),
        (D + "joints.py", "follow_exo", "all", "1", "body"),
        (D + "joints.py", "slew", "all", "1", "body"),
        (D + "joints.py", "drive", "all", "1", "body"),
        (D + "mapping.py", "clip", "0:4 + 42:46 + 48:49", "1", "body"),  # setup, last test, return
        (D + "mapping.py", "clip", "4:12 + 21:29", "n", "pass"),  # a motor inside its limits
        (D + "mapping.py", "clip", "38:46", "n", "loop"),  # m += 1; m < n
        (D + "mapping.py", "to_servo", "0:4 + 34:38 + 39:41", "1", "body"),
        (D + "mapping.py", "to_servo", "4:19 + 27:30", "n", "pass"),  # direction +1
        (D + "mapping.py", "to_servo", "30:38", "n", "loop"),
    ],
    "telemetry": [  # telemetry: fw._send_telemetry(); con.tx_len = 0
        (BENCH, "telemetry", "all", "1", "body"),
        (D + "loop.py", "_send_telemetry", "all", "1", "body"),
        (D + "replies.py", "send_telemetry", "all", "1", "body"),
        (D + "replies.py", "_pack_telemetry_head", "all", "1", "body"),
        (D + "joints.py", "read_present", "all", "1", "body"),
        (D + "mapping.py", "from_servo", "0:6 + 55:62", "1", "body"),
        (D + "mapping.py", "from_servo", "6:13 + 25:40 + 48:51", "n", "pass"),  # known, direction +1
        (D + "mapping.py", "from_servo", "51:59", "n", "loop"),
        (D + "joints.py", "mark_unread", "0:4 + 41:50", "1", "body"),
        (D + "joints.py", "mark_unread", "4:19 + 31:37", "n", "pass"),  # present known
        (D + "joints.py", "mark_unread", "37:47", "n", "loop"),
        (D + "mapping.py", "pack_joints_of", "all", "1", "body"),
        (D + "link.py", "send", "0:33 + 49:64", "1", "body"),  # the whole frame written
        ("protocol/dexproto/frame.py", "finish", "0:10 + 24:85", "1", "body"),
        ("protocol/dexproto/frame.py", "_put_header", "all", "1", "body"),
        ("protocol/dexproto/frame.py", "get", "0:10 + 26:28", "2", "body"),  # views made before
        ("protocol/dexproto/crcbuf.py", "append_crc", "all", "1", "body"),  # ViperCRC's (32-bit port)
        (D + "bufconsole.py", "write", "0:20 + 32:50", "1", "body"),
    ],
    "sample": [  # sample: for e in fw.encoders: e.sample(jm.raw, jm.enc_status)
        # iso16 only (AS5600 mux, 8 sensors a group): in the steady state every sensor
        # reads no magnet (the null HAL's zeros): the angle is kept, one STATUS check a
        # sweep a group (k == _check), after which that sensor's read sets the pointer
        (BENCH, "sample", "0:5 + 5:7 + 24:26", "1", "body"),
        (BENCH, "sample", "5:24", "e", "pass"),
        (D + "drivers/i2cmux.py", "sample", "0:10 + 36:40 + 41:65", "e", "body"),
        (D + "drivers/i2cmux.py", "sample", "12:34", "n", "pass"),
        (D + "drivers/i2cmux.py", "sample", "10:12 + 34:40", "n", "loop"),
        (D + "drivers/i2cmux.py", "_try_read", "0:41", "n", "body"),  # mux: select, then _read
        (D + "drivers/as5600.py", "_read", "0:5 + 16:38 + 60:72 + 92:94", "n - e", "body"),
        (D + "drivers/as5600.py", "_read", "0:22 + 39:72 + 92:94", "e", "body"),  # the checked one
        (D + "drivers/as5600.py", "_check_magnet", "all", "e", "body"),
        (D + "drivers/as5600.py", "magnet_bits", "0:8", "e", "body"),  # no magnet
        (D + "drivers/i2cmux.py", "vouch", "0:14 + 20:22", "e", "body"),
        (D + "drivers/i2cmux.py", "_unselect", "0:17 + 39:41", "e", "body"),
        (D + "drivers/as5600.py", "_sweep_done", "0:17 + 22:24", "e", "body"),
    ],
    "servo": [  # servo: for b in fw.servos: b.write_goals(jm.servo_goal); b.poll(...)
        # the null HAL answers nothing: a poll waits timeout_polls (3) polls for the
        # one servo it asked (read_group 1), then expires it and asks the next
        (BENCH, "servo", "0:5 + 5:7 + 34:36", "1", "body"),
        (BENCH, "servo", "5:34", "b", "pass"),
        (D + "drivers/feetech.py", "write_goals", "0:6 + 18:22 + 23:53", "b", "body"),
        (D + "drivers/feetech.py", "write_goals", "8:16", "n", "pass"),
        (D + "drivers/feetech.py", "write_goals", "6:8 + 16:22", "n", "loop"),
        (D + "drivers/feetech.py", "_put_goal", "all", "n", "body"),
        (D + "drivers/servobus.py", "counts_from_cdeg", "0:20 + 23:27 + 30:32", "n", "body"),
        (D + "drivers/feetech.py", "finish_packet", "all", "b + b / 3", "body"),
        (NULLHAL, "write", "all", "b + b / 3", "body"),
        (D + "drivers/servobus.py", "poll", "0:10 + 19:44", "2 * b / 3", "body"),  # waits
        (D + "drivers/servobus.py", "poll", "0:10 + 19:41 + 44:59", "b / 3", "body"),
        (D + "drivers/servobus.py", "_receive", "0:11 + 87:91 + 93:95", "b", "body"),
        (NULLHAL, "any", "all", "b", "body"),
        (D + "drivers/servobus.py", "_expire", "0:6 + 52:56 + 57:69", "b / 3", "body"),
        (D + "drivers/servobus.py", "_expire", "8:14", "n / 3", "pass"),
        (D + "drivers/servobus.py", "_expire", "15:50", "b / 3", "pass"),  # the one asked
        (D + "drivers/servobus.py", "_expire", "6:8 + 50:56", "n / 3", "loop"),
        (D + "drivers/servobus.py", "_request", "0:12 + 39:43 + 44:64 + 72:86", "b / 3", "body"),
        (D + "drivers/servobus.py", "_request", "14:24 + 31:37", "b / 3", "pass"),
        (D + "drivers/servobus.py", "_request", "12:14 + 37:43", "b / 3", "loop"),
        (D + "drivers/feetech.py", "_send_request", "0:19 + 29:51", "b / 3", "body"),
    ],
    "overhead": [
        (BENCH, "cycle", "all", "1", "body"),  # fw.cycle(time.ticks_us()); con.tx_len = 0
        (D + "loop.py", "cycle", "0:40 + 58:111 + 127:129", "1", "body"),  # TELEOP, torque on
        (D + "loop.py", "_commands", "0:23", "1", "body"),
        (D + "link.py", "start_cycle", "all", "1", "body"),
        (D + "link.py", "next_frame", "0:12 + 14:21 + 24:62", "1", "body"),  # one read, no bytes
        (D + "bufconsole.py", "readinto", "0:24", "1", "body"),
        (D + "breakin.py", "check", "0:8 + 24:26", "1", "body"),  # nothing pending
        (D + "loop.py", "_sense", "0:4 + 4:6 + 25:44", "1", "body"),
        (D + "loop.py", "_sense", "4:25", "e", "pass"),  # a pass an encoder group
        (D + "faults.py", "check_encoders", "0:9 + 26:33", "1", "body"),
        (D + "faults.py", "_encoder_change", "all", "1", "body"),
        (D + "loop.py", "_drive", "0:20 + 20:22 + 34:36", "1", "body"),
        (D + "loop.py", "_drive", "20:34", "b", "pass"),  # a pass a servo bus
        (D + "loop.py", "_poll_servos", "0:8 + 8:10 + 25:27", "1", "body"),
        (D + "loop.py", "_poll_servos", "8:25", "b", "pass"),
        (D + "faults.py", "check_servos", "0:9 + 26:33", "1", "body"),
        (D + "faults.py", "_servo_change", "all", "1", "body"),
        (D + "loop.py", "_report", "0:18 + 47:49", "0.9", "body"),  # 9 cycles in 10
        (D + "loop.py", "_report", "0:31 + 41:49", "0.1", "body"),  # the telemetry cycle
        # less the stages' wrappers as timed (their stage calls cancel the cycle's):
        (BENCH, "sample", "0:5 + 5:7 + 24:26", "-1", "body"),
        (BENCH, "sample", "5:24", "-e", "pass"),
        (BENCH, "mapping_", "all", "-1", "body"),
        (BENCH, "servo", "0:5 + 5:7 + 34:36", "-1", "body"),
        (BENCH, "servo", "5:34", "-b", "pass"),
        (BENCH, "telemetry", "all", "-0.1", "body"),
    ],
}
# Module functions called as mapping.f() (a CALL_METHOD in the listing) priced as
# function calls: one bytecode each more than the net count gives.
# map: mapping.map_exo_of, .follow, .slew, .couple, .clip, .to_servo; telemetry:
# replies.send_telemetry, mapping.from_servo, .pack_joints_of, struct.pack_into;
# overhead: mapping.first_change twice.
# servo: busbytes.sum_bytes in each finish_packet.
CALIB_MODULE_CALLS = {"map": "6", "telemetry": "4", "overhead": "2", "sample": "0",
                      "servo": "b + b / 3"}


def calib_calls(stage: str, n: int, groups: int, b: int = 1) -> dict:
    """(price name -> count, viper and builtin work in us) of a stage as timed, per the
    model's per-operation figures (dexlink.targets). n: joints (= motors here); groups:
    encoder groups; b: servo buses."""
    if stage == "servo":  # per bus: write_goals and poll (the closure's), _put_goal and
        # counts_from_cdeg a servo, the UART's write (the null HAL's, with its len) and
        # finish_packet (with sum_bytes, viper) for the goals and a third of the time the
        # request, _receive and the UART's any every poll, a third of the time _expire,
        # _request, _send_request; write_goals' and _send_request's len
        return {"LOOP_US": 1, "FUNCTION_US": 1 + n + 2 * (b + b / 3),
                "METHOD_US": n + 6 * b + b / 3, "BUILTIN_US": 2 * b + 2 * b / 3,
                # a summed byte (GUESS: half a CRC-32 byte): goals 5 + 3 a servo, a READ 5
                "viper_us": 0.25 * (5 * b + 3 * n + 5 * b / 3)}
    body = 15 + 7 * n  # TELEMETRY: head + items
    if stage == "sample":  # a group: sample; a sensor: _try_read, writeto, _read, a read;
        # the checked sensor: _check_magnet, its readfrom_mem_into, magnet_bits, vouch;
        # _unselect and its writeto, _sweep_done (null-HAL methods: method calls)
        e = groups
        return {"LOOP_US": 1, "FUNCTION_US": 1 + 2 * e, "METHOD_US": e * 6 + 4 * n}
    if stage == "map":
        # bench pass + closure, 4 JointMap methods, map_exo_of, and 6 functions
        # (map_exo, follow, slew, couple viper; clip, to_servo plain)
        return {"LOOP_US": 1, "FUNCTION_US": 1 + 1 + 6, "METHOD_US": 4,
                "viper_us": (3 + 0.5 + 1.5 + 1.5) * n}  # map_exo, follow, slew, couple
    if stage == "telemetry":
        frame = 3 + body + 4 + 2  # header, body, CRC; COBS adds 1, the delimiter 1
        return {"LOOP_US": 1, "FUNCTION_US": 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1,
                # closure, send_telemetry, _pack_telemetry_head, from_servo, pack_joints_of,
                # and the viper pack_joints, crc_store, encode_into, copy_into
                "METHOD_US": 1 + 4 + 1 + 2 + 1 + 1,
                # _send_telemetry; read_present, mark_unread, send, finish; _put_header;
                # 2 views' get; append_crc (a bound method); the console's write
                "BUILTIN_US": 2 + 1 + 2,  # 2 min, send's len, write's 2 len
                "viper_us": 3.0 * n  # pack_joints: 7 bytes a joint (GUESS)
                + 0.508 * (3 + body) + 0.704 * (3 + body + 4)  # CRC-32, COBS: issue 15
                + 0.3 * frame,  # copy_into a byte (GUESS: half a CRC byte)
                "pack_into_us": 2 * TICKS_US + 3.9 * (6 + 2)}  # 6 + 2 values (GUESS)
    # overhead: fw.cycle + 13 methods in the cycle; 2 viper first_change; len, min;
    # ticks_us; less 3.1 bench passes and closure calls (cycle 1, stages 3 + 1/10)
    return {"LOOP_US": 1 - 3.1, "FUNCTION_US": 1 - 3.1 + 2, "METHOD_US": 1 + 13,
            "BUILTIN_US": 2, "TICKS_US": 1, "viper_us": 0.5 * 2 * n}  # first_change (GUESS)


METHOD_US, FUNCTION_US, LOOP_US, TICKS_US = 13.6, 10.3, 3.1, 5.7  # dexlink.targets'
PRICES = {"METHOD_US": METHOD_US, "FUNCTION_US": FUNCTION_US, "LOOP_US": LOOP_US,
          "BUILTIN_US": TICKS_US, "TICKS_US": TICKS_US}
MEASURED = {("servo", 16): 1239.0, ("servo", 22): 1838.0, ("sample", 16): 2038.0,
            ("overhead", 16): 442.0, ("overhead", 22): 440.0, ("map", 16): 797.0, ("map", 22): 1046.0,
            ("telemetry", 16): 1340.0, ("telemetry", 22): 1651.0}  # issue 15, emulated us


# iso16: 16 joints, 2 encoder groups (AS5600 mux), 1 Feetech bus; iso22: 22 joints, 4
# groups (MT6701 mux), 2 buses. overhead = cycle - sample - map - servo - telemetry / 10:
# iso16 4650 - 2038 - 797 - 1239 - 134 = 442; iso22 6612 - 3123 - 1046 - 1838 - 165 = 440.
HANDS = {16: (2, 1), 22: (4, 2)}


def calibration(worktree: Path, opcode_us: float, groups: dict = HANDS,
                loops_as_bytecodes: bool = False) -> list:
    """[(stage, n, measured, calls us, bytecodes, counted us)] on the calibration's code."""
    src = (worktree / "bench" / "firmware.py").read_text()
    start = src.index("SCRIPT = '''") + len("SCRIPT = '''")
    script = src[start:src.index("'''", start)].replace("%r", "'{}'").replace("%d", "50")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, BENCH).write_text(script)
        start = src.index("NULLHAL = '''") + len("NULLHAL = '''")
        Path(tmp, NULLHAL).write_text(src[start:src.index("'''", start)])
        cache = {}
        for (stage, n), measured in MEASURED.items():
            hand = {"n": n, "e": groups[n][0], "b": groups[n][1]}
            total = eval(CALIB_MODULE_CALLS[stage], {"__builtins__": {}}, hand)
            loops = 0
            for file, name, path, times, kind in CALIB_ROWS[stage]:
                full = Path(tmp, file) if file in (BENCH, NULLHAL) else worktree / file
                key = (str(full), name)
                if key not in cache:
                    cache[key] = block(full, name)
                instrs = cache[key]
                c, calls, end = count(instrs, path)
                k = eval(times, {"__builtins__": {}}, hand)  # arithmetic over its counts
                if kind == "loop" and not loops_as_bytecodes:  # a pass at LOOP_US
                    loops += k
                    continue
                total += k * net(end, c, calls, kind == "body")
            priced = calib_calls(stage, n, groups[n][0], groups[n][1])
            calls_us = sum(PRICES[k] * v for k, v in priced.items() if k in PRICES)
            calls_us += (priced.get("viper_us", 0.0) + priced.get("pack_into_us", 0.0)
                         + loops * LOOP_US)
            rows.append((stage, n, measured, calls_us, total, calls_us + total * opcode_us))
    return rows


# ---- today's cycle, its own work counted ---------------------------------------------------
# The model's "overhead" stage (dexlink.targets.OVERHEAD_COUNT) is what the cycle does
# that no other stage figure holds, on the model's cycle (TELEOP, torque on, quiet link,
# configured board, no frame out on core 1): Firmware.run's call of cycle, the cycle's own
# lines, the console's any() (the bench's memory console: CONSOLE_US adds the USB
# console's difference), FaultReporter.check_servos on a poll cycle, the telemetry
# cycle's dispatch, and the devices.Pair that chain several devices of a kind. Left out,
# held elsewhere: run's pass less that call (RUN_PASS_US); each device call with the
# arguments its floor or stage counts (sample 54:60, write_goals 124:127, poll 156:162:
# SAMPLE_FIXED_FLOOR_US, WRITE_GOALS_FLOOR_US, POLL_FLOOR_US and the measured stages);
# map_exo_of's and drive_slewed's calls, arguments and map_exo_of's test (67:73, 75:77,
# 115:116: MAP_FIXED_FLOOR_US; a module function's second load, LOAD_GLOBAL before
# LOAD_METHOD, stays here); _send_telemetry's call (200:206: the telemetry stage, as the
# bench timed it); core 1's lock poll and write (9:25: CORE1_POLL_US, CORE1_WRITE_US).
# Rows as CALIB_ROWS; times over e (encoder drivers), b (servo buses), p (polls a cycle)
# and d (telemetry frames a cycle). A Pair's two calls are its devices' (their stage holds
# a call and the cycle site's arguments each): taken off, the site's arguments once more.
TODAY_ROWS = [
    (D + "loop.py", "run", "51:58", "1", "pass"),  # self.cycle(start)
    (D + "loop.py", "cycle", "0:9 + 25:39 + 45:54 + 60:67 + 73:75 + 86:99 + 106:115"
     " + 116:124 + 127:151 + 174:181 + 206:208", "1", "body"),
    (D + "bufconsole.py", "any", "all", "1", "body"),  # self._waiting(): the console's any
    (D + "loop.py", "cycle", "151:156 + 162:174", "p", "pass"),  # poll's site, check_servos'
    (D + "faults.py", "check_servos", "0:25 + 42:49", "p", "body"),  # no servo bit changed
    (D + "loop.py", "cycle", "181:190", "d", "pass"),  # not CALIBRATE: _send_telemetry
    (D + "devices.py", "sample@19", "all", "e - 1", "body"),
    (D + "loop.py", "cycle", "54:60", "-(e - 1)", "pass"),
    (D + "devices.py", "write_goals@23", "all", "b - 1", "body"),
    (D + "loop.py", "cycle", "124:127", "-(b - 1)", "pass"),
    (D + "devices.py", "poll@27", "all", "p * (b - 1)", "body"),
    (D + "loop.py", "cycle", "156:162", "-p * (b - 1)", "pass"),
]
# Module functions called as mapping.f(): map_exo_of, drive_slewed, check_servos'
# first_change (see CALIB_MODULE_CALLS).
TODAY_MODULE_CALLS = "2 + p"


def today_calls(e: int, b: int, p: float, nm: int) -> dict:
    """The calls TODAY_ROWS make that the overhead prices (price name -> count): cycle's
    from run, the console's any, check_servos and its first_change a poll (viper: 0.5 us
    a motor, GUESS as calib_calls'), a Pair's a device beyond the first."""
    return {"METHOD_US": 2 + p + (e - 1) + (b - 1) + p * (b - 1), "FUNCTION_US": p,
            "viper_us": p * 0.5 * nm}


def today_overhead(root: Path, e: int = 1, b: int = 1, p: float = 0.5, d: float = 0.1,
                   verbose: bool = False) -> tuple:
    """(calls per TODAY_ROWS' prices, net bytecodes a cycle) of the cycle's own work in the
    tree at root (defaults: iso16spi at 1 kHz)."""
    hand = {"e": e, "b": b, "p": p, "d": d}
    total = eval(TODAY_MODULE_CALLS, {"__builtins__": {}}, hand)
    for file, name, path, times, kind in TODAY_ROWS:
        instrs = block(root / file, name)
        c, calls, end = count(instrs, path)
        k = eval(times, {"__builtins__": {}}, hand)
        n = net(end, c, calls, kind == "body")
        total += k * n
        if verbose and k:
            print("  %-22s %-16s %-40s x %-5g net %3d" % (file.replace(D, ""), name, path[:40], k, n))
    return total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?")
    ap.add_argument("name", nargs="?", help="code block (function) name; none: list them")
    ap.add_argument("path", nargs="?", help="offset ranges ('0:4 + 16*(4:12)') or 'all'")
    ap.add_argument("--calibration", metavar="WORKTREE",
                    help="count the calibration's stages in a worktree of 4b54371^ "
                         "(file, name and path are not needed)")
    ap.add_argument("--overhead", metavar="ROOT",
                    help="count today's cycle's own work in a tree (the model's overhead; "
                         "iso16spi at 1 kHz, or --hand E,B,P,D,MOTORS)")
    ap.add_argument("--hand", default="1,1,0.5,0.1,16",
                    help="--overhead: encoder drivers, servo buses, polls a cycle, frames a "
                         "cycle, motors")
    ap.add_argument("--opcode-us", type=float, default=LOOP_US / 3,
                    help="emulated us a bytecode for --calibration (the model's OPCODE_US)")
    ap.add_argument("--loops-as-bytecodes", action="store_true",
                    help="--calibration: a loop's control at OPCODE_US a bytecode, not LOOP_US")
    ap.add_argument("--body", action="store_true",
                    help="a callee's body: its final return is in its call's figure")
    args = ap.parse_args(argv)
    if args.calibration:
        print("stage      n  measured  calls+viper  bytecodes  counted  measured/counted"
              "  us a bytecode that fits")
        for stage, n, measured, calls_us, codes, counted in calibration(
                Path(args.calibration), args.opcode_us,
                loops_as_bytecodes=args.loops_as_bytecodes):
            print("%-9s %2d  %8.0f  %11.0f  %9d  %7.0f  %16.2f  %8.2f"
                  % (stage, n, measured, calls_us, codes, counted, measured / counted,
                     (measured - calls_us) / codes))
        return
    if args.overhead:
        e, b, p, d, nm = (float(v) for v in args.hand.split(","))
        codes = today_overhead(Path(args.overhead), int(e), int(b), p, d, verbose=True)
        calls = today_calls(int(e), int(b), p, int(nm))
        us = sum(PRICES[k] * v for k, v in calls.items() if k in PRICES) + calls["viper_us"]
        print("net bytecodes %g (module calls' second loads in it: %s), calls %s"
              % (codes, TODAY_MODULE_CALLS, calls))
        print("counted %.1f emulated us (calls %.1f + bytecodes at %.3f); x the calibration's "
              "measured/counted 1.12: %.1f" % (us + codes * args.opcode_us, us,
                                               args.opcode_us, 1.12 * (us + codes * args.opcode_us)))
        return
    if not args.name:
        for name, line, instrs in listings(args.file):
            print("%-28s line %4d  %3d instructions" % (name, line, len(instrs)))
        return
    instrs = block(args.file, args.name)
    if not args.path:
        for off, op, arg in instrs:
            print("%3d %s %s" % (off, op, arg))
        return
    n, calls, end = count(instrs, args.path)
    print("%s %s: %d bytecodes, %d calls (%d method, %d function), net %d"
          % (args.name, args.path, n, len(calls), sum(c.startswith("CALL_METHOD") for c in calls),
             sum(c.startswith("CALL_FUNCTION") for c in calls), net(end, n, calls, args.body)))


if __name__ == "__main__":
    sys.exit(main())
