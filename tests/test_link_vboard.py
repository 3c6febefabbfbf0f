"""The link against the virtual board running the real firmware (flashed with mpremote)."""
from __future__ import annotations

import time

import pytest

from dexproto import catalog
from dexlink.hwconfig import HANDS
from dexlink.link import EVENT, Link, NackError
from dexlink.sim import VirtualBoard
from dexlink.sim.flashing import flash_virtual
from support.waiting import wait_for

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
