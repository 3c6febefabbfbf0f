"""Publish and subscribe: the board's messages and the link's events, to bounded queues."""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from dexproto import catalog

EVENT = "EVENT"  # subscribe to this name for LinkEvents


@dataclass
class LinkEvent:
    """What happened to the link: connected, disconnected (the port went away), board_reset
    (the board rebooted behind an open port), reconnected (handshaken again, session
    re-applied), reconnect_failed, silent (no frame for silence_s), resumed."""

    kind: str
    detail: str = ""
    host_ns: int = field(default_factory=time.monotonic_ns)
    name: str = EVENT  # so a subscriber's queue can hold messages and events alike


class Subscription:
    """A bounded queue of messages (and events); when full the oldest is dropped and counted."""

    def __init__(self, names: frozenset, maxsize: int):
        self.names = names
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.overflows = 0

    def put(self, item) -> None:
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.overflows += 1
                except queue.Empty:
                    pass

    def get(self, timeout: float | None = None):
        """The next item, or None after timeout seconds."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out


class Subscriptions:
    """Who wants what: every published item goes to each subscription that names it."""

    def __init__(self):
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, *names: str, maxsize: int = 10000) -> Subscription:
        """A queue of the messages named (TELEMETRY, FAULT, LOG, ...) and/or EVENT."""
        for n in names:
            if n != EVENT and n not in catalog.BY_NAME:
                raise ValueError("unknown message name %r" % n)
        sub = Subscription(frozenset(names), maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, item) -> None:
        with self._lock:
            subs = list(self._subs)
        for s in subs:
            if item.name in s.names:
                s.put(item)

    def event(self, kind: str, detail: str = "") -> None:
        self.publish(LinkEvent(kind, detail))
