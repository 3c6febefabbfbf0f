"""One episode on a board: a policy (or a recorded demonstration replayed open loop)
drives the hand in HOST mode while the episode is recorded as `dexlink record` records it
(the same capture plumbing: dexlink.record.recording.open_recording), until the world
judges the task or the time limit.

    outcome = run_policy_episode(load_policy(run), EpisodeOptions(board, out=Path("ep")))
    outcome = replay_episode(load_replay(Path("demo.mcap")), EpisodeOptions(board, out=...))

In a world the wrist is the world operator's arm (the demonstrations record no wrist
stream, so no policy predicts one): the policy drives the hand's joints, as the operator's
hand drove them through the exoskeleton when the demonstrations were recorded.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dexlink.board import BoardOptions
from dexlink.errors import UserError
from dexlink.learn.deploy import (
    SEND_HZ,
    ActionPlan,
    LiveObservations,
    PolicyRunner,
    TargetSender,
    Worker,
)
from dexlink.learn.observation import ACTION, image_feature
from dexlink.record import schema
from dexlink.record.recording import WORLD_START_S, RecordOptions, open_recording
from dexproto import catalog

DEFAULT_SECONDS = 20.0  # an episode without a world, unless told


@dataclass(frozen=True)
class EpisodeOptions:
    board: BoardOptions
    out: Path  # the session directory the episode file goes to
    task: str = "policy"
    max_seconds: float | None = None  # None: until the world decides (DEFAULT_SECONDS without one)
    steps: int | None = None  # DDIM steps per chunk (None: the run's)
    send_hz: float = SEND_HZ
    interpolate: bool = True  # between a chunk's points (False: each held, stepwise)
    timed: bool = True  # timed points when the board takes them (False: TARGETS always)
    tactile: tuple = ()  # a real rig's cameras, as RecordOptions takes them (a world's: its own)
    realsense: str | None = None


@dataclass
class EpisodeOutcome:
    verdict: str | None  # the world's: success or failure; None without a world or undecided
    reason: str
    seconds: float  # world time of the verdict; else how long the episode ran
    path: Path | None  # the episode file
    chunks: int = 0
    inference_ms: float = 0.0  # median per chunk
    target_hz: float = 0.0  # target messages sent per second
    error: str = ""  # why the policy stopped early ("" when it did not)
    chunk_starts_ns: list = field(default_factory=list)  # host ns each chunk was handed over
    timed: bool = False  # the chunks went as timed points (else as streamed TARGETS)


class ReplayActor(Worker):
    """The open-loop baseline: a demonstration's goals, timed from the episode's start and
    handed to the sender a short window at a time (a board queues a chunk's worth)."""

    WINDOW_NS = 250_000_000
    thread_name = "replay"

    def __init__(self, t_ns: np.ndarray, goals_deg: np.ndarray, sender: TargetSender):
        super().__init__()
        self.t_ns, self.goals, self.sender = t_ns - t_ns[0], goals_deg, sender
        self.error = ""

    def _run(self) -> None:
        times = time.monotonic_ns() + self.t_ns
        while not self._stop.is_set():
            now = time.monotonic_ns()
            first = max(0, int(np.searchsorted(times, now)) - 1)
            last = int(np.searchsorted(times, now + self.WINDOW_NS))
            if first >= len(times) - 1:
                return  # the demonstration is over: the hand holds its last goal
            self.sender.chunk(times[first:last + 1], self.goals[first:last + 1])
            self._stop.wait(self.WINDOW_NS / 2e9)

    def status(self) -> dict:
        return {"chunks": 0, "inference_ms": 0.0, "chunk_age_ms": 0.0,
                "target_hz": self.sender.rate()}


def load_replay(path: Path, hz: float = SEND_HZ) -> tuple[np.ndarray, np.ndarray]:
    """(t_ns, goals in degrees) of an episode's recorded servo goals, at most hz a second."""
    from dexlink.replay import load_targets

    t_ns, goals = load_targets(Path(path), "goal")
    keep = np.unique(np.searchsorted(t_ns, np.arange(t_ns[0], t_ns[-1] + 1, int(1e9 / hz))))
    keep = keep[keep < len(t_ns)]
    return t_ns[keep], goals[keep].astype(float) / 100


def check_policy_fits(policy, n_joints: int, cameras) -> None:
    """Refuse, before the episode, a policy this board cannot serve: its actions must be
    the board's joint goals, and every camera it observes must be there."""
    spec = policy.config.features
    if spec.action_keys != [ACTION] or spec.action_dim != n_joints:
        raise UserError("the policy predicts %s (%d values) but the board takes %d joint goals"
                        " (action): run it on the hand it was trained for"
                        % (", ".join(spec.action_keys), spec.action_dim, n_joints))
    have = {image_feature(schema.image_topic(c.name, c.kind)) for c in cameras}
    missing = [k for k in spec.cameras if k not in have]
    if missing:
        raise UserError("the policy observes %s, which this board's cameras (%s) do not give"
                        % (", ".join(missing), ", ".join(sorted(have)) or "none"))


def run_policy_episode(policy, options: EpisodeOptions,
                       progress: Callable[[str], None] | None = None,
                       estop: Callable[[], bool] | None = None) -> EpisodeOutcome:
    """progress: called once a second with a status line (inference time, chunk age,
    control rate); estop: polled every 20 ms, True -> torque off now and the episode ends."""
    def make(rec, sender):
        tactile = [c.name for c in rec.recorder.cameras if c.kind == "tactile"]
        check_policy_fits(policy, rec.link.board.n_joints, rec.recorder.cameras)
        live = LiveObservations(policy.config, tactile)
        rec.recorder.taps.append(live)
        return PolicyRunner(policy, live, sender, options.steps)
    return _episode(options, make, progress, estop)


def replay_episode(targets: tuple[np.ndarray, np.ndarray], options: EpisodeOptions,
                   progress: Callable[[str], None] | None = None) -> EpisodeOutcome:
    def make(rec, sender):
        if targets[1].shape[1] != rec.link.board.n_joints:
            raise UserError("the demonstration has %d joints, the board %d"
                            % (targets[1].shape[1], rec.link.board.n_joints))
        return ReplayActor(targets[0], targets[1], sender)
    return _episode(options, make, progress)


def _episode(options: EpisodeOptions, make_actor, progress, estop=None) -> EpisodeOutcome:
    # The hand is powered (HOST mode) only once the cameras run and the episode records:
    # a world's clock starts with torque, so the file holds the whole attempt.
    record = RecordOptions(task=options.task, out=options.out, board=options.board,
                           mode=catalog.MODE_IDLE, tactile=options.tactile,
                           realsense=options.realsense)
    with open_recording(record) as rec:
        world = rec.virtual.world if rec.virtual is not None else None
        sender = TargetSender(rec.link, ActionPlan(), rec.link.board.n_joints, options.send_hz,
                              options.interpolate, options.timed)
        actor = make_actor(rec, sender)
        path = rec.recorder.start_episode()
        rec.link.set_mode(catalog.MODE_HOST)
        limit = options.max_seconds or (world.task.time_limit_s + WORLD_START_S if world
                                        else DEFAULT_SECONDS)
        t0 = time.monotonic()
        sender.start()
        actor.start()
        stopped = ""
        try:
            next_report = t0 + 1.0
            while not (world is not None and world.judge() is not None) and not actor.error \
                    and time.monotonic() - t0 < limit:
                time.sleep(0.02)
                if estop is not None and estop():
                    rec.link.estop()
                    stopped = "e-stop: torque off by the operator"
                    break
                if progress and time.monotonic() >= next_report:
                    next_report += 1.0
                    progress(status_line(time.monotonic() - t0, actor.status()))
        finally:
            actor.stop()
            sender.stop()
        verdict = world.judge() if world is not None else None
        reason = world.task.reason if verdict is not None else "time limit (%g s)" % limit
        seconds = (world.task.decided_at if verdict is not None else time.monotonic() - t0)
        if verdict is not None:
            rec.recorder.mark(verdict == "success")
            rec.recorder.event("world", "%s: %s" % (verdict, reason))
        error = actor.error or stopped
        if error:
            rec.recorder.event("policy", error)
        rec.recorder.stop_episode(keep=True)
        status = actor.status()
    result = rec.result()
    kept = [options.out / e["file"] for e in result.kept]
    return EpisodeOutcome(verdict, reason, float(seconds), kept[-1] if kept else path,
                          status["chunks"], status["inference_ms"], status["target_hz"],
                          error, list(getattr(actor, "chunk_starts", [])), sender.timed)


def status_line(t: float, s: dict) -> str:
    return ("  %5.1f s | chunks %d | inference %.0f ms | chunk age %.0f ms | targets %.0f/s"
            % (t, s["chunks"], s["inference_ms"], s["chunk_age_ms"], s["target_hz"]))
