"""One clock on the virtual board (real firmware) with its crystal off by +-100 ppm.

The virtual board cannot report the true host time of its samples (its clock is world
time since its interpreter started, skewed), so exactness is proven on test_clock_board's
board, which can. Here the real firmware's telemetry is held to what can be observed:
- the estimated drift matches the injected error;
- a loopback of known timing brackets each sample's true time: the host writes a new
  TARGETS at t_send; the first telemetry cycle showing it started no earlier than the
  command could be read (t_send) and its telemetry arrived later (t_arrival). After 10 s
  the mapped time of that cycle must lie inside [t_send - 0.5 ms, t_arrival + 0.5 ms].
"""
from __future__ import annotations

import threading
import time

import pytest

from dexlink.hwconfig import HANDS
from dexlink.link import Link
from dexlink.sim import VirtualBoard
from dexlink.sim.flashing import flash_virtual
from dexproto import catalog

pytestmark = pytest.mark.vboard

SETTLE_S = 10.0
STEPS = 25
SLACK_NS = 500_000


def measure(ppm, out):
    with VirtualBoard() as board:
        flash_virtual(board, HANDS / "iso16.toml")
        board.inject("clock", ppm=ppm)
        with Link(board.port) as link:
            link.set_config(250, 1, 1000)  # a light loop: two boards share the machine
            tele = link.subscribe("TELEMETRY")
            link.set_mode(catalog.MODE_HOST)
            time.sleep(SETTLE_S)
            rows = []
            for k in range(STEPS):
                target = 1000 + 50 * (k % 2)
                tele.drain()
                t_send = time.monotonic_ns()
                link.send_targets([target] * 16)
                end = time.monotonic() + 1
                while time.monotonic() < end:
                    m = tele.get(timeout=0.1)
                    if m is not None and m.column("goal_cdeg")[1] == target:
                        rows.append((t_send, link.clock.to_host_ns(m.board_us, m.host_ns), m.host_ns))
                        break
                time.sleep(0.03)
            out[ppm] = (link.clock.drift_ppm, rows)
            link.set_mode(catalog.MODE_IDLE)


def test_virtual_board_clock_error_is_tracked():
    out = {}
    threads = [threading.Thread(target=measure, args=(ppm, out)) for ppm in (100, -100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert set(out) == {100, -100}
    for ppm, (drift, rows) in out.items():
        # Two boards and the host share two cores here, so the best exchanges of a 10 s
        # window still carry scheduling jitter: the drift is held to half the injected
        # error (an estimator that ignored drift would be off by all of it); the mapped
        # times below are what the 0.5 ms requirement is about.
        assert abs(drift - ppm) < 50, (ppm, drift)
        assert len(rows) >= STEPS - 3
        below = min(mapped - sent for sent, mapped, _ in rows)
        above = min(arrived - mapped for _, mapped, arrived in rows)
        print("ppm %+d: drift %+.1f ppm; mapped - t_send >= %.3f ms; t_arrival - mapped >= %.3f ms"
              % (ppm, drift, below / 1e6, above / 1e6))
        assert below > -SLACK_NS and above > -SLACK_NS
