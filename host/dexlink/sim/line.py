"""Noise on the virtual board's serial line: bytes dropped, garbled, bit-flipped or
inserted at a stated rate, and an account of the frames that damage costs."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

RATES = ("drop_rate", "garbage_rate", "flip_rate", "insert_rate")
RECENT = 1024  # frames that went in and may still come out (a chunk ends soon after its frame)
MAX_CHUNK = 4096  # longer runs without 0x00 are no frame: only their end is kept


class LineNoise:
    """One direction of the line. Each byte is dropped with probability drop_rate, else
    replaced by a random byte with probability garbage_rate, else has one random bit
    flipped with probability flip_rate; independently, a random byte is inserted before
    it with probability insert_rate. Seeded: runs repeat.

    Besides the bytes (dropped, garbled, flipped, inserted) it counts frames, as a
    receiver splitting the line at 0x00 sees them (always, noise or not):
    frames: non-empty frames that went in; delivered: pieces between 0x00s that came out
    exactly as a frame went in (noise may even put back what it took); damaged = frames -
    delivered; bad_chunks: the other non-empty pieces, i.e. what a receiver drops. A
    receiver decodes `delivered` good frames and counts `bad_chunks` drops (unless noise
    forged a valid CRC-32, or the input itself held bad frames).
    """

    def __init__(self, seed: int = 0):
        self.drop_rate = self.garbage_rate = self.flip_rate = self.insert_rate = 0.0
        self.dropped = self.garbled = self.flipped = self.inserted = 0
        self.frames = self.delivered = self.damaged = self.bad_chunks = 0
        self._rng = np.random.default_rng(seed)
        self._in = b""  # the frame under way that went in
        self._out = b""  # the chunk under way that came out
        self._recent: OrderedDict[bytes, int] = OrderedDict()  # frames in, not out (yet)

    def set(self, drop_rate: float = 0.0, garbage_rate: float = 0.0, flip_rate: float = 0.0,
            insert_rate: float = 0.0):
        rates = dict(drop_rate=drop_rate, garbage_rate=garbage_rate, flip_rate=flip_rate,
                     insert_rate=insert_rate)
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError("line noise: %s must be within 0..1, got %r" % (name, rate))
        if drop_rate + garbage_rate + flip_rate > 1.0:
            raise ValueError("line noise: drop_rate + garbage_rate + flip_rate must be at most 1")
        for name, rate in rates.items():
            setattr(self, name, rate)

    @property
    def active(self) -> bool:
        return any(getattr(self, name) > 0 for name in RATES)

    def report(self) -> dict:
        """What the noise did so far: bytes by kind, and frames sent / damaged / bad chunks."""
        return dict(dropped=self.dropped, garbled=self.garbled, flipped=self.flipped,
                    inserted=self.inserted, frames=self.frames, delivered=self.delivered,
                    damaged=self.damaged, bad_chunks=self.bad_chunks)

    def apply(self, data: bytes) -> bytes:
        if not data:
            return data
        if not self.active:
            self._account(data, data)
            return data
        src = np.frombuffer(data, dtype=np.uint8)
        n = len(src)
        u = self._rng.random(n)
        drop = u < self.drop_rate
        edge = self.drop_rate + self.garbage_rate
        garble = (u >= self.drop_rate) & (u < edge)
        flip = (u >= edge) & (u < edge + self.flip_rate)
        insert = self._rng.random(n) < self.insert_rate
        if not (u < edge + self.flip_rate).any() and not insert.any():
            self._account(data, data)  # (the usual case at low rates: nothing hit)
            return data
        extra = np.zeros(n, dtype=np.uint8)
        extra[insert] = self._rng.integers(0, 256, int(insert.sum()), dtype=np.uint8)
        buf = src.copy()
        buf[garble] = self._rng.integers(0, 256, int(garble.sum()), dtype=np.uint8)
        buf[flip] ^= (1 << self._rng.integers(0, 8, int(flip.sum()))).astype(np.uint8)
        n_insert = int(insert.sum())
        self.dropped += int(drop.sum())
        self.garbled += int(garble.sum())
        self.flipped += int(flip.sum())
        self.inserted += n_insert
        keep = ~drop
        if n_insert:  # each inserted byte goes in front of its byte (dropped or not)
            at = np.flatnonzero(insert)
            buf = np.insert(buf, at, extra[at])
            keep = np.insert(keep, at, True)
        out = buf[keep].tobytes()
        self._account(data, out)
        return out

    def _account(self, went_in: bytes, came_out: bytes) -> None:
        """Count the frames that went in and the chunks that came out: a chunk is a good
        frame when its bytes are those of a frame that went in (and not yet came out)."""
        parts = went_in.split(b"\x00")
        parts[0] = self._in + parts[0]
        for frame in parts[:-1]:
            if frame:
                self.frames += 1
                self._recent[frame] = self._recent.get(frame, 0) + 1
        while len(self._recent) > RECENT:  # long gone: damaged
            self._recent.popitem(last=False)
        self._in = parts[-1][-MAX_CHUNK:]
        chunks = came_out.split(b"\x00")
        chunks[0] = self._out + chunks[0]
        for chunk in chunks[:-1]:
            if not chunk:
                continue  # back-to-back 0x00: an idle line, not a drop
            n = self._recent.get(chunk, 0)
            if n:
                self.delivered += 1
                if n == 1:
                    del self._recent[chunk]
                else:
                    self._recent[chunk] = n - 1
            else:
                self.bad_chunks += 1
        self._out = chunks[-1][-MAX_CHUNK:]
        self.damaged = self.frames - self.delivered
