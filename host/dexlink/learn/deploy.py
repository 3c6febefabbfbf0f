"""A policy beside the link: live observations in, timestamped action chunks out.

    live = LiveObservations(policy.config, tactile_cameras)   # a recorder tap
    plan = ActionPlan()
    sender = TargetSender(link, plan)                         # TARGETS, or timestamped points
    runner = PolicyRunner(policy, live, plan, sender)         # inference on its own thread

`LiveObservations` is fed by the recorder's taps (dexlink.record.recorder.Recorder.taps):
the same telemetry (on the host clock through the link's clock mapping) and camera frames
the episode file gets, kept in a dexlink.learn.observation.History, whose observation of a
moment is `assemble` over them: the function export aligns the dataset with.

`PolicyRunner` asks for the observation of now, predicts a chunk, and hands its executed
part to the sender as points timed from the observation's capture time (action i is for
obs_time + (i - first_action) / fps); points already past are dropped. It never touches
the link's own threads: a slow chunk only makes the hand hold its last goal longer.

`TargetSender` gives the points to the board. When the link has `send_points` (firmware
interpolated targets on the board's clock) it sends each chunk once, timestamped; until
then it streams HOST-mode TARGETS at `send_hz`, interpolating the points linearly on the
host (or holding each one, `interpolate=False`: the stepwise baseline of bench/policy.py).
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque

import cv2
import numpy as np

from dexlink.errors import UserError
from dexlink.learn.observation import (
    ACTION,
    CONTACT,
    CONTACT_STREAM,
    STATE,
    History,
    image_feature,
)
from dexlink.link import LinkError
from dexlink.record import schema
from dexproto import catalog

SEND_HZ = 100.0  # HOST-mode TARGETS per second while the board takes no timed points
KEEP_S = 0.5  # history kept beyond the observation horizon
MAX_STEP_NS = 50_000_000  # timed points at most this far apart (the step field is 16-bit µs)
MAX_POINTS = catalog.POINTS_CAPACITY - 1  # timed points per chunk (what a board queues of one)


class ActionRefused(UserError):
    """The policy gave an action the hand must not get (NaN or infinite)."""


def check_finite(chunk: np.ndarray, names) -> None:
    """Refuse a chunk holding NaN or infinite values, naming the first bad action."""
    bad = ~np.isfinite(chunk)
    if bad.any():
        step, col = (int(v) for v in np.argwhere(bad)[0])
        name = names[col] if col < len(names) else "action %d" % col
        raise ActionRefused("the policy gave a %s action (%s, step %d of its chunk): refused, "
                            "the hand holds its last goal" % (chunk[step, col], name, step))


class LiveObservations:
    """A recorder tap keeping what the policy observes; thread-safe (taps run on the
    producers' threads, the observation is asked for on the runner's)."""

    def __init__(self, config, tactile_cameras):
        spec = config.features
        self.contact = spec.contact_key is not None
        self.cameras = set(spec.cameras)
        self.needed = [STATE] + list(spec.cameras)
        self.history = History(config.fps, config.obs_horizon,
                               sorted(tactile_cameras) if self.contact else [], KEEP_S)
        if self.contact:
            self.needed += [CONTACT_STREAM + c for c in sorted(tactile_cameras)]
        self._lock = threading.Lock()

    # -- the recorder's tap interface (must not block) -----------------------------------
    def telemetry(self, msg, t_ns: int) -> None:
        present, goal = msg.column("present_cdeg"), msg.column("goal_cdeg")
        with self._lock:
            self.history.add_telemetry(t_ns, present, goal)

    def frame(self, frame, kind: str) -> None:
        key = image_feature(schema.image_topic(frame.camera, kind))
        with self._lock:
            if key in self.cameras:
                self.history.add(key, frame.t_ns, frame.color)  # BGR: converted when asked
            if self.contact and frame.contact is not None:
                self.history.add_contact(frame.camera, frame.t_ns, frame.contact.area,
                                         frame.contact.intensity)

    def event(self, kind: str, text: str, t_ns=None) -> None:
        pass

    # -- the runner's side -----------------------------------------------------------------
    def ready(self) -> bool:
        with self._lock:
            return self.history.ready(self.needed)

    def observation(self, t_ns: int) -> dict:
        """The policy's input at t_ns (host monotonic ns), images as RGB."""
        with self._lock:
            obs = self.history.observation(t_ns)
        for key in self.cameras:
            obs[key] = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in obs[key]]
        obs.pop(ACTION, None)
        if not self.contact:
            obs.pop(CONTACT, None)
        return obs


