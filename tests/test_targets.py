"""Real-target timing (issue 15): the cost model against the board descriptions, the
rate warning, and the per-cycle kernels (viper against their plain twins, under the real
MicroPython interpreter). The virtual board timed as a target: tests/test_vtarget.py."""
from __future__ import annotations

import importlib.util
import json
import math

import pytest

from conftest import ROOT, run_micropython
from dexlink import hwconfig, targets
from dexlink.hwconfig import compile_config

HANDS = hwconfig.shipped_names(hwconfig.HANDS)


# ---- the model and the board descriptions ------------------------------------------------
@pytest.mark.parametrize("board", sorted(targets.TARGETS))
def test_each_board_states_the_rates_the_model_gives(board):
    stated = targets.stated_rates(board)
    model = {hand: targets.hand_cost(hand, board).holds_hz for hand in HANDS}
    assert stated == model, "hardware/boards/%s.toml [holds_hz] is not the model's" % board


def test_the_readme_board_table_says_the_same():
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and cells[0].strip("`") in targets.TARGETS:
            rows[cells[0].strip("`")] = [int(c) for c in cells[2:]]
        elif line.startswith("| board |"):
            header = [c.split()[0] for c in cells[2:]]
    assert header == HANDS and set(rows) == set(targets.TARGETS)
    for board, rates in rows.items():
        assert dict(zip(HANDS, rates)) == targets.stated_rates(board), board


def test_every_real_board_has_a_model_and_the_virtual_one_none():
    boards = set(hwconfig.shipped_names(hwconfig.BOARDS))
    assert boards - {targets.VIRTUAL} == set(targets.TARGETS)
    assert targets.stated_rates("virtual") == {}
    assert {"teensy41", "nucleo_h743"} <= boards


@pytest.mark.parametrize("board", ["teensy41", "nucleo_h743"])
@pytest.mark.parametrize("hand", HANDS)
def test_every_hand_compiles_for_the_m7_boards(hand, board):
    cfg = compile_config(hand, board, calibration=False)
    assert cfg["board"]["arch"] == "armv7emdp"
    hal = cfg["board"]["hal"].split(".")[-1]
    assert (ROOT / "firmware" / "dexfw" / (hal + ".py")).is_file()


def test_the_calibration_reproduces_the_emulated_figures():
    """The tables give back issue 15's emulated RP2040 figures they were fitted to."""
    iso16, _ = targets.emulated_stages(compile_config("iso16", "virtual", calibration=False))
    iso22, _ = targets.emulated_stages(compile_config("iso22", "virtual", calibration=False))
    assert iso16["sample"] == pytest.approx(2038, abs=1)
    assert iso22["sample"] == pytest.approx(3123, abs=1)
    assert iso16["telemetry"] * 10 == pytest.approx(1340, abs=1)
    assert iso22["telemetry"] * 10 == pytest.approx(1651, abs=1)
    assert targets.TARGETS["pico"].slowdown == (1.2, 1.7)


def test_the_goals_the_model_meets_and_the_rates_it_never_overstates():
    for board in ("teensy41", "nucleo_h743"):  # the SPI hand at 1 kHz, 20 % spare
        c = targets.hand_cost("iso16spi", board)
        assert c.hz == 1000 and c.holds_hz >= 1000 and c.headroom >= 0.2
    assert targets.hand_cost("iso16spi", "pico").holds_hz >= 500  # an RP2040: half of it
    pico = targets.hand_cost("iso16", "pico")  # the I2C hand on a Pico: nowhere near 1 kHz
    assert pico.blocking_us == pytest.approx(1960, abs=1) and pico.holds_hz < 200
    assert targets.round_down(157.9) == 150 and targets.round_down(1234) == 1200
    for board in targets.TARGETS:
        for hand in HANDS:
            c = targets.hand_cost(hand, board)
            assert c.holds_hz <= c.max_hz <= 1e6 / c.cycle_us
            if not targets.TARGETS[board].measured:
                assert any("slowdown" in g for g in c.guessed)


