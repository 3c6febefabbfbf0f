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
from dexlink.world.operator_sight import HandSight, PinchShift
from dexlink.world.tasks.base import yaw_of

PREGRASP_UP_M = 0.06  # the hand comes down onto the object from this high
LIFT_EXTRA_M = 0.03  # people lift a little more than asked
SLIP_SEEN_M = 0.015  # the object lagging the hand by this much is a slip anyone sees
# (less is a settling in the grip: a held cube sinks ~1 cm into the fingers as it rises)
REACTION_S = 0.25  # from seeing to doing
SLIDE_SEEN_M = 0.006  # a pinched object sinking this far in the fingers is seen sliding
MAX_REGRIPS = 2  # after that, a slip is let run: a miss, tried again from the start
REAIM_M = 0.008  # an object this far from where the hand comes down again has moved: go over it
TREMOR_HZ = 9.0


@dataclass
class Command:
    """What the exoskeleton and the arm tracker read of the operator at one moment."""

    t: float
    joints_deg: np.ndarray  # per hand joint, hand file order
    wrist_pos: np.ndarray  # m, world frame
    wrist_quat: np.ndarray  # (w, x, y, z)
    phase: str


@dataclass
class Habits:
    """How one attempt goes: drawn from the seed, spread by (1 - skill)."""

    aim_m: np.ndarray  # where they put the hand relative to where they mean to (x, y, z)
    yaw_rad: float  # how far they misjudge the object's faces
    squeeze: float  # pinch: metres past contact; power, roll: fraction of a full close
    reach_s: float
    close_s: float
    settle_s: float
    lift_s: float  # a brisk lift jerks the object out of a light grip
    watch: bool  # do they watch the object and grip harder when it slips?
    retries: int  # how often they try again after a miss
    tremor_deg: float

    @classmethod
    def draw(cls, rng: np.random.Generator, skill: float, grasp: str) -> "Habits":
        u = 1.0 - float(np.clip(skill, 0.0, 1.0))
        aim = rng.normal(0.0, 1.0, 3) * [0.002 + 0.016 * u, 0.002 + 0.016 * u, 0.001 + 0.004 * u]
        if grasp == "pinch":  # a small block looks light: a light pinch, whatever the skill
            squeeze = rng.uniform(0.001, 0.006)
        else:  # how completely they close or curl
            squeeze = 1.0 - u * rng.uniform(0.0, 0.6)
        return cls(aim_m=aim, yaw_rad=float(rng.normal(0.0, np.radians(2 + 14 * u))),
                   squeeze=float(squeeze), reach_s=float(rng.uniform(1.2, 1.8)),
                   close_s=float(rng.uniform(0.4, 0.7) + 0.3 * skill),
                   settle_s=float(0.1 + 0.4 * skill * rng.uniform(0.5, 1.0)),
                   lift_s=float(0.3 + 1.2 * skill * rng.uniform(0.7, 1.0)),
                   watch=bool(skill > rng.uniform(0.3, 0.7)), retries=int(round(2 * skill)),
                   tremor_deg=0.1 + 0.5 * u)


