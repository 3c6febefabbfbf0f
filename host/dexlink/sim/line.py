"""Noise on the virtual board's serial line: bytes dropped, garbled, bit-flipped or
inserted at a stated rate, and an account of the frames that damage costs."""
from __future__ import annotations

import numpy as np

RATES = ("drop_rate", "garbage_rate", "flip_rate", "insert_rate")


class LineNoise:
    """One direction of the line. Each byte is dropped with probability drop_rate, else
    replaced by a random byte with probability garbage_rate, else has one random bit
    flipped with probability flip_rate; independently, a random byte is inserted before
    it with probability insert_rate. Seeded: runs repeat.

    Besides the bytes (dropped, garbled, flipped, inserted) it counts frames, as a
    receiver splitting the line at 0x00 sees them (always, noise or not):
    frames: non-empty frames that went in; delivered: pieces between 0x00s that came out
    exactly as a frame went in; damaged = frames - delivered; bad_chunks: the other
    non-empty pieces, i.e. what a receiver drops. A receiver decodes `delivered` good
    frames and counts `bad_chunks` drops (unless noise forged a valid CRC-32).
    """

    def __init__(self, seed: int = 0):
        self.drop_rate = self.garbage_rate = self.flip_rate = self.insert_rate = 0.0
        self.dropped = self.garbled = self.flipped = self.inserted = 0
        self.frames = self.delivered = self.damaged = self.bad_chunks = 0
        self._rng = np.random.default_rng(seed)
        self._base = 0  # index, in everything that went in, of the next byte
        self._prev_zero = True  # the byte before it was a 0x00 (the line starts idle)
        self._in_len = 0  # bytes of the frame under way that went in
        self._out_len = 0  # bytes of the chunk under way that came out ...
        self._out_ok = False  # ... all of them unchanged input bytes in a row from a frame start
        self._out_last = -1  # the input index of its last byte

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
        src = np.frombuffer(data, dtype=np.uint8)
        origin = np.arange(self._base, self._base + len(src), dtype=np.int64)
        if not self.active:
            self._account(src, src, origin, np.zeros(len(src), dtype=bool))
            return data
        n = len(src)
        u = self._rng.random(n)
        drop = u < self.drop_rate
        edge = self.drop_rate + self.garbage_rate
        garble = (u >= self.drop_rate) & (u < edge)
        flip = (u >= edge) & (u < edge + self.flip_rate)
        insert = self._rng.random(n) < self.insert_rate
        extra = np.zeros(n, dtype=np.uint8)
        extra[insert] = self._rng.integers(0, 256, int(insert.sum()), dtype=np.uint8)
        same = insert & drop & (extra == src)  # a byte put in for the one dropped: no change
        insert &= ~same
        drop &= ~same
        buf = src.copy()
        buf[garble] = self._rng.integers(0, 256, int(garble.sum()), dtype=np.uint8)
        buf[flip] ^= (1 << self._rng.integers(0, 8, int(flip.sum()))).astype(np.uint8)
        changed = buf != src  # a garbled byte may come out as it was
        n_insert = int(insert.sum())
        self.dropped += int(drop.sum())
        self.garbled += int(garble.sum())
        self.flipped += int(flip.sum())
        self.inserted += n_insert
        keep = ~drop
        if n_insert:  # each inserted byte goes in front of its byte (dropped or not)
            at = np.flatnonzero(insert)
            buf = np.insert(buf, at, extra[at])
            origin = np.insert(origin, at, -1)
            changed = np.insert(changed, at, True)
            keep = np.insert(keep, at, True)
        out = buf[keep]
        self._account(src, out, origin[keep], changed[keep])
        return out.tobytes()

    def _account(self, src, out, origin, changed) -> None:
        """Count the frames that went in (src) and the chunks that came out (out: where
        each byte came from, as an index into everything that went in, -1 if inserted).
        A chunk is a good frame if it is exactly the bytes between two 0x00 that went in."""
        base = self._base
        prev_zero = self._prev_zero

        def is_end(o):  # whether input byte o is a 0x00 (o = -1: before the first byte)
            if o < base:
                return prev_zero if o == base - 1 else o < 0
            return src[o - base] == 0

        # frames in: non-empty runs ending in a 0x00
        ends = np.flatnonzero(src == 0)
        if len(ends):
            runs = np.diff(np.concatenate(([-1], ends))) - 1
            runs[0] += self._in_len
            self.frames += int((runs > 0).sum())
            self._in_len = len(src) - ends[-1] - 1
        else:
            self._in_len += len(src)
        # chunks out
        zeros = np.flatnonzero(out == 0)
        pos = 0
        for z in list(zeros) + [len(out)]:
            if z > pos:  # bytes of the chunk under way
                o = origin[pos:z]
                if not self._out_len:
                    self._out_ok = bool(o[0] >= 0 and is_end(int(o[0]) - 1))
                    self._out_last = int(o[0]) - 1
                if self._out_ok:
                    self._out_ok = bool(not changed[pos:z].any() and o[0] == self._out_last + 1
                                        and (z - pos == 1 or (np.diff(o) == 1).all()))
                self._out_last = int(o[-1])
                self._out_len += z - pos
            if z == len(out):
                break
            if self._out_len:  # a 0x00 ends a non-empty chunk: good frame, or a drop
                if self._out_ok and is_end(self._out_last + 1):
                    self.delivered += 1
                else:
                    self.bad_chunks += 1
            self._out_len = 0
            pos = z + 1
        self.damaged = self.frames - self.delivered
        self._base = base + len(src)
        self._prev_zero = bool(src[-1] == 0)
