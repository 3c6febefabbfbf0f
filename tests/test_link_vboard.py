"""The link against the virtual board running the real firmware (flashed with mpremote)."""
from __future__ import annotations

import time

import pytest

from dexlink.hwconfig import HANDS
from dexlink.link import EVENT, Link, NackError
from dexlink.sim import VirtualBoard
from dexlink.sim.flashing import flash_virtual
from dexproto import catalog
from support.waiting import wait_event, wait_for, wait_until

pytestmark = pytest.mark.vboard

HAND = HANDS / "iso16.toml"


@pytest.fixture(scope="module")
def vboard():
    with VirtualBoard() as board:
        flash_virtual(board, HAND)
        yield board


def test_firmware_session(vboard):
    with Link(vboard.port) as link:
        assert link.board.n_joints == 16 and link.board.capabilities & catalog.CAP_VIRTUAL
        link.set_config(500, 5, 300)
        cfg = link.get_config()
        assert (cfg.loop_hz, cfg.telemetry_decimation, cfg.watchdog_ms) == (500, 5, 300)
        with pytest.raises(NackError) as e:
            link.set_config(0, 1, 100)
        assert e.value.field == "loop_hz"
        tele = link.subscribe("TELEMETRY")
        link.set_mode(catalog.MODE_TELEOP)
        m = wait_for(tele, lambda m: m.mode == catalog.MODE_TELEOP)
        assert m is not None and len(m.items) == 16
        # in HOST mode the firmware follows our targets, kept alive by our heartbeats
        link.set_mode(catalog.MODE_HOST)
        time.sleep(0.6)  # over the 300 ms watchdog: heartbeats must be flowing
        link.send_targets([500] * 16)
        m = wait_for(tele, lambda m: m.column("goal_cdeg")[5] == 500)
        assert m is not None and m.mode == catalog.MODE_HOST
        link.set_mode(catalog.MODE_IDLE)


def test_board_reset_is_reported_and_session_reapplied(vboard):
    with Link(vboard.port) as link:
        events = link.subscribe(EVENT)
        tele = link.subscribe("TELEMETRY")
        link.set_config(400, 4, 250)
        link.set_mode(catalog.MODE_TELEOP)
        assert wait_for(tele, lambda m: m.mode == catalog.MODE_TELEOP) is not None
        vboard.inject("reset")  # a fresh interpreter: IDLE and the flashed config
        assert wait_for(events, lambda e: e.kind == "board_reset", timeout=10) is not None
        assert wait_for(events, lambda e: e.kind == "reconnected", timeout=10) is not None
        tele.drain()
        assert wait_for(tele, lambda m: m.mode == catalog.MODE_TELEOP, timeout=5) is not None
        assert link.get_config().loop_hz == 400
        # the reboot restarted the board's sequence numbers: not tens of thousands "lost"
        assert link.stats_snapshot()["lost_frames"] < 1000
        link.set_mode(catalog.MODE_IDLE)


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
