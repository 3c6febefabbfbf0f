"""What a teleoperator sees of the robot hand they drive, and how they pinch by it.

A person teleoperating watches the robot hand (in the room, on the video, in the headset's
scene): its fingers, and whether they are on the object. Through the exoskeleton the robot's
fingers go where the person's own go, so what they see agrees with what they do and they have
nothing to correct (the operator is `mirrored`). Through a glove, a headset or a camera the
retargeted fingers stand off from the person's by the mapping's error (measured here: the
robot's thumb tip curled ~20 degrees more than the person's in a pinch), and a person adapts
to that within seconds: they open their own hand further while reaching when the robot's
pinch looks too narrow for the object, bring the robot's pinch centre (not their own) over
the object, keep closing until they see both robot fingertips on it and then squeeze their
habitual amount past that; if the robot's pinch closes past the object's width without it,
the object is not between the fingers: they open, go up and come down over it again.

Only what is visible drives this: the robot's pinch opening (thumb pad to index pad) and
centre, to a few millimetres, and whether each fingertip touches the object; never forces,
never the device's error itself. It runs at a person's pace (a reaction time, a limited
speed), so each device's latency, noise and lost frames still reach the robot in full.

`shift`: how much further (metres of the grasp plan's closure; negative: less) the person
closes their own hand; `aim`: where the robot's pinch centre sits off the planned one
(wrist frame).
"""
from __future__ import annotations

import numpy as np

SEEN_M = 0.003  # a fingertip off by less than this is not seen (video; a guess)
ADAPT_PER_S = 2.0  # how fast the correction follows what is seen (1/s; a guess)
ADAPT_MAX_M_S = 0.03  # a person re-shapes a pinch no faster than this (m/s of closure)
TIGHTEN_M_S = 0.015  # closing further, watching for the fingertips to land (m/s)
MISSED = 0.7  # a pinch seen this much narrower than the object has missed it
SHIFT_MAX_M = 0.04  # beyond this the pads would pass each other: the person stops closing
PINCH_FINGERS = ("thumb", "index")


class HandSight:
    """The robot hand as the operator sees it: the pinch opening at its joints' present
    angles, and which fingertips are on the object."""

    def __init__(self, world, hand, axis_in_hand):
        self.world = world
        self.hand = hand  # HandPose: kinematics on a scratch state
        self.sites = [hand.model.site(f + "_tactile").id for f in PINCH_FINGERS]
        self.axis = np.asarray(axis_in_hand, dtype=float)

    def pinch(self, q_rad) -> tuple[float, np.ndarray]:
        """For joint angles q_rad: the pinch opening (index pad minus thumb pad along the
        grasp axis, m) and the point midway between the pads (wrist frame, m)."""
        self.hand.tips(q_rad)
        thumb, index = (self.hand.data.site_xpos[s].copy() for s in self.sites)
        return float((index - thumb) @ self.axis), (thumb + index) / 2

    def seen(self) -> tuple[float, np.ndarray]:
        """The robot's pinch as it is now."""
        return self.pinch(self.world.joint_positions())

    def fingers_on(self, target: str) -> set[str]:
        """The pinch fingers touching the object now."""
        on = set()
        for touch in self.world.contacts:
            if touch.other_geom == target:
                on.update(f for f in PINCH_FINGERS if touch.hand_geom.startswith(f + "_"))
        return on

    def landed(self, target: str) -> bool:
        """Both pinch fingertips on the object."""
        return self.fingers_on(target) >= set(PINCH_FINGERS)


class PinchShift:
    """The person's correction of their own pinch by what they see of the robot's: how
    much further than planned they close their own hand (`shift`, metres of the plan's
    closure; negative: they open it wider)."""

    def __init__(self, sight: HandSight, closing: np.ndarray):
        self.sight = sight
        self.closing = closing  # rad per metre of closure
        self.shift = 0.0
        self.aim = np.zeros(3)  # where the robot's pinch centre is off the planned (wrist frame)
        self.landed_at: float | None = None

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

    def reopen(self, planned_q) -> np.ndarray:
        """Letting go: the extra closing becomes part of the posture they open from
        (returned); the opening they see corrects them again on the way."""
        q = planned_q + self.closing * self.shift
        self.shift = 0.0
        self.landed_at = None
        return q

    def tighten(self, t: float, dt: float, target: str, squeeze: float,
                reaction_s: float, width: float) -> str | None:
        """Close further until both fingertips are seen on the object, then squeeze their
        habitual amount past that: "landed". "missed" when the robot's pinch has closed
        past the object's width without it (it is not between the fingers), or cannot
        close further; None while closing."""
        if self.landed_at is None:
            if self.sight.landed(target):
                self.landed_at = t
            elif self.shift >= SHIFT_MAX_M or self.sight.seen()[0] < MISSED * width:
                return "missed"
        if self.landed_at is not None and t - self.landed_at >= reaction_s:
            self.landed_at = None
            self.shift = min(SHIFT_MAX_M, self.shift + squeeze)
            return "landed"
        self.shift = min(SHIFT_MAX_M, self.shift + TIGHTEN_M_S * dt)
        return None
