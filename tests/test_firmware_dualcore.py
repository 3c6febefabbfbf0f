"""TELEMETRY made on a second core (dexfw.telemetry; the Picos, issue 15), under the real
MicroPython Unix-port interpreter, whose threads run in parallel with no GIL as rp2's two
cores do: the real firmware loop on the virtual board's simulated rig (vmachine's HAL,
manual clock) sends, with the worker on a second thread, the TELEMETRY frames the
single-core path sends (decoded with the host's decoder), numbered in the order they go
out; nothing is allocated on either thread once warmed up; a hand-off that finds the
worker busy is skipped and counted, never waited for; the board picks the second core only
where its description says so and the port has no GIL.
"""
from __future__ import annotations

import json

import pytest

from conftest import ROOT, run_micropython
from dexlink.hwconfig import compile_config, dumps
from dexproto import catalog as C
from dexproto.stream import StreamDecoder, encode, make

pytestmark = pytest.mark.micropython

SIM_BOARD = ROOT / "host" / "dexlink" / "sim" / "board"
HANDS = {"iso16": ROOT / "hardware" / "hands" / "iso16.toml",
         "tendon16": ROOT / "hardware" / "hands" / "tendon16.toml"}

# Like support.loop_script's prelude, with the world clock started at 0 before vmachine
# is imported: the board clock's skew is then rounded the same way in every run (it
# follows the real time before manual_clock otherwise), so two runs are comparable.
PRELUDE = r'''
import json, gc, vworld
vworld.manual_clock()
vworld._world_us = 0
import vmachine
cfg = json.loads(%r)
vmachine.load_rig(cfg)
from dexfw.bufconsole import BufferConsole
from dexfw import build, mapping, telemetry
from dexfw.loop import Firmware
VIPER = %r
mapping.select(VIPER)
telemetry.select(VIPER)
enc, srv = build.build(vmachine, cfg)
con = BufferConsole()
fw = Firmware(vmachine, con, cfg, enc, srv, 0, b"virtual")
host_frames = bytes.fromhex(%r)
def drain():
    """Wait for core 1's frame in flight, and write it (as the next cycle would)."""
    while fw.tele_out:
        fw.core1.flush()
'''


def _host_frames(n_joints):
    frames = [make("TARGETS", items=[(500,)] * n_joints), make("HEARTBEAT"),
              make("TIME_SYNC", token=0xCAFEF00D)]
    return b"".join(encode(m, seq=i) for i, m in enumerate(frames)).hex()


def script(hand, body, viper=True):
    cfg = compile_config(HANDS[hand], "virtual")
    return PRELUDE % (dumps(cfg), viper, _host_frames(len(cfg["joints"]))) + body


def result(proc):
    line = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("RESULT ")][0]
    return json.loads(line[len("RESULT "):])


# IDLE, TELEOP, then HOST with TARGETS, HEARTBEAT and TIME_SYNC every 10 cycles (their
# ACKs and replies go out between the telemetry frames).
SESSION = '''
DUAL = %d
if DUAL:
    fw.start_core1()
out = bytearray()
def run(n):
    fw.run(n)
    out.extend(con.take())
run(300)
while not fw.set_mode(1):
    run(1)
run(1000)
if not fw.set_mode(2):
    raise SystemExit("HOST refused")
for k in range(100):
    con.feed(host_frames)
    run(10)
res = {"tx": bytes(out).hex(), "tx_frames": fw.link.tx_frames, "tx_dropped": fw.link.tx_dropped}
if DUAL:
    drain()
    res["tx"] = (bytes(out) + con.take()).hex()
    res["tx_frames"] = fw.link.tx_frames
    t = fw.core1
    res.update(made=t.made, skipped=t.skipped, reframed=t.reframed, error=repr(t.error))
    fw.stop()
print("RESULT", json.dumps(res))
'''


def telemetry_rows(messages):
    return [(m.fields, m.items) for m in messages if m.name == "TELEMETRY"]


