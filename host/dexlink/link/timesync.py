"""TIME_SYNC probes: sent with a token, stamped as late as possible, matched to replies."""
from __future__ import annotations

import threading
import time
from typing import Callable

from dexlink.clock import BoardClock
from dexproto.stream import Message, make

from .errors import LinkDown
from .requests import CTRL_C

SYNC_PROBES_KEPT = 64  # TIME_SYNC probes awaiting their reply (older ones were lost)


class SyncProbes:
    """The probes awaiting their reply; each reply that comes is an exchange for the clock."""

    def __init__(self, clock: BoardClock, kept: int = SYNC_PROBES_KEPT):
        self.clock = clock
        self.kept = kept
        self._token = 0
        self._sent: dict[int, int] = {}  # token -> send instant, oldest first
        self._lock = threading.Lock()  # the keeper adds and evicts, the reader takes

    @property
    def token(self) -> int:
        """The last probe's token."""
        return self._token

    @property
    def waiting(self) -> int:
        """Probes sent and not answered (at most `kept`: older ones count as lost)."""
        return len(self._sent)

    def probe(self, send: Callable) -> None:
        """Send one probe with send(msg, on_seq) (Sender.send); a link that is down
        sends nothing."""
        token = (self._token + 1) & 0xFFFFFFFF
        while CTRL_C in token.to_bytes(4, "little"):  # see Sender._ctrl_c_free
            token = (token + 1) & 0xFFFFFFFF
        self._token = token
        with self._lock:
            if len(self._sent) >= self.kept:  # the oldest was never answered
                del self._sent[next(iter(self._sent))]

        def stamp(seq):  # the send instant, taken as late as possible
            with self._lock:
                self._sent[token] = time.monotonic_ns()
        try:
            send(make("TIME_SYNC", token=token), stamp)
        except LinkDown:
            pass

    def answer(self, reply: Message) -> None:
        """A TIME_SYNC_REPLY: the exchange goes to the clock if its probe is known."""
        with self._lock:
            sent = self._sent.pop(reply.token, None)
        if sent is not None:
            self.clock.add_exchange(sent, reply.rx_us, reply.tx_us, reply.host_ns)
