"""How a teleoperator pinches through a device by what they see of the robot's pinch.

Through the exoskeleton the robot's fingers go where the person's own go: what they see
agrees with what they do and they have nothing to correct (the operator is `mirrored`).
Through a glove, a headset or a camera the retargeting matches the robot's fingertips to
the person's but not its finger postures (measured here with vector retargeting: tips
within ~1 mm, the robot's thumb tip joint ~20 degrees more curled, its pads ~1 cm further
apart than the person's), and the device's noise makes the robot's fingers shake. A person
adapts to what they see within seconds (operator_sight reads it):

- reaching, they open or close their own hand until the robot's pinch opening looks as
  they mean it, and bring the robot's pinch centre (not their own) over the object;
- coming down, they stop short of a robot fingertip reaching the table, and raise the hand
  when they see one jammed on it;
- closing, they keep the object midway between the robot's fingertips and close on until
  they see both stay on it, then squeeze past that their habit and a margin for how much
  the fingers shake (grip force margins grow with uncertainty); if the pinch closes past
  the object's width without it, or pushes it out from between the fingers, they open, go
  up and come down over it again; one coming down on it and shoving it aside, likewise;
- waiting to lift, they close on when they see the fingertips come off it more often than
  not; lifting, they grip harder while they see it slide down in the fingers.

All of it at a person's pace (a reaction time, limited speeds), so each device's latency,
noise and lost frames still reach the robot in full. The figures marked a guess are.

`shift`: how much further (metres of the grasp plan's closure; negative: less) the person
closes their own hand; `aim`: where the robot's pinch centre sits off the planned one
(wrist frame); `raised`: how much higher than planned they bring the hand down.
"""
from __future__ import annotations

import numpy as np

from dexlink.world.motion import min_jerk
from dexlink.world.operator_sight import PERCEPTION_S, SEEN_M, HandSight
from dexlink.world.scene import TABLE_TOP_Z

ADAPT_PER_S = 2.0  # how fast the correction follows what is seen (1/s; a guess)
ADAPT_MAX_M_S = 0.03  # a person re-shapes a pinch no faster than this (m/s of closure)
TIGHTEN_M_S = 0.025  # closing further, watching for the fingertips to land (m/s)
MISSED = 0.7  # a pinch seen this much narrower than the object has missed it
SHIFT_MAX_M = 0.04  # beyond this the pads would pass each other: the person stops closing
# People grip with a safety margin over the slip force that grows with how uncertain the grip
# is (Johansson & Westling 1984, Exp Brain Res 56:550); here: this many times the shake
# of the robot's pinch they see, on top of their habit (the factor is a guess).
SHAKE_MARGIN = 2.0
RAISE_M_S = 0.05  # how fast they lift a hand whose fingertip nears or is jammed on the table
CLEAR_M = 0.003  # the fingertips kept this far above the table while coming down
SLIDE_SEEN_M = 0.006  # a pinched object sinking this far in the fingers is seen sliding
REAIM_M = 0.008  # an object pushed this far across the table has moved: go over it again
HELD_SHARE = 0.5  # fingertips seen on the object less of the time than this: not held
HOLD_SEEN = 0.8  # holding, fingertips seen off it more than this share of the time: close on


