"""Scheduling priority of the world's threads and processes.

The board's interpreter is one process beside the host's on a machine of a few cores;
its 1 kHz loop overruns whenever it waits for a core. The world's work (physics, tactile
shading, rendering) can wait a little without harm: it runs at a lower priority (a
higher nice value), so the interpreter always wins a contended core.
"""
from __future__ import annotations

import os
import threading

WORLD_NICE = 5  # physics and tactile threads: behind the interpreter, ahead of rendering
RENDER_NICE = 10  # the RGB-D render process


def yield_to_board(nice: int) -> None:
    """Lower the calling thread's priority to `nice` (Linux keeps one per thread; its
    new threads inherit it). Never raises it; where that is impossible, nothing."""
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (AttributeError, OSError):  # not Linux, or not allowed: run as we are
        pass
