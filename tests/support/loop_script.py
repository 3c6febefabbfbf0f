"""A MicroPython script that runs the real firmware loop (dexfw.loop.Firmware) on the
virtual board's simulated rig (vmachine's HAL, manual clock) behind a BufferConsole:
`fw` the loop, `con` its console, `cfg` the config; the test's own lines follow."""
from __future__ import annotations

from conftest import ROOT
from dexlink.hwconfig import dumps

SIM_BOARD = ROOT / "host" / "dexlink" / "sim" / "board"  # on MICROPYPATH for vmachine

PRELUDE = r'''
import json, gc, vworld, vmachine
vworld.manual_clock()
cfg = json.loads(%r)
vmachine.load_rig(cfg)
from dexfw.bufconsole import BufferConsole
from dexfw import build
from dexfw.loop import Firmware
enc, srv = build.build(vmachine, cfg)
con = BufferConsole()
fw = Firmware(vmachine, con, cfg, enc, srv, 0, b"virtual")
'''


def loop_script(cfg: dict, body: str) -> str:
    """The prelude for cfg, then body (MicroPython source)."""
    return PRELUDE % dumps(cfg) + body
