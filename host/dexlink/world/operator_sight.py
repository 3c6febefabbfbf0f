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
(wrist frame); `raised`: how much higher than planned they bring the hand down, learned
from seeing a robot fingertip jammed on the table (a curled retargeted thumb reaches lower
than the person's own).
"""
from __future__ import annotations

import mujoco
import numpy as np

from dexlink.world.scene import TABLE_TOP_Z

SEEN_M = 0.003  # a fingertip off by less than this is not seen (video; a guess)
ADAPT_PER_S = 2.0  # how fast the correction follows what is seen (1/s; a guess)
ADAPT_MAX_M_S = 0.03  # a person re-shapes a pinch no faster than this (m/s of closure)
TIGHTEN_M_S = 0.025  # closing further, watching for the fingertips to land (m/s)
MISSED = 0.7  # a pinch seen this much narrower than the object has missed it
SHIFT_MAX_M = 0.04  # beyond this the pads would pass each other: the person stops closing
PINCH_FINGERS = ("thumb", "index")
TABLE = "table"  # the scene's table geom
PERCEPTION_S = 0.3  # a jittering hand is perceived as its average over about this long
# People grip with a safety margin over the slip force that grows with how uncertain the grip
# is (Johansson & Westling 1984, Exp Brain Res 56:550); here: this many times the shake
# of the robot's pinch they see, on top of their habit (the factor is a guess).
SHAKE_MARGIN = 2.0
RAISE_M_S = 0.05  # how fast they lift a hand whose fingertip nears or is jammed on the table
CLEAR_M = 0.003  # the fingertips kept this far above the table while coming down


class HandSight:
    """The robot hand as the operator sees it: the pinch opening at its joints' present
    angles, and which fingertips are on the object."""

    def __init__(self, world, hand, axis_in_hand, finger_radius_m: float):
        self.world = world
        self.radius = finger_radius_m
        self.hand = hand  # HandPose: kinematics on a scratch state
        self.sites = [hand.model.site(f + "_tactile").id for f in PINCH_FINGERS]
        self.axis = np.asarray(axis_in_hand, dtype=float)
        self.last_gap: float | None = None
        self.shake_var = 0.0  # m^2
        self.held_share = 0.0  # of the last moments, how much both fingertips were on it

    def watch(self, dt: float, target: str) -> None:
        """Look once a tick: how much the robot's pinch opening shakes from moment to moment
        (a device's noise through the retargeting) and how much of the time both its
        fingertips are on the object, perceived over PERCEPTION_S."""
        gap = self.seen()[0]
        k = min(1.0, dt / PERCEPTION_S)
        if self.last_gap is not None:
            self.shake_var += k * ((gap - self.last_gap) ** 2 / 2 - self.shake_var)
        self.last_gap = gap
        self.held_share += k * (float(self.landed(target)) - self.held_share)

    @property
    def shake_m(self) -> float:
        return float(np.sqrt(self.shake_var))

    def pinch(self, q_rad) -> tuple[float, np.ndarray]:
        """For joint angles q_rad: the pinch opening (index pad minus thumb pad along the
        grasp axis, m) and the point midway between the pads (wrist frame, m)."""
        self.hand.tips(q_rad)
        thumb, index = (self.hand.data.site_xpos[s].copy() for s in self.sites)
        return float((index - thumb) @ self.axis), (thumb + index) / 2

    def seen(self) -> tuple[float, np.ndarray]:
        """The robot's pinch as it is now."""
        return self.pinch(self.world.joint_positions())

    def _wrist(self) -> tuple[np.ndarray, np.ndarray]:
        wrist, quat = self.world.wrist_pose()
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, quat)
        return wrist, rot.reshape(3, 3)

    def lowest_tip(self) -> float:
        """How high (world z, m) the lowest point of the robot's pinch fingertips is, now."""
        tips = self.hand.tips(self.world.joint_positions())
        wrist, rot = self._wrist()
        return min(float((wrist + rot @ tips[f])[2]) for f in PINCH_FINGERS) - self.radius

    def from_centre(self, target: str) -> tuple[np.ndarray, np.ndarray]:
        """The object's centre less the robot's pinch centre, and the pinch axis (thumb
        to index), world frame, now."""
        wrist, rot = self._wrist()
        centre = wrist + rot @ self.seen()[1]
        return self.world.body_pose(target)[0] - centre, rot @ self.axis

    def off_centre(self, target: str) -> float:
        """How far (m) the object is from the robot's pinch centre across the table, now
        (the height differs by how the fingertips curl, and says nothing of a push)."""
        return float(np.linalg.norm(self.from_centre(target)[0][:2]))

    def fingers_on(self, target: str) -> set[str]:
        """The pinch fingers touching the object now."""
        on = set()
        for touch in self.world.contacts:
            if touch.other_geom == target:
                on.update(f for f in PINCH_FINGERS if touch.hand_geom.startswith(f + "_"))
        return on

    def on_table(self) -> bool:
        """A pinch fingertip pressed on the table (the hand is too low for the fingers)."""
        return bool(self.fingers_on(TABLE))

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
        self.raised = np.zeros(3)  # how much higher they bring the hand down (world frame)
        self.landed_at: float | None = None
        self.looks = None  # (pinch opening, object off the pinch centre) as perceived

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

    def centre(self, dt: float, target: str) -> np.ndarray:
        """Closing, not yet held: one robot fingertip nearer the object than the other
        would push it; they move the hand along the pinch to keep the object midway. The
        wrist's step (world frame, m)."""
        off, axis = self.sight.from_centre(target)
        along = float(off @ axis)
        if abs(along) < SEEN_M:
            return np.zeros(3)
        limit = ADAPT_MAX_M_S * dt
        return float(np.clip(ADAPT_PER_S * along * dt, -limit, limit)) * axis

    def squeeze_on(self, dt: float) -> None:
        """Close further, at the pace they tighten a pinch (they see the object slide)."""
        self.shift = min(SHIFT_MAX_M, self.shift + TIGHTEN_M_S * dt)

    def reopen(self, planned_q) -> np.ndarray:
        """Letting go: the extra closing becomes part of the posture they open from
        (returned); the opening they see corrects them again on the way."""
        q = planned_q + self.closing * self.shift
        self.shift = 0.0
        self.landed_at = self.looks = None
        return q

    def tighten(self, t: float, dt: float, target: str, squeeze: float,
                reaction_s: float, width: float) -> str | None:
        """Close further until both fingertips are seen on the object for a reaction time,
        then squeeze past that their habitual amount and a margin for how much the robot's
        fingers are seen to shake: "landed". "missed" when the object is not between the
        fingers (the robot's pinch has closed past its width without it, or it was pushed
        out from between them) or the pinch cannot close further; None while closing."""
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
        if self.landed_at is not None and t - self.landed_at >= reaction_s:
            self.landed_at = None
            # past the contact they see: their habit, and more the more the fingers shake
            self.shift = min(SHIFT_MAX_M, self.shift + squeeze + SHAKE_MARGIN * self.sight.shake_m)
            return "landed"
        self.shift = min(SHIFT_MAX_M, self.shift + TIGHTEN_M_S * dt)
        return None
