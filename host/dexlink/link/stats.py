"""What the link counts: frames in and out, losses, retries, round trips, reconnections."""
from __future__ import annotations

import time
from collections import deque

from dexlink.clock import BoardClock
from dexproto.stream import Message, StreamDecoder


class LinkStats:
    """Counters and live rates. Rates are over the last second or so."""

    def __init__(self):
        self.frames = 0
        self.bytes = 0
        self.by_type: dict[str, int] = {}
        self.seq_gaps = 0
        self.lost_frames = 0
        self.tx_frames = 0
        self.tx_bytes = 0
        self.retries = 0
        self.timeouts = 0
        self.nacks = 0
        self.disconnects = 0
        self.reconnects = 0
        self.rtt_ns: deque[int] = deque(maxlen=200)  # request -> ACK round trips
        self.drops_before: dict[str, int] = {}  # decoder drops of earlier connections
        self._history: deque[tuple[int, int, int]] = deque()  # (ns, frames, bytes)
        self._last_seq: int | None = None

    def count_frame(self, m: Message) -> None:
        self.frames += 1
        self.by_type[m.name] = self.by_type.get(m.name, 0) + 1
        if self._last_seq is not None:
            gap = (m.seq - self._last_seq - 1) & 0xFFFF
            if gap >= 0x8000:
                pass  # backwards: the board restarted its numbering (a reboot), nothing lost
            elif gap:
                self.seq_gaps += 1
                self.lost_frames += gap
        self._last_seq = m.seq

    def forget_seq(self) -> None:
        """The board's sequence numbers start over (a new connection, a reboot)."""
        self._last_seq = None

    def new_connection(self, old_decoder: StreamDecoder) -> None:
        """A port opens again: keep the old decoder's drops, start sequence and rates over."""
        for reason, n in old_decoder.drops.items():
            self.drops_before[reason] = self.drops_before.get(reason, 0) + n
        self.forget_seq()
        self.rates(time.monotonic_ns())  # a starting point for the rates

    def rates(self, now_ns: int) -> tuple[float, float]:
        h = self._history
        h.append((now_ns, self.frames, self.bytes))
        while len(h) > 2 and now_ns - h[1][0] >= 1_000_000_000:
            h.popleft()
        t0, f0, b0 = h[0]
        dt = (now_ns - t0) / 1e9
        if dt <= 0:
            return 0.0, 0.0
        return (self.frames - f0) / dt, (self.bytes - b0) / dt

    def snapshot(self, decoder: StreamDecoder, clock: BoardClock, connected: bool) -> dict:
        """Everything a dashboard shows about the link, as plain numbers (decoder: the
        current connection's)."""
        fps, bps = self.rates(time.monotonic_ns())
        rtts = sorted(self.rtt_ns)
        drops = {
            reason: n + self.drops_before.get(reason, 0) for reason, n in decoder.drops.items()
        }
        dropped = sum(drops.values())
        return {
            "connected": connected,
            "frames": self.frames,
            "frames_per_s": fps,
            "bytes_per_s": bps,
            "drops": drops,
            "dropped": dropped,
            # the same number under its older name: each dropped frame is one resync
            # (decoding restarts at the next 0x00); kept for readers of older snapshots
            "resyncs": dropped,
            "seq_gaps": self.seq_gaps,
            "lost_frames": self.lost_frames,
            "tx_frames": self.tx_frames,
            "retries": self.retries,
            "timeouts": self.timeouts,
            "nacks": self.nacks,
            "disconnects": self.disconnects,
            "reconnects": self.reconnects,
            "rtt_ms": rtts[len(rtts) // 2] / 1e6 if rtts else None,
            "sync_rtt_ms": (clock.best_rtt_ns or 0) / 1e6 if clock.synced else None,
            "drift_ppm": clock.drift_ppm if clock.synced else None,
        }