def test_no_stage_goes_under_the_count_of_the_code_it_runs():
    """The savings counted since the calibration took MAP_US's fixed part below zero and a
    Feetech poll under its own listing: the model takes the counted floor then, and says
    it guesses the bytecodes' cost there."""
    assert targets.MAP_US[0] < targets.MAP_FIXED_FLOOR_US  # why the floor is there
    spi = compile_config("iso16spi", "virtual", calibration=False)
    stages, guessed = targets.emulated_stages(spi)
    n = len(spi["joints"])
    assert stages["map"] == pytest.approx(targets.MAP_FIXED_FLOOR_US + targets.MAP_US[1] * n)
    polls = targets.poll_share(spi["loop"]["hz"])
    floor = (targets.WRITE_GOALS_FLOOR_US["FeetechBus"] + polls * targets.POLL_FLOOR_US["FeetechBus"]
             + targets.SERVO_US["FeetechBus"][1] * n)
    assert stages["servo"] >= floor - 1e-9
    assert stages["sample"] >= targets.SAMPLE_FIXED_FLOOR_US["AS5048AChain"]
    assert any("floors" in g for g in guessed)
    for board in targets.TARGETS:
        for hand in HANDS:
            c = targets.hand_cost(hand, board)
            assert all(v >= 0 for k, v in c.stages.items() if k != "telemetry_present"), (hand, board)


def test_counted_only_figures_take_the_calibrations_count_ratio_never_below_the_count():
    """bench/opcount.py --calibration: counting the calibration's code gave 0.74-0.88 of the
    emulated driver and data stages and 1.09-1.14 of the cycle's own straight-line work.
    The loop's own counted work (run loop, frame-out test, core 0's telemetry share) takes
    the overhead's ratio; a ratio under 1 never lowers a count (the floors stand)."""
    assert targets.COUNT_RATIO["overhead"] > 1 > targets.COUNT_RATIO["map"]
    assert targets.LOOP_COUNT_SCALE == targets.COUNT_RATIO["overhead"]
    mid = (max(targets.COUNT_RATIO.values()) + min(targets.COUNT_RATIO.values())) / 2
    assert all(abs(r / mid - 1) <= 0.25 for r in targets.COUNT_RATIO.values())  # consistent
    spi = compile_config("iso16spi", "virtual", calibration=False)
    stages, _ = targets.emulated_stages(spi)
    assert stages["run_loop"] == pytest.approx(targets.RUN_PASS_US * targets.LOOP_COUNT_SCALE)
    # the cycle's own work: its count x the calibration's measured/counted for that work
    assert stages["overhead"] == pytest.approx(
        targets.overhead_count_us(spi) * targets.COUNT_RATIO["overhead"])
    assert targets.overhead_count_us(spi) == pytest.approx(111.35, abs=0.05)
    assert stages["console"] == targets.CONSOLE_US  # a machine call: measured, not scaled
    assert stages["map"] == pytest.approx(targets.MAP_FIXED_FLOOR_US
                                          + targets.MAP_US[1] * len(spi["joints"]))
    pico2 = targets.hand_cost("iso16spi", "pico2")  # core 0's share: its count x the ratio
    polls = math.ceil(pico2.core1_us / pico2.core1_period_us * 10) + 1
    counted = targets.HANDOFF_US + targets.CORE1_WRITE_US - targets.CALL_US \
        + polls * targets.CORE1_POLL_US
    copies = targets.SNAPSHOT_COPY_US * (3 * len(spi["joints"]) + 2 * len(spi["motors"]))
    core0 = counted * targets.LOOP_COUNT_SCALE + targets.CALL_US + copies
    assert pico2.stages["telemetry"] == pytest.approx(core0 * pico2.target.factor / 10)


def _opcount():
    spec = importlib.util.spec_from_file_location("bench_opcount", ROOT / "bench" / "opcount.py")
    opcount = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(opcount)
    return opcount


