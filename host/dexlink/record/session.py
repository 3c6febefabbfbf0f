"""A session directory: episode files and `session.json`, the index of the finished ones.

The index only ever names complete files: an episode is added after its file has been
finished and renamed from NAME.mcap.part to NAME.mcap, and the index itself is replaced
atomically (write a temporary file, fsync, rename), so a crash at any point leaves the
previous index or the new one, never a half-written one or one naming a missing file.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path

from dexlink.errors import FileFormatError

INDEX = "session.json"
EPISODE_GLOB = "episode_*.mcap"
EPISODE_NUMBER = re.compile(r"episode_(\d+)\.")


def atomic_write_json(path: Path, obj) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; an index is for everyone
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)  # the rename itself survives a power cut
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class Session:
    def __init__(self, directory: Path, task: str = ""):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index_path = self.dir / INDEX
        self._lock = threading.Lock()
        if self.index_path.exists():
            self.index = self._load()
        else:
            self.index = {"format": 1, "task": task, "episodes": []}
            atomic_write_json(self.index_path, self.index)

    def _load(self) -> dict:
        try:
            index = json.loads(self.index_path.read_text())
            if not isinstance(index, dict) or not isinstance(index.get("episodes"), list):
                raise ValueError("no 'episodes' list")
            for e in index["episodes"]:
                if not isinstance(e, dict) or not isinstance(e.get("file"), str):
                    raise ValueError("episode entry %.40r has no 'file'" % (e,))
        except (ValueError, OSError) as e:
            raise FileFormatError("%s: not a dexlink session index (%s)"
                                  % (self.index_path, e)) from None
        return index

    @property
    def episodes(self) -> list[dict]:
        return list(self.index["episodes"])

    def episode_paths(self) -> list[Path]:
        return [self.dir / e["file"] for e in self.index["episodes"]]

    def next_path(self) -> Path:
        """A fresh episode file name (NAME.mcap; it is written as NAME.mcap.part first).

        Names are never reused in a session directory, even after a discarded episode's
        file is gone: the index keeps the next number ("next_episode"), and a number is
        never below one already on disk, so data from two takes never share a name.
        """
        with self._lock:
            n = max(int(self.index.get("next_episode", 0)), self._after_files())
            path = self.dir / ("episode_%04d.mcap" % n)
            path.with_name(path.name + ".part").touch()  # reserve the name
            self.index = dict(self.index, next_episode=n + 1)
            atomic_write_json(self.index_path, self.index)
            return path

    def _after_files(self) -> int:
        """One more than the highest episode number named by a file or the index."""
        names = [p.name for p in self.dir.glob("episode_*")]
        names += [e["file"] for e in self.index["episodes"]]
        numbers = [int(m.group(1)) for m in map(EPISODE_NUMBER.match, names) if m]
        return max(numbers) + 1 if numbers else 0

    def add(self, path: Path, **info) -> dict:
        """Index a finished episode file (it must exist and be complete)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError("%s: cannot index a missing episode file" % path)
        entry = {"file": path.name, **info}
        with self._lock:
            episodes = [e for e in self.index["episodes"] if e["file"] != path.name]
            episodes.append(entry)
            episodes.sort(key=lambda e: e["file"])
            self.index = dict(self.index, episodes=episodes)
            atomic_write_json(self.index_path, self.index)
        return entry

    def unindexed(self) -> list[Path]:
        """Episode files in the directory the index does not name (e.g. .part after a crash)."""
        named = {e["file"] for e in self.index["episodes"]}
        return sorted(p for p in self.dir.glob("episode_*.mcap*") if p.name not in named)
