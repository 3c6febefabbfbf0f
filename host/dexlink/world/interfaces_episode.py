"""One teleoperated episode in the physics world through one interface: the exoskeleton
operator's intent, the simulated device (interfaces.py), the real retargeting, the hand's
motors. The loop is operator.teleoperate's (10 ms control ticks), with the one part of the
firmware every interface's goals pass through on the real rig: its slew limit (GoalSlew).
So the interfaces differ only in what they do to the intent.

Errors are measured in joint space against the intent: `error_deg`, the mean |target -
intent| over the ticks (latency included), and `shape_error_deg`, the retargeted posture
against the intent at the frame's capture (what the device and the retargeting alone add).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dexlink import hwconfig
from dexlink.retarget import OperatorCalibration, Retargeter
from dexlink.world.interfaces import EXO_STEP_DEG, PROFILES, SimulatedDevice
from dexlink.world.interfaces_hand import quat_matrix
from dexlink.world.operator import Operator, motor_goals
from dexlink.world.world import World

PERIOD_S = 0.01


@dataclass
class EpisodeResult:
    interface: str
    task: str
    seed: int
    outcome: str  # "success" | "failure"
    reason: str
    time_s: float  # world time the task was decided (or stopped)
    error_deg: float
    shape_error_deg: float
    frames: int  # frames retargeted
    lost: int  # frames the device lost
    hand_length_m: float
    calibrated_scale: float
    retarget_mean_ms: float

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    def as_dict(self) -> dict:
        return asdict(self)


def wrist_matrix(pos, quat) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = quat_matrix(quat)
    m[:3, 3] = pos
    return m


class GoalSlew:
    """The firmware's slew limit on the joint goals, as `dexlink teleop` meets it on the
    real path: firmware/dexfw/mapping.py slew() moves each goal towards its target by at
    most the joint's max_speed_dps (the hand file's, compiled into the board's config as
    max_speed_cdeg_per_ms) each cycle, before coupling and the servos. Applied here once a
    control tick, a tick's worth of movement at a time, to every interface alike: a noisy
    device's jitter reaches the servos no faster than the firmware lets it."""

    def __init__(self, hand_path, period_s: float):
        cfg = hwconfig.compile_config(hand_path, "virtual", calibration=False)
        cdeg_per_ms = np.array([j["max_speed_cdeg_per_ms"] for j in cfg["joints"]], dtype=float)
        self.step_deg = cdeg_per_ms / 100.0 * period_s * 1000.0
        self.goal: np.ndarray | None = None

    def __call__(self, target_deg) -> np.ndarray:
        """The goal after one tick towards target_deg; the first target is taken as where
        the hand already is."""
        target = np.asarray(target_deg, dtype=float)
        if self.goal is None:
            self.goal = target.copy()
        else:
            self.goal = self.goal + np.clip(target - self.goal, -self.step_deg, self.step_deg)
        return self.goal


def device_seed(seed: int, interface: str) -> int:
    """The device's noise seed: fixed per (episode seed, interface), apart from the operator's."""
    return seed * 1009 + sum(ord(c) for c in interface) + 7


def run_episode(hand_path, task: str, interface: str, seed: int, skill: float = 0.8,
                retargeters: dict | None = None, time_limit_s: float | None = None) -> EpisodeResult:
    """Run one episode; `retargeters` caches one Retargeter per method across episodes."""
    world = World(hand_path, task, seed)
    # Through a device the robot's fingers are not the person's: they watch and correct them.
    operator = Operator(world, skill=skill, seed=seed, mirrored=interface == "exo")
    limit = world.task.time_limit_s if time_limit_s is None else min(time_limit_s,
                                                                      world.task.time_limit_s)
    device = retargeter = None
    if interface != "exo":
        profile = PROFILES[interface]
        device = SimulatedDevice(profile, operator.planner.geometry,
                                 np.random.default_rng(device_seed(seed, interface)))
        retargeter = _retargeter(retargeters, world, profile.method, profile.smoothing)
        # the operator watches the robot hand: they wait for it to close, one latency more
        operator.habits.settle_s += profile.latency_s + 1.0 / profile.rate_hz
    slew = GoalSlew(hand_path, PERIOD_S)
    errors, shape_errors = [], []
    target = None
    while world.time < limit:
        t = world.time
        cmd = operator.command(t, world.task_state())
        if device is None:
            target = np.round(cmd.joints_deg / EXO_STEP_DEG) * EXO_STEP_DEG
        else:
            if device.due(t):
                device.capture(t, cmd.joints_deg, wrist_matrix(cmd.wrist_pos, cmd.wrist_quat))
            got = device.arrived(t)
            if got is not None:
                target = retargeter.retarget(got.frame)
                shape_errors.append(float(np.abs(target - got.intent_deg).mean()))
        if target is not None:
            world.set_motor_goals(motor_goals(world, slew(target)))
            errors.append(float(np.abs(target - cmd.joints_deg).mean()))
        world.set_wrist(cmd.wrist_pos, cmd.wrist_quat)
        world.step_to(t + PERIOD_S)
        if world.judge():
            break
    outcome = world.judge() or "failure"
    reason = world.task.reason or ("stopped at %.1f s" % world.time)
    return EpisodeResult(
        interface=interface, task=task, seed=seed, outcome=outcome, reason=reason,
        time_s=float(world.task.decided_at or world.time),
        error_deg=float(np.mean(errors)) if errors else 0.0,
        shape_error_deg=float(np.mean(shape_errors)) if shape_errors else 0.0,
        frames=retargeter.stats.frames if retargeter else len(errors),
        lost=device.lost if device else 0,
        hand_length_m=device.hand_length_m if device else 0.0,
        calibrated_scale=retargeter.operator.scale if retargeter else 1.0,
        retarget_mean_ms=retargeter.stats.mean_ms if retargeter else 0.0)


def _retargeter(cache, world, method, smoothing) -> Retargeter:
    if cache is None:
        cache = {}
    key = (str(world.hand_path), method, smoothing)
    r = cache.get(key)
    if r is None:
        r = cache[key] = Retargeter(world.hand_path, method, smoothing=smoothing)
    r.reset()
    r.operator = OperatorCalibration()  # a new person: calibrated on their first frames
    r.stats = type(r.stats)()
    return r