@pytest.mark.parametrize("hand", HANDS)
def test_the_overhead_is_the_count_of_todays_cycle(hand):
    """The overhead stage is counted from the firmware's listings (bench/opcount.py's
    TODAY_ROWS, each piece once: what a floor or stage holds is left out): the model's
    constants give back what the listing counts, for every shipped hand's drivers, buses,
    polls and telemetry; and the count lies under the top-down figure it replaced (that one
    double-booked work the floors hold since)."""
    opcount = _opcount()
    cfg = compile_config(hand, "virtual", calibration=False)
    e, b = len(cfg["encoders"]), len(cfg["servos"])
    p = targets.poll_share(cfg["loop"]["hz"])
    d = 1 / cfg["loop"]["telemetry_decimation"]
    codes = opcount.today_overhead(ROOT, e, b, p, d)
    calls = opcount.today_calls(e, b, p, len(cfg["motors"]))
    counted = (sum(getattr(targets, k) * v for k, v in calls.items() if k.endswith("_US"))
               + calls["viper_us"] + codes * targets.OPCODE_US)
    assert targets.overhead_count_us(cfg) == pytest.approx(counted)
    if hand == "iso16spi":
        assert codes == 66 and calls["METHOD_US"] == 2.5  # the comment's figures
    assert targets.overhead_count_us(cfg) * targets.COUNT_RATIO["overhead"] \
        < targets.overhead_top_down_us(cfg)
    # the cycle calls each device straight: no loop pass left for a floor to hold
    ops = {op for _, op, _ in opcount.block(ROOT / "firmware/dexfw/loop.py", "cycle")}
    assert "GET_ITER" not in ops and "FOR_ITER" not in ops


def test_opcount_counts_a_path_of_the_real_listing(tmp_path):
    """bench/opcount.py reads the real interpreter's listing: a path's instructions, the
    calls on it, and what the per-call figures leave to the per-bytecode one."""
    opcount = _opcount()
    src = tmp_path / "f.py"
    src.write_text("def f(o, a, n):\n    m = 0\n    while m < n:\n        a[m] = 0\n"
                   "        m += 1\n    o.done(a)\n")
    instrs = opcount.block(src, "f")
    ops = [op for _, op, _ in instrs]
    assert ops[:3] == ["LOAD_CONST_SMALL_INT", "STORE_FAST", "JUMP"] and ops[-1] == "RETURN_VALUE"
    n, calls, end = opcount.count(instrs, "all")
    assert n == len(instrs) and calls == ["CALL_METHOD+POP_TOP"]
    # the method call holds 4 (o, LOAD_METHOD, the call, POP_TOP), the return 2
    assert opcount.net(end, n, calls, True) == n - 6
    body = [off for off, op, _ in instrs if op == "STORE_SUBSCR"][0]
    loop = opcount.count(instrs, "3*(%d:%d)" % (body - 3, body + 1))[0]
    assert loop == 3 * 4  # LOAD_CONST, LOAD_FAST a, LOAD_FAST m, STORE_SUBSCR, 3 passes


def test_host_mode_prices_a_streamed_targets_by_its_bytes_on_the_wire():
    """HOST mode: the USB console gives a frame's bytes one at a time, so a streamed
    TARGETS costs the cycle it arrives in per byte of the real encoder's frame."""
    from dexproto.stream import encode, make
    for hand in HANDS:
        cfg = compile_config(hand, "pico2", calibration=False)
        n = len(cfg["joints"])
        wire = encode(make("TARGETS", items=[(1234,)] * n), seq=7)
        assert targets.targets_frame_bytes(n) == len(wire), hand
        quiet = targets.cycle_cost(cfg, "pico2")
        host = targets.host_stream_cost(cfg, "pico2")
        assert host.us == pytest.approx((targets.COMMAND_FIXED_US + targets.COMMAND_BYTE_US
                                         * len(wire)) * quiet.target.factor)
        assert host.cycle_us > quiet.cycle_us and host.holds_hz <= quiet.holds_hz
    spi = targets.host_stream_cost(compile_config("iso16spi", "pico2", calibration=False),
                                   "pico2")
    assert spi.holds_hz < 1000 < targets.hand_cost("iso16spi", "pico2").holds_hz


def test_flash_warns_with_the_numbers_when_a_hand_asks_too_much():
    warning = targets.rate_warning(compile_config("iso16", "pico", calibration=False), "pico")
    assert "1000 Hz" in warning and "%d Hz" % targets.hand_cost("iso16", "pico").holds_hz \
        in warning and "I2C/SPI waits 1960 us" in warning
    spi = compile_config("iso16spi", "teensy41", calibration=False)
    assert targets.rate_warning(spi, "teensy41") is None
    assert targets.rate_warning(spi, "virtual") is None  # no model: no warning


