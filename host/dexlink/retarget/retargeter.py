"""Human hand frames -> the robot hand's joint angles, through dex-retargeting's optimisers
on the URDF `dexlink model` writes for the hand file.

Methods (dex-retargeting 0.5's, SLSQP through nlopt on pinocchio kinematics):
- "vector": wrist -> fingertip vectors matched (its teleop configs' choice);
- "position": fingertip positions in the palm frame matched;
- "dexpilot": DexPilot's wrist -> tip and tip -> tip vectors, thumb-finger pairs pulled
  together once they are closer than 3 cm (so a pinch closes on the robot).
Fingertip vectors are scaled by the operator's calibration (calibration.py) first.
Each evaluation's loss and gradient are computed in numpy (objectives.py; the same values
as dex-retargeting's torch code, a fraction of the time): its optimiser classes, SLSQP and
their settings stay. `objective="torch"` runs dex-retargeting's own instead.

The optimiser starts from the last answer and is bounded by the URDF's joint limits; the
result is clipped to the hand file's ranges again (the bounds have a 1e-3 rad slack).
`smoothing` (0 < alpha <= 1) low-passes the answer as dex-retargeting's teleop configs do
(their default 0.2 for camera keypoints; None: off, the answer is the optimiser's).
A joint the device lost keeps its last tracked position; until every fingertip has been
seen once the retargeter answers with its last (initially mid-range) posture.
"""
from __future__ import annotations

import collections
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dexlink.errors import UserError
from dexlink.inputs.frame import FINGER_CHAINS, HandFrame
from dexlink.retarget.calibration import OperatorCalibration, robot_lengths
from dexlink.retarget.skeleton import WRIST, frame_correction, human_finger, palm_points

METHODS = ("vector", "position", "dexpilot")
# Who computes each evaluation's loss and gradient: "numpy" (objectives.py: the same loss,
# ~10x cheaper an evaluation) or "torch" (dex-retargeting's own, kept to compare against).
OBJECTIVES = ("numpy", "torch")
# SLSQP evaluations a frame at most. Warm-started from the last frame, it converges across
# frames; uncapped, a headset's noisy frames took ~20 evaluations (twice the time) for no
# gain in joint error (11.8 vs 11.7 deg measured on simulated Vision Pro frames).
MAX_EVALS = 10
TIMES_KEPT = 2048  # per-frame times kept for percentiles


class RetargetError(UserError):
    """The retargeting cannot be set up (a missing dependency, a hand it cannot serve)."""


@dataclass
class RetargetStats:
    """Time per frame (seconds) of the optimiser, and what was done with frames."""

    frames: int = 0
    held: int = 0  # answered with the last posture: no fingertip seen yet
    filled: int = 0  # frames with a lost joint filled from its last tracked position
    total_s: float = 0.0
    recent_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TIMES_KEPT))

    def add(self, seconds: float) -> None:
        self.frames += 1
        self.total_s += seconds
        self.recent_s.append(seconds)

    @property
    def mean_ms(self) -> float:
        return 1e3 * self.total_s / self.frames if self.frames else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.recent_s, q)) * 1e3 if self.recent_s else 0.0

    def as_dict(self) -> dict:
        return {"frames": self.frames, "held": self.held, "filled": self.filled,
                "mean_ms": self.mean_ms, "p50_ms": self.percentile_ms(50),
                "p99_ms": self.percentile_ms(99), "max_ms": self.percentile_ms(100)}


def _dex_retargeting(objective: str):
    try:
        from dex_retargeting import optimizer, seq_retarget
        from dex_retargeting.optimizer_utils import LPFilter
        from dex_retargeting.robot_wrapper import RobotWrapper
    except ImportError as e:
        raise RetargetError("retargeting needs dex-retargeting (pip install 'dexlink[retarget]'): "
                            "%s" % e) from None
    if objective == "numpy":
        from dexlink.retarget.objectives import OPTIMIZERS
    else:
        OPTIMIZERS = {"vector": optimizer.VectorOptimizer, "position": optimizer.PositionOptimizer,
                      "dexpilot": optimizer.DexPilotOptimizer}
    return OPTIMIZERS, seq_retarget, RobotWrapper, LPFilter


def _load_robot(hand_path: Path, RobotWrapper):
    """Pinocchio's model of the hand from its generated URDF (a temporary file)."""
    from dexlink.world.urdf import hand_urdf

    with tempfile.TemporaryDirectory(prefix="dexlink-urdf-") as tmp:
        path = Path(tmp) / (hand_path.stem + ".urdf")
        path.write_text(hand_urdf(hand_path))
        return RobotWrapper(str(path))


