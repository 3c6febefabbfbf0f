"""Scheduling priority of the world's threads and processes.

The board's interpreter is one process beside the host's on a machine of a few cores;
its 1 kHz loop overruns whenever it wakes to find both cores taken. The world's work can
wait a little without harm, so it yields:

- the RGB-D render process runs only on a core nothing else wants (SCHED_IDLE): its
  frames are bursts of several ms, and the kernel lets a waking task of normal policy
  preempt an idle-policy one at once, where between normal tasks the running one keeps
  its slice (EEVDF protects it whatever its nice value);
- the physics and tactile threads, which hold the host's interpreter lock (an idle-
  policy thread holding it would stall every other thread of the host), run at nice
  WORLD_NICE: their bursts are short, and under sustained contention the board's
  interpreter gets the larger share.
"""
from __future__ import annotations

import os
import threading

WORLD_NICE = 5


def yield_to_board(nice: int = WORLD_NICE) -> None:
    """Lower the calling thread's priority to `nice` (Linux keeps one per thread; its
    new threads inherit it). Never raises it; where that is impossible, nothing."""
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (AttributeError, OSError):  # not Linux, or not allowed: run as we are
        pass


def run_when_idle() -> None:
    """The calling thread (and the threads it starts) runs only on a core nothing else
    wants: SCHED_IDLE, or where there is no such policy, the lowest priority (nice 19)."""
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        yield_to_board(19)
