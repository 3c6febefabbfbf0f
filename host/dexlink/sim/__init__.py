"""The virtual board: the real firmware on the real MicroPython interpreter, on a pty."""
from dexlink.sim.vboard import FAULTS, VirtualBoard, VirtualBoardError

__all__ = ["FAULTS", "VirtualBoard", "VirtualBoardError"]