class Retargeter:
    """`retarget(frame)` -> joint angles (degrees, hand file order, within its ranges)."""

    def __init__(self, hand_path, method: str = "vector", operator=None,
                 smoothing: float | None = None, objective: str = "numpy"):
        from dexlink import hwconfig
        from dexlink.world.geometry import load_geometry

        if method not in METHODS:
            raise RetargetError("unknown retargeting method %r (one of: %s)"
                                % (method, ", ".join(METHODS)))
        if smoothing is not None and not 0 < smoothing <= 1:
            raise RetargetError("smoothing must be in (0, 1], got %r" % (smoothing,))
        if objective not in OBJECTIVES:
            raise RetargetError("unknown objective %r (one of: %s)" % (objective, ", ".join(OBJECTIVES)))
        self.method = method
        self.objective = objective
        self.smoothing = smoothing
        self.hand_path = hwconfig.hand_path(hand_path)
        self.geometry = g = load_geometry(self.hand_path)
        self.joint_names = [j.name for j in g.joints]
        self.lo_deg = np.degrees([j.range_rad[0] for j in g.joints])
        self.hi_deg = np.degrees([j.range_rad[1] for j in g.joints])
        tips = [f for f in g.fingers if f.fingertip and human_finger(f.name)]
        tips.sort(key=lambda f: f.name != "thumb")  # DexPilot's pairs need the thumb first
        if len(tips) < 2:
            raise RetargetError("%s: retargeting needs at least two fingertips" % self.hand_path)
        self.robot_tips = [f.name + "_tip" for f in tips]
        self.human_tips = [FINGER_CHAINS[human_finger(f.name)][-1] for f in tips]
        self.operator = operator if operator is not None else OperatorCalibration()
        self._robot_lengths = robot_lengths(g)
        self._correction = self._frame_correction()
        self.stats = RetargetStats()
        self._build()
        self.reset()

    def _frame_correction(self) -> np.ndarray:
        from dexlink.world.interfaces_hand import HumanHand

        return frame_correction(HumanHand.robot(self.geometry).openxr(np.zeros(len(self.joint_names))))

    def _build(self):
        optimizers, seq_retarget, RobotWrapper, LPFilter = _dex_retargeting(self.objective)
        robot = _load_robot(self.hand_path, RobotWrapper)
        names = robot.dof_joint_names
        missing = sorted(set(self.joint_names) - set(names))
        if missing:
            raise RetargetError("%s: URDF lacks joints %s" % (self.hand_path, ", ".join(missing)))
        n = len(self.robot_tips)
        if self.method == "vector":
            opt = optimizers["vector"](
                robot, names, target_origin_link_names=["palm"] * n,
                target_task_link_names=self.robot_tips,
                target_link_human_indices=np.array([[WRIST] * n, self.human_tips]))
        elif self.method == "position":
            opt = optimizers["position"](robot, names, target_link_names=self.robot_tips,
                                              target_link_human_indices=np.array(self.human_tips))
        else:
            opt = optimizers["dexpilot"](robot, names, finger_tip_link_names=self.robot_tips,
                                              wrist_link_name="palm")
            origin, task = opt.generate_link_indices(n)
            points = [WRIST] + self.human_tips
            opt.target_link_human_indices = np.array([[points[i] for i in origin],
                                                      [points[i] for i in task]])
        self._indices = opt.target_link_human_indices
        opt.opt.set_maxeval(MAX_EVALS)
        lp = LPFilter(self.smoothing) if self.smoothing is not None else None
        self._seq = seq_retarget.SeqRetargeting(opt, has_joint_limits=True, lp_filter=lp)
        self._order = np.array([names.index(j) for j in self.joint_names])

    def reset(self) -> None:
        """Start over (a new episode): mid-range posture, no tracked joints remembered."""
        self._seq.reset()
        if self._seq.filter is not None:
            self._seq.filter.reset()
        self._last_points = None
        self._seen = np.zeros(len(self.human_tips) + 1, dtype=bool)
        self._last_deg = np.clip(np.degrees(self._seq.joint_limits.mean(1))[self._order],
                                 self.lo_deg, self.hi_deg)

    def _reference(self, points: np.ndarray) -> np.ndarray:
        idx = self._indices
        if self.method == "position":
            return points[idx] * self.operator.scale
        return (points[idx[1]] - points[idx[0]]) * self.operator.scale

    def retarget(self, frame: HandFrame) -> np.ndarray:
        """The robot joint angles (degrees) for one human hand frame."""
        points = palm_points(frame, self._correction)
        valid = frame.valid & np.isfinite(points).all(axis=1)
        self.operator.observe(points, valid, self._robot_lengths)
        if self._last_points is None:
            self._last_points = np.where(valid[:, None], points, 0.0)
        else:
            if not valid.all():
                self.stats.filled += 1
            self._last_points = np.where(valid[:, None], points, self._last_points)
        needed = [WRIST] + self.human_tips
        self._seen |= valid[needed]
        if not self._seen.all():
            self.stats.held += 1
            return self._last_deg.copy()
        t0 = time.perf_counter()
        q = self._seq.retarget(self._reference(self._last_points))
        self.stats.add(time.perf_counter() - t0)
        self._last_deg = np.clip(np.degrees(q[self._order]), self.lo_deg, self.hi_deg)
        return self._last_deg.copy()


def make_retargeter(hand_config, method: str = "vector", operator=None,
                    smoothing: float | None = None, objective: str = "numpy") -> Retargeter:
    """A retargeter for a hand (a hand file's name or path); `operator` an
    OperatorCalibration, a scale (float), or None to calibrate on the first frames;
    `smoothing` a low-pass alpha or None; `objective` numpy or torch (OBJECTIVES)."""
    if isinstance(operator, (int, float)):
        operator = OperatorCalibration.of_scale(float(operator))
    return Retargeter(hand_config, method, operator, smoothing, objective)