class Worker:
    """One thread running `_run` until `stop()` (its loop waits on `self._stop`)."""

    thread_name = "worker"

    def __init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wait(5)

    def wait(self, timeout: float | None = None) -> None:
        """Until the thread has ended (on its own, or after stop())."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError


class ActionPlan:
    """The goals to come: points (host ns, goals in degrees), a new chunk replacing those
    from its first point's time on."""

    def __init__(self):
        self.times = np.zeros(0, np.int64)
        self.goals = np.zeros((0, 0))
        self.version = 0  # bumped by every replace
        self._lock = threading.Lock()

    def replace(self, times_ns: np.ndarray, goals: np.ndarray) -> None:
        with self._lock:
            keep = self.times < times_ns[0] if len(self.times) else np.zeros(0, bool)
            self.times = np.concatenate([self.times[keep], times_ns])
            self.goals = (np.concatenate([self.goals[keep], goals]) if keep.any()
                          else np.asarray(goals, float))
            self.version += 1

    def upcoming(self, t_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """The points at or after t_ns."""
        with self._lock:
            later = self.times >= t_ns
            return self.times[later], self.goals[later]

    def at(self, t_ns: int, interpolate: bool = True) -> np.ndarray | None:
        """The goal for t_ns: between two points linearly (or the last point reached),
        the last point after the end, None before the first."""
        with self._lock:
            times, goals = self.times, self.goals
            i = int(np.searchsorted(times, t_ns, side="right")) - 1
            if i < 0:
                return None
            if i + 1 >= len(times) or not interpolate:
                return goals[i]
            w = (t_ns - times[i]) / (times[i + 1] - times[i])
            return goals[i] + w * (goals[i + 1] - goals[i])


class TargetSender(Worker):
    """The plan to the board: timestamped points when the link and board take them
    (`timed`), else HOST-mode TARGETS streamed at send_hz."""

    thread_name = "policy-targets"

    def __init__(self, link, plan: ActionPlan, n_joints: int, send_hz: float = SEND_HZ,
                 interpolate: bool = True, timed: bool = True):
        super().__init__()
        self.link, self.plan, self.n = link, plan, n_joints
        self.period = 1.0 / send_hz
        self.interpolate = interpolate
        # TARGET_POINTS: firmware-interpolated goals on the board's clock (protocol 1.2)
        self.timed = timed and interpolate and hasattr(link, "send_points")
        self.fallback = ""  # why timed points were given up for TARGETS
        self.sent = 0
        self._started = time.monotonic()

    def start(self) -> None:
        self._started = time.monotonic()
        super().start()

    def chunk(self, times_ns: np.ndarray, goals: np.ndarray) -> None:
        """A new chunk's points (host ns, evenly spaced, degrees)."""
        self.plan.replace(times_ns, goals)
        if not self.timed:
            return
        try:
            times, fine = resample(times_ns, goals[:, :self.n], MAX_STEP_NS)
            step_us = int(round((times[1] - times[0]) / 1e3)) if len(times) > 1 else 1
            self.link.send_points(self.link.board_time_us(int(times[0])), step_us, fine,
                                  replace=True)
            self.sent += 1
        except LinkError as e:  # an older board, or no clock yet: TARGETS instead
            self.timed, self.fallback = False, str(e)

    def rate(self) -> float:
        """Target messages sent per second so far."""
        return self.sent / max(1e-9, time.monotonic() - self._started)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            goal = None if self.timed else self.plan.at(time.monotonic_ns(), self.interpolate)
            if goal is not None:
                self.link.send_targets(np.round(goal[:self.n] * 100).astype(int))
                self.sent += 1
            next_t += self.period
            self._stop.wait(max(0.0, next_t - time.monotonic()))


def resample(times_ns: np.ndarray, goals: np.ndarray, max_step_ns: int,
             max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The same span as evenly spaced points, linear between the given ones: as close as
    the given points are (a recording's are not even), at most max_step_ns apart (a 10 fps
    chunk's 100 ms is more than TARGET_POINTS' step field holds), at most max_points."""
    if len(times_ns) < 2:
        return times_ns, goals
    span = int(times_ns[-1] - times_ns[0])
    step = min(max_step_ns, float(np.median(np.diff(times_ns))))
    n = min(max(2, int(np.ceil(span / max(step, 1.0))) + 1), max_points)
    fine = times_ns[0] + np.round(np.arange(n) * span / (n - 1)).astype(np.int64)
    return fine, np.stack([np.interp(fine, times_ns, goals[:, j])
                           for j in range(goals.shape[1])], axis=1)


class PolicyRunner(Worker):
    """Inference on its own thread: observation of now -> chunk -> sender, again and again.

    The next chunk is asked for so that it lands as the executed part of the last one
    runs out (its capture time n_action_steps frames later, less the recent inference time).
    An error (an action refused, a broken observation) ends it; `.error` says why.
    """

    thread_name = "policy"

    def __init__(self, policy, live: LiveObservations, sender: TargetSender,
                 steps: int | None = None, clock=time.monotonic_ns):
        super().__init__()
        self.policy, self.live, self.sender = policy, live, sender
        self.config = policy.config
        self.steps, self.clock = steps, clock
        self.error = ""
        self.chunks = 0
        self.inference_ms: deque = deque(maxlen=50)
        self.chunk_starts: list = []  # host ns at which each chunk was handed to the sender
        self.last_obs_ns = 0

    def status(self) -> dict:
        now = self.clock()
        ms = list(self.inference_ms)
        return {"chunks": self.chunks,
                "inference_ms": statistics.median(ms) if ms else 0.0,
                "chunk_age_ms": (now - self.last_obs_ns) / 1e6 if self.last_obs_ns else 0.0,
                "target_hz": self.sender.rate()}

    def _run(self) -> None:
        c = self.config
        period_ns = int(1e9 / c.fps)
        try:
            while not self.live.ready():
                if self._stop.wait(0.01):
                    return
            while not self._stop.is_set():
                t_obs = self.clock()
                chunk = self.policy.predict_chunk(self.live.observation(t_obs), self.steps)
                took_ns = self.clock() - t_obs
                self.inference_ms.append(took_ns / 1e6)
                check_finite(chunk, self.policy.action_names)
                executed = chunk[c.first_action:c.first_action + c.n_action_steps]
                times = t_obs + np.arange(len(executed), dtype=np.int64) * period_ns
                # The point for the capture moment is already past; keep the one before
                # now so interpolation starts where the hand is told to be.
                first = max(0, int(np.searchsorted(times, self.clock(), side="right")) - 1)
                self.sender.chunk(times[first:], executed[first:])
                self.chunk_starts.append(self.clock())
                self.chunks += 1
                self.last_obs_ns = t_obs
                latency = statistics.median(self.inference_ms)
                due = t_obs + len(executed) * period_ns - latency * 1e6
                self._stop.wait(max(0.0, (due - self.clock()) / 1e9))
        except Exception as e:  # any failure stops the policy; the hand holds its goal
            self.error = str(e) if isinstance(e, UserError) else "%s: %s" % (type(e).__name__, e)
