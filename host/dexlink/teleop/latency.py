"""Where the time goes between a hand moving and the servo being told to follow:

    captured -> retargeted -> sent -> on the servo

captured: the frame's t_ns (the device's capture time on the host clock where it gives
one, else its arrival); retargeted: when the robot's angles were ready; sent: when they
went to the link; on the servo: the sampling time (board clock mapped to the host's) of
the first TELEMETRY whose servo goals equal what was sent (within MATCH_CDEG, joints the
board clipped left out): the moment the firmware put that goal to the servos.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from dexproto import catalog

MATCH_CDEG = 100  # 1 degree: a goal the firmware interpolated to within this counts as arrived
PENDING = 64  # sent goals waiting for their telemetry; older ones are given up on
WINDOW = 4096  # latencies kept for the summary


@dataclass
class Sent:
    seq: int
    captured_ns: int
    retargeted_ns: int
    sent_ns: int
    goal_cdeg: np.ndarray


@dataclass(frozen=True)
class StageTimes:
    """One goal's way through the stages (host ns) once it reached the servo."""

    seq: int
    captured_ns: int
    retargeted_ns: int
    sent_ns: int
    on_servo_ns: int

    def as_dict(self) -> dict:
        ms = 1e-6
        return {"seq": self.seq, "captured_ns": self.captured_ns, "retargeted_ns": self.retargeted_ns,
                "sent_ns": self.sent_ns, "on_servo_ns": self.on_servo_ns,
                "retarget_ms": (self.retargeted_ns - self.captured_ns) * ms,
                "send_ms": (self.sent_ns - self.retargeted_ns) * ms,
                "servo_ms": (self.on_servo_ns - self.sent_ns) * ms,
                "end_to_end_ms": (self.on_servo_ns - self.captured_ns) * ms}


class StageLatency:
    """Sent goals matched to the telemetry that shows them on the servo (thread-safe)."""

    def __init__(self):
        self._pending: deque[Sent] = deque(maxlen=PENDING)
        self._done: deque[StageTimes] = deque(maxlen=WINDOW)
        self._lock = threading.Lock()
        self.matched = 0
        self.unmatched = 0

    def sent(self, seq: int, captured_ns: int, retargeted_ns: int, sent_ns: int, goal_cdeg) -> None:
        with self._lock:
            if len(self._pending) == self._pending.maxlen:
                self.unmatched += 1
            self._pending.append(Sent(seq, captured_ns, retargeted_ns, sent_ns,
                                      np.asarray(goal_cdeg, dtype=np.int64)))

    def telemetry(self, goal_cdeg, status, t_ns: int) -> StageTimes | None:
        """A TELEMETRY sample (goals, status bits, host time): the newest sent goal it shows,
        if any; older pending goals are passed (the servo went on to a newer one)."""
        goal = np.asarray(goal_cdeg, dtype=np.int64)
        free = (np.asarray(status, dtype=np.int64) & catalog.ST_LIMITED) == 0
        with self._lock:
            hit = None
            for i in range(len(self._pending) - 1, -1, -1):
                s = self._pending[i]
                if s.sent_ns > t_ns or len(s.goal_cdeg) != len(goal):
                    continue
                if np.all(np.abs(s.goal_cdeg - goal)[free] <= MATCH_CDEG):
                    hit = i
                    break
            if hit is None:
                return None
            s = self._pending[hit]
            self.unmatched += hit  # older goals the servo never showed on their own
            for _ in range(hit + 1):
                self._pending.popleft()
            times = StageTimes(s.seq, s.captured_ns, s.retargeted_ns, s.sent_ns, t_ns)
            self._done.append(times)
            self.matched += 1
            return times

    def summary(self) -> dict:
        """p50 / p99 / max per stage, ms, over the last WINDOW goals that reached the servo."""
        with self._lock:
            done = [d.as_dict() for d in self._done]
        out = {"matched": self.matched, "unmatched": self.unmatched}
        for stage in ("retarget_ms", "send_ms", "servo_ms", "end_to_end_ms"):
            values = np.array([d[stage] for d in done])
            out[stage] = percentiles(values)
        return out


def percentiles(values) -> dict:
    values = np.asarray(values, dtype=float)
    if not len(values):
        return {"n": 0}
    return {"n": int(len(values)), "p50": round(float(np.percentile(values, 50)), 3),
            "p99": round(float(np.percentile(values, 99)), 3), "max": round(float(values.max()), 3)}
