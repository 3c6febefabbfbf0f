"""Scheduling priority of the world's render process, and the host's garbage collector.

The board's interpreter is one process beside the host's on a machine of a few cores;
its 1 kHz loop overruns whenever it wakes to find both cores taken. The RGB-D render
process, the world's longest bursts (several ms a frame), runs at RENDER_NICE: under
contention the board's interpreter gets the larger share. SCHED_IDLE for it (a waking
task preempts an idle-policy one at once) was tried and left: on a loaded machine it
got no CPU for seconds and the camera stalled; at nice 10 it keeps about a tenth of a
contended core. The physics and tactile threads stay at normal priority: they hold the
host's interpreter lock in short bursts, and at nice 5 the physics fell behind real time
on a loaded machine (real-time factor 0.78).

And in the host process, the collector's full passes stop visiting what the setup made
(spare_setup_from_collector): one such pass over the ~55,000 objects of a recording held
the interpreter lock for about 24 ms of CPU, and every camera thread of the host missed
a frame behind it.
"""
from __future__ import annotations

import gc
import os
import threading

RENDER_NICE = 10


def yield_to_board(nice: int, tid: int | None = None) -> None:
    """Lower a thread's priority (the calling one's by default) to `nice` (Linux keeps
    one per thread; new threads inherit their maker's). Never raises it; where that is
    impossible, nothing."""
    tid = threading.get_native_id() if tid is None else tid
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (AttributeError, OSError):  # not Linux, or not allowed: run as we are
        pass


def process_yields_to_board(nice: int) -> None:
    """yield_to_board for every thread of this process (Linux lists them in /proc)."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [threading.get_native_id()]
    for tid in tids:
        yield_to_board(nice, tid)


def spare_setup_from_collector() -> None:
    """Exempt every object alive now (modules, the world, the recording's set-up: they
    live as long as the process) from the cyclic collector's passes (gc.freeze; cheap,
    and repeating it is harmless). What is made later is collected as before."""
    gc.freeze()
