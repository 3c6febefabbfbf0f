"""One clock: the board's microsecond ticks mapped onto the host's monotonic clock.

Each TIME_SYNC exchange gives four instants: the host sends (t0, host clock), the board
receives (rx, board clock), the board replies (tx, board clock), the host receives (t3).
Assuming the two legs take equally long, the board's midpoint (rx + tx) / 2 happened at
the host's midpoint (t0 + t3) / 2, give or take half the round trip. So the exchanges with
the smallest round trip are the trustworthy ones: per time bucket only the fastest is
kept, and a straight line (offset and drift) is fitted through those over a sliding
window, after every new exchange.

The board clock wraps: `ticks_us` wraps at 2^30 on real boards and the wire carries 32
bits. Every board time is unwrapped onto a 64-bit timeline before it is fitted or mapped.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

WIRE_PERIOD = 1 << 32  # TIME_SYNC_REPLY and TELEMETRY carry uint32
BOARD_PERIOD = 1 << 30  # MicroPython's ticks_us period on 32-bit ports


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
        self._buckets: deque[tuple[int, SyncSample]] = deque()  # (bucket index, fastest sample)
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
            self._fit()
            return sample

    def _unwrap_at(self, raw: int, host_ns: int) -> int:
        expected = self.board_us_at(host_ns) if self.synced else None
        return self.unwrapper.unwrap(raw, expected)

    def _keep(self, s: SyncSample) -> None:
        index = int(s.host_mid_ns) // self.bucket_ns
        b = self._buckets
        if b and b[-1][0] == index:
            if s.rtt_ns < b[-1][1].rtt_ns:
                b[-1] = (index, s)
        else:
            b.append((index, s))
        horizon = index - self.window_ns // self.bucket_ns
        while b and b[0][0] < horizon:
            b.popleft()

    def _trusted(self) -> list[SyncSample]:
        """The buckets' fastest exchanges, minus buckets where even the fastest was slow
        (a loaded host or a burst on the line)."""
        samples = [s for _, s in self._buckets]
        best = min(s.rtt_ns for s in samples)
        limit = 2 * best + 200_000
        return [s for s in samples if s.rtt_ns <= limit]

    def _fit(self) -> None:
        samples = self._trusted()
        if len(samples) < 3:
            # Too little history for a slope: offset only, from the fastest exchange.
            s = min(samples, key=lambda s: s.rtt_ns)
            self.host_ref, self.board_ref, self.ns_per_us = s.host_mid_ns, s.board_mid_us, 1000.0
        else:
            xs = [s.board_mid_us for s in samples]
            ys = [s.host_mid_ns for s in samples]
            x0, y0 = xs[-1], ys[-1]
            dx = [x - x0 for x in xs]
            dy = [y - y0 for y in ys]
            mx = sum(dx) / len(dx)
            my = sum(dy) / len(dy)
            var = sum((x - mx) ** 2 for x in dx)
            slope = sum((x - mx) * (y - my) for x, y in zip(dx, dy)) / var if var else 1000.0
            self.ns_per_us = slope
            self.board_ref = x0 + mx
            self.host_ref = y0 + my
        self.synced = True

    # -- mapping ---------------------------------------------------------------------
    @property
    def drift_ppm(self) -> float:
        """How much faster the board's clock runs than the host's, in parts per million."""
        return (1000.0 / self.ns_per_us - 1.0) * 1e6

    @property
    def best_rtt_ns(self) -> int | None:
        with self._lock:
            return min((s.rtt_ns for _, s in self._buckets), default=None)

    def board_us_at(self, host_ns: float) -> float:
        """The (unwrapped) board time at a host instant."""
        return self.board_ref + (host_ns - self.host_ref) / self.ns_per_us

    def to_host_ns(self, board_us: int, near_host_ns: int | None = None) -> int:
        """Host monotonic ns of a raw board time (as on the wire).

        near_host_ns (e.g. the arrival time of the message that carried it) chooses the
        wrap the time belongs to even after a long gap; without it, the nearest wrap to
        the latest exchange is taken.
        """
        if not self.synced:
            raise RuntimeError("the board clock is not synchronised yet (no TIME_SYNC reply)")
        with self._lock:
            expected = self.board_us_at(near_host_ns) if near_host_ns is not None else None
            unwrapped = self.unwrapper.unwrap(board_us, expected, update=False)
            return int(round(self.host_ref + (unwrapped - self.board_ref) * self.ns_per_us))

    def reset(self) -> None:
        """Forget everything (the board rebooted: its clock started over)."""
        with self._lock:
            self.unwrapper = Unwrapper(self.unwrapper.period if self.unwrapper.fixed else None)
            self._buckets.clear()
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
                "best_rtt_us": (min((s.rtt_ns for _, s in self._buckets)) / 1000
                                if self._buckets else None),
                "period": self.unwrapper.period,
            }