# ---- the per-cycle kernels: viper against the plain twins ---------------------------------
KERNEL_PRELUDE = '''
import array, json
from dexfw import mapping
from dexfw.drivers import busbytes
import dexfw.mapping_viper as mv
import dexfw.drivers.busbytes_viper as bv
seed = 12345
def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
    return seed >> 8
'''
KERNELS = KERNEL_PRELUDE + '''
n = 16
codes = array.array("H", [0xFFFF, 0x7FFD, 0x4001, 0xF8, 0x04, 0x01, 4, n])
same = []
for trial in range(200):
    frame = bytearray(7 * n + 2)
    frame[7 * n] = rnd() % 4  # the sweep count: 0 plans a diagnostics read
    frame[7 * n + 1] = rnd() % n  # the chip it goes to
    for i in range(4 * n):
        frame[i] = rnd() & 0xFF
    if trial % 3 == 0:  # well-formed answers and commands too
        for k in range(n):
            w = (rnd() & 0x3FFF) | (0x4000 if rnd() & 7 == 0 else 0)
            p = w ^ (w >> 8)
            p ^= p >> 4
            p ^= p >> 2
            p ^= p >> 1
            w |= (p & 1) << 15
            frame[2 * k] = w >> 8; frame[2 * k + 1] = w & 0xFF
            c = codes[rnd() % 3]
            frame[2 * n + 2 * k] = c >> 8; frame[2 * n + 2 * k + 1] = c & 0xFF
    for k in range(n):
        frame[4 * n + k] = rnd() % 3
        frame[5 * n + k] = rnd() & 0x07
        frame[6 * n + k] = (k * 5) % n
    outs = []
    for fn in (busbytes.chain_collect_py, bv.chain_collect):
        buf = bytearray(frame)
        raw = array.array("H", [7] * n)
        status = bytearray(b"\\x80" * n)
        got = fn(buf, raw, status, codes)
        outs.append([got, bytes(buf).hex(), list(raw), list(status)])
    goal = array.array("h", [(rnd() % 65536) - 32768 for _ in range(n)])
    idx = [(k * 3) % n for k in range(n)]
    conv = array.array("H", [2048, 4096, 4095, 8, 3, rnd() & 0xFF, 7 + 3 * n, n] + idx)
    for fn in (busbytes.goals_into_py, bv.goals_into):
        pkt = bytearray(8 + 3 * n)
        fn(pkt, goal, conv)
        outs.append(bytes(pkt).hex())
    lo = array.array("h", [-(rnd() % 9000) for _ in range(n)])
    hi = array.array("h", [rnd() % 9000 for _ in range(n)])
    sign = array.array("h", [1 if rnd() & 1 else -1 for _ in range(n)])
    off = array.array("h", [(rnd() % 4000) - 2000 for _ in range(n)])
    q = array.array("h", [(rnd() % 30000) - 15000 for _ in range(n)])
    start = array.array("H", range(n + 1))  # an uncoupled hand: one joint a motor
    col = bytearray(range(n))
    coef = array.array("h", [4096] * n)
    mtab = array.array("h", [])  # per motor: b, lo, hi, direction, servo offset
    for m in range(n):
        mtab.extend(array.array("h", [0, lo[m], hi[m], sign[m], off[m]]))
    for fn in (mapping.to_motors_py, mv.to_motors):
        motor = array.array("h", [0] * n)
        servo = array.array("h", [0] * n)
        fn(q, motor, start, col, coef, mtab, servo, n)
        outs.append([list(motor), list(servo)])
    # ... and both as the clip then the servo frame, written out here
    motor = [min(max(q[m], lo[m]), hi[m]) for m in range(n)]
    want = [motor, [off[m] + motor[m] * sign[m] for m in range(n)]]
    same.append(outs[0] == outs[1] and outs[2] == outs[3] and outs[4] == outs[5] == want)
print("RESULT", json.dumps(same))
'''


@pytest.mark.micropython
def test_the_viper_kernels_match_their_plain_twins():
    proc = run_micropython(KERNELS, timeout=120)
    line = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("RESULT")][0]
    same = json.loads(line[len("RESULT "):])
    assert len(same) == 200 and all(same)


