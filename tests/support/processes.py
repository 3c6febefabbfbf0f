"""What this test process holds: its open file descriptors and its child processes (Linux
/proc), to check that a board leaves nothing behind."""
from __future__ import annotations

import os


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def child_pids() -> set[int]:
    me = str(os.getpid())
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        pids.add(int(entry))
            except OSError:
                pass  # it ended meanwhile
    return pids
