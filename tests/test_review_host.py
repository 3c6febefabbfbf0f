"""Defects found in the review of the host side: each test failed before its fix."""
from __future__ import annotations

import os
import threading
import time

import pytest

from dexproto import catalog
from dexproto.stream import StreamDecoder
from dexlink.clock import BoardClock
from dexlink.hwconfig import HANDS
from dexlink.link import EVENT, Link, LinkStats, Transport
from dexlink.link.requests import Sender
from dexlink.link.timesync import SyncProbes
from dexlink.sim import VirtualBoard, vboard
from dexlink.sim.flashing import flash_virtual

HAND = HANDS / "iso16.toml"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


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


def test_failed_board_start_leaves_no_fds_or_dirs(tmp_path, monkeypatch):
    """An interpreter that cannot start: start() (`with`'s __enter__) raises, and must not
    leave the pty, the pipes, the selector or its temporary directories behind."""
    not_executable = tmp_path / "micropython"
    not_executable.write_text("not a program")
    monkeypatch.setattr(vboard, "MICROPYTHON", not_executable)
    before = open_fds()
    for _ in range(3):
        board = VirtualBoard()
        with pytest.raises(vboard.VirtualBoardError, match="cannot start the MicroPython"):
            with board:
                pass
        assert not board.fs_dir.exists()  # its own temporary filesystem is removed
        assert board.port is None and not os.path.lexists(board.stable_port)
    assert open_fds() == before


def test_close_during_rehandshake_ends_the_keeper(tmp_path):
    """close() while the keeper handshakes with a board that does not answer (replugged,
    its firmware gone): the keeper must stop with the link, not outlive close()."""
    with VirtualBoard(tmp_path / "fs") as board:
        flash_virtual(board, HAND)
        link = Link(board.port, handshake_timeout=5.0)
        link.open()
        try:
            events = link.subscribe(EVENT)
            board.unplug()
            wait_event(events, "disconnected")
            (board.fs_dir / "main.py").rename(board.fs_dir / "main.off")  # no firmware runs
            board.reset()
            assert board.wait_for(lambda b: b.state == "repl")
            board.replug()
            # The keeper reopened the port and handshakes with the REPL (for up to 5 s).
            assert board.wait_for(lambda b: b.stats["bytes_from_host"] > 0 and link.port_open)
            threads = list(link.threads)
        finally:
            link.close()
        assert [t.name for t in threads if t.is_alive()] == []
        assert not link.port_open


def test_request_after_close_fails_at_once(tmp_path):
    """A request on a closed link says so, instead of retrying a port that is gone."""
    with VirtualBoard(tmp_path / "fs") as board:
        flash_virtual(board, HAND)
        with Link(board.port) as link:
            link.get_stats()
        with pytest.raises(Exception, match="the link is closed; GET_STATS not sent"):
            link.get_stats()
        assert link.stats.retries == 0


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


def test_closed_board_starts_nothing(tmp_path):
    """reset() or replug() after close() would start an interpreter (or open a pty) that
    nothing ends: a closed board refuses them."""
    board = VirtualBoard(tmp_path).start()
    board.close()
    before, fds = child_pids(), open_fds()
    for control in (board.reset, board.replug, lambda: board.inject("soft_reset")):
        with pytest.raises(vboard.VirtualBoardError, match="closed"):
            control()
    assert child_pids() == before and open_fds() == fds


def test_unanswered_time_sync_probes_are_forgotten():
    """Probes whose reply never comes (lost on a noisy line) are forgotten after 64 newer
    ones, also where the token skips values holding a Ctrl-C byte (0x03)."""
    port = Transport("loop://")  # our own frames come back: a TIME_SYNC is not its reply
    port.open()
    ended = threading.Event()
    decoder = StreamDecoder()
    looped = []
    reader = port.start_reader(lambda data, ns: looped.extend(decoder.feed(data)), ended)
    probes, sender = SyncProbes(BoardClock()), Sender(port, LinkStats())
    try:
        for _ in range(0x500):  # tokens 0x300-0x3FF all hold a 0x03 byte: skipped
            probes.probe(sender.send)
        assert probes.token > 0x400
        assert probes.waiting <= 64
        assert wait_until(lambda: len(looped) == 0x500)  # every probe went out on the line
        assert all(0x300 > m.token or m.token > 0x3FF for m in looped)
    finally:
        ended.set()
        reader.join()
        port.close()


def test_board_reset_forgets_the_old_clock_at_once(tmp_path):
    """A board that rebooted counts its microseconds from zero again: telemetry after the
    reboot must not be dated with the old board clock's mapping (seconds off) while the
    link re-handshakes. From the telemetry that shows the reboot on, the clock holds no
    exchange older than it."""
    with VirtualBoard(tmp_path / "fs") as board:
        flash_virtual(board, HAND)
        with Link(board.port) as link:
            news = link.subscribe(EVENT, "TELEMETRY")
            link.set_mode(catalog.MODE_TELEOP)
            assert wait_until(lambda: link.clock.synced)
            news.drain()
            board.inject("reset")
            wait_event(news, "board_reset")
            first = news.get(5)  # the telemetry that showed the reboot (published next,
            while first is not None and first.name != "TELEMETRY":  # maybe after `resumed`)
                first = news.get(5)
            assert first is not None
            last = link.clock.last
            assert last is None or last.host_recv_ns >= first.host_ns
            wait_event(news, "reconnected")


def test_board_reset_right_after_a_reconnection_is_noticed(tmp_path):
    """The cable is put back, the link re-handshakes, and the board reboots before its
    first telemetry of the new session arrives: the reboot must still be noticed and the
    session's mode re-applied (the link compared with the last telemetry only, which a
    reconnection forgets, so the hand stayed IDLE while the host believed TELEOP)."""
    with VirtualBoard(tmp_path / "fs") as board:
        flash_virtual(board, HAND)
        with Link(board.stable_port) as link:
            events = link.subscribe(EVENT)
            link.set_mode(catalog.MODE_TELEOP)
            board.unplug()
            wait_event(events, "disconnected")
            board.replug()
            wait_event(events, "reconnected")
            board.inject("reset")  # at once: telemetry comes every 10 ms
            wait_event(events, "board_reset")
            wait_event(events, "reconnected")
            telemetry = link.subscribe("TELEMETRY")
            first = telemetry.get(5)
            assert first is not None and first.mode == catalog.MODE_TELEOP
