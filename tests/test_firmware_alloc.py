"""No allocation in the steady-state loop, for each driver family.

The real drivers (firmware/dexfw/drivers) on the virtual board's simulated devices
(host/dexlink/sim/board, vmachine's HAL, manual clock), under the real MicroPython
interpreter: after warm-up, thousands of cycles in TELEOP, HOST (with TARGETS, HEARTBEAT
and TIME_SYNC streaming in and telemetry going out), CALIBRATE, and HOST playing timed
points (a TARGET_POINTS chunk every 10 cycles) must leave gc.mem_alloc() where it was.
The simulated devices run in the same heap, so they are held to zero too.
"""
from __future__ import annotations

import pytest

from conftest import ROOT, run_micropython
from dexproto import catalog as C
from dexproto.stream import encode, make
from support.firmware_families import FAMILIES
from support.loop_script import loop_script

pytestmark = pytest.mark.micropython

SIM_BOARD = ROOT / "host" / "dexlink" / "sim" / "board"


def _host_frames(n_joints):
    frames = [make("TARGETS", items=[(500,)] * n_joints), make("HEARTBEAT"),
              make("TIME_SYNC", token=0xCAFEF00D)]
    return b"".join(encode(m, seq=i) for i, m in enumerate(frames)).hex()


# After support.loop_script's prelude (fw, con, cfg on the simulated rig).
MEASURE = '''
host_frames = bytes.fromhex(%r)
def steady(mode, chunks):
    for k in range(chunks):
        if mode == 2:
            con.feed(host_frames)
        fw.run(10)
        con.tx_len = 0
fw.run(300)
results = []
for mode in (1, 2, 3):
    if not fw.set_mode(mode):
        raise SystemExit("set_mode %%d refused" %% mode)
    steady(mode, 50)            # warm-up: first frames of each length, first faults
    gc.collect()
    before = gc.mem_alloc()
    steady(mode, 300)           # 3000 cycles
    results.append((mode, gc.mem_alloc() - before, fw.cycles))
# HOST mode playing timed points: a chunk of 8 points every 10 ms, each replacing the last
# one's from its time on, framed in place (the board's FrameWriter: nothing allocated).
import struct
from dexproto.frame import FrameWriter
pw = FrameWriter()
n = fw.jm.n
def chunk():
    struct.pack_into("<IIB", pw.body, 0, vmachine.ticks_us() + 5000, 10000, 1)
    at = 9
    k = 0
    while k < 8 * n:
        struct.pack_into("<h", pw.body, at, (k // n) * 37 + fw.cycles %% 200)
        at += 2
        k += 1
    con.feed(pw.finish(0x14, at))
def steady_points(chunks):
    playing = 0
    for k in range(chunks):
        chunk()
        fw.run(10)
        con.tx_len = 0
        playing += fw.points.count > 0
    return playing
if not fw.set_mode(2):
    raise SystemExit("set_mode 2 refused")
steady_points(50)
gc.collect()
before = gc.mem_alloc()
playing = steady_points(300)
print("POINTS", gc.mem_alloc() - before, playing, fw.points.dropped, fw.points.refused)
print("RESULT", json.dumps(results), fw.link.tx_dropped, con.tx_overflow)
'''


@pytest.mark.parametrize("family", FAMILIES)
def test_steady_state_loop_allocates_nothing(family):
    import json
    cfg = FAMILIES[family]()
    proc = run_micropython(loop_script(cfg, MEASURE % _host_frames(len(cfg["joints"]))),
                           paths=[SIM_BOARD], timeout=120)
    lines = proc.stdout.decode().splitlines()
    grown, playing, dropped, refused = (int(v) for v in [
        ln for ln in lines if ln.startswith("POINTS")][0].split()[1:])
    assert (grown, playing, dropped, refused) == (0, 300, 0, 0), (
        "%s: %d bytes allocated in 3000 cycles playing points" % (family, grown))
    line = [ln for ln in lines if ln.startswith("RESULT")][0]
    results, tx_dropped, overflow = line[len("RESULT "):].rsplit(" ", 2)
    results = json.loads(results)
    assert [m for m, _, _ in results] == [C.MODE_TELEOP, C.MODE_HOST, C.MODE_CALIBRATE]
    for mode, grown, _cycles in results:
        assert grown == 0, "%s: %d bytes allocated in 3000 cycles of mode %s" % (
            family, grown, C.MODE_NAMES[mode])
    assert results[-1][2] >= 300 + 3 * 3500
    assert (tx_dropped, overflow) == ("0", "0")
