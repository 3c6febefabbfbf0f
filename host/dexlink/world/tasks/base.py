"""What every task is: objects in the scene, an initial state drawn from a seed, a
success predicate watched while the world steps, and a time limit.

A task also tells the simulated operator how a person goes about it (`grasp`, the body
to look at, how high to lift), since a person knows what they were asked to do.
"""
from __future__ import annotations

import mujoco
import numpy as np

from dexlink.world.scene import CONTACT, TABLE_TOP_Z

SUCCESS, FAILURE = "success", "failure"


class Task:
    name = ""
    description = ""
    time_limit_s = 15.0
    target = "cube"  # the body the operator watches
    grasp = "power"  # how a person does it (operator.GRASPS)
    palm_up = False  # the hand starts (and works) palm up
    lift_m = 0.0  # how high the object must be lifted; 0: no lift
    hold_s = 1.0  # how long the success state must last
    object_half = 0.025  # half the object's size along the grasp (m), for the operator's plan

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self.outcome: str | None = None
        self.reason = ""  # why the task ended, in words
        self.decided_at: float | None = None
        self._held_since: float | None = None
        self.start_pos = np.zeros(3)
        self.start_quat = np.array([1.0, 0, 0, 0])
        self.sample(np.random.default_rng(self.seed))

    # --- what each task says -------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> None:
        """Draw the initial state from the seed's generator."""

    def build(self, spec: mujoco.MjSpec) -> None:
        """Add the task's objects to the scene."""

    def check(self, world) -> str | None:
        """SUCCESS or FAILURE once the task is decided, else None (watched at 100 Hz)."""
        return None

    def shortfall(self) -> str:
        """What was missing when time ran out, in words ('' when nothing to say)."""
        return ""

    def wrist_start(self) -> np.ndarray:
        """Where the wrist starts (the orientation is the hand's palm down, or up)."""
        return np.array([-0.12, 0.0, TABLE_TOP_Z + 0.16])

    def reset(self, world) -> None:
        """Set the objects' initial state once the scene is compiled (a default: none)."""

    # --- shared machinery ----------------------------------------------------------------
    def observe(self, world) -> None:
        if self.outcome is not None:
            return
        verdict = self.check(world)
        if verdict is None and world.time >= self.time_limit_s:
            verdict = FAILURE
            self.reason = "time limit (%.0f s) reached" % self.time_limit_s
            if self.shortfall():
                self.reason += ": " + self.shortfall()
        if verdict is not None:
            self.outcome = verdict
            self.decided_at = world.time

    def held(self, world, condition: bool, why: str) -> str | None:
        """SUCCESS once condition has held for hold_s of world time."""
        if not condition:
            self._held_since = None
            return None
        if self._held_since is None:
            self._held_since = world.time
        if world.time - self._held_since >= self.hold_s:
            self.reason = why
            return SUCCESS
        return None

    def target_pose(self, world) -> tuple[np.ndarray, np.ndarray]:
        return world.body_pose(self.target)

    def state(self, world) -> dict:
        """What an observer sees of the task now (object pose, height gained, verdict)."""
        pos, quat = self.target_pose(world)
        wrist, wquat = world.wrist_pose()
        return {"time": world.time, "object": self.target, "object_pos": pos,
                "object_quat": quat, "wrist_pos": wrist, "wrist_quat": wquat,
                "lifted_m": float(pos[2] - self.start_pos[2]),
                "outcome": self.outcome, "reason": self.reason}

    def fell_off(self, pos) -> bool:
        return pos[2] < TABLE_TOP_Z - 0.05


def add_free_box(spec, name: str, half, pos, quat, mass: float, friction: float = 1.0,
                 rgba=(0.8, 0.15, 0.1, 1.0)):
    """A free box object. Its friction rules its contacts (priority over the hand's and the
    table's geoms): a slippery object is slippery whatever touches it."""
    body = spec.worldbody.add_body(name=name, pos=list(pos), quat=list(quat))
    body.add_freejoint(name=name + "_free")
    contact = dict(CONTACT, friction=(friction, CONTACT["friction"][1], CONTACT["friction"][2]))
    body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=list(half), mass=mass,
                  rgba=list(rgba), priority=1, **contact)
    return body


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def yaw_of(quat) -> float:
    """Rotation about world z of a body's frame (its x axis projected on the table)."""
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))
