"""A physics world under the virtual board: the real firmware drives a MuJoCo hand.

The world (dexlink.world.World) and its operator (dexlink.world.operator.Operator) run
on the host, on this module's thread; the simulated rig inside the interpreter talks to
them through two pipes per boot (board/vworldlink.py has the records' layout):

    firmware -> servo buses -> WorldPhysics --goal record-->  WorldBridge -> World goals
    encoders <- WorldOperator <--state record (positions, loads, operator's angles)--

The thread steps the world in real time (mj_step releases the GIL), runs the operator on
what it sees (every OPERATOR_PERIOD_S), sends the state after every step and applies the
goals the board sent.
The episode's clock starts when the board first turns a servo's torque on (the operator
starts the task when the hand is powered); until then the world waits, its state still
sent, so the encoders read the operator's starting pose.

Units: the board speaks servo-frame cdeg (0 = servo centre); the world's motors speak
rad in the hand's motor frame. motor = direction * (servo - offset_cdeg), from the
compiled config of the hand and the board the firmware is flashed for.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dexlink import hwconfig
from dexlink.resources import hands_dir
from dexlink.sim.boardcode import load_board_module
from dexlink.sim.errors import VirtualBoardError

log = logging.getLogger("dexlink.sim")
link = load_board_module("vworldlink")

MAX_CATCH_UP_STEPS = 25  # a late thread steps at most this much at once (50 ms at 2 ms)
# The operator sees and moves at 100 Hz, as in dexlink.world.operator.teleoperate: a
# person's hand and arm change little in 10 ms, and the operator's Python (about 0.2 ms a
# call here) at every 2 ms step held the interpreter lock for a tenth of each second.
OPERATOR_PERIOD_S = 0.01
IDLE_PERIOD_S = 0.01  # the state's period before the episode starts


@dataclass
class WorldOptions:
    """The world a virtual board runs in: a task of dexlink.world.tasks, its seed, the
    operator's skill (0..1), the hand (a hand file; iso16 when None) and the board file
    the firmware is flashed for (its servo directions and offsets)."""

    task: str
    seed: int = 0
    skill: float = 0.8
    hand: str | Path | None = None
    board: str = "virtual"
    timestep: float = 0.002


class WorldBridge:
    """Owns the World and its operator; one thread; attach(interp) at every boot."""

    def __init__(self, options: WorldOptions):
        from dexlink.world.operator import Operator  # MuJoCo only for boards with a world
        from dexlink.world.world import World
        hand = Path(options.hand) if options.hand is not None else hands_dir() / "iso16.toml"
        self.options = options
        cfg = hwconfig.compile_config(hand, options.board)
        self.world = World(hand, options.task, options.seed, options.timestep)
        self.operator = Operator(self.world, options.skill, options.seed)
        motors, joints = cfg["motors"], cfg["joints"]
        if len(motors) > link.MAX_MOTORS or len(joints) > link.MAX_JOINTS:
            raise VirtualBoardError("%s: more motors or joints than the world link carries"
                                    % hand)
        try:  # the config's motor k is the world's motor self._motor[k] (by name)
            self._motor = np.array([self.world.motor_names.index(m["name"]) for m in motors])
            self._joint = np.array([self.world.joint_names.index(j["name"]) for j in joints])
        except ValueError as e:
            raise VirtualBoardError("%s: the config's motors / joints are not the world's: %s"
                                    % (hand, e)) from None
        self._direction = np.array([m["direction"] for m in motors], dtype=float)
        self._offset = np.array([m["offset_cdeg"] for m in motors], dtype=float)
        self._goals_rad = self.world.motor_goals()
        self._operator_every = max(1, round(OPERATOR_PERIOD_S / self.world.timestep))
        self._torque_mask = 0
        self.world.set_torque(False)  # limp until the board turns torque on
        self.started_at: float | None = None  # monotonic time the episode began
        self.stats = dict(goal_records=0, state_records=0, states_dropped=0, steps=0)
        self._lock = threading.Lock()  # the pipes: swapped by attach on the supervisor's thread
        self._goal_r = self._state_w = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def attach(self, interp) -> None:
        """This boot's pipes (the supervisor's thread, at every boot): copies of its fds,
        so the interpreter's end of life cannot close them under this thread."""
        goal_r, state_w = os.dup(interp.world_goal_r), os.dup(interp.world_state_w)
        with self._lock:
            self._close_pipes()
            self._goal_r, self._state_w = goal_r, state_w

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vboard-world", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            self._close_pipes()

    def _close_pipes(self) -> None:
        for fd in (self._goal_r, self._state_w):
            if fd >= 0:
                os.close(fd)
        self._goal_r = self._state_w = -1

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        world = self.world
        cmd = None
        try:
            while not self._stop.is_set():
                self._take_goals()
                if self.started_at is None:
                    self._send_state(world.time)
                    self._stop.wait(IDLE_PERIOD_S)
                    continue
                due = time.monotonic() - self.started_at
                steps = min(int((due - world.time) / world.timestep), MAX_CATCH_UP_STEPS)
                if steps <= 0:
                    self._stop.wait(world.time + world.timestep - due)
                    continue
                for _ in range(steps):
                    if self.stats["steps"] % self._operator_every == 0:
                        cmd = self.operator.command(world.time, world.task_state())
                        world.set_wrist(cmd.wrist_pos, cmd.wrist_quat)
                    world.step()
                    self.stats["steps"] += 1
                    self._send_state(world.time, cmd.joints_deg)
        except Exception:  # the board runs on without its world; say why it stopped
            log.exception("virtual board: the world thread stopped")

    def _take_goals(self) -> None:
        with self._lock:
            if self._goal_r < 0:
                return
            try:
                data = os.read(self._goal_r, link.GOAL_SIZE * 64)
            except (BlockingIOError, OSError):
                return
        if len(data) < link.GOAL_SIZE:
            return
        last = data[len(data) // link.GOAL_SIZE * link.GOAL_SIZE - link.GOAL_SIZE:]
        mask, goals = link.decode_goals(last)
        self.stats["goal_records"] += len(data) // link.GOAL_SIZE
        servo = np.array(goals[:len(self._motor)], dtype=float)
        self._goals_rad[self._motor] = np.radians(self._direction * (servo - self._offset) / 100)
        self.world.set_motor_goals(self._goals_rad)
        if bool(mask) != bool(self._torque_mask):
            self.world.set_torque(bool(mask))
        self._torque_mask = mask
        if mask and self.started_at is None:
            self.started_at = time.monotonic()
            # The world's clock on the host's: what its tactile exposures are stamped with.
            self.world.time_origin_ns = int((self.started_at - self.world.time) * 1e9)

    def _send_state(self, t: float, exo_deg=None) -> None:
        if exo_deg is None:
            exo_deg = self.operator.command(t, self.world.task_state()).joints_deg
        motor_cdeg = np.degrees(self.world.motor_positions()[self._motor]) * 100
        servo_cdeg = np.rint(self._direction * motor_cdeg + self._offset)
        load = np.rint(np.clip(self._direction * self.world.motor_loads()[self._motor],
                               -1, 1) * 1000)
        exo = np.rint(np.asarray(exo_deg)[self._joint] * 100)
        record = link.encode_state(servo_cdeg.astype(int), load.astype(int), exo.astype(int))
        with self._lock:
            if self._state_w < 0:
                return
            try:
                os.write(self._state_w, record)
                self.stats["state_records"] += 1
            except (BlockingIOError, OSError):  # full (the board is not reading) or gone
                self.stats["states_dropped"] += 1
