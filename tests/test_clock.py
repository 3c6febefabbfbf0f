"""dexlink.clock: offset, drift and unwrapping from TIME_SYNC exchanges (synthetic lines)."""
from __future__ import annotations

import random
import threading

import pytest

from dexlink.clock import BOARD_PERIOD, WIRE_PERIOD, BoardClock, Unwrapper
from dexlink.link import LinkStats, Transport
from dexlink.link.requests import Sender
from dexlink.link.timesync import SyncProbes
from dexproto.stream import StreamDecoder
from support.waiting import wait_until


class SyntheticBoard:
    """A board whose clock runs `ppm` fast from `start`, wrapping at `period`, reached
    over a line whose legs take a base delay plus random extra delay."""

    def __init__(self, ppm, start, period=BOARD_PERIOD, seed=1):
        self.ppm, self.start, self.period = ppm, start, period
        self.rng = random.Random(seed)
        self.t0 = 5_000_000_000  # host ns at which the board read `start`

    def true_board_us(self, host_ns):
        return self.start + (host_ns - self.t0) / 1000 * (1 + self.ppm * 1e-6)

    def raw(self, host_ns):
        return int(self.true_board_us(host_ns)) % self.period

    def exchange(self, host_ns, up_ns, down_ns, turnaround_ns=30_000):
        rx = host_ns + up_ns
        tx = rx + turnaround_ns
        return host_ns, self.raw(rx), self.raw(tx), tx + down_ns


def jitter(rng, outlier=0.0):
    """A leg's delay: 60 µs plus exponential noise; sometimes a long stall on one leg."""
    d = 60_000 + rng.expovariate(1 / 40_000)
    if rng.random() < outlier:
        d += rng.uniform(1e6, 8e6)
    return int(d)


def run(board, clock, seconds, every_ns=50_000_000, outlier=0.0):
    t = board.t0
    while t < board.t0 + seconds * 1e9:
        clock.add_exchange(*board.exchange(t, jitter(board.rng, outlier), jitter(board.rng, outlier)))
        t += every_ns
    return t


@pytest.mark.parametrize("ppm", [100, -100, 0, 350])
def test_offset_drift_and_wrap(ppm):
    # starts 3 s before the 2^30 wrap: the wrap falls in the middle of the run
    board = SyntheticBoard(ppm, BOARD_PERIOD - 3_000_000)
    clock = BoardClock()
    end = run(board, clock, 10)
    assert abs(clock.drift_ppm - ppm) < 5
    # a sample taken at host time h carries raw board time board.raw(h)
    for h in range(end - 9_000_000_000, end + 1_000_000_000, 7_777_777):
        err_ns = clock.to_host_ns(board.raw(h), near_host_ns=h + 2_000_000) - h
        assert abs(err_ns) < 50_000, (h, err_ns)  # 50 µs on a line with 60-100 µs legs


def test_slow_exchanges_are_ignored():
    # a third of the exchanges stall 1-8 ms on one leg: a plain average would be off by ms
    board = SyntheticBoard(-100, 123_456_789)
    clock = BoardClock()
    end = run(board, clock, 10, outlier=0.3)
    assert abs(clock.drift_ppm + 100) < 5
    assert abs(clock.to_host_ns(board.raw(end)) - end) < 50_000


def test_wire_period_is_detected():
    # a board counting to 2^32: past 2^30 the unwrapper must stop assuming 2^30
    board = SyntheticBoard(50, (1 << 30) - 1_000_000, period=WIRE_PERIOD)
    clock = BoardClock()
    end = run(board, clock, 4)
    assert clock.unwrapper.period == WIRE_PERIOD
    assert abs(clock.to_host_ns(board.raw(end)) - end) < 50_000
    wrapping = SyntheticBoard(50, WIRE_PERIOD - 1_000_000, period=WIRE_PERIOD)
    clock = BoardClock(period=WIRE_PERIOD)
    end = run(wrapping, clock, 4)
    assert abs(clock.to_host_ns(wrapping.raw(end)) - end) < 50_000


def test_fixed_period_refuses_impossible_values():
    with pytest.raises(ValueError, match="outside the clock period"):
        Unwrapper(BOARD_PERIOD).unwrap(BOARD_PERIOD + 5)


def test_long_gap_is_unwrapped_with_the_host_hint():
    # 20 minutes without exchanges: more than a whole 2^30 µs period (17.9 min) goes by
    board = SyntheticBoard(100, 1000)
    clock = BoardClock()
    end = run(board, clock, 5)
    later = end + 20 * 60 * 1_000_000_000
    # right wrap; off by the drift estimate's error (~1 ppm) times 20 minutes at most
    assert abs(clock.to_host_ns(board.raw(later), near_host_ns=later) - later) < 5_000_000
    # without the hint the nearest wrap to the last exchange is taken: one period off
    off = clock.to_host_ns(board.raw(later)) - later
    assert abs(abs(off) - BOARD_PERIOD * 1000) < 1e9
    run_from = later
    clock.add_exchange(*board.exchange(run_from, 70_000, 70_000))
    assert abs(clock.to_host_ns(board.raw(run_from + 10_000_000)) - run_from - 10_000_000) < 5_000_000


def test_unsynced_clock_says_so():
    clock = BoardClock()
    with pytest.raises(RuntimeError, match="not synchronised"):
        clock.to_host_ns(5)
    board = SyntheticBoard(0, 0)
    run(board, clock, 1)
    clock.reset()
    assert not clock.synced and clock.summary()["exchanges"] == 20


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