class PinchCorrection:
    """The person's correction of their own pinch by what they see of the robot's: how
    much further than planned they close their own hand (`shift`, metres of the plan's
    closure; negative: they open it wider)."""

    def __init__(self, sight: HandSight, closing: np.ndarray, target: str, width_m: float,
                 reaction_s: float):
        self.sight = sight
        self.closing = closing  # rad per metre of closure
        self.target = target  # the object's body (and geom) name
        self.width = width_m  # the object's size across the pinch
        self.reaction_s = reaction_s
        self.shift = 0.0
        self.aim = np.zeros(3)  # where the robot's pinch centre is off the planned (wrist frame)
        self.raised = np.zeros(3)  # how much higher they bring the hand down (world frame)
        self.landed_at: float | None = None
        self.looks = None  # (pinch opening, object off the pinch centre) as perceived
        self.close_from = 0.0  # the shift as they began to close
        self.bump_ref = None  # where the object was as they began to come down

    def posture(self, q_rad) -> np.ndarray:
        """The person's own joint angles for the planned posture q_rad."""
        return q_rad + self.closing * self.shift

    def follow(self, dt: float, planned_q) -> None:
        """Nothing touched yet: open or close their own hand until the robot's pinch
        opening looks like the planned one, and learn where its pinch centre really is, to
        bring that (not their own) onto the object. Less than SEEN_M off is not seen."""
        gap, mid = self.sight.seen()
        want_gap, want_mid = self.sight.pinch(planned_q)
        limit = ADAPT_MAX_M_S * dt
        err = gap - want_gap  # >0: the robot's pinch is too wide
        if abs(err) >= SEEN_M:
            step = np.clip(ADAPT_PER_S * err * dt, -limit, limit)
            self.shift = float(np.clip(self.shift + step, -SHIFT_MAX_M, SHIFT_MAX_M))
        off = mid - want_mid - self.aim
        size = float(np.linalg.norm(off))
        if size >= SEEN_M:
            self.aim += off * min(ADAPT_PER_S * dt, limit / size)

    def clear_table(self, dt: float) -> np.ndarray:
        """A robot fingertip seen jammed on the table: they raise the hand until it is free
        (and come down that much less high next time). The wrist's step (world frame, m)."""
        if not self.sight.on_table():
            return np.zeros(3)
        step = np.array([0.0, 0.0, RAISE_M_S * dt])
        self.raised += step
        return step

    def keep_clear(self, dt: float) -> None:
        """Coming down: a robot fingertip about to reach the table (a curled retargeted
        thumb reaches lower than the person's own) and they stop lower by that much."""
        short = TABLE_TOP_Z + CLEAR_M - self.sight.lowest_tip()
        if short > 0:
            self.raised[2] += min(short, RAISE_M_S * dt)

    def centre(self, dt: float) -> np.ndarray:
        """Closing, not yet held: one robot fingertip nearer the object than the other
        would push it; they move the hand along the pinch to keep the object midway. The
        wrist's step (world frame, m)."""
        off, axis = self.sight.from_centre(self.target)
        along = float(off @ axis)
        if abs(along) < SEEN_M:
            return np.zeros(3)
        limit = ADAPT_MAX_M_S * dt
        return float(np.clip(ADAPT_PER_S * along * dt, -limit, limit)) * axis

    def squeeze_on(self, dt: float) -> None:
        """Close further, at the pace they tighten a pinch (they see the object slide)."""
        self.shift = min(SHIFT_MAX_M, self.shift + TIGHTEN_M_S * dt)

    def begin(self, phase: str, planned_q) -> np.ndarray:
        """A new phase of the operator's; the planned posture to go on from (returned).
        Letting go, the extra closing becomes part of the posture they open from (the
        opening they see corrects them again on the way)."""
        self.bump_ref = None
        if phase == "close":
            self.close_from = self.shift
        if phase not in ("regrip", "release", "reach", "rise"):
            return planned_q
        q = planned_q + self.closing * self.shift
        self.shift = 0.0
        self.landed_at = self.looks = None
        return q

    def tick(self, phase: str, in_phase_s: float, dt: float, planned_q, lag_m: float,
             close_s: float) -> np.ndarray:
        """Look and correct, once a control tick; the wrist's step (world frame, m)."""
        sight, target = self.sight, self.target
        sight.watch(dt, target)
        step = np.zeros(3)
        if phase in ("lift", "hold") and lag_m > SLIDE_SEEN_M:
            self.squeeze_on(dt)  # they see it slide down in the robot's fingers
        elif phase in ("settle", "lift", "hold") and sight.held_share < HOLD_SEEN:
            self.squeeze_on(dt)  # a fingertip keeps coming off it: they close on
        if phase not in ("reach", "descend", "close", "tighten") or sight.landed(target):
            return step
        if phase in ("close", "tighten"):
            step = self.centre(dt) + self.clear_table(dt)
        if phase == "close":  # the opening learned while reaching goes as they close:
            # closing is judged by the robot's fingertips landing (tighten)
            self.shift = self.close_from * (1.0 - min_jerk(in_phase_s / close_s))
        elif phase in ("reach", "descend") and not sight.fingers_on(target):
            self.follow(dt, planned_q)
        if phase == "descend":  # the operator's aim brings the hand down that much higher
            self.clear_table(dt)
            self.keep_clear(dt)
        return step

    def bumped(self, object_pos) -> bool:
        """Coming down: a robot fingertip on the object and the object pushed aside since
        the descent began."""
        if self.bump_ref is None:
            self.bump_ref = np.array(object_pos)
        pushed = np.linalg.norm((np.asarray(object_pos) - self.bump_ref)[:2]) > REAIM_M
        return pushed and bool(self.sight.fingers_on(self.target))

    def loosened(self, in_phase_s: float) -> bool:
        """Waiting to lift: the robot's fingertips seen off the object more often than not
        (the device's noise opening the pinch), after a reaction time."""
        return in_phase_s >= self.reaction_s and self.sight.held_share < HELD_SHARE

    def tighten(self, t: float, dt: float, squeeze: float) -> str | None:
        """Close further until both fingertips are seen on the object for a reaction time,
        then squeeze past that their habitual amount and a margin for how much the robot's
        fingers are seen to shake: "landed". "missed" when the object is not between the
        fingers (the robot's pinch has closed past its width without it, or it was pushed
        out from between them) or the pinch cannot close further; None while closing."""
        target, width = self.target, self.width
        if not self.sight.landed(target):
            self.landed_at = None  # seen on it for a moment only: not yet
        if self.landed_at is None:
            if self.sight.landed(target):
                self.landed_at = t
            else:  # a shaking robot hand is seen where it is on average
                k = min(1.0, dt / PERCEPTION_S)
                now = np.array([self.sight.seen()[0], self.sight.off_centre(target)])
                self.looks = now if self.looks is None else self.looks + k * (now - self.looks)
                gap, off = self.looks
                if self.shift >= SHIFT_MAX_M or gap < MISSED * width or off > width:
                    return "missed"  # closed past it, or shoved it out from between them
        if self.landed_at is not None and t - self.landed_at >= self.reaction_s:
            self.landed_at = None
            # past the contact they see: their habit, and more the more the fingers shake
            margin = SHAKE_MARGIN * self.sight.shake_m
            self.shift = min(SHIFT_MAX_M, self.shift + squeeze + margin)
            return "landed"
        self.shift = min(SHIFT_MAX_M, self.shift + TIGHTEN_M_S * dt)
        return None