STS_ANSWERS = KERNEL_PRELUDE + '''
seed = 777
n = 6
ids = (3, 9, 1, 20, 7, 12)
kinds = {"answers": 0, "bad": 0, "echo": 0, "partial": 0}
same = []
for trial in range(300):
    rx = bytearray()
    while len(rx) < 120:
        r = rnd() % 8
        if r == 0:  # garbage
            rx.append(rnd() & 0xFF)
            continue
        sid = 0xFE if r == 1 else ids[rnd() % n] if r > 2 else rnd() % 40
        size = 12 if r != 2 else 6 + rnd() % 10
        pkt = bytearray([0xFF, 0xFF, sid, size - 4, rnd() % 3 if rnd() & 1 else 0])
        for i in range(size - 6):
            pkt.append(rnd() & 0xFF)
        pkt.append(0xFF ^ (sum(pkt[2:]) & 0xFF))
        if rnd() % 6 == 0:
            pkt[5 + rnd() % (size - 5)] ^= 0x10  # a bad checksum (or a bad size)
            kinds["bad"] += 1
        kinds["echo" if sid == 0xFE else "answers"] += 1
        rx += pkt
    rxn = len(rx) - (rnd() % 8 if trial % 2 else 0)
    kinds["partial"] += rxn < len(rx)
    book0 = bytearray(b"\\xff" * 256 + bytes(2 * n))
    for k in range(n):
        book0[ids[k]] = k
        book0[256 + k] = rnd() & 1
        book0[256 + n + k] = (k * 5) % n
    outs = []
    for fn in (busbytes.sts_answers_py, bv.sts_answers):
        io = array.array("h", [rxn, 2048, 4096, n, 9, 9, 12, 4, 15, 10, 0xFF ^ 0x70, 0x20, 0x40]
                         + [1] * n)  # then the loads read back
        book = bytearray(book0)
        present = array.array("h", [-32768] * n)
        status = bytearray([0x75] * n)
        got = fn(rx, io, book, present, status)
        outs.append([got, list(io), bytes(book).hex(), list(present), list(status)])
    same.append(outs[0] == outs[1])
print("RESULT", json.dumps([same, kinds]))
'''


@pytest.mark.micropython
def test_the_servo_answer_kernel_matches_its_plain_twin():
    """busbytes.sts_answers (Feetech status packets in one pass): viper and plain Python
    book the same answers from buffers of good answers, bad checksums, echoes, unawaited
    ids, garbage and a partial packet at the end."""
    proc = run_micropython(STS_ANSWERS, timeout=120)
    line = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("RESULT")][0]
    same, kinds = json.loads(line[len("RESULT "):])
    assert len(same) == 300 and all(same)
    assert min(kinds.values()) > 50, kinds


def test_the_second_core_takes_telemetry_off_core_0_on_the_picos_only():
    """Where the board says second_core (the Picos), the telemetry stage is core 0's share
    (snapshot, hand-over, write) and a contention guess is added; core 1 keeps up with
    every shipped hand. Elsewhere (a GIL, or one core) the single-core model, unchanged."""
    for board in targets.TARGETS:
        assert targets.second_core(board) == (board in ("pico", "pico2"))
        for hand in HANDS:
            cfg = hwconfig.compile_config(hand, board, calibration=False)
            c = targets.cycle_cost(cfg, board)
            single, _ = targets.emulated_stages(cfg)
            single_telemetry = (single["telemetry"] + single["telemetry_present"]) * c.target.factor
            if board in ("pico", "pico2"):
                assert 0 < c.stages["telemetry"] < single_telemetry / 3, (board, hand)
                assert c.stages["telemetry_present"] == 0 and c.stages["contention"] > 0
                assert 0 < c.core1_load < 1, (board, hand, c.core1_load)
                # core 1's frame is the whole single-core frame's work, slowed by the contention
                assert c.core1_us > single_telemetry * cfg["loop"]["telemetry_decimation"]
            else:
                assert c.stages["contention"] == 0 and c.core1_us == 0
                assert c.stages["telemetry"] == pytest.approx(single["telemetry"] * c.target.factor)


def test_the_contention_guess_is_spread_by_core_1s_duty():
    """The contention stage is CONTENTION x core 1's duty x the rest of core 0's CPU time:
    a longer telemetry period (more cycles between frames) slows core 0 less."""
    cfg = hwconfig.compile_config("iso16spi", "pico2", calibration=False)
    c10 = targets.cycle_cost(cfg, "pico2")
    cfg["loop"]["telemetry_decimation"] = 20
    c20 = targets.cycle_cost(cfg, "pico2")
    assert c20.stages["contention"] < c10.stages["contention"]
    rest = c10.cpu_us - c10.stages["contention"]
    duty = c10.core1_us / c10.core1_period_us
    assert c10.stages["contention"] == pytest.approx(rest * targets.CONTENTION * duty)

