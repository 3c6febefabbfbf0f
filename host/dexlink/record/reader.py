"""Reading episode files, complete or cut short.

Records are read in file order with the non-seeking stream reader, so a file without
its footer (a killed recorder) yields every complete chunk and then stops; `complete`
says whether the footer was reached. Chunk CRCs are checked: a damaged chunk ends the
read there, it is never returned half-right.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mcap.records import Channel, Footer, Message, Metadata, Schema
from mcap.stream_reader import StreamReader

from dexlink.errors import FileFormatError
from dexlink.record import schema


@dataclass
class Stream:
    """The messages of one topic, sorted by log time (capture time, host ns)."""

    topic: str
    times: np.ndarray  # int64 ns
    data: list  # bytes per message, or None when not kept

    def __len__(self):
        return len(self.times)


@dataclass
class EpisodeData:
    path: Path
    metadata: dict = field(default_factory=dict)  # record name -> {key: value}
    streams: dict = field(default_factory=dict)  # topic -> Stream
    schemas: list = field(default_factory=list)
    channels: list = field(default_factory=list)
    complete: bool = False
    error: str = ""  # why reading stopped early ("" when complete)

    @property
    def info(self) -> dict:
        return self.metadata.get("dexlink", {})

    @property
    def result(self) -> dict:
        return self.metadata.get("result", {})

    def span_ns(self) -> tuple[int, int]:
        firsts = [s.times[0] for s in self.streams.values() if len(s)]
        lasts = [s.times[-1] for s in self.streams.values() if len(s)]
        return (int(min(firsts)), int(max(lasts))) if firsts else (0, 0)

    def telemetry(self) -> dict[str, np.ndarray]:
        """Telemetry as arrays: t_ns (n), exo/goal/present (n x joints) in cdeg, status, mode."""
        s = self.streams.get(schema.TELEMETRY)
        if s is None or not len(s):
            return {}
        rows = [json.loads(d) for d in s.data]
        out = {"t_ns": s.times}
        for key in ("exo_cdeg", "goal_cdeg", "present_cdeg", "status"):
            out[key] = np.array([r[key] for r in rows], dtype=np.int32)
        out["mode"] = np.array([r["mode"] for r in rows])
        return out

    def contact(self, camera: str) -> dict[str, np.ndarray]:
        s = self.streams.get(schema.contact_topic(camera))
        if s is None or not len(s):
            return {}
        rows = [json.loads(d) for d in s.data]
        return {"t_ns": s.times, "area": np.array([r["area"] for r in rows]),
                "intensity": np.array([r["intensity"] for r in rows])}

    def image_topics(self) -> list[str]:
        return sorted(t for t in self.streams if t.endswith("/image") or t == "/rgbd/color"
                      or t == "/rgbd/depth")

    def events(self) -> list[tuple[int, dict]]:
        s = self.streams.get(schema.EVENTS)
        return [] if s is None else [(int(t), json.loads(d)) for t, d in zip(s.times, s.data)]


def iter_records(path: Path):
    """(records..., then a final ('end', complete, error)) for a file, stopping at damage."""
    with open(path, "rb") as f:
        reader = StreamReader(f, validate_crcs=True)
        try:
            for record in reader.records:
                yield record
                if isinstance(record, Footer):
                    yield ("end", True, "")
                    return
        except Exception as e:  # truncated or damaged: what came before stands
            yield ("end", False, "%s (%s)" % (type(e).__name__, e) if str(e) else type(e).__name__)
            return
    yield ("end", False, "no footer")


MAGIC = b"\x89MCAP0\r\n"


def check_mcap(path: Path) -> None:
    """Refuse, naming the file, what is not an MCAP file at all (a file cut short is one)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError("%s: no such episode file" % path)
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
    if not head:
        raise FileFormatError("%s: empty file, not an MCAP episode" % path)
    if head != MAGIC:
        raise FileFormatError("%s: not an MCAP episode (it does not start with the MCAP magic "
                              "bytes)" % path)


def read_episode(path: Path, keep=lambda topic: True) -> EpisodeData:
    """Read a whole episode; `keep(topic)` says whose message bytes to keep (all by default)."""
    ep = EpisodeData(Path(path))
    check_mcap(ep.path)
    topics: dict[int, str] = {}
    times = defaultdict(list)
    datas = defaultdict(list)
    for rec in iter_records(ep.path):
        if isinstance(rec, tuple):
            _, ep.complete, ep.error = rec
            if not (ep.complete or ep.schemas or ep.channels or ep.metadata):
                raise FileFormatError("%s: cut short before its first record: nothing to read "
                                      "(%s)" % (ep.path, ep.error))
        elif isinstance(rec, Message):
            topic = topics.get(rec.channel_id)
            if topic is None:
                continue
            times[topic].append(rec.log_time)
            datas[topic].append(rec.data if keep(topic) else None)
        elif isinstance(rec, Channel):
            topics[rec.id] = rec.topic
            times[rec.topic]  # a channel with no message still shows as a stream
            ep.channels.append(rec)
        elif isinstance(rec, Schema):
            ep.schemas.append(rec)
        elif isinstance(rec, Metadata):
            ep.metadata[rec.name] = dict(rec.metadata)
    for topic, t in times.items():
        t = np.asarray(t, dtype=np.int64)
        order = np.argsort(t, kind="stable")  # workers may write slightly out of order
        d = datas[topic]
        ep.streams[topic] = Stream(topic, t[order], [d[i] for i in order])
    return ep


def episode_files(target: Path) -> list[Path]:
    """The episode files a path names: one file, or a session directory's indexed episodes."""
    from dexlink.record.session import INDEX, Session

    target = Path(target)
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise FileNotFoundError("%s: no such episode file or session directory" % target)
    if (target / INDEX).exists():
        return Session(target).episode_paths()
    files = sorted(target.glob("*.mcap"))
    if not files:
        raise FileNotFoundError("%s: no session.json and no .mcap files in it" % target)
    return files
