"""A simulated person doing a world's task through the exoskeleton.

What comes out is what the rig measures of them: the angle of each of their hand's joints
(degrees, the hand file's joint order: the exoskeleton is isomorphic to the hand) and the
pose of their wrist (the arm carrying the hand). It is a function of world time and of
what they see: they look at the object (`World.task_state()`) and aim at it, notice when
it slips, see whether it turned.

A seed and a skill level (0..1) draw the attempt's habits once: how far off they aim, how
hard they squeeze, how fast they lift, whether they watch for slip and how often they try
again. Failures then come from the physics those habits meet (a grasp off centre, a grip
too light for the block, a lift too brisk), never from a coin toss on the outcome.

Gestures: reach, pre-shape, close, lift (or, palm up, curl to turn), release.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dexlink.world.grasps import GraspPlanner, grasp_orientation
from dexlink.world.handpose import rotate
from dexlink.world.motion import min_jerk, slerp
from dexlink.world.operator_habits import Habits
from dexlink.world.operator_pinch import REAIM_M, PinchCorrection
from dexlink.world.operator_sight import HandSight
from dexlink.world.tasks.base import yaw_of

PREGRASP_UP_M = 0.06  # the hand comes down onto the object from this high
LIFT_EXTRA_M = 0.03  # people lift a little more than asked
SLIP_SEEN_M = 0.015  # the object lagging the hand by this much is a slip anyone sees
# (less is a settling in the grip: a held cube sinks ~1 cm into the fingers as it rises)
REACTION_S = 0.25  # from seeing to doing
MAX_REGRIPS = 2  # after that, a slip is let run: a miss, tried again from the start
TREMOR_HZ = 9.0


@dataclass
class Command:
    """What the exoskeleton and the arm tracker read of the operator at one moment."""

    t: float
    joints_deg: np.ndarray  # per hand joint, hand file order
    wrist_pos: np.ndarray  # m, world frame
    wrist_quat: np.ndarray  # (w, x, y, z)
    phase: str


class Operator:
    """Does world.task with world's hand; `command(t, view)` with view = task_state()."""

    def __init__(self, world, skill: float = 0.8, seed: int = 0, mirrored: bool = True):
        self.world = world
        self.task = world.task
        self.hand = world.hand
        self.skill = float(skill)
        self.rng = np.random.default_rng(seed)
        self.planner = GraspPlanner(world.hand, world.hand_path)
        self.grasp = self.planner.plan(self.task.grasp, self.task.object_half)
        self.habits = Habits.draw(self.rng, skill, self.task.grasp)
        self.lo, self.hi = self.planner.lo, self.planner.hi
        self.tremor_phase = self.rng.uniform(0, 2 * np.pi, len(self.lo))
        self.squeeze = self.habits.squeeze
        self.retries_left = self.habits.retries
        self.phase, self.phase_t0 = "start", 0.0
        self.from_pos = self.from_quat = self.from_q = None
        self.q = self.grasp.open.copy()
        self.lift_from = None
        self.slip_seen_at = None
        self.regrips = 0
        self.attempts = 0
        self.last_t: float | None = None
        # mirrored: the robot's fingers are where the person's own are (the exoskeleton), and
        # the habits above already say where contact comes. Otherwise (a device through
        # retargeting) they correct their pinch by what they see of the robot's.
        self.pinch = None
        if self.grasp.kind == "pinch" and not mirrored:
            sight = HandSight(world, self.planner.hand, self.grasp.axis_in_hand,
                              self.planner.geometry.capsule_radius_m)
            self.pinch = PinchCorrection(sight, self.grasp.closing, self.task.target,
                                         2 * self.task.object_half, REACTION_S)

    # --- what the rig reads --------------------------------------------------------------
    def command(self, t: float, view: dict) -> Command:
        if self.phase == "start":
            self._begin(t, view)
        dt = 0.0 if self.last_t is None else t - self.last_t
        self.last_t = t
        self._advance(t, view, dt)
        tremor = self.habits.tremor_deg * np.sin(2 * np.pi * TREMOR_HZ * t + self.tremor_phase)
        q = self.q
        if self.pinch is not None:  # a device's operator corrects what they see
            lag = self._lag(view) if self.lift_from is not None else 0.0
            self.pos = self.pos + self.pinch.tick(self.phase, t - self.phase_t0, dt, self.q, lag,
                                                  self.habits.close_s)
            q = self.pinch.posture(q)
        q = np.clip(q, self.lo, self.hi)
        return Command(t, np.degrees(q) + tremor, self.pos.copy(), self.quat.copy(), self.phase)

    def _begin(self, t, view):
        self.pos, self.quat = np.array(view["wrist_pos"]), np.array(view["wrist_quat"])
        self.from_q = self.q.copy()
        self._enter("settle" if self.grasp.kind == "roll" else "reach", t)

    def _enter(self, phase, t):
        if self.pinch is not None:
            self.q = np.clip(self.pinch.begin(phase, self.q), self.lo, self.hi)
        self.phase, self.phase_t0 = phase, t
        self.from_pos, self.from_quat = self.pos.copy(), self.quat.copy()
        self.from_q = self.q.copy()

    def _move(self, t, duration, pos=None, quat=None, q=None) -> bool:
        """Min-jerk from where the phase began towards the targets; True when done."""
        s = min_jerk((t - self.phase_t0) / max(duration, 1e-6))
        if pos is not None:
            self.pos = self.from_pos + s * (np.asarray(pos) - self.from_pos)
        if quat is not None:
            self.quat = slerp(self.from_quat, quat, s)
        if q is not None:
            self.q = self.from_q + s * (np.asarray(q) - self.from_q)
        return t - self.phase_t0 >= duration

    # --- seeing -------------------------------------------------------------------------
    def _aim(self, view):
        """Where the wrist goes to grasp the object where they see it."""
        h = self.habits
        face = self._face_yaw(yaw_of(view["object_quat"])) + h.yaw_rad
        quat = grasp_orientation(self.hand, self.grasp, face)
        in_hand = self.grasp.object_in_hand
        pos = np.asarray(view["object_pos"]) + h.aim_m
        if self.pinch is not None:  # the robot's pinch centre and fingertips, as seen
            in_hand = in_hand + self.pinch.aim
            pos = pos + self.pinch.raised
        pos = pos - rotate(quat, in_hand)
        return pos, quat

    def _face_yaw(self, object_yaw):
        """The object's face direction nearest to where the grasp axis points unturned."""
        natural = rotate(grasp_orientation(self.hand, self.grasp, 0.0), self.grasp.axis_in_hand)
        want = np.arctan2(natural[1], natural[0])
        k = np.round((want - object_yaw) / (np.pi / 2))
        return object_yaw + k * np.pi / 2 - want

    # --- the gestures ---------------------------------------------------------------------
    def _advance(self, t, view, dt):
        if self.grasp.kind == "roll":
            self._turn(t, view)
        else:
            self._lift(t, view, dt)

    def _lift(self, t, view, dt):
        h, g = self.habits, self.grasp
        if self.phase == "reach":
            pos, quat = self._aim(view)
            if self._move(t, h.reach_s, pos + [0, 0, PREGRASP_UP_M], quat, g.open):
                self._enter("descend", t)
        elif self.phase == "descend":
            if self.pinch is not None and self.pinch.bumped(view["object_pos"]):
                # a robot fingertip came down on it and shoved it aside: go over it again
                self._enter("rise", t)
                return
            pos, quat = self._aim(view)
            if self._move(t, 0.8, pos, quat):
                self._enter("close", t)
        elif self.phase == "close":
            if self._move(t, h.close_s, q=self._closed()):
                # through a device they close on until they see the robot's fingertips stay on it
                self._enter("settle" if self.pinch is None else "tighten", t)
        elif self.phase == "tighten":  # the robot's fingertips are not on it yet: close on
            got = self.pinch.tighten(t, dt, self.squeeze)
            if got:  # missed: open, go over it again
                self._enter("settle" if got == "landed" else "rise", t)
        elif self.phase == "settle":
            if self.pinch is not None and self.pinch.loosened(t - self.phase_t0):
                # the robot's fingertips keep coming off it: close further
                self._enter("tighten", t)
            elif t - self.phase_t0 >= h.settle_s:
                self.lift_from = (self.pos.copy(), np.array(view["object_pos"]),
                                  float(view["wrist_pos"][2]))
                self._enter("lift", t)
        elif self.phase == "lift":
            if self._watch_slip(t, view):
                return
            up = self.lift_from[0] + [0, 0, self.task.lift_m + LIFT_EXTRA_M]
            if self._move(t, h.lift_s, pos=up):
                self._enter("hold", t)
        elif self.phase == "regrip":  # set it back down and let go, to grasp it anew
            down = self.lift_from[0] + [0, 0, view["object_pos"][2] - self.lift_from[1][2]]
            if self._move(t, 0.6, pos=down, q=g.open):
                # a pinch must straddle a small object: moved (knocked, dropped aside), it is
                # gone over again from above, not swept into (an open hand sweeps over a cube)
                aim, _ = self._aim(view)
                moved = np.linalg.norm((aim - self.pos)[:2]) > REAIM_M
                self._enter("rise" if moved and g.kind == "pinch" else "descend", t)
        elif self.phase == "rise":
            if self._move(t, 0.5, pos=self.from_pos + [0, 0, PREGRASP_UP_M], q=g.open):
                self._enter("reach", t)
        elif self.phase == "hold":
            if self._watch_slip(t, view):
                return
            if view.get("outcome") or t - self.phase_t0 >= self.task.hold_s + 1.0:
                self._enter("lower", t)
            elif self._dropped(view):
                self._retry(t)
        elif self.phase == "lower":
            if self._move(t, 1.0, pos=self.lift_from[0] + [0, 0, 0.003]):
                self._enter("release", t)
        elif self.phase == "release":
            if self._move(t, 0.5, q=g.open):
                self._enter("retreat", t)
        elif self.phase == "retreat":
            if self._move(t, 0.8, pos=self.lift_from[0] + [0, 0, 0.08]):
                self._enter("done", t)

    def _closed(self):
        return self.grasp.closed(self.squeeze, self.lo, self.hi)

    def _watch_slip(self, t, view) -> bool:
        """A watchful operator who sees the object lag the hand (after a reaction time)
        sets it back down, lets go and grasps it again, harder. True when they stop."""
        if not self.habits.watch or self.lift_from is None or self.regrips >= MAX_REGRIPS:
            return False
        if self._lag(view) < SLIP_SEEN_M:
            return False
        if self.slip_seen_at is None:
            self.slip_seen_at = t
        if t - self.slip_seen_at < REACTION_S:
            return False
        self.slip_seen_at = None
        self.regrips += 1
        self.squeeze += 0.008 if self.grasp.kind == "pinch" else 0.2
        self._enter("regrip", t)
        return True

    def _lag(self, view) -> float:
        """How much less the object has risen than the hand (as seen) since the lift began."""
        hand_up = view["wrist_pos"][2] - self.lift_from[2]
        return hand_up - (view["object_pos"][2] - self.lift_from[1][2])

    def _dropped(self, view) -> bool:
        return view["lifted_m"] < 0.01 and self.pos[2] - self.lift_from[0][2] > 0.03

    def _retry(self, t):
        if self.retries_left <= 0:
            self._enter("release", t)
            return
        self.retries_left -= 1
        self.attempts += 1
        if self.grasp.kind == "pinch":  # it slipped out: pinch harder this time
            self.squeeze *= 1.5
        self._enter("reach", t)

    def _turn(self, t, view):
        h, g = self.habits, self.grasp
        curled = g.closed(self.squeeze, self.lo, self.hi)
        if self.phase == "settle":
            if t - self.phase_t0 >= 0.4:
                self._enter("curl", t)
        elif self.phase == "curl":
            if self._move(t, h.close_s * 1.5, q=curled):
                self._enter("look", t)
        elif self.phase == "look":
            if t - self.phase_t0 >= 0.3 + REACTION_S:
                turned = view.get("turned_deg", 0.0)
                if turned >= 65 or self.retries_left <= 0:
                    self._enter("release", t)
                else:  # it did not go over: uncurl and try again, curling further
                    self.retries_left -= 1
                    self.attempts += 1
                    self.squeeze = min(1.0, self.squeeze + 0.2)
                    self._enter("uncurl", t)
        elif self.phase == "uncurl":
            if self._move(t, 0.6, q=g.open):
                self._enter("curl", t)
        elif self.phase == "release":
            if self._move(t, 0.8, q=g.open):
                self._enter("done", t)


def motor_goals(world, joints_deg) -> np.ndarray:
    """The exoskeleton's joint angles as the motors' goals (rad): one to one on a direct
    hand, through the coupling (A q + b, as the firmware computes it) on a tendon hand."""
    q = np.radians(np.asarray(joints_deg, dtype=float))
    s = world.scene
    return s.coupling @ q + s.coupling_b if s.coupling is not None else q


def teleoperate(world, operator: Operator, period_s: float = 0.01, until_judged: bool = True):
    """Run the operator on the world, the exoskeleton's angles fed straight to the motors
    (no firmware): until the task is decided (or, until_judged False, the operator is
    done), or the time limit passes. Returns the verdict."""
    limit = world.task.time_limit_s + period_s
    while world.time < limit:
        cmd = operator.command(world.time, world.task_state())
        world.set_motor_goals(motor_goals(world, cmd.joints_deg))
        world.set_wrist(cmd.wrist_pos, cmd.wrist_quat)
        world.step_to(world.time + period_s)
        if world.judge() and (until_judged or cmd.phase == "done"):
            break
    return world.judge()
