"""The World: a hand, its arm and a task's objects stepped by MuJoCo.

What goes in is what a servo bus and an arm take: per-motor goals (rad, in the hand's
joint frame: what the firmware sends, before servo direction and centre), torque on or
off, and the wrist pose the arm should reach. What comes out is what servos and sensors
report: present positions, loads (signed actuator force over the servo's torque limit),
contacts, tactile depth per taxel, and the task's verdict. Positions and loads come from
the physics, so a finger blocked by an object shows a position error and a load.

Every method takes `self.lock`, so a camera thread can read while another thread steps.

Driving it from the virtual board (the bridge is built on this): each board cycle, the
simulated servo buses hand over the firmware's goals (servo frame -> rad through the
servo's direction and centre) to `set_motor_goals`, torque commands to `set_torque`;
the world is stepped to the board's world time (`step_to`); the servos' present
position and load registers are filled from `motor_positions()` and `motor_loads()`.
The simulated encoders read the operator (`operator.Operator.command(t, task_state())`:
the exoskeleton's joint angles), whose wrist pose goes to `set_wrist` and is recorded as
its own stream. `judge()` is the episode's mark once it is not None.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from dexlink.world import tasks
from dexlink.world.handpose import HandPose
from dexlink.world.scene import TACTILE_HZ, build_scene

JUDGE_PERIOD_S = 0.01  # the task watches its objects at 100 Hz of world time
EXPOSURES_KEPT = 32  # exposures a late camera still finds (at 60 Hz: 533 ms; ~25 kB each)


STATE_FIELDS = ("time", "qpos", "qvel", "act", "mocap_pos", "mocap_quat")  # a picture's


@dataclass
class Exposure:
    """What the world's sensors see at one step, the one in which MuJoCo evaluates its
    tactile sensor (every 1/TACTILE_HZ of world time): depth per taxel of each pad of
    `World.tactile_fingers`, and the state a picture is drawn from (STATE_FIELDS)."""

    seq: int
    t: float  # world time
    t_ns: int  # host time.monotonic_ns() of that world time (see World.time_origin_ns)
    depths: list
    state: np.ndarray


@dataclass
class Touch:
    """A contact between the hand and something else."""

    hand_geom: str
    other_geom: str
    normal_force: float  # N
    depth: float  # penetration, m


class World:
    """A hand generated from hand_path doing task_name, its initial state drawn from seed."""

    def __init__(self, hand_path: str | Path, task_name: str, seed: int = 0,
                 timestep: float = 0.002):
        self.hand_path = Path(hand_path)
        self.task = tasks.get(task_name)(seed)
        self.seed = seed
        self.scene = build_scene(hand_path, self.task, timestep)
        self.model = self.scene.model
        self.data = mujoco.MjData(self.model)
        self.lock = threading.RLock()
        s, m = self.scene, self.model
        self.joint_names = s.joint_names
        self.motor_names = s.motor_names
        self.fingers = s.fingers
        # The fingers with a tactile pad (a finger without a tip, iso22's palm joint, has none).
        self.tactile_fingers = [p.finger for p in s.pads]
        self._gain = m.actuator_gainprm[s.actuators, 0].copy()
        self._bias = m.actuator_biasprm[s.actuators, :3].copy()
        self._torque_limit = np.where(m.actuator_forcelimited[s.actuators] > 0,
                                      np.abs(m.actuator_forcerange[s.actuators]).max(axis=1),
                                      1.0)
        self._ctrl_lo = m.actuator_ctrlrange[s.actuators, 0]
        self._ctrl_hi = m.actuator_ctrlrange[s.actuators, 1]
        self._ctrl_limited = m.actuator_ctrllimited[s.actuators] > 0
        self._hand_geom = np.isin(m.geom_bodyid, s.hand_bodies)
        self._judge_every = max(1, round(JUDGE_PERIOD_S / m.opt.timestep))
        self._steps = 0
        # Tactile exposures: the sensor is evaluated in the step whose start time crosses a
        # multiple of 1/TACTILE_HZ; that step's pads are kept for the tactile cameras, so a
        # camera thread that runs late still gets every exposure, stamped when it was made.
        self.exposures: deque[Exposure] = deque(maxlen=EXPOSURES_KEPT)
        self.exposed = threading.Condition(self.lock)
        self.time_origin_ns: int | None = None  # host time of world time 0, when it runs in real time
        self.exposing = False  # kept only once a camera asks (a few us a step otherwise spent)
        self._exposure_slot = -1
        self.torque_on = True
        self.hand = HandPose(self.scene)
        self.place_wrist(self.task.wrist_start(), self.hand.orientation(palm_up=self.task.palm_up))
        mujoco.mj_forward(self.model, self.data)
        self.task.reset(self)
        mujoco.mj_forward(self.model, self.data)

    # --- time --------------------------------------------------------------------------
    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    def step(self, n: int = 1) -> None:
        """Advance n physics steps; the task watches every JUDGE_PERIOD_S."""
        with self.lock:
            for _ in range(n):
                t = self.data.time
                mujoco.mj_step(self.model, self.data)
                self._steps += 1
                if self._steps % self._judge_every == 0:
                    self.task.observe(self)
                slot = int(t * TACTILE_HZ + 1e-6)
                if slot > self._exposure_slot and self.exposing:
                    self._exposure_slot = slot
                    self._expose(t)

    def _expose(self, t: float) -> None:
        origin = self.time_origin_ns
        t_ns = time.monotonic_ns() if origin is None else origin + int(t * 1e9)
        seq = self.exposures[-1].seq + 1 if self.exposures else 1
        self.exposures.append(Exposure(seq, t, t_ns, self._read_pads(self.tactile_fingers),
                                       self.state_vector()))
        self.exposed.notify_all()

    def state_vector(self) -> np.ndarray:
        """The state a picture is drawn from, STATE_FIELDS one after the other."""
        with self.lock:
            return np.concatenate([np.ravel(getattr(self.data, f)) for f in STATE_FIELDS])

    def exposures_after(self, seq: int, timeout: float) -> list[Exposure]:
        """The tactile exposures after seq (waiting up to timeout for one), oldest first."""
        with self.exposed:
            if not self.exposures or self.exposures[-1].seq <= seq:
                self.exposed.wait(timeout)
            return [e for e in self.exposures if e.seq > seq]

    def step_to(self, t_s: float) -> int:
        """Step until world time reaches t_s (to within half a step); the steps taken."""
        n = int(round((t_s - self.data.time) / self.model.opt.timestep))
        if n > 0:
            self.step(n)
        return max(n, 0)

    # --- inputs ------------------------------------------------------------------------
    def set_motor_goals(self, goals_rad) -> None:
        """Goal per motor (rad, TOML motor order), clipped to the actuator's range."""
        g = np.asarray(goals_rad, dtype=float)
        if g.shape != (len(self.motor_names),):
            raise ValueError("set_motor_goals: %d goals for %d motors"
                             % (g.size, len(self.motor_names)))
        g = np.where(self._ctrl_limited, np.clip(g, self._ctrl_lo, self._ctrl_hi), g)
        with self.lock:
            self.data.ctrl[self.scene.actuators] = g

    def set_torque(self, on: bool) -> None:
        """Servos on (hold their goals) or off (limp: no actuator force at all)."""
        a = self.scene.actuators
        with self.lock:
            self.torque_on = bool(on)
            self.model.actuator_gainprm[a, 0] = self._gain if on else 0.0
            self.model.actuator_biasprm[a, :3] = self._bias if on else 0.0

    def set_wrist(self, pos, quat) -> None:
        """Where the arm takes the wrist: position (m) and quaternion (w, x, y, z), world frame."""
        with self.lock:
            i = self.scene.wrist_mocap
            self.data.mocap_pos[i] = pos
            q = np.asarray(quat, dtype=float)
            self.data.mocap_quat[i] = q / np.linalg.norm(q)

    def place_wrist(self, pos, quat) -> None:
        """Put the wrist and its target at a pose at once (the start of an episode; call
        mujoco.mj_forward or step before reading poses)."""
        self.set_wrist(pos, quat)
        a = self.scene.wrist_qpos
        self.data.qpos[a:a + 3] = pos
        self.data.qpos[a + 3:a + 7] = self.data.mocap_quat[self.scene.wrist_mocap]

    # --- outputs -----------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        """Hand joint angles (rad), TOML joint order."""
        with self.lock:
            return self.data.qpos[self.scene.joint_qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        with self.lock:
            return self.data.qvel[self.scene.joint_dof].copy()

    def motor_goals(self) -> np.ndarray:
        with self.lock:
            return self.data.ctrl[self.scene.actuators].copy()

    def motor_positions(self) -> np.ndarray:
        """Where each motor is (rad, the goals' frame): its joint, or on a tendon hand the
        motor angle its tendon's length gives, A q + b."""
        with self.lock:
            pos = self.data.actuator_length[self.scene.actuators].copy()
        if self.scene.coupling_b is not None:
            pos += self.scene.coupling_b
        return pos

    def motor_loads(self) -> np.ndarray:
        """Actuator force over the servo's torque limit, signed: -1..1."""
        with self.lock:
            return self.data.actuator_force[self.scene.actuators] / self._torque_limit

    def wrist_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Where the wrist is (it lags its target when something holds it back)."""
        with self.lock:
            b = self.scene.wrist_body
            return self.data.xpos[b].copy(), self.data.xquat[b].copy()

    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            b = self.model.body(name).id
            return self.data.xpos[b].copy(), self.data.xquat[b].copy()

    def site_position(self, name: str) -> np.ndarray:
        with self.lock:
            return self.data.site(name).xpos.copy()

    @property
    def contacts(self) -> list[Touch]:
        """Every contact between the hand and anything else, now."""
        out = []
        force = np.empty(6)
        with self.lock:
            d, m = self.data, self.model
            for i in range(d.ncon):
                c = d.contact[i]
                g1, g2 = c.geom1, c.geom2
                h1, h2 = self._hand_geom[g1], self._hand_geom[g2]
                if h1 == h2:
                    continue
                hand, other = (g1, g2) if h1 else (g2, g1)
                mujoco.mj_contactForce(m, d, i, force)
                out.append(Touch(m.geom(hand).name, m.geom(other).name, float(force[0]),
                                 float(-c.dist)))
        return out

    def tactile_depth(self, finger: str) -> np.ndarray:
        """Penetration depth (m) per taxel of a fingertip pad, as a (rows, cols) image."""
        return self.tactile_depths([finger])[0]

    def tactile_depths(self, fingers) -> list[np.ndarray]:
        """tactile_depth of each finger, all from one instant (one physics state)."""
        with self.lock:
            return self._read_pads(fingers)

    def _read_pads(self, fingers) -> list[np.ndarray]:
        pads = [self._pad(f) for f in fingers]
        data = self.data.sensordata
        return [data[p.sensor_adr:p.sensor_adr + p.rows * p.cols][p.order].reshape(p.rows, p.cols)
                for p in pads]

    def pad_half_size(self, finger: str) -> tuple[float, float]:
        """Half length and half width (m) of a fingertip's tactile pad."""
        return self._pad(finger).half_size

    def _pad(self, finger):
        for p in self.scene.pads:
            if p.finger == finger:
                return p
        raise KeyError("no tactile pad on finger %r (pads: %s)"
                       % (finger, ", ".join(p.finger for p in self.scene.pads)))

    # --- the task ----------------------------------------------------------------------
    def task_state(self) -> dict:
        with self.lock:
            return self.task.state(self)

    def judge(self) -> str | None:
        """'success' or 'failure' once the task is decided, None while it runs."""
        return self.task.outcome
