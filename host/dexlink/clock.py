"""One clock: the board's microsecond ticks mapped onto the host's monotonic clock.

Each TIME_SYNC exchange gives four instants: the host sends (t0, host clock), the board
receives (rx, board clock), the board replies (tx, board clock), the host receives (t3).
The board read rx no earlier than t0 plus the way up, and t3 came after tx plus the way
down. The two legs are judged apart, because their delays differ: a board that polls its
port once per loop cycle adds up to a cycle to the way up only. Per time bucket the
exchange with the shortest way up gives a point (rx, t0) and the one with the shortest
way down a point (tx, t3); the first lie below the true line by the least upward delay,
the second above it by the least downward delay. A straight line (offset and drift)
fitted through both sets over a sliding window, after every new exchange, sits between
them: exact when the two least delays are equal, off by half their difference otherwise.

The board clock wraps: `ticks_us` wraps at 2^30 on real boards and the wire carries 32
bits. Every board time is unwrapped onto a 64-bit timeline before it is fitted or mapped.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

WIRE_PERIOD = 1 << 32  # TIME_SYNC_REPLY and TELEMETRY carry uint32
BOARD_PERIOD = 1 << 30  # MicroPython's ticks_us period on 32-bit ports
MIN_PAIR_US = 2_000_000  # slopes between closer points are mostly noise


@dataclass(frozen=True)
class SyncSample:
    """One TIME_SYNC exchange, board times unwrapped."""

    host_send_ns: int
    host_recv_ns: int
    board_rx_us: int
    board_tx_us: int

    @property
    def rtt_ns(self) -> int:
        """Time on the wire and in the host/board stacks, without the board's turnaround."""
        return (self.host_recv_ns - self.host_send_ns) - (self.board_tx_us - self.board_rx_us) * 1000

    @property
    def host_mid_ns(self) -> float:
        return (self.host_send_ns + self.host_recv_ns) / 2

    @property
    def board_mid_us(self) -> float:
        return (self.board_rx_us + self.board_tx_us) / 2


def _line(points) -> tuple[float, float] | None:
    """Robust slope of (x, y) points and their spread about it.

    Theil-Sen: the median of the slopes between point pairs at least MIN_PAIR_US apart,
    so a bucket whose best exchange was still delayed cannot tilt the line; the spread is
    the residuals' median absolute deviation.
    """
    slopes = []
    n = len(points)
    for i in range(n):
        xi, yi = points[i]
        for j in range(i + 1, n):
            dx = points[j][0] - xi
            if abs(dx) >= MIN_PAIR_US:
                slopes.append((points[j][1] - yi) / dx)
    if len(slopes) < 3:
        return None
    slope = _median(slopes)
    resid = [y - slope * x for x, y in points]
    mid = _median(resid)
    return slope, 1.4826 * _median([abs(r - mid) for r in resid])


def _median(values: list) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def _up_ns(s: SyncSample) -> int:
    """The way up as it appears (host send to board receive, clocks as they are)."""
    return s.board_rx_us * 1000 - s.host_send_ns


def _down_ns(s: SyncSample) -> int:
    """The way down as it appears (board reply to host receive)."""
    return s.host_recv_ns - s.board_tx_us * 1000


