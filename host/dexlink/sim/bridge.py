"""The virtual board's console, between the host's port and the interpreter of this boot.

At a prompt, host bytes go to the REPL (repl.py), which answers like pyexec and hands the
code it collected to the interpreter. While a program runs (boot.py, main.py, a REPL
command) they go to its stdin, and Ctrl-C becomes SIGINT unless the program claimed the
console (then Ctrl-C is data). What the program prints goes to the host. The
interpreter's notes (vnotes) say which of these holds: a program started, the boot or a
command ended, the console was claimed or released, a reset was asked for.
"""
from __future__ import annotations

import re

from dexlink.sim.boardcode import vfaults, vnotes
from dexlink.sim.interpreter import Interpreter
from dexlink.sim.line import LineNoise
from dexlink.sim.notes import NoteReader
from dexlink.sim.repl import BUSY, Repl
from dexlink.sim.usbport import UsbPort

BANNER = "MicroPython on a virtual board (dexlink)"  # until the agent tells its own
LONE_LF = re.compile(rb"(?<!\r)\n")
CTRL_C = b"\x03"


class ConsoleBridge:
    """Host bytes to the REPL or the running program, program output to the host.

    Line noise (to_board, to_host) applies to the data of a program that holds the console,
    never to REPL text. reset(soft) is the supervisor's: the REPL's Ctrl-D and the
    program's machine.reset() / sys.exit() end this interpreter.
    """

    def __init__(self, usb: UsbPort, to_board: LineNoise, to_host: LineNoise, reset, notify):
        self._usb = usb
        self._to_board = to_board
        self._to_host = to_host
        self._reset = reset
        self._notify = notify
        self.repl = Repl(usb.send, BANNER)
        self.interp: Interpreter | None = None
        self.booting = False  # boot.py / main.py run (not a REPL command)
        self.claimed = False  # the running program owns the console: Ctrl-C is data
        self.sigint_ok = False  # a program runs that Ctrl-C may interrupt
        self._pending_in = bytearray()  # host bytes for the program, waiting for pipe room
        self._notes = NoteReader()
        self._note_handlers = {
            vnotes.NOTE_RUNNING: self._running, vnotes.NOTE_BANNER: self._banner,
            vnotes.NOTE_CLAIM: self._claim, vnotes.NOTE_RELEASE: self._release,
            vnotes.NOTE_BOOTED: self._ended, vnotes.NOTE_DONE: self._ended,
            vnotes.NOTE_HARD_RESET: lambda kind, text: self._reset(False),
            vnotes.NOTE_SOFT_RESET: lambda kind, text: self._reset(True),
        }

    def boot(self, interp: Interpreter, raw: bool) -> None:
        """A fresh interpreter runs boot.py (and main.py); the REPL waits for it."""
        self.interp = interp
        self._notes.clear()
        self._pending_in.clear()  # input in flight is lost in a reset, as on a board
        self.booting = True
        self.claimed = self.sigint_ok = False
        self.repl.state = BUSY
        self.repl.raw_mode = raw

    @property
    def state(self) -> str:
        if self.repl.state != BUSY:
            return "repl"
        return "booting" if self.booting else "running"

    @property
    def interruptible(self) -> bool:
        return bool(self.interp and self.repl.state == BUSY and self.sigint_ok
                    and not self.claimed)

    @property
    def input_waiting(self) -> bool:
        """Host bytes wait for room in the program's stdin (the port is not read meanwhile,
        like USB flow control: the host's writes wait)."""
        return bool(self._pending_in)

    # -- host -> board ----------------------------------------------------------------
    def from_host(self, data: bytes) -> None:
        i = 0
        while i < len(data):
            if self.repl.state != BUSY:
                reply = self.repl.feed(data[i])
                i += 1
                if reply is not None:
                    self._do(reply)
                continue
            if self.claimed:
                self._to_program(data[i:])
                return
            j = data.find(CTRL_C, i)
            if j < 0:
                self._to_program(data[i:])
                return
            self._to_program(data[i:j])
            if self.sigint_ok:
                self.interp.interrupt()  # KeyboardInterrupt, as on a board
            i = j + 1

    def _do(self, reply) -> None:
        if reply.action == "soft_reset":
            self._reset(True)
            return
        self.booting = False
        self.sigint_ok = False  # until the agent says it runs the command
        self.interp.run(reply.code, single=reply.kind == "single")
        self._notify()

    def _to_program(self, data: bytes) -> None:
        self._pending_in += self._to_board.apply(data)
        if self._pending_in:
            self.flush_input()

    def flush_input(self) -> None:
        del self._pending_in[:self.interp.write_input(self._pending_in)]

    # -- board -> host ----------------------------------------------------------------
    def on_output(self) -> None:
        data = self.interp.read_output()
        if data:
            self._from_board(data)

    def drain_output(self) -> None:
        """Forward everything the program printed so far."""
        while True:
            data = self.interp.read_output()
            if not data:
                return
            self._from_board(data)

    def _from_board(self, data: bytes) -> None:
        if self.claimed:
            data = self._to_host.apply(data)
        else:  # text from print(): a board's stdout turns \n into \r\n
            data = LONE_LF.sub(b"\r\n", data)
        self._usb.send(data)

    # -- notes ------------------------------------------------------------------------
    def on_notes(self) -> None:
        self._notes.feed(self.interp.read_notes())
        while (note := self._notes.next()) is not None:
            kind, text = note
            # Everything the program printed before this note is already in its stdout
            # pipe: forward it first, so the REPL's markers come after the output.
            self.drain_output()
            handler = self._note_handlers.get(kind)
            if handler is not None:
                handler(kind, text)
            self._notify()
            if kind in (vnotes.NOTE_HARD_RESET, vnotes.NOTE_SOFT_RESET):
                return  # a fresh interpreter: what the old one said is moot

    def _running(self, kind, text):
        self.sigint_ok = True
        if text:
            self.repl.banner = text

    def _banner(self, kind, text):
        self.repl.banner = text

    def _claim(self, kind, text):
        self.claimed = True
        # Acknowledged once marked: every Ctrl-C turned into SIGINT before this point has
        # been sent, so the claimer knows none can interrupt it afterwards.
        self.interp.send_fault(vfaults.encode(vfaults.KIND_CLAIMED, 0, 0, int(text or 0)))

    def _release(self, kind, text):
        self.claimed = False

    def _ended(self, kind, text):
        """boot.py / main.py (NOTE_BOOTED) or a REPL command (NOTE_DONE) finished."""
        if self.repl.state != BUSY:
            return  # a repeated note (a Ctrl-C raced the end of the command)
        self.claimed = self.sigint_ok = self.booting = False
        if kind == vnotes.NOTE_BOOTED:
            self.repl.enter()
        else:
            self.repl.finished(text)
        # Input the program left unread belongs to the REPL, as a board's stdin buffer.
        data = self.interp.unread_input() + bytes(self._pending_in)
        self._pending_in.clear()
        if data:
            self.from_host(data)
