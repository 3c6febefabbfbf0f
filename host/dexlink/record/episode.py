"""One episode, one MCAP file, written off the capture threads.

Capture threads and the link thread only put items on a bounded queue (never block:
a full queue refuses the item and counts it as dropped for its stream). Worker
threads encode (JPEG for colour, 16-bit PNG for depth, JSON for the rest; cv2 releases
the GIL while encoding, so two workers use both cores) and add them to the file under
one lock. The chunk in progress is flushed to the OS at least every `flush_s`, so a
killed process loses at most that much.

While recording the file is NAME.mcap.part; `finish()` writes the summary, fsyncs, and
renames it to NAME.mcap, so a file without .part is always complete.
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import defaultdict
from pathlib import Path

import cv2
from mcap.writer import CompressionType, Writer

from dexlink.record import schema

PART = ".part"


def metadata_strings(d: dict) -> dict[str, str]:
    """MCAP metadata values are strings: lists and dicts go as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in d.items()}


class StreamCounts:
    __slots__ = ("queued", "written", "dropped", "first_ns", "last_ns")

    def __init__(self):
        self.queued = self.written = self.dropped = 0
        self.first_ns = self.last_ns = 0


class EpisodeWriter:
    def __init__(self, path: Path, metadata: dict[str, str], cameras=(), jpeg_quality: int = 90,
                 flush_s: float = 0.5, queue_size: int = 2048, workers: int = 2,
                 chunk_size: int = 1 << 20):
        self.path = Path(path)
        self.part_path = self.path.with_name(self.path.name + PART)
        self.jpeg_params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        self.flush_ns = int(flush_s * 1e9)
        self.counts: dict[str, StreamCounts] = defaultdict(StreamCounts)
        self.started_ns = time.monotonic_ns()
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._lock = threading.Lock()  # the file: workers, flushes, finish
        self._put_lock = threading.Lock()  # producers' puts against closing
        self._file = open(self.part_path, "wb")
        self._mcap = Writer(self._file, chunk_size=chunk_size, compression=CompressionType.NONE)
        self._mcap.start(profile="", library="dexlink")
        self._schema_ids = {name: self._mcap.register_schema(name, "jsonschema", data)
                            for name, data in schema.SCHEMAS.items()}
        self._channels: dict[str, int] = {}
        self._channel(schema.TELEMETRY, "dexlink.Telemetry")
        self._channel(schema.EVENTS, "dexlink.Event")
        for cam in cameras:
            self._camera_channels(cam.name, cam.kind)
        self._mcap.add_metadata("dexlink", metadata_strings(metadata))
        self._mcap.flush()
        self._last_flush = time.monotonic_ns()
        self._good_size = self._file.tell()  # the file up to here is a readable MCAP prefix
        self._good_ns = self.started_ns  # capture times up to here are in the file for sure
        self.error = ""  # why writing stopped (disk full, directory gone): the episode is cut
        self._closed = False
        self._workers = [threading.Thread(target=self._work, name="episode-writer-%d" % i,
                                          daemon=True) for i in range(workers)]
        for w in self._workers:
            w.start()

    def _channel(self, topic: str, schema_name: str) -> int:
        if topic not in self._channels:
            self._channels[topic] = self._mcap.register_channel(
                topic, "json", self._schema_ids[schema_name])
        return self._channels[topic]

    def _camera_channels(self, name: str, kind: str) -> None:
        self._channel(schema.image_topic(name, kind), schema.IMAGE_SCHEMA)
        if kind == "rgbd":
            self._channel(schema.depth_topic(name), schema.IMAGE_SCHEMA)
        else:
            self._channel(schema.contact_topic(name), "dexlink.Contact")

    # --- producers (never block) ------------------------------------------------------
    def add_telemetry(self, msg, t_ns: int) -> bool:
        return self._put(schema.TELEMETRY, ("telemetry", t_ns, msg))

    def add_frame(self, frame, kind: str) -> bool:
        return self._put(schema.image_topic(frame.camera, kind), ("frame", frame.t_ns, frame, kind))

    def add_event(self, kind: str, text: str, t_ns: int | None = None) -> bool:
        t_ns = time.monotonic_ns() if t_ns is None else t_ns
        return self._put(schema.EVENTS, ("event", t_ns, {"kind": kind, "text": text}))

    def add_json(self, topic: str, schema_name: str, t_ns: int, data: bytes) -> bool:
        """A message already encoded as JSON on its own channel (schema.SCHEMAS[schema_name]),
        declared on first use."""
        if topic not in self._channels:
            with self._lock:
                if self._mcap is None:
                    return False
                self._channel(topic, schema_name)
        return self._put(topic, ("json", t_ns, data))

    def _put(self, topic: str, item) -> bool:
        # Checked and queued under one lock with _drain's closing: an item that found the
        # writer open is on the queue before the workers' end markers, never behind them
        # (where nothing would write it), and no count appears while finish() reads them.
        with self._put_lock:
            if self._closed:
                return False
            c = self.counts[topic]
            try:
                self._queue.put_nowait((topic,) + item)
            except queue.Full:
                c.dropped += 1
                return False
            c.queued += 1
            return True

    # --- workers ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                self._maybe_flush()
                continue
            if item is None:
                return
            records = self._encode(item)
            with self._lock:
                if self._mcap is None:  # writing failed: the rest is counted, not written
                    self.counts[item[0]].dropped += 1
                    continue
                try:
                    for topic, t_ns, data in records:
                        self._add(topic, t_ns, data)
                except OSError as e:
                    self._write_failed(e)
                    continue
                self.counts[item[0]].written += 1
            self._maybe_flush()

    def _encode(self, item) -> list[tuple[str, int, bytes]]:
        topic, what, t_ns = item[0], item[1], item[2]
        if what == "telemetry":
            return [(topic, t_ns, schema.telemetry_json(item[3]))]
        if what == "event":
            return [(topic, t_ns, schema.small_json(item[3]))]
        if what == "json":
            return [(topic, t_ns, item[3])]
        frame = item[3]
        ok, jpg = cv2.imencode(".jpg", frame.color, self.jpeg_params)
        out = [(topic, t_ns, schema.image_json(frame.camera, t_ns, "jpeg", jpg.tobytes()))]
        if frame.depth is not None:
            ok, png = cv2.imencode(".png", frame.depth, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            out.append((schema.depth_topic(frame.camera), t_ns,
                        schema.image_json(frame.camera + "_depth", t_ns, "png", png.tobytes())))
        if frame.contact is not None:
            out.append((schema.contact_topic(frame.camera), t_ns, schema.small_json(
                {"area": round(frame.contact.area, 5),
                 "intensity": round(frame.contact.intensity, 3)})))
        return out

    def _add(self, topic: str, t_ns: int, data: bytes) -> None:
        cid = self._channels.get(topic)
        if cid is None:  # a camera that was not announced at start
            cid = self._channel(topic, "dexlink.Contact" if topic.endswith("/contact")
                                else schema.IMAGE_SCHEMA)
        self._mcap.add_message(cid, log_time=t_ns, data=data, publish_time=t_ns)
        c = self.counts[topic]
        if not c.first_ns or t_ns < c.first_ns:
            c.first_ns = t_ns
        c.last_ns = max(c.last_ns, t_ns)

    def _maybe_flush(self) -> None:
        now = time.monotonic_ns()
        if now - self._last_flush >= self.flush_ns:
            with self._lock:
                if self._mcap is None:  # finished (or failed) meanwhile
                    return
                try:
                    self._mcap.flush()  # ends the chunk and hands it to the OS
                except OSError as e:
                    self._write_failed(e)
                    return
                self._last_flush = now
                self._good_size = self._file.tell()
                self._good_ns = now

    def _write_failed(self, e: OSError) -> None:
        """The file cannot grow (disk full, file too large, directory gone): stop writing and
        cut the file back to its last complete chunk, so what was flushed stays readable
        and `dexlink recover` can finish it once there is room. Called under the lock."""
        self.error = "cannot write %s: %s" % (self.part_path, e.strerror or e)
        self._closed = True
        self._mcap = None
        try:
            self._file.close()  # its buffer cannot be written either
        except OSError:
            pass
        try:
            os.truncate(self.part_path, self._good_size)  # frees room; needs none
        except OSError:
            pass

    def kept_s(self) -> float:
        """Seconds of the episode that are surely in the file (after a write failure)."""
        return max(0.0, (self._good_ns - self.started_ns) / 1e9)

    # --- the end --------------------------------------------------------------------------
    def _drain(self) -> None:
        with self._put_lock:
            self._closed = True
        for _ in self._workers:
            self._queue.put(None)
        for w in self._workers:
            w.join()

    def finish(self, result: dict[str, str]) -> Path:
        """Write what is queued, the result metadata and the summary; then NAME.mcap.

        The result gets the message count and the drops per stream added.
        """
        self._drain()
        result = dict(result, messages=self.message_count(),
                      dropped=",".join("%s=%d" % (t, c.dropped)
                                       for t, c in sorted(self.counts.items()) if c.dropped))
        with self._lock:
            if not self.error:
                try:
                    self._mcap.add_metadata("result", metadata_strings(result))
                    self._mcap.finish()
                    self._file.flush()
                    os.fsync(self._file.fileno())
                    self._file.close()
                    self._mcap = None
                except OSError as e:
                    self._write_failed(e)
        if self.error:
            raise OSError("%s; the first %.1f s of the episode are kept in it: run `dexlink "
                          "recover %s` once there is room" % (self.error, self.kept_s(),
                                                              self.part_path))
        os.replace(self.part_path, self.path)
        return self.path

    def discard(self) -> None:
        self._drain()
        with self._lock:
            if self._mcap is not None:
                self._file.close()
                self._mcap = None
        self.part_path.unlink(missing_ok=True)

    def pending(self) -> int:
        """Items queued and not written yet."""
        return self._queue.qsize()

    def message_count(self) -> int:
        return sum(c.written for c in self.counts.values())
