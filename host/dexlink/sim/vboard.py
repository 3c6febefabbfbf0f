"""The virtual board: the real MicroPython interpreter behind a pseudo-terminal.

`VirtualBoard` is the public face (docs/interfaces.md, "The virtual board") over small
parts, each with one job:

    usbport.UsbPort          the pty, its stable by-id style path, plug / unplug
    supervisor.Supervisor    the USB side's thread: select loop, one interpreter per boot
      bridge.ConsoleBridge     host bytes to the REPL or the program, Ctrl-C, notes
      interpreter.Interpreter  one boot's MicroPython process and its pipes
    faults.FaultInjector     inject() and operator(): records replayed at every boot
    line.LineNoise           noise on the data path, one per direction
    worldbridge.WorldBridge  (only with world=WorldOptions(...)) a MuJoCo world under the
                             rig, stepped on its own thread: `.world`

The simulated rig the firmware talks to runs inside the interpreter (board/, see
board/vphysics.py for where a physics world attaches).
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

from dexlink.sim import boardcode
from dexlink.sim.errors import VirtualBoardError
from dexlink.sim.faults import FAULTS, FaultInjector
from dexlink.sim.line import LineNoise
from dexlink.sim.supervisor import Supervisor
from dexlink.sim.usbport import UsbPort

__all__ = ["FAULTS", "MICROPYTHON", "VirtualBoard", "VirtualBoardError"]

# The interpreter a board starts with; read at start(), so a test may point it elsewhere.
MICROPYTHON = boardcode.MICROPYTHON


class VirtualBoard:
    """A MicroPython board on a pseudo-terminal; `.port` is the path to open.

    fs_dir: the board's filesystem (a directory; a temporary one if None, removed on close).
    seed: of the line noise. readonly: a filesystem that refuses writes.
    world: a worldbridge.WorldOptions to run the rig in a physics world (None: the
    kinematic servos and the scripted operator).
    Use as a context manager, or call start() and close().
    """

    def __init__(self, fs_dir: str | Path | None = None, seed: int = 0, readonly: bool = False,
                 world=None):
        self._own_fs = fs_dir is None
        self.readonly = readonly  # the board's filesystem refuses writes (as with USB storage on)
        self.fs_dir = Path(tempfile.mkdtemp(prefix="vboard-fs-") if fs_dir is None else fs_dir)
        self.fs_dir = self.fs_dir.resolve()  # the interpreter runs elsewhere: no relative paths
        try:
            self.fs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file in the way, no permission: the user's to fix
            raise VirtualBoardError("%s: cannot be the board's filesystem directory: %s"
                                    % (self.fs_dir, e.strerror or e)) from None
        self.to_board = LineNoise(seed)
        self.to_host = LineNoise(seed + 1)
        self._state_changed = threading.Condition()
        self._usb = UsbPort()
        self._supervisor = Supervisor(self.fs_dir, readonly, self._usb, self.to_board,
                                      self.to_host, self._notify)
        self._faults = FaultInjector(self._supervisor, self.to_board, self.to_host)
        self._world_bridge = None
        if world is not None:
            from dexlink.sim.worldbridge import WorldBridge  # MuJoCo: only when asked for
            self._world_bridge = WorldBridge(world)
            self._supervisor.world_boot = self._world_bridge.attach

    # -- lifecycle ------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        try:
            self._supervisor.start(MICROPYTHON)
            if self._world_bridge is not None:
                self._world_bridge.start()
        except BaseException:  # `with` does not call __exit__ when __enter__ fails
            self.close()
            raise
        return self

    def close(self):
        self._supervisor.close()
        if self._world_bridge is not None:
            self._world_bridge.close()
        if self._own_fs:
            shutil.rmtree(self.fs_dir, ignore_errors=True)

    # -- what the host sees ---------------------------------------------------------
    @property
    def world(self):
        """The physics world under the rig (dexlink.world.World: cameras, judge()), or None."""
        return self._world_bridge.world if self._world_bridge is not None else None

    @property
    def world_link(self):
        """The bridge to the world (its stats, started_at), or None."""
        return self._world_bridge

    @property
    def port(self) -> str | None:
        """The pty of the current plug-in (None while unplugged)."""
        return self._usb.port

    @property
    def stable_port(self) -> str | None:
        """Like /dev/serial/by-id/...: a symlink to the current pty, the same across
        unplug / replug (a replugged board gets a new pty, as a USB board may get a new
        ttyACM)."""
        return self._usb.stable_port

    @property
    def plugged(self) -> bool:
        return self._usb.plugged

    @property
    def stats(self) -> dict:
        """boots, bytes each way, host_overflow, interpreter_deaths, unplugs, unplugged_drops."""
        return dict(self._supervisor.stats, **self._usb.stats)

    @property
    def state(self) -> str:
        """'booting' (boot.py / main.py run), 'repl' (at a prompt) or 'running' (a command)."""
        return self._supervisor.console.state

    @property
    def interruptible(self) -> bool:
        """Whether a program runs that Ctrl-C would interrupt (it has not claimed the console)."""
        return self._supervisor.console.interruptible

    @property
    def claimed(self) -> bool:
        """Whether the running program owns the console (Ctrl-C is data)."""
        return self._supervisor.console.claimed

    @property
    def interpreter_pid(self) -> int | None:
        """The process id of this boot's interpreter (None between boots): for its memory."""
        interp = self._supervisor.interp
        return interp.pid if interp else None

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Wait until predicate(board) holds (re-checked at every note from the board)."""
        deadline = time.monotonic() + timeout
        with self._state_changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._state_changed.wait(min(left, 0.1))
        return True

    # -- controls -----------------------------------------------------------------------
    def reset(self, soft: bool = False):
        """Hard reset (a fresh interpreter running boot.py and main.py), or a soft one."""
        self._supervisor.call(lambda: self._supervisor.reset(soft))

    def unplug(self):
        """Pull the USB cable: the port goes away (the host's reads and writes fail, the
        stable path disappears) while the board runs on, powered from elsewhere; what it
        writes meanwhile is dropped, as USB-CDC drops writes with no host."""
        self._supervisor.call(self._supervisor.unplug)

    def replug(self):
        """Put the cable back: a new pty, linked from the same stable path."""
        self._supervisor.call(self._supervisor.plug)

    def inject(self, fault: str, joint: int | None = None, on: bool = True, *, ppm: int = 0,
               drop_rate: float = 0.0, garbage_rate: float = 0.0, flip_rate: float = 0.0,
               insert_rate: float = 0.0, direction: str = "both"):
        """Inject a fault into the running board (and every later boot, until cleared).

        magnet_missing (joint), servo_silent / servo_bad_checksum (motor index): on or off;
        clock: board clock error of `ppm` parts per million (+ fast);
        line_noise: bytes dropped / garbled / bit-flipped / inserted at these rates per
        byte, direction "to_board", "to_host" or "both" (rates 0 end it; what it did:
        .to_board.report(), .to_host.report()); reset, soft_reset;
        clear: remove every fault.
        """
        self._faults.inject(fault, joint, on, ppm=ppm, drop_rate=drop_rate,
                            garbage_rate=garbage_rate, flip_rate=flip_rate,
                            insert_rate=insert_rate, direction=direction)

    def operator(self, behaviour: str, finger: str | None = None):
        """Ask the simulated operator to do something, from now on (and after resets: it is
        a person, not part of the board).

        "zero": hold the zero pose (every joint at 0); "sweep": move `finger`'s joints (all
        joints when None) through their whole range, 0 -> max -> min -> 0, repeatedly,
        holding the others at zero; "demo": the grasp / pinch / gaiting script.
        """
        self._faults.operator(behaviour, finger)

    def _notify(self):
        with self._state_changed:
            self._state_changed.notify_all()