def min_jerk(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * x * (10 - 15 * x + 6 * x * x)


def slerp(a, b, s):
    a, b = np.asarray(a, float), np.asarray(b, float)
    dot = float(a @ b)
    if dot < 0:
        b, dot = -b, -dot
    if dot > 0.9995:
        q = a + s * (b - a)
    else:
        th = np.arccos(dot)
        q = (np.sin((1 - s) * th) * a + np.sin(s * th) * b) / np.sin(th)
    return q / np.linalg.norm(q)


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
        self.bump_ref = None  # where the object was as the descent began
        self.close_from = 0.0  # the pinch correction as they began to close
        # mirrored: the robot's fingers are where the person's own are (the exoskeleton), and
        # the habits above already say where contact comes. Otherwise (a device through
        # retargeting) they correct their pinch by what they see of the robot's
        # (operator_sight).
        self.pinch = None
        if self.grasp.kind == "pinch" and not mirrored:
            sight = HandSight(world, self.planner.hand, self.grasp.axis_in_hand,
                              self.planner.geometry.capsule_radius_m)
            self.pinch = PinchShift(sight, self.grasp.closing)

    # --- what the rig reads --------------------------------------------------------------
    def command(self, t: float, view: dict) -> Command:
        if self.phase == "start":
            self._begin(t, view)
        dt = 0.0 if self.last_t is None else t - self.last_t
        self.last_t = t
        self.view = view
        self._advance(t, view, dt)
        tremor = self.habits.tremor_deg * np.sin(2 * np.pi * TREMOR_HZ * t + self.tremor_phase)
        q = self.q if self.pinch is None else self._watch_pinch(t, dt)
        q = np.clip(q, self.lo, self.hi)
        return Command(t, np.degrees(q) + tremor, self.pos.copy(), self.quat.copy(), self.phase)

    def _watch_pinch(self, t, dt) -> np.ndarray:
        """Their own joint angles, corrected by what they see of the robot's pinch."""
        p, target = self.pinch, self.task.target
        p.sight.watch(dt, target)
        if self.phase in ("lift", "hold") and self._lag(self.view) > SLIDE_SEEN_M:
            p.squeeze_on(dt)  # they see it slide down in the robot's fingers: grip harder
        if self.phase in ("reach", "descend", "close", "tighten") and \
                not p.sight.landed(target):
            if self.phase in ("close", "tighten"):
                self.pos = self.pos + p.centre(dt, target) + p.clear_table(dt)
            if self.phase == "close":  # the opening they learned goes as they close:
                # closing is judged by the robot's fingertips landing (tighten), not by it
                p.shift = self.close_from * (1.0 - min_jerk((t - self.phase_t0) /
                                                             self.habits.close_s))
            elif not p.sight.fingers_on(target):
                p.follow(dt, self.q)
            if self.phase == "descend":  # _aim brings the hand down that much higher
                p.clear_table(dt)
                p.keep_clear(dt)
        return p.posture(self.q)

    def _begin(self, t, view):
        self.pos, self.quat = np.array(view["wrist_pos"]), np.array(view["wrist_quat"])
        self.from_q = self.q.copy()
        self._enter("settle" if self.grasp.kind == "roll" else "reach", t)

    def _enter(self, phase, t):
        if self.pinch is not None and phase in ("regrip", "release", "reach", "rise"):
            # the extra closing goes as they open
            self.q = np.clip(self.pinch.reopen(self.q), self.lo, self.hi)
        self.bump_ref = None
        if self.pinch is not None and phase == "close":
            self.close_from = self.pinch.shift
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
            if self._bumped(view):  # a robot finger came down on it and shoved it: go over it
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
            got = self.pinch.tighten(t, dt, self.task.target, self.squeeze, REACTION_S,
                                     2 * self.task.object_half)
            if got:  # missed: open, go over it again
                self._enter("settle" if got == "landed" else "rise", t)
        elif self.phase == "settle":
            if self._loosened(t):  # the robot's fingertips came off it: close further
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
                aim, _ = self._aim(view)  # it moved (knocked, dropped aside): go over it again
                moved = np.linalg.norm((aim - self.pos)[:2]) > REAIM_M
                self._enter("rise" if moved else "descend", t)
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

    def _bumped(self, view) -> bool:
        """Watching the robot's pinch come down: a fingertip on the object and the object
        pushed aside since the descent began (a device's operator only: through the
        exoskeleton the habits are calibrated without it)."""
        if self.pinch is None:
            return False
        if self.bump_ref is None:
            self.bump_ref = np.array(view["object_pos"])
        pushed = np.linalg.norm((np.asarray(view["object_pos"]) - self.bump_ref)[:2]) > REAIM_M
        return pushed and bool(self.pinch.sight.fingers_on(self.task.target))

    def _loosened(self, t) -> bool:
        """A device's operator waiting to lift sees the robot's fingertips come off the
        object more often than not (the device's noise opening the pinch), after a
        reaction time in the phase."""
        if self.pinch is None:
            return False
        return t - self.phase_t0 >= REACTION_S and self.pinch.sight.held_share < 0.5

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