@pytest.mark.parametrize("hand,viper", [("iso16", True), ("tendon16", True), ("iso16", False)])
def test_core_1_sends_the_frames_the_single_core_path_sends(hand, viper):
    single = result(run_micropython(script(hand, SESSION % 0, viper), paths=[SIM_BOARD],
                                    timeout=120))
    dual = result(run_micropython(script(hand, SESSION % 1, viper), paths=[SIM_BOARD],
                                  timeout=120))
    one = StreamDecoder().feed(bytes.fromhex(single["tx"]))
    two_decoder = StreamDecoder()
    two = two_decoder.feed(bytes.fromhex(dual["tx"]))
    assert two_decoder.dropped == 0 and dual["error"] == "None"
    rows_one, rows_two = telemetry_rows(one), telemetry_rows(two)
    assert len(rows_one) >= 200
    # Every hand-off made a frame or was skipped (the worker thread starved on a busy
    # host); the frames that went out are the single-core ones, in order.
    assert dual["made"] + dual["skipped"] == len(rows_one)
    assert len(rows_two) == dual["made"]
    sent = iter(rows_one)
    assert all(row in sent for row in rows_two), "a frame differs from the single-core one"
    # The other frames (ACKs, replies) are the same, in the same order.
    others = [(m.name, m.fields) for m in one if m.name != "TELEMETRY"]
    assert others and others == [(m.name, m.fields) for m in two if m.name != "TELEMETRY"]
    # Numbered in the order they went out, none lost: the host counts no gap.
    assert [m.seq for m in two] == list(range(len(two)))
    assert dual["tx_frames"] == len(two) and dual["tx_dropped"] == 0


REFRAME = '''
fw.start_core1()
fw.run(300)
while not fw.set_mode(1):
    fw.run(1)
fw.run(5)
drain()
con.take()
fw.core1.hand_off()             # a frame goes to core 1, numbered for the next frame...
fw.link.ack(C.HEARTBEAT, 7)     # ...but an ACK goes out first on core 0
drain()                          # core 0 frames the body again with the number due
from dexfw import replies
replies.send_telemetry(fw)      # the single-core path's frame of the same state
print("RESULT", json.dumps({"tx": con.take().hex(), "reframed": fw.core1.reframed,
                            "seq": fw.link.writer.seq}))
'''


def test_a_frame_core_0_sent_first_keeps_the_numbers_in_order():
    res = result(run_micropython(script("iso16", "from dexproto import catalog as C\n"
                                        + REFRAME), paths=[SIM_BOARD], timeout=120))
    ack, tele, reference = StreamDecoder().feed(bytes.fromhex(res["tx"]))
    assert (ack.name, tele.name, reference.name) == ("ACK", "TELEMETRY", "TELEMETRY")
    assert (tele.seq, reference.seq) == (ack.seq + 1, ack.seq + 2) and res["reframed"] == 1
    assert (tele.fields, tele.items) == (reference.fields, reference.items)


SKIP = '''
from dexfw.telemetry import Core1Telemetry
# The worker made but not started: core 1 is busy for ever with the first hand-off.
t = Core1Telemetry(fw)
fw.core1 = t
fw._core1_done = t.done.acquire
fw._send_telemetry = t.hand_off
fw.run(100)                      # 10 telemetry cycles: 1 hand-off, 9 skipped; none waited
res = {"skipped": t.skipped, "tx_frames": fw.link.tx_frames, "tx": con.take().hex(),
       "cycles": fw.cycles, "out": fw.tele_out}
t.start()                        # core 1 catches up: the frame of cycle 10 goes out first
drain()
for k in range(3):               # then one a telemetry cycle (waited for: a busy host
    fw.run(10)                   # may starve the worker's thread, which is not the test)
    drain()
res.update(after=con.take().hex(), skipped_after=t.skipped, made=t.made)
fw.stop()
print("RESULT", json.dumps(res))
'''


def test_a_busy_core_1_skips_the_frame_and_counts_it():
    res = result(run_micropython(script("iso16", SKIP), paths=[SIM_BOARD], timeout=120))
    assert (res["skipped"], res["tx_frames"], res["tx"], res["cycles"], res["out"]) == (
        9, 0, "", 100, 1)
    after = StreamDecoder().feed(bytes.fromhex(res["after"]))
    assert [m.cycle for m in after] == [10, 110, 120, 130]
    assert [m.seq for m in after] == [0, 1, 2, 3]
    assert res["skipped_after"] == 9 and res["made"] == 4


