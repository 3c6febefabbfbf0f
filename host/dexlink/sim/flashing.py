"""Flash a virtual board the way a real one is flashed (mpremote, reboot, HELLO check)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from dexlink.flash import flash
from dexlink.sim.vboard import VirtualBoard

VIRTUAL_BOARD = "virtual"  # hardware/boards/virtual.toml


def flash_virtual(board: VirtualBoard, hand: str | Path, board_name: str = VIRTUAL_BOARD,
                  progress=None, calibration=None, target=None):
    """Flash the firmware for `hand` into a running virtual board; returns its HELLO_REPLY.
    target: the real board it runs as (dexlink.targets; None: the hand's own board, if
    it names one, else full speed)."""
    with tempfile.TemporaryDirectory(prefix="dexlink-flash-") as work:
        return flash(board.port, hand, board_name, Path(work), progress or (lambda line: None),
                     calibration, target)
