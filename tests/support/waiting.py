"""Waiting for what a link or a board publishes, with a deadline."""
from __future__ import annotations

import time

from dexlink.link import EVENT


def wait_for(sub, pred, timeout=3.0):
    """The first item of a subscription that satisfies pred, or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        item = sub.get(timeout=0.05)
        if item is not None and pred(item):
            return item
    return None


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def wait_event(sub, kind: str, timeout: float = 10.0):
    while True:
        e = sub.get(timeout)
        assert e is not None, "no %s event" % kind
        if e.name == EVENT and e.kind == kind:
            return e
