"""How a person grasps with this hand: the postures of a grasp and where the object sits
in the hand, found on the hand's own kinematics (what a practised operator knows).

- power: the hand comes down over the object, the thumb on one side and the fingers
  wrapping the other, the object pressed up into the palm. Postures by joint kind.
- pinch: thumb pad against index pad, the object between them. The contact posture is
  searched on the kinematics (pads an object's width apart, facing each other), and
  closing goes on along the direction that narrows the gap: squeezing past contact is
  what makes the force (the servos are position-controlled).
- roll: palm up, the object lying across the palm and the fingers' bases; the fingers
  curl and tip it over towards the wrist, a quarter turn.

Postures are arrays of joint angles in radians, in the hand file's order.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from dexlink.world.geometry import load_geometry

# Degrees per joint kind (name suffix); thumb joints separately. Clipped to each range.
POWER_OPEN = {"thumb": {"cmc_abd": 30}, "finger": {"mcp": 10, "pip": 10, "dip": 10}}
# Closed: the fingers' pads come onto the object's far face (a tighter curl wraps their
# tips under it, which holds as well but leaves the tactile pads untouched).
POWER_CLOSED = {"thumb": {"cmc_abd": 40, "cmc_flex": 20, "mcp": 40, "ip": 20},
                "finger": {"mcp": 80, "pip": 60, "dip": 20}}
ROLL_FLAT = {"thumb": {"cmc_abd": -30}, "finger": {}}
ROLL_CURLED = {"thumb": {"cmc_abd": -30}, "finger": {"mcp": 90, "pip": 70, "dip": 40}}
POWER_REACH = 0.6  # how far past the knuckles the object's centre sits, in half sizes
POWER_GAP_M = 0.006  # between the object's top and the palm when the hand closes
PINCH_SEARCH_SEED = 0  # the search is the hand's, not the attempt's: the same every time


@dataclass
class Grasp:
    kind: str
    open: np.ndarray  # pre-shape while reaching
    contact: np.ndarray  # just touching an object of the planned size
    closing: np.ndarray  # rad per metre of squeeze past contact (pinch) or to full (power)
    object_in_hand: np.ndarray  # where the object's centre sits, wrist frame, at contact
    axis_in_hand: np.ndarray  # to align with one of the object's face normals
    palm_up: bool = False

    def closed(self, squeeze: float, lo, hi) -> np.ndarray:
        """The posture squeezed past contact (pinch: metres; power, roll: 0..1 of the way
        to full closure)."""
        return np.clip(self.contact + self.closing * squeeze, lo, hi)


def _role(joint_name: str, finger: str) -> str:
    return joint_name[len(finger) + 1:] if joint_name.startswith(finger + "_") else joint_name


def posture(geometry, table: dict) -> np.ndarray:
    """Joint angles (rad) from a {thumb: {kind: deg}, finger: {kind: deg}} table."""
    g = geometry
    q = np.zeros(len(g.joints))
    for i, j in enumerate(g.joints):
        kinds = table.get("thumb" if j.finger == "thumb" else "finger", {})
        deg = kinds.get(_role(j.name, j.finger))
        if deg is not None and j.finger != "palm":
            q[i] = np.clip(np.radians(deg), *j.range_rad)
    return q


class GraspPlanner:
    """The grasps of one hand in one scene (kinematics on HandPose's scratch state)."""

    def __init__(self, hand, hand_path):
        self.hand = hand
        self.geometry = load_geometry(hand_path)
        self.lo = np.array([j.range_rad[0] for j in self.geometry.joints])
        self.hi = np.array([j.range_rad[1] for j in self.geometry.joints])

    def plan(self, kind: str, object_half: float) -> Grasp:
        if kind == "power":
            return self._power(object_half)
        if kind == "pinch":
            return self._pinch(object_half)
        if kind == "roll":
            return self._roll(object_half)
        raise ValueError("unknown grasp %r" % kind)

    def _power(self, half):
        g = self.geometry
        opened, closed = posture(self.geometry, POWER_OPEN), posture(self.geometry, POWER_CLOSED)
        bases = np.array([f.base_pos_m for f in g.fingers if f.name != "thumb" and f.fingertip])
        knuckle_x, mid_y = bases[:, 0].mean(), bases[:, 1].mean()
        palm_side = -g.palm_size_m[2] / 2  # the palm's surface, palm frame z
        # The object under the palm, a little beyond the knuckles and towards the thumb,
        # so the curled fingers reach round its far side and the thumb its near side.
        centre = np.array([knuckle_x + POWER_REACH * half, mid_y + 0.4 * half,
                           palm_side - half - POWER_GAP_M])
        return Grasp("power", opened, opened, closed - opened, self._palm_to_wrist(centre),
                     self.hand.finger_dir.copy())

    def _roll(self, half):
        g = self.geometry
        flat, curled = posture(self.geometry, ROLL_FLAT), posture(self.geometry, ROLL_CURLED)
        bases = np.array([f.base_pos_m for f in g.fingers if f.name != "thumb" and f.fingertip])
        # Lying across the knuckles: half on the palm, half on the fingers' first links.
        centre = np.array([bases[:, 0].mean() + 0.2 * half, bases[:, 1].mean(),
                           -g.capsule_radius_m - half])
        return Grasp("roll", flat, flat, curled - flat, self._palm_to_wrist(centre),
                     self.hand.finger_dir.copy(), palm_up=True)

    def _palm_to_wrist(self, p):
        hp = self.hand
        hp.tips(np.zeros(len(self.lo)))
        b = hp.model.body("palm").id
        return hp.data.xpos[b] + hp.data.xmat[b].reshape(3, 3) @ p

    # --- pinch ------------------------------------------------------------------------
    def _pinch(self, half):
        hp = self.hand
        free = [i for i, j in enumerate(self.geometry.joints)
                if j.finger == "thumb" or (j.finger == "index" and "abd" not in j.name)]
        sites = [hp.model.site(f + "_tactile").id for f in ("thumb", "index")]
        width = 2 * half
        q = self._search(np.zeros(len(self.lo)), free, sites, width)  # others straight
        pt, nt, pi, _ = self._pads(q, sites)
        # Closing: the joint motion that narrows the gap along the thumb's normal fastest.
        grad = np.zeros_like(q)
        for i in free:
            dq = np.zeros_like(q)
            dq[i] = 1e-4
            a, b_ = self._gap(q + dq, sites, nt), self._gap(q - dq, sites, nt)
            grad[i] = (a - b_) / 2e-4
        closing = -grad / (grad @ grad)  # rad per metre of gap closed
        return Grasp("pinch", q - closing * 0.02, q, closing, (pt + pi) / 2, nt)

    def _pads(self, q, sites):
        self.hand.tips(q)
        d = self.hand.data
        return (d.site_xpos[sites[0]].copy(), d.site_xmat[sites[0]].reshape(3, 3)[:, 2].copy(),
                d.site_xpos[sites[1]].copy(), d.site_xmat[sites[1]].reshape(3, 3)[:, 2].copy())

    def _gap(self, q, sites, axis):
        pt, _, pi, _ = self._pads(q, sites)
        return float((pi - pt) @ axis)

    def _cost(self, q, sites, width):
        pt, nt, pi, ni = self._pads(q, sites)
        miss = pi - (pt + width * nt)  # the index pad where the thumb's normal points
        return float(miss @ miss + 4 * (0.02 * (1 + nt @ ni)) ** 2)

    def _search(self, base, free, sites, width):
        """Random starts, then coordinate descent: a few ms of kinematics."""
        rng = np.random.default_rng(PINCH_SEARCH_SEED)
        lo, hi = self.lo[free], self.hi[free]
        best, best_cost = base.copy(), np.inf
        for _ in range(300):
            q = base.copy()
            q[free] = rng.uniform(lo, hi)
            c = self._cost(q, sites, width)
            if c < best_cost:
                best, best_cost = q, c
        step = (self.hi - self.lo) * 0.1
        for it in range(600):
            i = free[it % len(free)]
            for sign in (1.0, -1.0):
                q = best.copy()
                q[i] = np.clip(q[i] + sign * step[i], self.lo[i], self.hi[i])
                c = self._cost(q, sites, width)
                if c < best_cost:
                    best, best_cost = q, c
                    break
            else:
                step[i] *= 0.7
        return best


def grasp_orientation(hand, grasp: Grasp, face_yaw: float) -> np.ndarray:
    """The wrist quaternion that lays the grasp's axis along a horizontal face normal at
    face_yaw, the palm facing down as far as that allows (up for a palm-up grasp)."""
    a = grasp.axis_in_hand / np.linalg.norm(grasp.axis_in_hand)
    b = hand.palm_normal - a * (hand.palm_normal @ a)
    b /= np.linalg.norm(b)
    u = np.array([np.cos(face_yaw), np.sin(face_yaw), 0.0])
    down = np.array([0.0, 0.0, 1.0 if grasp.palm_up else -1.0])
    rot = np.column_stack([u, down, np.cross(u, down)]) @ np.column_stack([a, b, np.cross(a, b)]).T
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, rot.ravel())
    return quat
