"""Recorded hand frames: `FrameWriter` saves them, `FileInput` (`--input file:PATH`) replays
them with their recorded timing. Two formats, chosen by the file's suffix:

- `.jsonl`: one frame a line, the generic JSON hand object (dexlink.inputs.wire) plus "t_ns"
  and "source";
- `.npz`: arrays t_ns (N,), seq (N,), side (N,) str, source (N,) str, wrist (N, 4, 4),
  joints (N, 26, 3), valid (N, 26).

A replayed frame is stamped with the host time it is delivered at; its recorded spacing is
kept (divided by `speed`).
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from dexlink.errors import FileFormatError
from dexlink.inputs import wire
from dexlink.inputs.frame import BadFrame, HandFrame, InputLimits, problem
from dexlink.inputs.threaded import ThreadedInput

SUFFIXES = (".jsonl", ".npz")


def _check_suffix(path: Path) -> None:
    if path.suffix not in SUFFIXES:
        raise FileFormatError("%s: a hand-frame recording is .jsonl or .npz, not %r"
                              % (path, path.suffix or "no suffix"))


class FrameWriter:
    """Writes frames to PATH (.jsonl a line at a time; .npz on close)."""

    def __init__(self, path):
        self.path = Path(path)
        _check_suffix(self.path)
        self.count = 0
        self._rows: list[HandFrame] = []
        self._file = open(self.path, "w") if self.path.suffix == ".jsonl" else None

    def write(self, frame: HandFrame) -> None:
        if self._file is not None:
            self._file.write(json.dumps(wire.frame_to_dict(frame), separators=(",", ":")) + "\n")
        else:
            self._rows.append(frame)
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._rows is not None:
            rows = self._rows
            np.savez_compressed(
                self.path, t_ns=np.array([f.t_ns for f in rows], dtype=np.int64),
                seq=np.array([f.seq for f in rows], dtype=np.int64),
                side=np.array([f.side for f in rows]), source=np.array([f.source for f in rows]),
                wrist=np.array([f.wrist for f in rows]).reshape(-1, 4, 4),
                joints=np.array([f.joints for f in rows]).reshape(-1, 26, 3),
                valid=np.array([f.valid for f in rows]).reshape(-1, 26))
            self._rows = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_frames(path) -> list[HandFrame]:
    """Every frame in a recording; FileFormatError names the file (and line) that is wrong."""
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise FileFormatError("%s: no such file" % path)
    frames = _read_npz(path) if path.suffix == ".npz" else _read_jsonl(path)
    if not frames:
        raise FileFormatError("%s: no hand frames in it" % path)
    return frames


def _read_jsonl(path: Path) -> list[HandFrame]:
    frames = []
    with open(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                if not isinstance(d, dict) or not isinstance(d.get("t_ns"), int):
                    raise BadFrame("no integer 't_ns'")
                frame = wire.hand_from_dict(d, source=str(d.get("source", "file")), received_ns=0,
                                            next_seq=lambda: len(frames), t_ns=d["t_ns"])
            except ValueError as e:
                reason = e.reason if isinstance(e, BadFrame) else "not JSON"
                raise FileFormatError("%s:%d: %s" % (path, n, reason)) from None
            frames.append(frame)
    return frames


def _read_npz(path: Path) -> list[HandFrame]:
    try:
        with np.load(path, allow_pickle=False) as z:
            cols = {k: z[k] for k in ("t_ns", "seq", "side", "source", "wrist", "joints", "valid")}
    except KeyError as e:
        raise FileFormatError("%s: no array %s" % (path, e)) from None
    except (OSError, ValueError) as e:
        raise FileFormatError("%s: not a hand-frame .npz (%s)" % (path, e)) from None
    n = len(cols["t_ns"])
    if any(len(v) != n for v in cols.values()):
        raise FileFormatError("%s: arrays of different lengths" % path)
    return [HandFrame(t_ns=int(cols["t_ns"][i]), seq=int(cols["seq"][i]), source=str(cols["source"][i]),
                      side=str(cols["side"][i]), wrist=np.asarray(cols["wrist"][i], dtype=np.float64),
                      joints=np.asarray(cols["joints"][i], dtype=np.float64),
                      valid=np.asarray(cols["valid"][i], dtype=bool)) for i in range(n)]


class FileInput(ThreadedInput):
    """Replays a recording (`--input file:PATH`) at its recorded pace; `loop` starts again at
    the end (each pass continuing the sequence numbers); otherwise the input stops."""

    source = "file"

    def __init__(self, path, *, speed: float = 1.0, loop: bool = False,
                 limits: InputLimits | None = None):
        super().__init__(limits)
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.path = Path(path)
        self.frames = read_frames(self.path)
        bad = next(((i, r) for i, r in enumerate(map(problem, self.frames)) if r), None)
        if bad is not None:
            raise FileFormatError("%s: frame %d: %s" % (self.path, bad[0], bad[1]))
        self.speed = speed
        self.loop = loop
        self.finished = threading.Event()

    def describe(self) -> str:
        return "file %s (%d frames)" % (self.path, len(self.frames))

    def start(self) -> FileInput:
        self.start_worker(self._replay, "file")
        return self

    def _replay(self) -> None:
        t0 = self.frames[0].t_ns
        seq = 0
        while self.running:
            start = time.monotonic_ns()
            for frame in self.frames:
                due = start + (frame.t_ns - t0) / self.speed
                while self.running and time.monotonic_ns() < due:
                    time.sleep(min(0.005, max(0.0, (due - time.monotonic_ns()) / 1e9)))
                if not self.running:
                    return
                seq += 1
                self.admit()
                self.offer(HandFrame(t_ns=time.monotonic_ns(), seq=seq, source=frame.source,
                                     side=frame.side, wrist=frame.wrist, joints=frame.joints,
                                     valid=frame.valid))
            if not self.loop:
                break
            t0 = self.frames[0].t_ns
        self.finished.set()
        self.stop()
