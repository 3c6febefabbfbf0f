"""The virtual board: the real MicroPython interpreter behind a pseudo-terminal.

A supervisor thread plays the board's USB side. It owns the pseudo-terminal's master end
and one interpreter process per boot (the agent, `agent.py`), connected by pipes:

    host <-> pty <-> supervisor <-> stdin/stdout (data)  <-> interpreter (agent, firmware)
                                 -> commands (fd 3: code the REPL collected)
                                 -> faults   (fd 4: records for vfaults, non-blocking)
                                 <- notes    (fd 5: running, booted, done, claim, reset)

While a program runs (boot.py, main.py, or a REPL command), host bytes go to its stdin
and Ctrl-C becomes SIGINT, unless the program claimed the console (then Ctrl-C is data).
At the REPL the supervisor answers like pyexec (see repl.py). A soft or hard reset ends
the interpreter and starts a fresh one, as a board restarts its VM.
"""
from __future__ import annotations

import errno
import fcntl
import importlib.util
import logging
import os
import queue
import re
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

from dexlink.sim.line import LineNoise
from dexlink.sim.repl import BUSY, Repl

log = logging.getLogger("dexlink.sim")

HERE = Path(__file__).resolve().parent
BOARD_DIR = HERE / "board"
AGENT = HERE / "agent.py"
MICROPYTHON = Path(sys.executable).parent / "micropython"
HOST_BUFFER_LIMIT = 64 * 1024  # bytes held for a host that does not read (then dropped)
SOFT_REBOOT = b"MPY: soft reboot\r\n"
LONE_LF = re.compile(rb"(?<!\r)\n")


