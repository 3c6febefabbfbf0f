"""Waiting for what a link or a board publishes, with a deadline."""
from __future__ import annotations

import time


def wait_for(sub, pred, timeout=3.0):
    """The first item of a subscription that satisfies pred, or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        item = sub.get(timeout=0.05)
        if item is not None and pred(item):
            return item
    return None