# TELEOP and HOST (commands streaming in), each 3000 cycles after a warm-up: gc.mem_alloc
# counts the whole heap, both threads' allocations. Each 10 cycles (one telemetry cycle)
# wait for core 1's frame: every hand-off makes one (a busy host cannot starve the worker
# into skipping, and the count below says all 300 were made).
ALLOC = '''
import micropython
fw.start_core1()
def steady(mode, chunks):
    for k in range(chunks):
        if mode == 2:
            con.feed(host_frames)
        fw.run(10)
        drain()
        con.tx_len = 0
fw.run(300)
results = []
before = made = skipped = 0  # the globals exist before the window (a new one grows the dict)
for mode in (1, 2):
    while not fw.set_mode(mode):
        fw.run(1)
    steady(mode, 50)
    drain()
    gc.collect()
    before = gc.mem_alloc()
    made = fw.core1.made
    skipped = fw.core1.skipped
    steady(mode, 300)
    drain()
    results.append([mode, gc.mem_alloc() - before, fw.core1.made - made,
                    fw.core1.skipped - skipped])
print("RESULT", json.dumps({"results": results, "error": repr(fw.core1.error),
                            "overflow": con.tx_overflow}))
fw.stop()
'''


@pytest.mark.parametrize("hand", sorted(HANDS))
def test_neither_core_allocates_in_the_steady_state(hand):
    res = result(run_micropython(script(hand, ALLOC), paths=[SIM_BOARD], timeout=180))
    assert [r[0] for r in res["results"]] == [C.MODE_TELEOP, C.MODE_HOST]
    for mode, grown, made, skipped in res["results"]:
        assert grown == 0, "%d bytes allocated in 3000 cycles of %s" % (grown, C.MODE_NAMES[mode])
        assert (made, skipped) == (300, 0), "core 1 made %d frames of 300" % made
    assert res["error"] == "None" and res["overflow"] == 0


SNAPSHOT = '''
from array import array
from dexfw import telemetry
from dexfw.telemetry_viper import snapshot
seed = 7
def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
    return seed >> 8
same = []
for trial in range(50):
    n = rnd() % 23
    nm = rnd() % 23
    exo = array("h", [(rnd() & 0xFFFF) - 32768 for _ in range(n)])
    goal = array("h", [(rnd() & 0xFFFF) - 32768 for _ in range(n)])
    present = array("h", [(rnd() & 0xFFFF) - 32768 for _ in range(nm)])
    flags = bytearray([rnd() & 0xFF for _ in range(n)])
    sstatus = bytearray([rnd() & 0xFF for _ in range(nm)])
    got = []
    for fn in (snapshot, telemetry.snapshot_py):
        s16 = array("h", [1] * (2 * n + nm))
        s8 = bytearray(n + nm)
        fn(exo, goal, present, flags, sstatus, s16, s8, n, nm)
        got.append((list(s16), list(s8)))
    same.append(got[0] == got[1] and got[0][0] == list(exo) + list(goal) + list(present)
                and got[0][1] == list(flags) + list(sstatus))
print("RESULT", json.dumps(same))
'''


def test_the_viper_snapshot_is_its_plain_twin():
    import json as _json
    proc = run_micropython("import json\n" + SNAPSHOT)
    same = _json.loads(proc.stdout.decode().split("RESULT ", 1)[1])
    assert len(same) == 50 and all(same)


CHOICE = '''
import json
from dexfw import app
cfgs = json.loads(%r)
print("RESULT", json.dumps({k: app.second_core(c) for k, c in cfgs.items()}))
'''


def test_the_second_core_only_where_the_board_has_one_and_no_gil_shares_it():
    from dexlink.flash import timed_config
    cfgs = {"pico2": compile_config(HANDS["iso16"], "pico2"),
            "pico": compile_config(HANDS["iso16"], "pico"),
            "esp32s3": compile_config(HANDS["iso16"], "esp32s3"),  # two cores, but a GIL
            "teensy41": compile_config(HANDS["iso16"], "teensy41"),
            "virtual": compile_config(HANDS["iso16"], "virtual"),
            # the virtual board timed as a Pico: single-core (sim/board/vtarget.py says why)
            "virtual as pico2": timed_config(HANDS["iso16"], "virtual", target="pico2")}
    got = result(run_micropython(CHOICE % json.dumps(cfgs)))
    assert got == {"pico2": True, "pico": True, "esp32s3": False, "teensy41": False,
                   "virtual": False, "virtual as pico2": False}