def _load_vfaults():
    """The board's vfaults module, loaded as a plain module: one record format, one file."""
    spec = importlib.util.spec_from_file_location("dexlink.sim._vfaults", BOARD_DIR / "vfaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vfaults = _load_vfaults()

DEVICE_FAULTS = {
    "magnet_missing": vfaults.KIND_MAGNET_MISSING,
    "servo_silent": vfaults.KIND_SERVO_SILENT,
    "servo_bad_checksum": vfaults.KIND_SERVO_BAD_CHECKSUM,
}
FAULTS = tuple(DEVICE_FAULTS) + ("clock", "line_noise", "reset", "soft_reset", "clear")


class VirtualBoardError(RuntimeError):
    """The virtual board could not start or do what was asked."""


def _nonblocking(fd):
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


class _Interpreter:
    """One boot: the interpreter process and the supervisor's ends of its pipes."""

    def __init__(self, fs_dir: Path, mode: str, readonly: bool):
        stdin_r, self.stdin_w = os.pipe()
        self.stdout_r, stdout_w = os.pipe()
        cmd_r, self.cmd_w = os.pipe()
        fault_r, self.fault_w = os.pipe()
        self.notes_r, note_w = os.pipe()
        for fd in (stdin_r, self.stdin_w, self.stdout_r, fault_r, self.fault_w, self.notes_r):
            _nonblocking(fd)  # stdin_r and fault_r: the firmware polls them without blocking
        env = dict(os.environ, MICROPYPATH="%s:%s" % (fs_dir, BOARD_DIR))
        argv = [str(MICROPYTHON), str(AGENT), mode, str(fs_dir), str(BOARD_DIR),
                str(cmd_r), str(fault_r), str(note_w), "ro" if readonly else "rw"]
        try:
            self.proc = subprocess.Popen(argv, stdin=stdin_r, stdout=stdout_w, stderr=stdout_w,
                                         pass_fds=(cmd_r, fault_r, note_w), cwd=fs_dir, env=env,
                                         start_new_session=True)
        except OSError as e:
            for fd in (stdin_r, self.stdin_w, self.stdout_r, stdout_w, cmd_r, self.cmd_w,
                       fault_r, self.fault_w, self.notes_r, note_w):
                os.close(fd)  # no process to hand them to
            raise VirtualBoardError("cannot start the MicroPython interpreter %s: %s"
                                    % (MICROPYTHON, e)) from None
        for fd in (stdout_w, cmd_r, fault_r, note_w):
            os.close(fd)
        self.stdin_r = stdin_r  # kept: after a program ends, its unread input goes to the REPL
        self.sigint_ok = False
        self.claimed = False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for fd in (self.stdin_r, self.stdin_w, self.stdout_r, self.cmd_w, self.fault_w,
                   self.notes_r):
            os.close(fd)


class VirtualBoard:
    """A MicroPython board on a pseudo-terminal; `.port` is the path to open.

    fs_dir: the board's filesystem (a directory; a temporary one if None, removed on close).
    seed: of the line noise. readonly: a filesystem that refuses writes.
    Use as a context manager, or call start() and close().
    """

    def __init__(self, fs_dir: str | Path | None = None, seed: int = 0, readonly: bool = False):
        self._own_fs = fs_dir is None
        self.readonly = readonly  # the board's filesystem refuses writes (as with USB storage on)
        self.fs_dir = Path(tempfile.mkdtemp(prefix="vboard-fs-") if fs_dir is None else fs_dir)
        self.fs_dir = self.fs_dir.resolve()  # the interpreter runs elsewhere: no relative paths
        try:
            self.fs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file in the way, no permission: the user's to fix
            raise VirtualBoardError("%s: cannot be the board's filesystem directory: %s"
                                    % (self.fs_dir, e.strerror or e)) from None
        self.port: str | None = None  # the pty of the current plug-in (None while unplugged)
        # Like /dev/serial/by-id/...: a symlink to the current pty, the same across unplug /
        # replug (a replugged board gets a new pty, as a USB board may get a new ttyACM).
        self.stable_port: str | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._usb_dir: str | None = None
        self.to_board = LineNoise(seed)
        self.to_host = LineNoise(seed + 1)
        self.stats = dict(boots=0, bytes_from_host=0, bytes_to_host=0, host_overflow=0,
                          interpreter_deaths=0, unplugs=0, unplugged_drops=0)
        self._faults: dict[tuple[int, int], int] = {}
        self._clock_ppm = 0
        self._operator: bytes | None = None  # the operator's last request (a vfaults record)
        self._calls: queue.Queue = queue.Queue()
        self._out = bytearray()
        self._pending_in = bytearray()  # host bytes for the program, waiting for pipe room
        self._notes = bytearray()
        self._interp: _Interpreter | None = None
        self._thread: threading.Thread | None = None
        self._sel: selectors.BaseSelector | None = None
        self._stop = False
        self._booting = False
        self._state_changed = threading.Condition()
        self._repl = Repl(self._send, "MicroPython on a virtual board (dexlink)")

    # -- lifecycle ------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        try:
            if not MICROPYTHON.exists():
                raise VirtualBoardError("no MicroPython interpreter at %s: run `make setup`"
                                        % MICROPYTHON)
            self._usb_dir = tempfile.mkdtemp(prefix="vboard-usb-")
            self.stable_port = os.path.join(self._usb_dir, "usb-dexlink_virtual_board-if00")
            self._wake_r, self._wake_w = os.pipe()
            _nonblocking(self._wake_r)
            self._sel = selectors.DefaultSelector()
            self._plug()
            self._watch(self._wake_r, self._on_wake)
            self._boot("friendly")
        except BaseException:  # `with` does not call __exit__ when __enter__ fails
            self.close()
            raise
        self._thread = threading.Thread(target=self._loop, name="vboard", daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._stop = True  # for good: a closed board starts nothing more (see _call)
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(5)
            self._thread = None
        if self._sel is not None:  # started (perhaps only partly: see start())
            if self._interp:
                self._interp.kill()
                self._interp = None
            self._unplug_port()
            self._sel.close()
            self._sel = None
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
        if self._usb_dir:
            shutil.rmtree(self._usb_dir, ignore_errors=True)
            self._usb_dir = None
        if self._own_fs:
            shutil.rmtree(self.fs_dir, ignore_errors=True)

    # -- public controls --------------------------------------------------------------
    @property
    def state(self) -> str:
        """'booting' (boot.py / main.py run), 'repl' (at a prompt) or 'running' (a command)."""
        if self._repl.state != BUSY:
            return "repl"
        return "booting" if self._booting else "running"

    @property
    def interruptible(self) -> bool:
        """Whether a program runs that Ctrl-C would interrupt (it has not claimed the console)."""
        interp = self._interp
        return bool(interp and self._repl.state == BUSY and interp.sigint_ok and not interp.claimed)

    @property
    def claimed(self) -> bool:
        """Whether the running program owns the console (Ctrl-C is data)."""
        return bool(self._interp and self._interp.claimed)

    @property
    def interpreter_pid(self) -> int | None:
        """The process id of this boot's interpreter (None between boots): for its memory."""
        interp = self._interp
        return interp.proc.pid if interp else None

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

    def reset(self, soft: bool = False):
        """Hard reset (a fresh interpreter running boot.py and main.py), or a soft one."""
        self._call(lambda: self._soft_reset() if soft else self._hard_reset())

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def unplug(self):
        """Pull the USB cable: the port goes away (the host's reads and writes fail, the
        stable path disappears) while the board runs on, powered from elsewhere; what it
        writes meanwhile is dropped, as USB-CDC drops writes with no host."""
        self._call(self._unplug)

    def replug(self):
        """Put the cable back: a new pty, linked from the same stable path."""
        self._call(self._plug)

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
        if fault not in FAULTS:
            raise ValueError("unknown fault %r (faults: %s)" % (fault, ", ".join(FAULTS)))
        if fault in DEVICE_FAULTS:
            if joint is None or not 0 <= joint < vfaults.MAX_JOINTS:
                raise ValueError("%s needs joint=0..%d" % (fault, vfaults.MAX_JOINTS - 1))
            self._call(lambda: self._device_fault(DEVICE_FAULTS[fault], joint, int(bool(on))))
        elif fault == "clock":
            self._call(lambda: self._set_clock(int(ppm)))
        elif fault == "line_noise":
            if direction not in ("to_board", "to_host", "both"):
                raise ValueError("line_noise direction must be to_board, to_host or both")
            for name in ("to_board", "to_host"):
                if direction in (name, "both"):
                    getattr(self, name).set(drop_rate, garbage_rate, flip_rate, insert_rate)
        elif fault == "clear":
            self.to_board.set()
            self.to_host.set()
            self._call(self._clear_faults)
        else:
            self.reset(soft=fault == "soft_reset")

    def operator(self, behaviour: str, finger: str | None = None):
        """Ask the simulated operator to do something, from now on (and after resets: it is
        a person, not part of the board).

        "zero": hold the zero pose (every joint at 0); "sweep": move `finger`'s joints (all
        joints when None) through their whole range, 0 -> max -> min -> 0, repeatedly,
        holding the others at zero; "demo": the grasp / pinch / gaiting script.
        """
        if behaviour not in vfaults.OPERATOR_BEHAVIOURS:
            raise ValueError("unknown operator behaviour %r (behaviours: %s)"
                             % (behaviour, ", ".join(vfaults.OPERATOR_BEHAVIOURS)))
        if finger is not None and finger not in vfaults.OPERATOR_FINGERS:
            raise ValueError("unknown finger %r (fingers: %s)"
                             % (finger, ", ".join(vfaults.OPERATOR_FINGERS)))
        which = vfaults.ALL_FINGERS if finger is None else vfaults.OPERATOR_FINGERS.index(finger)
        record = vfaults.encode(vfaults.KIND_OPERATOR, vfaults.OPERATOR_BEHAVIOURS.index(behaviour),
                                0, which)
        self._call(lambda: self._set_operator(record))

    def _set_operator(self, record):
        self._operator = record
        self._send_fault(record)

    # -- work on the supervisor thread ------------------------------------------------
    def _call(self, fn):
        """Run fn on the supervisor thread and return its result (or raise its error)."""
        if self._stop:  # a reset or replug now would start what nothing ends
            raise VirtualBoardError("the virtual board is closed")
        if threading.current_thread() is self._thread or self._thread is None:
            return fn()
        done = threading.Event()
        box = {}

        def job():
            try:
                box["value"] = fn()
            except BaseException as e:  # handed back to the caller
                box["error"] = e
            done.set()

        self._calls.put(job)
        os.write(self._wake_w, b"x")
        if not done.wait(10):
            raise VirtualBoardError("the virtual board's supervisor did not answer")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _plug(self):
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # a USB serial port: no echo, no line discipline
        _nonblocking(master)
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        link = self.stable_port + ".new"
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(self.port, link)
        os.replace(link, self.stable_port)  # the path appears at once, complete
        self._watch(master, self._on_host)
        self._notify()

    def _unplug(self):
        if self._master is None:
            return
        self._unplug_port()
        self.stats["unplugs"] += 1
        self._notify()

    def _unplug_port(self):
        """Close both ends of the pty: the host's open port hangs up (EIO)."""
        if self._master is None:
            return
        if self.stable_port and os.path.lexists(self.stable_port):
            os.unlink(self.stable_port)
        self._watch(self._master)
        for fd in (self._master, self._slave):
            os.close(fd)
        self._master = self._slave = None
        self.port = None
        self._out.clear()  # bytes the host had not read yet go with the cable

    def _device_fault(self, kind, index, flag):
        self._faults[(kind, index)] = flag
        self._send_fault(vfaults.encode(kind, index, flag, 0))

    def _set_clock(self, ppm):
        self._clock_ppm = ppm
        self._send_fault(vfaults.encode(vfaults.KIND_CLOCK_PPM, 0, 0, ppm))

    def _clear_faults(self):
        self._faults.clear()
        self._clock_ppm = 0
        self._send_fault(vfaults.encode(vfaults.KIND_CLEAR))

    def _send_fault(self, record):
        if self._interp is None:
            return  # not started: _boot replays the faults
        try:
            os.write(self._interp.fault_w, record)
        except BlockingIOError:
            log.warning("fault channel full: injection lost (the firmware never polls it?)")

    def _boot(self, mode):
        """Start a fresh interpreter: boot.py, and main.py when mode is 'friendly'."""
        if self._interp:
            for fd in (self._interp.stdout_r, self._interp.notes_r, self._interp.stdin_w):
                self._watch(fd)
            self._interp.kill()
        self._notes.clear()
        self._pending_in.clear()  # input in flight is lost in a reset, as on a board
        self._booting = True
        self._repl.state = BUSY
        self._repl.raw_mode = mode == "raw"
        self._interp = _Interpreter(self.fs_dir, mode, self.readonly)
        self._watch(self._interp.stdout_r, self._on_board_output)
        self._watch(self._interp.notes_r, self._on_notes)
        # Physical faults outlive a reset: replay them into the new interpreter.
        for (kind, index), flag in self._faults.items():
            self._send_fault(vfaults.encode(kind, index, flag, 0))
        if self._clock_ppm:
            self._send_fault(vfaults.encode(vfaults.KIND_CLOCK_PPM, 0, 0, self._clock_ppm))
        if self._operator:
            self._send_fault(self._operator)
        self.stats["boots"] += 1
        self._notify()

    def _soft_reset(self):
        self._send(SOFT_REBOOT)
        self._boot("raw" if self._repl.raw_mode else "friendly")

    def _hard_reset(self):
        self._boot("friendly")

    def _watch(self, fd, on_read=None, on_write=None):
        """Register fd for the callbacks given (none: not watched)."""
        events = (selectors.EVENT_READ if on_read else 0) | (selectors.EVENT_WRITE if on_write else 0)
        key = self._sel.get_map().get(fd)
        if not events:
            if key is not None:
                self._sel.unregister(fd)
        elif key is None:
            self._sel.register(fd, events, (on_read, on_write))
        elif key.events != events or key.data != (on_read, on_write):
            self._sel.modify(fd, events, (on_read, on_write))

    def _loop(self):
        while not self._stop:
            # Like USB flow control: while the program's input pipe is full, stop reading
            # the port (the host's writes wait), and write as soon as the pipe has room.
            if self._master is not None:
                self._watch(self._master, None if self._pending_in else self._on_host,
                            self._flush_host if self._out else None)
            self._watch(self._interp.stdin_w, None,
                        self._flush_to_program if self._pending_in else None)
            for key, events in self._sel.select(timeout=0.5):
                if self._sel.get_map().get(key.fd) is not key:
                    continue  # an fd of an interpreter that a reset just ended
                on_read, on_write = key.data
                if events & selectors.EVENT_WRITE and on_write:
                    on_write()
                if events & selectors.EVENT_READ and on_read and self._sel.get_map().get(key.fd) is key:
                    on_read()
            if self._interp.proc.poll() is not None and not self._stop:
                self._drain_board_output()
                self.stats["interpreter_deaths"] += 1
                log.warning("virtual board: the interpreter exited (code %s); hard reset",
                            self._interp.proc.returncode)
                self._hard_reset()

    def _on_wake(self):
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        while True:
            try:
                job = self._calls.get_nowait()
            except queue.Empty:
                return
            job()

    # -- host -> board ----------------------------------------------------------------
    def _on_host(self):
        if self._master is None:
            return
        try:
            data = os.read(self._master, 65536)
        except (BlockingIOError, OSError):
            return
        self.stats["bytes_from_host"] += len(data)
        self._from_host(data)

    def _from_host(self, data: bytes):
        i = 0
        while i < len(data):
            if self._repl.state != BUSY:
                reply = self._repl.feed(data[i])
                i += 1
                if reply is not None:
                    self._do(reply)
                continue
            interp = self._interp
            if interp.claimed:
                self._to_program(data[i:])
                return
            j = data.find(b"\x03", i)
            if j < 0:
                self._to_program(data[i:])
                return
            self._to_program(data[i:j])
            if interp.sigint_ok:
                os.kill(interp.proc.pid, signal.SIGINT)  # KeyboardInterrupt, as on a board
            i = j + 1

    def _do(self, reply):
        if reply.action == "soft_reset":
            self._soft_reset()
            return
        code = reply.code.encode()
        record = struct.pack("<BI", ord("s" if reply.kind == "single" else "x"), len(code)) + code
        self._booting = False
        self._interp.sigint_ok = False  # until the agent says it runs the command
        os.write(self._interp.cmd_w, record)  # blocking: the agent is waiting for it
        self._notify()

    def _to_program(self, data: bytes):
        self._pending_in += self.to_board.apply(data)
        if self._pending_in:
            self._flush_to_program()

    def _flush_to_program(self):
        try:
            n = os.write(self._interp.stdin_w, self._pending_in)
        except BlockingIOError:
            return
        except OSError:  # the interpreter is gone; the loop restarts it
            n = len(self._pending_in)
        del self._pending_in[:n]

    # -- board -> host ----------------------------------------------------------------
    def _on_board_output(self):
        try:
            data = os.read(self._interp.stdout_r, 65536)
        except BlockingIOError:
            return
        if data:
            self._from_board(data)

    def _drain_board_output(self):
        while True:
            try:
                data = os.read(self._interp.stdout_r, 65536)
            except BlockingIOError:
                return
            if not data:
                return
            self._from_board(data)

    def _from_board(self, data: bytes):
        if self._interp.claimed:
            data = self.to_host.apply(data)
        else:  # text from print(): a board's stdout turns \n into \r\n
            data = LONE_LF.sub(b"\r\n", data)
        self._send(data)

    def _send(self, data: bytes):
        if self._master is None:
            self.stats["unplugged_drops"] += len(data)  # no host: USB-CDC drops the write
            return
        if len(self._out) + len(data) > HOST_BUFFER_LIMIT:
            self.stats["host_overflow"] += len(data)  # nobody reads the port: like a full USB FIFO
            return
        self._out += data
        self._flush_host()

    def _flush_host(self):
        while self._out and self._master is not None:
            try:
                n = os.write(self._master, self._out)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                raise
            self.stats["bytes_to_host"] += n
            del self._out[:n]

    # -- notes from the interpreter ---------------------------------------------------
    def _on_notes(self):
        try:
            data = os.read(self._interp.notes_r, 65536)
        except BlockingIOError:
            return
        self._notes += data
        while len(self._notes) >= 3:
            n = self._notes[1] | (self._notes[2] << 8)
            if len(self._notes) < 3 + n:
                return
            kind = chr(self._notes[0])
            text = bytes(self._notes[3:3 + n]).decode("utf-8", "replace")
            del self._notes[:3 + n]
            # Everything the program printed before this note is already in its stdout
            # pipe: forward it first, so the REPL's markers come after the output.
            self._drain_board_output()
            self._on_note(kind, text)
            self._notify()
            if kind in "HS":
                return  # a fresh interpreter: what the old one said is moot

    def _on_note(self, kind, text):
        interp = self._interp
        if kind == "P":
            interp.sigint_ok = True
            if text:
                self._repl.banner = text
        elif kind == "N":
            self._repl.banner = text
        elif kind == "C":
            interp.claimed = True
            # Acknowledged once marked: every Ctrl-C turned into SIGINT before this point
            # has been sent, so the claimer knows none can interrupt it afterwards.
            self._send_fault(vfaults.encode(vfaults.KIND_CLAIMED, 0, 0, int(text or 0)))
        elif kind == "R":
            interp.claimed = False
        elif kind in "BD":
            if self._repl.state != BUSY:
                return  # a repeated note (a Ctrl-C raced the end of the command)
            interp.claimed = False
            interp.sigint_ok = False
            self._booting = False
            if kind == "B":
                self._repl.enter()
            else:
                self._repl.finished(text)
            self._replay_unread_input()
        elif kind == "H":
            self._hard_reset()
        elif kind == "S":
            self._soft_reset()

    def _replay_unread_input(self):
        """Input the program left unread belongs to the REPL, as a board's stdin buffer."""
        chunks = []
        while True:
            try:
                data = os.read(self._interp.stdin_r, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        chunks.append(bytes(self._pending_in))
        self._pending_in.clear()
        data = b"".join(chunks)
        if data:
            self._from_host(data)

    def _notify(self):
        with self._state_changed:
            self._state_changed.notify_all()
