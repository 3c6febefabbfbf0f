"""The virtual board's per-cycle functions keep their frames off the heap.

MicroPython allocates a call's frame on the heap (gc_alloc + gc_free, which the
steady-state allocation tests cannot see: nothing is left allocated) once its locals and
stack pass 88 bytes. On the rig's hot path that was the biggest single cost of a cycle
(bench/vrig.py). The frame sizes come from the real mpy-cross's output.
"""
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import vrig  # noqa: E402

BOARD = ROOT / "host" / "dexlink" / "sim" / "board"
# Functions every cycle calls (per sensor, per servo, per packet or per operator read).
HOT = {
    "vmachine": {"ticks_us", "writeto", "readfrom_into", "readfrom_mem_into", "write_readinto"},
    "vi2c": {"find", "_behind_muxes", "read_into", "refresh", "counts", "write", "set_pointer"},
    "vspi": {"write_readinto", "_selected", "transfer", "_word", "_command", "_read", "_angle",
             "parity"},
    "vservo": {"update", "position", "load", "write", "any", "readinto", "send", "parse",
               "field", "execute", "_sync_write", "_sync_write_one", "_sync_read",
               "_sync_read_one", "write_regs", "latch", "status", "_present", "_reply",
               "_checksum_and_send", "_stuff_and_send", "_crc_and_send", "size_at",
               "run_packet", "_run", "_crc_ok", "answers", "corrupt", "_put32"},
    "voperator": {"angle_cdeg", "_demo_cdeg", "_advance", "_sweep_cdeg", "_sweep_advance",
                  "raw_turn16", "min_jerk_q16"},
    "vworld": {"now_us", "advance_us", "rand32", "noise"},
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
