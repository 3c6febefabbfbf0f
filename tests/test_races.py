"""The narrow races, each forced into its losing interleaving (no sleeps hoping for luck):
the episode writer at stop, a full `loop://` port, a board reset right after the first open.
"""
from __future__ import annotations

import queue
import socket
import threading

import pytest
import serial

from dexlink.clock import BoardClock
from dexlink.hwconfig import HANDS
from dexlink.link import EVENT, Link, LinkDown, LinkStats, Transport
from dexlink.link.requests import Sender
from dexlink.link.timesync import SyncProbes
from dexlink.record import schema
from dexlink.record.episode import EpisodeWriter
from dexlink.record.reader import read_episode
from dexlink.sim import VirtualBoard
from dexlink.sim.flashing import flash_virtual
from dexproto import catalog
from dexproto.stream import StreamDecoder
from support.waiting import wait_event, wait_for

LOOP_BYTES = 4096  # what pyserial's loop:// port holds before a write waits


# --- the episode writer at stop ------------------------------------------------------------
class HeldQueue(queue.Queue):
    """The writer's queue, holding one producer between "the writer is open" and its put
    until the writer's stop has queued every worker's end marker (or, when the stop waits
    for that producer, until `patience_s` says it does)."""

    def __init__(self, maxsize: int, workers: int, patience_s: float):
        super().__init__(maxsize)
        self.held = threading.Event()  # a producer is inside put_nowait
        self.ends_queued = threading.Event()  # the stop queued every end marker
        self._ends_left = workers
        self._patience_s = patience_s

    def put_nowait(self, item):
        self.held.set()
        self.ends_queued.wait(self._patience_s)
        super().put_nowait(item)

    def put(self, item, block=True, timeout=None):
        super().put(item, block, timeout)
        if item is None:
            self._ends_left -= 1
            if not self._ends_left:
                self.ends_queued.set()


def test_an_item_taken_while_the_writer_stops_is_written_or_counted(tmp_path):
    """A producer (the link's thread) found the writer open and, before its item went on the
    queue, the recorder's stop drained the writer: the item landed behind the workers' end
    markers, counted queued but never written nor dropped: lost without a word."""
    path = tmp_path / "episode_0000.mcap"
    writer = EpisodeWriter(path, {"task": "race"}, workers=2)
    writer._queue = HeldQueue(2048, workers=2, patience_s=0.5)  # the workers take it next poll
    producer = threading.Thread(target=writer.add_event, args=("mark", "success"))
    producer.start()
    assert writer._queue.held.wait(5)
    writer.finish({"mark": "success"})
    producer.join(5)
    events = writer.counts[schema.EVENTS]
    assert events.queued == events.written + events.dropped == 1
    assert len(read_episode(path).streams.get(schema.EVENTS, ())) == events.written


# --- loop:// -----------------------------------------------------------------------------------
def test_a_full_loop_port_is_a_failed_write():
    """pyserial's loop:// raises queue.Full (not a SerialException) when nobody reads what
    was written: it must fail like any other write, and a time-sync probe (the keeper's
    thread) must survive it."""
    port = Transport("loop://", write_timeout=0.05)
    port.open()
    try:
        port.write(bytes(LOOP_BYTES))  # nobody reads: the port is full
        with pytest.raises(LinkDown, match="write failed"):
            port.write(b"\x00")
        assert port.lost and not port.alive
        port.close()
        port.open()
        port.write(bytes(LOOP_BYTES))
        SyncProbes(BoardClock()).probe(Sender(port, LinkStats()).send)  # raises nothing
        assert port.lost
    finally:
        port.close()


# --- a board reset right after the first open ----------------------------------------------
class TelemetryWithheld:
    """A relay between a link (socket://) and a board's port that withholds the board's
    TELEMETRY until the board has rebooted (its cycle counter went back): the host's first
    telemetry is the rebooted board's, as when a board resets right after the host opened
    its port."""

    def __init__(self, board_port: str):
        self.board = serial.serial_for_url(board_port, timeout=0.02)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = "socket://127.0.0.1:%d" % self.server.getsockname()[1]
        self.rebooted = threading.Event()
        self._released = threading.Event()
        self._highest = -1
        self._ended = threading.Event()
        self._host: socket.socket | None = None
        self._threads = [threading.Thread(target=self._to_host, daemon=True)]
        self._threads[0].start()

    def _to_host(self) -> None:
        self.server.settimeout(5)
        self._host, _ = self.server.accept()
        threading.Thread(target=self._to_board, daemon=True).start()
        pending = b""
        while not self._ended.is_set():
            pending += self.board.read(max(1, self.board.in_waiting))
            *frames, pending = pending.split(b"\x00")
            out = b"".join(f + b"\x00" for f in frames if self._passes(f + b"\x00"))
            try:
                self._host.sendall(out)
            except OSError:  # the link closed
                return

    def _passes(self, frame: bytes) -> bool:
        decoded = StreamDecoder().feed(frame)
        if self.rebooted.is_set() or not decoded or decoded[0].name != "TELEMETRY":
            return True
        cycle = decoded[0].cycle
        if cycle < self._highest or self._released.is_set():
            self.rebooted.set()
            return True
        self._highest = cycle
        return False

    def release(self) -> None:
        """Let telemetry through from now on: the board has rebooted (its new counter may
        pass the old one's before its first telemetry arrives: the old board ran briefly)."""
        self._released.set()

    def _to_board(self) -> None:
        self._host.settimeout(0.05)
        while not self._ended.is_set():
            try:
                data = self._host.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.board.write(data)

    def close(self) -> None:
        self._ended.set()
        self._threads[0].join(2)
        for s in (self._host, self.server):
            if s is not None:
                s.close()
        self.board.close()


@pytest.mark.vboard
def test_a_board_reset_right_after_the_first_open_is_noticed(tmp_path):
    """The board reboots after the host's first handshake and before any of its telemetry
    reached the host: with nothing to compare the rebooted board's cycle counter with, the
    link took it for the same board and the session's mode was never put back (the hand
    stayed IDLE while the host believed TELEOP). The board's cycle count taken at open
    (GET_STATS) is the floor its telemetry must not go below."""
    with VirtualBoard(tmp_path / "fs") as board:
        flash_virtual(board, HANDS / "iso16.toml")
        relay = TelemetryWithheld(board.port)
        try:
            with Link(relay.url) as link:
                events = link.subscribe(EVENT)
                link.set_mode(catalog.MODE_TELEOP)
                boots = board.stats["boots"]
                board.inject("reset")
                assert board.wait_for(lambda b: b.stats["boots"] > boots, 10)
                relay.release()
                assert relay.rebooted.wait(10)
                wait_event(events, "board_reset", timeout=5)
                wait_event(events, "reconnected")
                telemetry = link.subscribe("TELEMETRY")
                assert wait_for(telemetry, lambda m: m.mode == catalog.MODE_TELEOP, 5)
        finally:
            relay.close()
