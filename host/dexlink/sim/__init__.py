"""The virtual board: the real firmware on the real MicroPython interpreter, on a pty."""
from dexlink.sim.errors import VirtualBoardError
from dexlink.sim.faults import FAULTS, OPERATOR_BEHAVIOURS, OPERATOR_FINGERS
from dexlink.sim.vboard import VirtualBoard

__all__ = ["FAULTS", "OPERATOR_BEHAVIOURS", "OPERATOR_FINGERS", "VirtualBoard",
           "VirtualBoardError"]
