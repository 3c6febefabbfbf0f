"""A recording session: telemetry, cameras and events go to the episode being recorded.

Cameras run for the whole session, so an episode starts the moment it is asked for;
a stopped episode is finished (queue drained, summary written, file renamed, index
updated) by a background thread while the next one already records.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from pathlib import Path

from dexlink import __version__
from dexlink.capture.base import CameraSet
from dexlink.link import EVENT as LINK_EVENT
from dexlink.record.episode import EpisodeWriter
from dexlink.record.native_heap import give_back, hold_mmap_threshold
from dexlink.record.schema import TELEMETRY
from dexlink.record.session import Session
from dexproto import catalog
from dexproto.stream import mode_name

MARKS = ("", "success", "failure")


class RateMeter:
    """Events per second over the last `window_s`."""

    def __init__(self, window_s: float = 1.0):
        self.window_ns = int(window_s * 1e9)
        self.times: deque = deque()

    def tick(self, t_ns: int) -> None:
        self.times.append(t_ns)
        while self.times and t_ns - self.times[0] > self.window_ns:
            self.times.popleft()

    def rate(self, now_ns: int) -> float:
        while self.times and now_ns - self.times[0] > self.window_ns:
            self.times.popleft()
        return len(self.times) * 1e9 / self.window_ns


class Recorder:
    def __init__(self, session: Session, cameras: CameraSet | None = None,
                 metadata: dict | None = None):
        hold_mmap_threshold()  # frames and chunks must not pile up in malloc's heaps
        self.session = session
        self.attach_cameras(cameras or CameraSet([]))
        self.metadata = {"dexlink_version": __version__, **(metadata or {})}
        self.current: EpisodeWriter | None = None
        self.current_mark = ""
        self.latest_present: list[int] | None = None
        self.mode: int | None = None
        self.telemetry_rate = RateMeter()
        self.finished: list[dict] = []  # index entries of the episodes kept
        self.errors: list[str] = []
        self.last_switch_s = 0.0  # stop of one episode until the next could start
        self._closers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._missed_at_start: dict[str, int] = {}
        self._link_down_ns = 0  # when the link last went down (0: it is up)
        # What arrived while no episode was open (not a loss: nothing was recording).
        self.between_episodes: Counter = Counter()
        # Live views (dexlink.live): .telemetry(msg, t_ns), .frame(frame, kind) and
        # .event(kind, text, t_ns) see every input, episode or not, on the producers'
        # threads: they must not block.
        self.taps: list = []

    def attach_cameras(self, cameras: CameraSet) -> None:
        """Use these cameras (made after the recorder when they render from its joints)."""
        self.cameras = cameras
        self.kinds = {c.name: c.kind for c in cameras}

    # --- inputs -----------------------------------------------------------------------
    def joints(self):
        """The latest present joint positions (cdeg), for simulated cameras."""
        return self.latest_present

    def start_cameras(self) -> None:
        self.cameras.start(self.on_frame)

    def on_frame(self, frame) -> bool:
        for tap in self.taps:
            tap.frame(frame, self.kinds[frame.camera])
        w = self.current
        if w is None:
            self.between_episodes[frame.camera] += 1
            return True
        return w.add_frame(frame, self.kinds[frame.camera])

    def on_telemetry(self, msg, t_ns: int) -> None:
        self.latest_present = [it[2] for it in msg.items]
        self.telemetry_rate.tick(t_ns)
        for tap in self.taps:
            tap.telemetry(msg, t_ns)
        mode = msg.fields["mode"]
        if mode != self.mode:
            if self.mode is not None:
                self.event("mode", "%s -> %s" % (mode_name(self.mode), mode_name(mode)), t_ns)
            self.mode = mode
        w = self.current
        if w is None:
            self.between_episodes["telemetry"] += 1
        else:
            w.add_telemetry(msg, t_ns)

    def on_message(self, msg, t_ns: int) -> None:
        """Any message from the link: TELEMETRY, FAULT, LOG."""
        if msg.name == "TELEMETRY":
            self.on_telemetry(msg, t_ns)
        elif msg.name == "FAULT":
            code = msg.fields["code"]
            name = catalog.FAULT_NAMES[code] if code < len(catalog.FAULT_NAMES) else str(code)
            joint = msg.fields["joint"]
            where = getattr(msg, "where", None)  # the joint by name, when the link knows it
            if where is None:
                where = "" if joint == catalog.NO_JOINT else "joint %d" % joint
            self.event("fault", name + (" " + where if where else "")
                       + " detail %d" % msg.fields["detail"], t_ns)
        elif msg.name == "LOG":
            self.event("log", msg.text, t_ns)
        elif msg.name == LINK_EVENT:  # the link's own news: cable pulled, board reset, back
            self.event("link", self._link_text(msg), msg.host_ns)

    def _link_text(self, e) -> str:
        """What the link said; a reconnection also says how long the board was away."""
        text = "%s: %s" % (e.kind, e.detail) if e.detail else e.kind
        if e.kind in ("disconnected", "board_reset"):
            self._link_down_ns = self._link_down_ns or e.host_ns
        elif e.kind == "reconnected" and self._link_down_ns:
            text += " (link down %.2f s)" % ((e.host_ns - self._link_down_ns) / 1e9)
            self._link_down_ns = 0
        return text

    def event(self, kind: str, text: str, t_ns: int | None = None) -> None:
        for tap in self.taps:
            tap.event(kind, text, t_ns)
        w = self.current
        if w is not None:
            w.add_event(kind, text, t_ns)

    def write_error(self) -> str:
        """Why the episode being recorded cannot be written any more ("" while it can)."""
        w = self.current
        return w.error if w is not None else ""

    def check_cameras(self) -> dict[str, str]:
        """Camera problems; each new one is also written as an event."""
        problems = self.cameras.problems()
        for name, what in problems.items():
            if (name, what) not in self._reported:
                self._reported.add((name, what))
                self.event("camera", "%s: %s" % (name, what))
        return problems

    # --- episodes -----------------------------------------------------------------------
    def start_episode(self) -> Path:
        with self._lock:
            if self.current is not None:
                raise RuntimeError("an episode is already being recorded")
            path = self.session.next_path()
            meta = dict(self.metadata, episode=path.stem,
                        cameras=",".join("%s:%s@%g" % (c.name, c.kind, c.fps) for c in self.cameras),
                        depth_scale=next((c.depth_scale for c in self.cameras if c.kind == "rgbd"), 0),
                        start_wall_time=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            self.current = EpisodeWriter(path, meta, self.cameras)
            self.current_mark = ""
            self._missed_at_start = {c.name: c.stats.missed for c in self.cameras}
            if self.mode is not None:
                self.current.add_event("mode", "recording starts in " + mode_name(self.mode))
            return path

    def mark(self, success: bool) -> None:
        self.current_mark = "success" if success else "failure"
        self.event("mark", self.current_mark)

    def stop_episode(self, keep: bool = True) -> threading.Thread | None:
        """End the episode (kept or discarded); it is finished in the background."""
        t0 = time.monotonic()
        with self._lock:
            w, mark = self.current, self.current_mark
            self.current = None
        if w is None:
            return None
        # Frames the cameras missed during the episode (never reached the recorder).
        missed = {"missed." + c.name: c.stats.missed - self._missed_at_start.get(c.name, 0)
                  for c in self.cameras}
        closer = threading.Thread(target=self._finish, args=(w, keep, mark, missed),
                                  name="episode-finish", daemon=False)
        closer.start()
        with self._lock:  # the finished ones go: a long session keeps those still writing
            self._closers = [t for t in self._closers if t.is_alive()] + [closer]
        self.last_switch_s = time.monotonic() - t0
        return closer

    def _finish(self, w: EpisodeWriter, keep: bool, mark: str, missed: dict) -> None:
        try:
            if not keep:
                w.discard()
                return
            duration = round((time.monotonic_ns() - w.started_ns) / 1e9, 3)
            w.finish({"mark": mark, "duration_s": duration, **missed})
            entry = self.session.add(w.path, task=self.metadata.get("task", ""), mark=mark,
                                     duration_s=duration, messages=w.message_count(),
                                     dropped=sum(c.dropped for c in w.counts.values())
                                     + sum(missed.values()))
            self.finished.append(entry)
        except Exception as e:  # keep the session going; say what was lost
            self.errors.append("%s: %s" % (w.path.name, e))
        finally:
            give_back()

    def wait_finished(self, timeout: float | None = None) -> None:
        for t in list(self._closers):
            t.join(timeout)
        with self._lock:
            self._closers = [t for t in self._closers if t.is_alive()]

    def close(self, keep: bool = True) -> None:
        self.stop_episode(keep)
        self.cameras.stop()
        self.wait_finished()

    # --- what the user sees -------------------------------------------------------------
    def status_line(self) -> str:
        now = time.monotonic_ns()
        w = self.current
        parts = []
        if w is None:
            parts.append("idle")
        else:
            parts.append("REC %s %5.1fs%s" % (w.path.stem, (now - w.started_ns) / 1e9,
                                             " [%s]" % self.current_mark if self.current_mark else ""))
        tel_drop = w.counts[TELEMETRY].dropped if w is not None else 0
        parts.append("telemetry %4.0f/s drop %d" % (self.telemetry_rate.rate(now), tel_drop))
        for c in self.cameras:
            health = c.health(now)
            state = "" if health == "running" else " " + health.upper()
            parts.append("%s %4.1f/s drop %d%s" % (c.name, c.rate(), c.stats.dropped, state))
        if w is not None:
            parts.append("queue %d" % w.pending())
            if w.error:
                parts.append("WRITE FAILED: " + w.error)
        return " | ".join(parts)


def follow_link(link, recorder: Recorder, stop: threading.Event) -> threading.Thread:
    """A thread feeding the link's TELEMETRY, FAULT, LOG and link events to the recorder.

    Telemetry is stamped with its sampling time on the host clock through the link's
    clock mapping; before the first time-sync reply, with its arrival time.
    """
    sub = link.subscribe("TELEMETRY", "FAULT", "LOG", LINK_EVENT, maxsize=20000)

    def run():
        try:
            while not stop.is_set():
                msg = sub.get(timeout=0.1)
                if msg is None:
                    continue
                t_ns = msg.host_ns
                board_us = msg.fields.get("board_us") if msg.name != LINK_EVENT else None
                if board_us is not None and link.clock.synced:
                    try:
                        t_ns = link.clock.to_host_ns(board_us, msg.host_ns)
                    except RuntimeError:
                        pass
                recorder.on_message(msg, t_ns)
        finally:
            link.unsubscribe(sub)

    t = threading.Thread(target=run, name="recorder-link", daemon=True)
    t.start()
    return t
