"""Noise on the virtual board's serial line: bytes dropped or garbled at a stated rate."""
from __future__ import annotations

import numpy as np


class LineNoise:
    """One direction of the line. Each byte is dropped with probability drop_rate, else
    replaced by a random byte with probability garbage_rate. Seeded: runs repeat."""

    def __init__(self, seed: int = 0):
        self.drop_rate = 0.0
        self.garbage_rate = 0.0
        self.dropped = 0
        self.garbled = 0
        self._rng = np.random.default_rng(seed)

    def set(self, drop_rate: float = 0.0, garbage_rate: float = 0.0):
        for name, rate in (("drop_rate", drop_rate), ("garbage_rate", garbage_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError("line noise: %s must be within 0..1, got %r" % (name, rate))
        self.drop_rate = drop_rate
        self.garbage_rate = garbage_rate

    @property
    def active(self) -> bool:
        return self.drop_rate > 0 or self.garbage_rate > 0

    def apply(self, data: bytes) -> bytes:
        if not self.active or not data:
            return data
        buf = np.frombuffer(data, dtype=np.uint8).copy()
        u = self._rng.random(len(buf))
        garble = (u >= self.drop_rate) & (u < self.drop_rate + self.garbage_rate)
        n_garble = int(garble.sum())
        if n_garble:
            buf[garble] = self._rng.integers(0, 256, n_garble, dtype=np.uint8)
        keep = u >= self.drop_rate
        self.dropped += len(buf) - int(keep.sum())
        self.garbled += n_garble
        return buf[keep].tobytes()
