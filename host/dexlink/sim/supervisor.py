"""The virtual board's USB side: one thread that owns the pty's master end and one
interpreter process per boot, and moves bytes between them:

    host <-> pty <-> supervisor <-> stdin/stdout (data)  <-> interpreter (agent, firmware)
                                 -> commands (code the REPL collected)
                                 -> faults   (records for vfaults, non-blocking)
                                 <- notes    (vnotes: running, booted, done, claim, reset)

Everything happens on this thread, in one select loop: the port (usbport.py), the
console (bridge.py: REPL or program) and the interpreter's pipes (interpreter.py). Other
threads hand it work through call(). A soft or hard reset ends the interpreter and
starts a fresh one, as a board restarts its VM; so does an interpreter that dies.
"""
from __future__ import annotations

import logging
import os
import queue
import selectors
import threading
from pathlib import Path

from dexlink.sim.bridge import ConsoleBridge
from dexlink.sim.errors import VirtualBoardError
from dexlink.sim.interpreter import Interpreter
from dexlink.sim.line import LineNoise
from dexlink.sim.usbport import UsbPort, nonblocking

log = logging.getLogger("dexlink.sim")

SOFT_REBOOT = b"MPY: soft reboot\r\n"  # what pyexec prints as it soft-resets
CALL_TIMEOUT_S = 10.0


class Supervisor:
    """Runs the board's USB side on its own thread; see the module's doc.

    on_boot(interp) is called at every boot, before the interpreter's output is read:
    the fault injector replays the physical faults there.
    """

    def __init__(self, fs_dir: Path, readonly: bool, usb: UsbPort, to_board: LineNoise,
                 to_host: LineNoise, notify):
        self._fs_dir = fs_dir
        self._readonly = readonly
        self._usb = usb
        self._notify = notify
        self.console = ConsoleBridge(usb, to_board, to_host, self.reset, notify)
        self.interp: Interpreter | None = None
        self.on_boot = None
        # A world attached (worldbridge.WorldBridge): every boot's interpreter gets the
        # world's pipes, handed to the bridge by world_boot(interp).
        self.world_boot = None
        self.stats = dict(boots=0, interpreter_deaths=0)
        self._micropython: Path | None = None
        self._calls: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._sel: selectors.BaseSelector | None = None
        self._wake_r = self._wake_w = -1
        self._stop = False

    # -- lifecycle (from the owner's thread) ------------------------------------------
    def start(self, micropython: Path) -> None:
        """Plug in and boot (boot.py, main.py); on failure, call close()."""
        if not micropython.exists():
            raise VirtualBoardError("no MicroPython interpreter at %s: run `make setup`"
                                    % micropython)
        self._micropython = micropython
        self._usb.open()
        self._wake_r, self._wake_w = os.pipe()
        nonblocking(self._wake_r)
        self._sel = selectors.DefaultSelector()
        self._watch(self._wake_r, self._on_wake)
        self.plug()
        self.boot("friendly")
        self._thread = threading.Thread(target=self._loop, name="vboard", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop = True  # for good: a closed board starts nothing more (see call)
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(5)
            self._thread = None
        if self._sel is not None:  # started (perhaps only partly: see start())
            if self.interp:
                self.interp.kill()
                self.interp = None
            self._sel.close()
            self._sel = None
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
        self._usb.close()

    def call(self, fn):
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
        if not done.wait(CALL_TIMEOUT_S):
            raise VirtualBoardError("the virtual board's supervisor did not answer")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    # -- on the supervisor thread -----------------------------------------------------
    def boot(self, mode: str) -> None:
        """Start a fresh interpreter: boot.py, and main.py when mode is 'friendly'."""
        old = self.interp
        if old:
            for fd in (old.stdout_r, old.notes_r, old.stdin_w):
                self._watch(fd)
            old.kill()
        self.interp = Interpreter(self._micropython, self._fs_dir, mode, self._readonly,
                                  world=self.world_boot is not None)
        if self.world_boot is not None:
            self.world_boot(self.interp)
        self.console.boot(self.interp, raw=mode == "raw")
        self._watch(self.interp.stdout_r, self.console.on_output)
        self._watch(self.interp.notes_r, self.console.on_notes)
        if self.on_boot is not None:
            self.on_boot(self.interp)
        self.stats["boots"] += 1
        self._notify()

    def reset(self, soft: bool = False) -> None:
        if soft:
            self._usb.send(SOFT_REBOOT)
            self.boot("raw" if self.console.repl.raw_mode else "friendly")
        else:
            self.boot("friendly")

    def send_fault(self, record: bytes) -> None:
        """A vfaults record to this boot's interpreter (none before start: on_boot replays)."""
        if self.interp is not None:
            self.interp.send_fault(record)

    def plug(self) -> None:
        if self._usb.plug():
            self._watch(self._usb.master, self._on_host)
            self._notify()

    def unplug(self) -> None:
        if self._usb.plugged:
            self._watch(self._usb.master)  # before its fd is closed (and its number reused)
            self._usb.unplug()
            self._notify()

    def _watch(self, fd, on_read=None, on_write=None) -> None:
        """Register fd for the callbacks given (none: not watched)."""
        events = ((selectors.EVENT_READ if on_read else 0)
                  | (selectors.EVENT_WRITE if on_write else 0))
        key = self._sel.get_map().get(fd)
        if not events:
            if key is not None:
                self._sel.unregister(fd)
        elif key is None:
            self._sel.register(fd, events, (on_read, on_write))
        elif key.events != events or key.data != (on_read, on_write):
            self._sel.modify(fd, events, (on_read, on_write))

    def _loop(self) -> None:
        console = self.console
        while not self._stop:
            # Like USB flow control: while the program's input pipe is full, stop reading
            # the port (the host's writes wait), and write as soon as the pipe has room.
            if self._usb.plugged:
                self._watch(self._usb.master, None if console.input_waiting else self._on_host,
                            self._usb.flush if self._usb.host_waiting else None)
            self._watch(self.interp.stdin_w, None,
                        console.flush_input if console.input_waiting else None)
            for key, events in self._sel.select(timeout=0.5):
                if self._sel.get_map().get(key.fd) is not key:
                    continue  # an fd of an interpreter that a reset just ended
                on_read, on_write = key.data
                if events & selectors.EVENT_WRITE and on_write:
                    on_write()
                # (re-checked: a callback may have changed what is watched)
                if (events & selectors.EVENT_READ and on_read
                        and self._sel.get_map().get(key.fd) is key):
                    on_read()
            if self.interp.exited() and not self._stop:
                console.drain_output()
                self.stats["interpreter_deaths"] += 1
                log.warning("virtual board: the interpreter exited (code %s); hard reset",
                            self.interp.proc.returncode)
                self.reset()

    def _on_wake(self) -> None:
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

    def _on_host(self) -> None:
        data = self._usb.read()
        if data:
            self.console.from_host(data)
