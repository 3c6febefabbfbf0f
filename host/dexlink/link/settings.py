"""The numbers a link runs by, shared by its parts (so a change on the Link reaches them)."""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BAUD = 1_000_000


@dataclass
class LinkSettings:
    url: str
    baud: int = DEFAULT_BAUD
    timeout: float = 0.3  # one request attempt waits this long for its answer
    retries: int = 3  # attempts after the first, on silence
    handshake_timeout: float = 2.0  # how long HELLO is repeated before giving up
    reconnect: bool = True  # reopen a port that went away (else the link ends)
    heartbeat_s: float = 0.05  # HEARTBEAT this often in HOST mode when no TARGETS go out
    sync_s: float = 0.05  # a TIME_SYNC probe this often
    silence_s: float = 1.0  # no frame for this long: a `silent` event
    busy_s: float = 3.0  # how long a request keeps retrying while the board says busy
