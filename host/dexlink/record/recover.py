"""Rebuild an episode file cut short (killed recorder, full disk, pulled cable).

Every complete chunk of the damaged file is copied, with its schemas, channels and
metadata, into a new file with a proper summary and footer. The default output for
NAME.mcap.part is NAME.mcap, for anything else NAME.recovered.mcap; when the file sits in
a session directory, the rebuilt episode is added to the session's index.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mcap.records import Channel, Message, Metadata, Schema
from mcap.writer import CompressionType, Writer

from dexlink.record.episode import PART
from dexlink.record.reader import check_mcap, iter_records
from dexlink.record.session import INDEX, Session


@dataclass
class Recovery:
    source: Path
    output: Path
    messages: int
    channels: int
    was_complete: bool
    stopped_because: str
    span_s: float
    indexed: bool = False


def default_output(path: Path) -> Path:
    if path.name.endswith(".mcap" + PART):
        return path.with_name(path.name[: -len(PART)])
    return path.with_name(path.name.removesuffix(".mcap") + ".recovered.mcap")


def recover(path: Path, output: Path | None = None) -> Recovery:
    path = Path(path)
    check_mcap(path)
    output = Path(output) if output else default_output(path)
    if output.resolve() == path.resolve():
        raise ValueError("%s: the output must differ from the damaged file" % output)
    tmp = output.with_name(output.name + ".tmp")
    schema_ids: dict[int, int] = {}
    channel_ids: dict[int, int] = {}
    n = 0
    first = last = None
    complete, why = False, ""
    meta: dict[str, dict] = {}
    with open(tmp, "wb") as f:
        w = Writer(f, compression=CompressionType.NONE)
        w.start(profile="", library="dexlink recover")
        for rec in iter_records(path):
            if isinstance(rec, tuple):
                _, complete, why = rec
            elif isinstance(rec, Schema):
                schema_ids[rec.id] = w.register_schema(rec.name, rec.encoding, rec.data)
            elif isinstance(rec, Channel):
                channel_ids[rec.id] = w.register_channel(
                    rec.topic, rec.message_encoding, schema_ids.get(rec.schema_id, 0),
                    dict(rec.metadata))
            elif isinstance(rec, Metadata):
                w.add_metadata(rec.name, dict(rec.metadata))
                meta[rec.name] = dict(rec.metadata)
            elif isinstance(rec, Message) and rec.channel_id in channel_ids:
                w.add_message(channel_ids[rec.channel_id], rec.log_time, rec.data,
                              rec.publish_time, rec.sequence)
                n += 1
                first = rec.log_time if first is None else min(first, rec.log_time)
                last = rec.log_time if last is None else max(last, rec.log_time)
        if not schema_ids and not channel_ids:
            f.close()
            tmp.unlink()
            raise ValueError("%s: not an MCAP file, or nothing in it survived (%s)" % (path, why))
        w.add_metadata("recovered", {"from": path.name, "messages": str(n),
                                     "stopped_because": why or "complete"})
        w.finish()
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, output)
    rec = Recovery(path, output, n, len(channel_ids), complete, why,
                   ((last - first) / 1e9) if n else 0.0)
    if (output.parent / INDEX).exists() and output.name.startswith("episode_"):
        Session(output.parent).add(
            output, task=meta.get("dexlink", {}).get("task", ""),
            mark=meta.get("result", {}).get("mark", ""), duration_s=round(rec.span_s, 3),
            messages=n, recovered=True)
        rec.indexed = True
    return rec