class Unwrapper:
    """Turns wrapping board ticks into a monotonic 64-bit count.

    period=None detects it: 2^30 (a real board's ticks_us) until a value at or above 2^30
    proves the board counts to 2^32 (the wire's width).
    """

    def __init__(self, period: int | None = None):
        self.fixed = period is not None
        self.period = period or BOARD_PERIOD
        self.ref_raw: int | None = None
        self.ref_unwrapped = 0

    def _check_period(self, raw: int) -> None:
        if raw >= self.period:
            if self.fixed or raw >= WIRE_PERIOD:
                raise ValueError("board time %d is outside the clock period %d" % (raw, self.period))
            self.period = WIRE_PERIOD

    def unwrap(self, raw: int, expected: float | None = None, update: bool = True) -> int:
        """The unwrapped value of raw: the one nearest `expected` (an unwrapped estimate,
        e.g. from the host's elapsed time) or, without it, nearest the last reference."""
        self._check_period(raw)
        if self.ref_raw is None:
            value = raw
        elif expected is not None:
            k = round((expected - raw) / self.period)
            value = raw + k * self.period
        else:
            p = self.period
            delta = (raw - self.ref_raw + p // 2) % p - p // 2
            value = self.ref_unwrapped + delta
        if update:
            self.ref_raw, self.ref_unwrapped = raw, value
        return value


class BoardClock:
    """Offset and drift from TIME_SYNC exchanges; maps board µs to host monotonic ns.

    Thread-safe: the link's threads add exchanges while others map times.
    """

    def __init__(self, period: int | None = None, window_s: float = 30.0, bucket_s: float = 0.5):
        self.unwrapper = Unwrapper(period)
        self.window_ns = int(window_s * 1e9)
        self.bucket_ns = int(bucket_s * 1e9)
        self._samples: deque[SyncSample] = deque()  # the window's exchanges
        self._fitted_bucket = None
        self.fits = 0
        self._lock = threading.Lock()
        self.exchanges = 0
        # The fitted line: host_ns = host_ref + (board_us - board_ref) * ns_per_us
        self.host_ref = 0.0
        self.board_ref = 0.0
        self.ns_per_us = 1000.0
        self.synced = False
        self.last: SyncSample | None = None

    # -- estimation ------------------------------------------------------------------
    def add_exchange(self, host_send_ns: int, board_rx_us: int, board_tx_us: int,
                     host_recv_ns: int) -> SyncSample:
        """Take one TIME_SYNC exchange (board times raw from the wire) into the estimate."""
        with self._lock:
            rx = self._unwrap_at(board_rx_us, host_send_ns)
            tx = rx + (board_tx_us - board_rx_us) % self.unwrapper.period
            self.unwrapper.unwrap(board_tx_us, tx)  # the newest reference
            sample = SyncSample(host_send_ns, host_recv_ns, rx, tx)
            self.exchanges += 1
            self.last = sample
            self._keep(sample)
            # Refit once per bucket (the fit walks the whole window): enough to follow a
            # drift, and cheap at 20 probes a second. Early on, at every exchange.
            bucket = int(sample.host_mid_ns) // self.bucket_ns
            if bucket != self._fitted_bucket or self.fits < 8:
                self._fitted_bucket = bucket
                self._fit()
            return sample

    def _unwrap_at(self, raw: int, host_ns: int) -> int:
        expected = self.board_us_at(host_ns) if self.synced else None
        return self.unwrapper.unwrap(raw, expected)

    def _keep(self, s: SyncSample) -> None:
        self._samples.append(s)
        horizon = s.host_mid_ns - self.window_ns
        while self._samples[0].host_mid_ns < horizon:
            self._samples.popleft()

    def _best_per_bucket(self) -> list[tuple[SyncSample, SyncSample]]:
        """Per bucket, the exchanges with the shortest way up and the shortest way down.

        The legs are compared net of the drift estimated so far: at 100 ppm a bucket's
        apparent delays would otherwise slide 50 µs and favour its first or last exchanges.
        """
        rate = self.ns_per_us
        buckets: dict[int, list[SyncSample]] = {}
        for s in self._samples:
            buckets.setdefault(int(s.host_mid_ns) // self.bucket_ns, []).append(s)
        ref = self._samples[-1].board_rx_us
        return [(min(group, key=lambda s: (s.board_rx_us - ref) * rate - s.host_send_ns),
                 min(group, key=lambda s: s.host_recv_ns - (s.board_tx_us - ref) * rate))
                for group in buckets.values()]

    def _fit(self) -> None:
        best = self._best_per_bucket()
        if len(best) < 3:
            # Too little history for a slope: offset only, from the fastest exchange.
            s = min(self._samples, key=lambda s: s.rtt_ns)
            self.host_ref, self.board_ref, self.ns_per_us = s.host_mid_ns, s.board_mid_us, 1000.0
            self.synced = True
            return
        self.fits += 1
        self._fit_line(best)
        if self.fits < 8:  # early on, select again with the drift just found
            self._fit_line(self._best_per_bucket())

    def _fit_line(self, best) -> None:
        """Drift from each leg's points (weighted by how tightly each leg's points lie on a
        line: a leg that waits for the board's loop scatters), then the offset that puts
        the line midway between the two legs' closest points."""
        x0 = best[-1][1].board_tx_us  # numbers near zero keep the float maths exact
        y0 = best[-1][1].host_recv_ns
        up = [(u.board_rx_us - x0, u.host_send_ns - y0) for u, _ in best]
        down = [(d.board_tx_us - x0, d.host_recv_ns - y0) for _, d in best]
        slopes = [fit for fit in (_line(up), _line(down)) if fit is not None]
        if slopes:
            weights = [1.0 / max(spread, 10_000.0) ** 2 for _, spread in slopes]
            self.ns_per_us = sum(w * b for w, (b, _) in zip(weights, slopes)) / sum(weights)
        b = self.ns_per_us
        closest_up = max(y - b * x for x, y in up)  # the way up is never shorter than zero
        closest_down = min(y - b * x for x, y in down)
        self.board_ref = x0
        self.host_ref = y0 + (closest_up + closest_down) / 2
        self.synced = True

    # -- mapping ---------------------------------------------------------------------
    @property
    def drift_ppm(self) -> float:
        """How much faster the board's clock runs than the host's, in parts per million."""
        return (1000.0 / self.ns_per_us - 1.0) * 1e6

    @property
    def best_rtt_ns(self) -> int | None:
        with self._lock:
            return min((s.rtt_ns for s in self._samples), default=None)

    def board_us_at(self, host_ns: float) -> float:
        """The (unwrapped) board time at a host instant."""
        return self.board_ref + (host_ns - self.host_ref) / self.ns_per_us

    def to_host_ns(self, board_us: int, near_host_ns: int | None = None) -> int:
        """Host monotonic ns of a raw board time (as on the wire).

        near_host_ns (e.g. the arrival time of the message that carried it) chooses the
        wrap the time belongs to even after a long gap; without it, the nearest wrap to
        the latest exchange is taken.
        """
        with self._lock:  # synced and the line are read together: a reset may come between
            if not self.synced:
                raise RuntimeError("the board clock is not synchronised yet (no TIME_SYNC reply)")
            expected = self.board_us_at(near_host_ns) if near_host_ns is not None else None
            unwrapped = self.unwrapper.unwrap(board_us, expected, update=False)
            return int(round(self.host_ref + (unwrapped - self.board_ref) * self.ns_per_us))

    def reset(self) -> None:
        """Forget everything (the board rebooted: its clock started over)."""
        with self._lock:
            self.unwrapper = Unwrapper(self.unwrapper.period if self.unwrapper.fixed else None)
            self._samples.clear()
            self._fitted_bucket = None
            self.fits = 0
            self.synced = False
            self.ns_per_us = 1000.0
            self.last = None

    def summary(self) -> dict:
        """Offset, drift and quality, for dashboards and episode metadata."""
        with self._lock:
            return {
                "synced": self.synced,
                "exchanges": self.exchanges,
                "drift_ppm": round(self.drift_ppm, 3) if self.synced else None,
                "best_rtt_us": (min(s.rtt_ns for s in self._samples) / 1000
                                if self._samples else None),
                "period": self.unwrapper.period,
            }
