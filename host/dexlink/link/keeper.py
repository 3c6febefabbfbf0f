"""Keeping a link up: heartbeat, TIME_SYNC, silence, reconnection, board resets.

One thread. While the link is up it sends TIME_SYNC probes every sync_s and, in HOST
mode, a HEARTBEAT whenever no TARGETS fed the board's watchdog for heartbeat_s; it
reports silence. When the port fails it reconnects (reopen, handshake, re-apply what the
session set); when telemetry shows the board rebooted behind an open port, it
re-handshakes and re-applies.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from dexproto import catalog
from dexproto.stream import Message, make

from .errors import LinkDown, LinkError, NackError
from .handshake import describe_board
from .requests import Requests
from .settings import LinkSettings
from .stats import LinkStats
from .subscriptions import Subscriptions
from .timesync import SyncProbes
from .transport import Transport

QUIET_S = 0.3  # no frame for this long: the board may be rebooting ...
QUIET_PROBE_S = 1.0  # ... so probe it only this often


@dataclass
class Applied:
    """What this session set on the board, put back after a reconnection or a reboot."""

    mode: int | None = None
    config: dict | None = None  # SET_CONFIG's fields
    joints: dict[int, dict] = field(default_factory=dict)  # SET_JOINT's fields, by joint


class Keeper:
    """connect() reopens the port (raises LinkError); handshake() handshakes and returns
    the HELLO_REPLY. up: set while the link is handshaken; ended: set when it is closed."""

    def __init__(self, *, settings: LinkSettings, transport: Transport, requests: Requests,
                 probes: SyncProbes, stats: LinkStats, subscriptions: Subscriptions,
                 applied: Applied, up: threading.Event, ended: threading.Event,
                 connect: Callable[[], None], handshake: Callable[[], Message]):
        self.settings = settings
        self.transport = transport
        self.requests = requests
        self.probes = probes
        self.stats = stats
        self.subscriptions = subscriptions
        self.applied = applied
        self.up, self.ended = up, ended
        self.connect, self.handshake = connect, handshake
        self.last_rx_ns = 0  # the last good frame's arrival
        self.last_telemetry: Message | None = None
        # The board's loop cycle count last heard (TELEMETRY, or STATS: asked for at open and
        # at every re-handshake): a count below it means the board rebooted, also when it
        # did so before any of its telemetry reached this session.
        self._cycle_floor: int | None = None
        self._silent = False

    def start(self) -> threading.Thread:
        """Take the board's cycle count as the first floor (see heard), then keep the link
        on a thread of its own."""
        try:
            self._ask_cycles()
        except LinkError:
            pass  # no floor until its telemetry comes: the link still works
        t = threading.Thread(target=self._loop, name="dexlink-keeper", daemon=True)
        t.start()
        return t

    def heard(self, m: Message) -> None:
        """A good frame from the board (on the reader thread)."""
        self.last_rx_ns = m.host_ns  # good frames only: a REPL's echo is not a live board
        if m.name == "TELEMETRY":
            self._cycles_heard(m.cycle)
            self.last_telemetry = m
        elif m.name == "STATS":
            self._cycles_heard(m.cycles)
        elif m.name == "TIME_SYNC_REPLY":
            self.probes.answer(m)

    def _cycles_heard(self, cycles: int) -> None:
        """The board's loop cycle count, from a message that carries it (in the order the
        board sent them: one thread reads them all)."""
        floor, self._cycle_floor = self._cycle_floor, cycles
        if floor is not None and cycles < floor and self.up.is_set():
            self._board_reset()

    def _board_reset(self) -> None:
        """The board's cycle counter went back: it rebooted behind an open port."""
        self.probes.clock.reset()  # its clock started over too: the old mapping would misdate
        self.subscriptions.event("board_reset", "telemetry cycle counter restarted")
        self.stats.forget_seq()  # its sequence numbers started over too
        self.up.clear()  # the keeper re-handshakes and re-applies the session

    def _loop(self) -> None:
        s = self.settings
        next_sync = 0.0
        while not self.ended.wait(0.005):
            if self.transport.lost:
                self._recover()
                continue
            if not self.up.is_set():  # board reset behind an open port
                self._rehandshake(after_reset=True)
                continue
            now = time.monotonic()
            # A board that went quiet may be rebooting: until its firmware claims the port,
            # any 0x03 in our frames is a Ctrl-C to its boot. So talk to it only slowly.
            quiet = (time.monotonic_ns() - self.last_rx_ns) / 1e9 > QUIET_S
            if now >= next_sync:
                self.probes.probe(self.requests.sender.send)
                next_sync = now + (QUIET_PROBE_S if quiet else s.sync_s)
            self._heartbeat(QUIET_PROBE_S if quiet else s.heartbeat_s)
            self._watch_silence()

    def _heartbeat(self, every_s: float) -> None:
        if self.applied.mode != catalog.MODE_HOST:
            return
        sender = self.requests.sender
        if time.monotonic_ns() - sender.last_feed_ns >= every_s * 1e9:
            try:
                sender.send(make("HEARTBEAT"))
            except LinkDown:
                pass

    def _watch_silence(self) -> None:
        quiet = (time.monotonic_ns() - self.last_rx_ns) / 1e9
        if quiet > self.settings.silence_s and not self._silent:
            self._silent = True
            self.subscriptions.event("silent", "no frame from the board for %.1f s" % quiet)
        elif quiet <= self.settings.silence_s and self._silent:
            self._silent = False
            self.subscriptions.event("resumed", "frames flow again")

    def _recover(self) -> None:
        """The port failed: report it, then reopen it until it answers again."""
        self.up.clear()
        self.transport.close()
        self.stats.disconnects += 1
        self.subscriptions.event("disconnected", "%s went away" % self.settings.url)
        if not self.settings.reconnect:
            self.ended.set()
            return
        while not self.ended.wait(0.2):
            try:
                self.connect()
            except LinkError:
                continue
            if self._rehandshake():
                return
            self.transport.close()

    def _rehandshake(self, after_reset: bool = False) -> bool:
        self._cycle_floor = None  # the board may have rebooted while away
        try:
            board = self.handshake()
            self.probes.clock.reset()
            self.last_telemetry = None
            self._ask_cycles()
            self._reapply()
        except LinkError as e:
            self.subscriptions.event("reconnect_failed", str(e))
            if after_reset:
                self.transport.mark_lost()  # reopen from scratch
            return False
        self.stats.reconnects += 1
        self.up.set()
        self.subscriptions.event("reconnected", describe_board(board))
        return True

    def _ask_cycles(self) -> None:
        """Ask the board for its loop cycles since boot: heard() takes them as the floor
        (a board without GET_STATS has none until its telemetry comes)."""
        try:
            self.requests.request(make("GET_STATS"), wait_up=False)
        except NackError:
            pass

    def _reapply(self) -> None:
        """Put back what this session had set: config, joints, then mode."""
        a, request = self.applied, self.requests.request
        if a.config:
            request(make("SET_CONFIG", **a.config), wait_up=False)
        for fields in a.joints.values():
            request(make("SET_JOINT", **fields), wait_up=False)
        if a.mode is not None:
            request(make("SET_MODE", mode=a.mode), wait_up=False)
