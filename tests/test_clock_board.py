"""One clock, end to end: a MicroPython board whose crystal is off by +-100 ppm.

True time of a telemetry sample: the board's loop reads the unskewed CLOCK_MONOTONIC
(MicroPython Unix `time.ticks_us`) at the instant it samples, and sends it next to the
TELEMETRY as LOG "truth CYCLE US". The board time in the TELEMETRY is that same instant
skewed by the ppm error and wrapped at 2^30, starting 4 s before the wrap. Each sample is
mapped when it arrives, with the estimate the link has at that moment, as a recorder does.
"""
from __future__ import annotations

import threading
import time

import pytest

from dexlink.clock import BOARD_PERIOD
from dexlink.link import Link
from support.fakeboard import FakeBoard

pytestmark = pytest.mark.micropython

RUN_S = 11.0
SETTLED_S = 10.0
LIMIT_NS = 500_000


def collect(board, out):
    """Map every telemetry sample on arrival; pair it with its true time."""
    with Link(board.port) as link:
        sub = link.subscribe("TELEMETRY", "LOG")
        mapped = {}
        start = time.monotonic()
        while time.monotonic() - start < RUN_S:
            m = sub.get(timeout=0.1)
            if m is None or not link.clock.synced:
                continue
            if m.name == "TELEMETRY":
                mapped[m.cycle] = (m.host_ns, link.clock.to_host_ns(m.board_us, m.host_ns))
            elif m.text.startswith("truth "):
                _, cycle, true_us = m.text.split()
                if int(cycle) in mapped:
                    arrived, host_ns = mapped.pop(int(cycle))
                    out.append((arrived - start * 1e9, host_ns - int(true_us) * 1000))
        out.append(("drift", link.clock.drift_ppm))


def test_mapped_telemetry_within_half_a_millisecond(tmp_path):
    results = {}
    threads = []
    boards = []
    for ppm in (100, -100):
        d = tmp_path / str(ppm)
        d.mkdir()
        board = FakeBoard(d, ppm=ppm, start=BOARD_PERIOD - 4_000_000, telemetry_hz=100)
        board.plug()
        boards.append(board)
        results[ppm] = []
        threads.append(threading.Thread(target=collect, args=(board, results[ppm])))
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=RUN_S + 10)
    finally:
        for b in boards:
            b.unplug()
    for ppm, rows in results.items():
        assert rows and rows[-1][0] == "drift", rows[-3:]
        drift = rows.pop()[1]
        assert abs(drift - ppm) < 20, (ppm, drift)
        settled = [err for t, err in rows if t >= SETTLED_S * 1e9]
        assert len(settled) >= 30, len(settled)  # about 100 at 100 Hz
        worst = max(abs(e) for e in settled)
        print("ppm %+d: estimated %+.1f ppm; after %.0f s, %d samples, worst error %.0f us"
              % (ppm, drift, SETTLED_S, len(settled), worst / 1000))
        assert worst < LIMIT_NS, (ppm, worst)