BOOT = '''
import json, vworld
vworld.manual_clock()
import vmachine
from dexfw import app
from dexfw.bufconsole import BufferConsole
cfg = json.loads(%r)
vmachine.load_rig(cfg)
with open("dexlink.json", "w") as f:
    f.write(%r)
con = BufferConsole()
fw = app.make_firmware("dexlink.json", vmachine, con)
fw.run(200)
while fw.tele_out:
    fw.core1.flush()
print("RESULT", json.dumps({"core1": fw.core1 is not None, "tx": con.take().hex(),
                            "made": fw.core1.made, "skipped": fw.core1.skipped}))
fw.stop()
'''


def test_the_boot_starts_the_worker_where_the_config_says_second_core():
    """dexfw.app from a config file: the virtual board's, with a second core as a Pico's."""
    cfg = compile_config(HANDS["iso16"], "virtual")
    cfg["board"]["second_core"] = True
    text = dumps(cfg)
    res = result(run_micropython(BOOT % (text, text), paths=[SIM_BOARD], timeout=120))
    assert res["core1"]
    got = StreamDecoder().feed(bytes.fromhex(res["tx"]))
    telemetry = [m for m in got if m.name == "TELEMETRY"]
    # 20 telemetry cycles: each a frame, or skipped if the host starved the worker's thread
    assert res["made"] + res["skipped"] == 20 and len(telemetry) == res["made"] > 0
    assert [m.seq for m in got] == list(range(len(got)))


def test_core_1s_functions_keep_their_frames_on_the_stack(tmp_path):
    """The per-frame functions of both sides (tests/test_vrig_frames.py's check): a heap
    frame would be an allocation per call, on core 1 too."""
    from test_vrig_frames import board_heap_frames
    source = ROOT / "firmware" / "dexfw" / "telemetry.py"
    heap = board_heap_frames(source, tmp_path)
    per_frame = {"hand_off", "_snap", "flush", "write", "_reframe", "_make", "_pack_head",
                 "_present"}
    assert per_frame <= set(_function_names(source))
    assert not heap & per_frame, sorted(heap & per_frame)


def _function_names(path):
    import ast
    return [n.name for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.FunctionDef)]


def test_a_port_without_viper_makes_the_frames_with_the_plain_snapshot(tmp_path):
    """telemetry_viper refused by the compiler (as a port without the viper emitter does,
    tests/test_firmware_noviper.py): dexfw.telemetry keeps snapshot_py by itself, and core
    1's frames are still the single-core ones."""
    import shutil
    shutil.copytree(ROOT / "firmware" / "dexfw", tmp_path / "dexfw")
    path = tmp_path / "dexfw" / "telemetry_viper.py"
    path.write_text(path.read_text().replace("@micropython.viper", "@micropython.no_such_emitter"))
    body = '''
assert not telemetry.VIPER and telemetry.snapshot is telemetry.snapshot_py
fw.start_core1()
for k in range(30):
    fw.run(10)
    drain()
got = con.take()
from dexfw import replies
replies.send_telemetry(fw)  # the single-core frame of the same state, next in line
print("RESULT", json.dumps({"tx": got.hex(), "ref": con.take().hex(), "made": fw.core1.made}))
fw.stop()
'''
    res = result(run_micropython(script("iso16", body), paths=[tmp_path, SIM_BOARD],
                                 timeout=120))
    frames = StreamDecoder().feed(bytes.fromhex(res["tx"]))
    ref = StreamDecoder().feed(bytes.fromhex(res["ref"]))[0]
    assert res["made"] == 30 and [m.name for m in frames] == ["TELEMETRY"] * 30
    assert [m.seq for m in frames + [ref]] == list(range(31))
    assert (frames[-1].fields, frames[-1].items) == (ref.fields, ref.items)
