"""A teleop session with a host input: hand frames -> retargeting -> HOST-mode goals.

    session = TeleopSession(link, hand_input, retargeter, TeleopOptions(...))
    session.start() ... session.stats() ... session.stop()

One thread takes the newest frame of the operated hand, retargets it and sends the new goal
at once (no hand-over to another thread on the way: each one costs a wake-up, a few ms on a
busy machine); another sends the last goal again at every tick of `rate_hz` (100 by
default) without a new one, so the board gets goals at the full rate whatever the device's
own rate. When the board takes timed points (protocol 1.2, `Link.send_points`),
each goal goes as a point `lead_s` ahead, which the firmware interpolates to; otherwise as
plain TARGETS.

The watchdog: when no usable frame was captured in the last `hold_after_s` (the device
stopped, the operator's hand left its view, every frame was dropped as bad) the session
stops sending goals. The hand holds its last one (the link's keeper keeps the board's own watchdog fed
with heartbeats), and the session says so; when frames come back the hand glides to the
new goal over `resume_s` instead of jumping. Nothing a frame holds can stop the thread: a
frame the retargeter cannot use is counted and skipped.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from dexlink.inputs.frame import HandFrame, HandInput
from dexlink.link import EVENT as LINK_EVENT
from dexlink.teleop.latency import StageLatency, StageTimes, percentiles

RATE_HZ = 100.0


@dataclass(frozen=True)
class TeleopOptions:
    side: str = "right"  # the operator's hand that drives the robot's
    rate_hz: float = RATE_HZ  # goals sent per second
    hold_after_s: float = 0.25  # no good frame for this long: the hand holds
    # A timed point's time ahead of now: the link's own delay and a bit (USB ~1 ms, the
    # board's read at its next 1 kHz cycle <= 1 ms). Every goal reaches the servo this late,
    # so no longer than that; a point that reaches the board after its time is dropped, and
    # the goal goes again at the next tick (bench/teleop.py --lead-ms: none dropped at 2 ms
    # on a loaded machine, the virtual board).
    lead_s: float = 0.003
    resume_s: float = 0.3  # after a hold, the first goal's lead: a glide, not a jump
    timed_points: bool = True  # use send_points when the board takes them


class TeleopTaps:
    """What a recording wants of a session. The methods are called on the session's threads
    (frame: retargeting; target, event: retargeting or sending, one at a time; latency:
    telemetry) and must not block."""

    def frame(self, frame: HandFrame) -> None: ...

    def target(self, t_ns: int, seq: int, goal_deg: np.ndarray) -> None: ...

    def latency(self, times: StageTimes) -> None: ...

    def event(self, text: str) -> None: ...


class TeleopSession:
    def __init__(self, link, hand_input: HandInput, retargeter, options: TeleopOptions | None = None,
                 taps: TeleopTaps | None = None):
        self.link = link
        self.input = hand_input
        self.retargeter = retargeter
        self.options = options or TeleopOptions()
        self.taps = taps or TeleopTaps()
        self.n_joints = len(retargeter.joint_names)
        self.latency = StageLatency()
        self.timed = self.options.timed_points and self._board_takes_points()
        self.goal_deg: np.ndarray | None = None
        self.holding = True  # until the first frame
        self.counts = {"frames_used": 0, "other_side": 0, "retarget_failed": 0, "sent": 0,
                       "holds": 0, "send_failed": 0}
        self.last_error = ""
        self.retarget_ms: deque = deque(maxlen=4096)
        self._goal_meta = (0, 0, 0)  # seq, captured_ns, retargeted_ns of goal_deg
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._first_sent = 0.0
        self._resume = False
        self._goal_lock = threading.Lock()
        self._send_lock = threading.Lock()  # one tick at a time: the two threads both send
        self._fresh_at = 0.0  # time.monotonic() of the last new goal sent

    def _board_takes_points(self) -> bool:
        board = getattr(self.link, "board", None)
        return hasattr(self.link, "send_points") and board is not None and \
            (board.proto_major, board.proto_minor) >= (1, 2)

    # -- running -------------------------------------------------------------------------
    def start(self) -> TeleopSession:
        self._started = time.monotonic()
        if not self.input.running:
            self.input.start()
        self._sub = self.link.subscribe("TELEMETRY", LINK_EVENT, maxsize=4096)
        for target, name in ((self._retarget_loop, "teleop-retarget"), (self._send_loop, "teleop-send"),
                             (self._watch_telemetry, "teleop-latency")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        self.link.unsubscribe(self._sub)
        self.input.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _retarget_loop(self) -> None:
        # Retargeting has a thread of its own: a slow frame (ms) delays no goal already due.
        # Every frame is seen (a recording keeps them all); only the newest of the operated
        # hand is retargeted: a backlog is skipped, never worked through late.
        while not self._stop.is_set():
            frame = self.input.get(0.05)
            if frame is None:
                continue
            newest = None
            while frame is not None:
                self.taps.frame(frame)
                if frame.side == self.options.side:
                    newest = frame
                else:
                    self.counts["other_side"] += 1
                frame = self.input.get(0)
            if newest is not None and self._retarget(newest):
                with self._send_lock:
                    self.tick(True)
                    self._fresh_at = time.monotonic()

    def _send_loop(self) -> None:
        # The last goal again at every tick, the ticks a period apart and a period after the
        # last new goal (which the retargeting thread sent): rate_hz goals at least,
        # whatever the device's rate.
        period = 1.0 / self.options.rate_hz
        next_t = time.monotonic()
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):
            with self._send_lock:
                if self._fresh_at > next_t - period:  # a new goal went out since the last tick
                    next_t = self._fresh_at + period
                    continue
                self.tick(False)
            now = time.monotonic()
            next_t += period
            if next_t < now - 2 * period:  # far behind (a stalled machine): start afresh
                next_t = now

    def tick(self, fresh: bool) -> None:
        """One goal out: the new one (fresh) or the last again; or a hold when the operated
        hand gave no usable frame for hold_after_s."""
        now = time.monotonic_ns()
        with self._goal_lock:
            goal, meta = self.goal_deg, self._goal_meta
        # Stale by capture time: a backlog retargeted late is not a device still tracking.
        stale = goal is None or (now - meta[1]) / 1e9 > self.options.hold_after_s
        if stale and not fresh:
            if not self.holding:
                self.holding = True
                self._resume = True
                self.counts["holds"] += 1
                self.taps.event("input lost (no good frame for %.0f ms): holding"
                                % (self.options.hold_after_s * 1e3))
            return
        if self.holding:
            self.holding = False
            self.taps.event("input tracking")
        self._send(goal, meta, fresh)

    def _retarget(self, frame: HandFrame) -> bool:
        t0 = time.perf_counter()
        try:
            q = np.asarray(self.retargeter.retarget(frame), dtype=float)
            if q.shape != (self.n_joints,) or not np.isfinite(q).all():
                raise ValueError("retargeter gave %s" % (q.shape if q.shape != (self.n_joints,) else "NaN"))
        except Exception as e:  # noqa: BLE001 - one unusable frame must not end the session
            self.counts["retarget_failed"] += 1
            self.last_error = "retargeting failed: %s" % e
            return False
        now = time.monotonic_ns()
        self.retarget_ms.append((time.perf_counter() - t0) * 1e3)
        self.counts["frames_used"] += 1
        with self._goal_lock:
            self.goal_deg = q
            self._goal_meta = (frame.seq, frame.t_ns, now)
        return True

    def _send(self, goal: np.ndarray, meta: tuple, fresh: bool) -> None:
        cdeg = np.round(goal * 100).astype(int)
        try:
            if self.timed and self.link.clock.synced:
                lead = int(1e6 * (self.options.resume_s if self._resume else self.options.lead_s))
                # A point past its time before it went (this thread was held up: a busy
                # machine) is dropped: once more from now, rather than no goal until the next tick.
                for _ in range(2):
                    if self.link.send_points(self.link.board_time_us() + lead, 10_000, goal[None, :]):
                        break
            else:
                self.link.send_targets(cdeg)
        except Exception as e:  # noqa: BLE001 - a link that is down now may be back next tick
            self.counts["send_failed"] += 1
            self.last_error = "sending failed: %s" % e
            return
        self._resume = False
        sent_ns = time.monotonic_ns()
        if not self.counts["sent"]:
            self._first_sent = time.monotonic()
        self.counts["sent"] += 1
        seq, captured_ns, retargeted_ns = meta
        self.taps.target(sent_ns, seq, goal)
        if fresh:
            self.latency.sent(seq, captured_ns, retargeted_ns, sent_ns, cdeg)

    def _watch_telemetry(self) -> None:
        clock = self.link.clock
        while not self._stop.is_set():
            msg = self._sub.get(timeout=0.1)
            if msg is None or msg.name != "TELEMETRY":
                continue
            t_ns = msg.host_ns
            if clock.synced:
                try:
                    t_ns = clock.to_host_ns(msg.fields["board_us"], msg.host_ns)
                except RuntimeError:
                    pass
            items = msg.items
            times = self.latency.telemetry([it[1] for it in items], [it[3] for it in items], t_ns)
            if times is not None:
                self.taps.latency(times)

    # -- what it did ---------------------------------------------------------------------
    def rate_hz(self) -> float:
        """Goals sent per second since the first one."""
        if self.counts["sent"] < 2:
            return 0.0
        return (self.counts["sent"] - 1) / max(1e-9, time.monotonic() - self._first_sent)

    def stats(self) -> dict:
        # Timed points that reached the board after their time were dropped by the link, not
        # applied late: many means lead_s is too short for this link.
        link_stats = self.link.stats_snapshot() if hasattr(self.link, "stats_snapshot") else {}
        return {"input": self.input.counters.as_dict(), **self.counts,
                "points_dropped": link_stats.get("points_dropped", 0),
                "holding": self.holding, "send_rate_hz": round(self.rate_hz(), 1),
                "timed_points": self.timed, "retarget_compute_ms": percentiles(list(self.retarget_ms)),
                "latency": self.latency.summary(), "last_error": self.last_error}

    def status_line(self) -> str:
        c = self.input.counters
        lat = self.latency.summary()["end_to_end_ms"]
        return ("%s | frames %d used, %d dropped (malformed %d, stale %d, flood %d) | sent %.0f/s%s"
                " | end-to-end p50 %s ms" % (
                    "HOLDING" if self.holding else "tracking", self.counts["frames_used"], c.dropped,
                    c.dropped_malformed, c.dropped_stale, c.dropped_flood, self.rate_hz(),
                    " (points)" if self.timed else "", lat.get("p50", "-")))
