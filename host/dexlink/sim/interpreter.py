"""One boot of the virtual board: a MicroPython process running the agent, and the
supervisor's ends of the pipes that connect it (agent.py describes the other ends):

    stdin   <- host bytes for the running program (non-blocking at both ends)
    stdout  -> what the board prints (stderr too)
    fd 3    <- commands: code the REPL collected, one record each (kind, u32 length, code)
    fd 4    <- fault records for vfaults (non-blocking: the firmware polls it)
    fd 5    -> notes (vnotes: running, booted, done, claim, reset...)

With a world attached (world=True), two more pipes, their numbers in the environment
(board/vworldlink.py): goal records from the board (world_goal_r) and state records to it
(world_state_w), both non-blocking at both ends.
"""
from __future__ import annotations

import logging
import os
import signal
import struct
import subprocess
from pathlib import Path

from dexlink.sim.boardcode import AGENT, BOARD_DIR, load_board_module
from dexlink.sim.errors import VirtualBoardError
from dexlink.sim.usbport import nonblocking

log = logging.getLogger("dexlink.sim")

vworldlink = load_board_module("vworldlink")  # the world link's layout, shared with the board
COMMAND_HEADER = "<BI"  # kind, then the code's length (agent.Commands reads it)
COMMAND_SINGLE = b"s"  # a friendly-REPL line: expression values are echoed
COMMAND_EXEC = b"x"  # a file's worth of code


class Interpreter:
    """The interpreter process of one boot and the supervisor's ends of its pipes."""

    def __init__(self, micropython: Path, fs_dir: Path, mode: str, readonly: bool,
                 world: bool = False):
        stdin_r, self.stdin_w = os.pipe()
        self.stdout_r, stdout_w = os.pipe()
        cmd_r, self._cmd_w = os.pipe()
        fault_r, self._fault_w = os.pipe()
        self.notes_r, note_w = os.pipe()
        for fd in (stdin_r, self.stdin_w, self.stdout_r, fault_r, self._fault_w, self.notes_r):
            nonblocking(fd)  # stdin_r and fault_r: the firmware polls them without blocking
        env = dict(os.environ, MICROPYPATH="%s:%s" % (fs_dir, BOARD_DIR))
        env.pop(vworldlink.WORLD_ENV, None)
        self.world_goal_r = self.world_state_w = -1
        board_ends = ()
        if world:
            state_r, self.world_state_w = os.pipe()
            self.world_goal_r, goal_w = os.pipe()
            board_ends = (state_r, goal_w)
            for fd in (state_r, self.world_state_w, self.world_goal_r, goal_w):
                nonblocking(fd)
            env[vworldlink.WORLD_ENV] = "%d,%d" % board_ends
        argv = [str(micropython), str(AGENT), mode, str(fs_dir), str(BOARD_DIR),
                str(cmd_r), str(fault_r), str(note_w), "ro" if readonly else "rw"]
        try:
            self.proc = subprocess.Popen(argv, stdin=stdin_r, stdout=stdout_w, stderr=stdout_w,
                                         pass_fds=(cmd_r, fault_r, note_w) + board_ends,
                                         cwd=fs_dir, env=env,
                                         start_new_session=True)
        except OSError as e:
            for fd in (stdin_r, self.stdin_w, self.stdout_r, stdout_w, cmd_r, self._cmd_w,
                       fault_r, self._fault_w, self.notes_r, note_w) + board_ends:
                os.close(fd)  # no process to hand them to
            self._close_world()
            raise VirtualBoardError("cannot start the MicroPython interpreter %s: %s"
                                    % (micropython, e)) from None
        for fd in (stdout_w, cmd_r, fault_r, note_w) + board_ends:
            os.close(fd)
        favour_board(self.proc.pid)
        self._stdin_r = stdin_r  # kept: after a program ends, its unread input goes to the REPL

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for fd in (self._stdin_r, self.stdin_w, self.stdout_r, self._cmd_w, self._fault_w,
                   self.notes_r):
            os.close(fd)
        self._close_world()

    def _close_world(self) -> None:
        for fd in (self.world_goal_r, self.world_state_w):
            if fd >= 0:
                os.close(fd)
        self.world_goal_r = self.world_state_w = -1

    # -- to the interpreter -------------------------------------------------------------
    def run(self, code: str, single: bool) -> None:
        """Hand the agent code to run (it waits for it: the write blocks until taken)."""
        data = code.encode()
        kind = COMMAND_SINGLE if single else COMMAND_EXEC
        os.write(self._cmd_w, struct.pack(COMMAND_HEADER, kind[0], len(data)) + data)

    def write_input(self, data) -> int:
        """Write to the program's stdin: bytes taken (0 while the pipe is full)."""
        try:
            return os.write(self.stdin_w, data)
        except BlockingIOError:
            return 0
        except OSError:  # the interpreter is gone (the supervisor restarts it): drop them
            return len(data)

    def unread_input(self) -> bytes:
        """Take back what the program left unread on its stdin."""
        chunks = []
        while True:
            try:
                data = os.read(self._stdin_r, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT raises KeyboardInterrupt in the program, as on a board."""
        os.kill(self.proc.pid, signal.SIGINT)

    def send_fault(self, record: bytes) -> None:
        """A vfaults record for the firmware's next poll (never blocks)."""
        try:
            os.write(self._fault_w, record)
        except BlockingIOError:
            log.warning("fault channel full: injection lost (the firmware never polls it?)")

    # -- from the interpreter -----------------------------------------------------------
    def read_output(self) -> bytes:
        """What the board printed since the last read (b"" when nothing waits)."""
        try:
            return os.read(self.stdout_r, 65536)
        except BlockingIOError:
            return b""

    def read_notes(self) -> bytes:
        try:
            return os.read(self.notes_r, 65536)
        except BlockingIOError:
            return b""



BOARD_FIFO_PRIORITY = 1  # the lowest real-time priority: above every ordinary task, below the kernel's
BOARD_NICE = -5  # the fallback where real-time scheduling is refused


def favour_board(pid: int) -> None:
    """Schedule the interpreter ahead of the host's threads where the host may: a real
    board's loop owns its core, and the virtual one's overruns whenever it wakes to find
    both cores taken by the host's recording, cameras or world. Measured on a 2-core
    machine (bench/world.py, 10 s, recording): 1-3 % of cycles overran at normal priority
    with or without the world, nice -5 changed nothing (the interpreter still waited
    ~68 ms a second for a core), SCHED_FIFO brought them to 0.03-0.06 %. The loop sleeps
    between cycles (a quarter of a core at 1 kHz); a program spinning on the board holds
    one core, less the share the kernel keeps for ordinary tasks. Where neither is allowed (an ordinary
    user), it runs as it is: the loop's overrun count says what that costs."""
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(BOARD_FIFO_PRIORITY))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, pid, BOARD_NICE)
    except (AttributeError, OSError):
        pass
