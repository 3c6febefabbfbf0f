# The virtual board's USB serial, as the firmware sees it (the HAL's Console), and the
# agent's notes to the supervisor that plays the board's USB side.
#
# Data path: the interpreter's stdin / stdout, which the supervisor connects to the
# pseudo-terminal. The supervisor made stdin non-blocking, so readinto() returns None
# when nothing waits: one read() per call, no allocation.
# Notes path: a pipe to the supervisor carrying short records (type byte, u16 length,
# text). They are written whole (under PIPE_BUF) and only outside the steady-state loop.
import sys

import vfaults

# Note types (agent / console -> supervisor)
NOTE_RUNNING = b"P"  # the interpreter runs a program (Ctrl-C may interrupt it)
NOTE_BOOTED = b"B"  # boot.py / main.py finished: the REPL takes over
NOTE_DONE = b"D"  # a REPL command finished; text: its traceback, if any
NOTE_CLAIM = b"C"  # the program owns the console: Ctrl-C is data
NOTE_RELEASE = b"R"  # Ctrl-C interrupts again
NOTE_HARD_RESET = b"H"  # machine.reset()
NOTE_SOFT_RESET = b"S"  # sys.exit() / machine.soft_reset()

_notes = None
_header = bytearray(3)


def attach(fd):
    """Send notes on file descriptor fd (inherited from the supervisor)."""
    global _notes
    _notes = open(fd, "wb")


def note(kind, text=b""):
    """Tell the supervisor something (never in the loop: claim/release are mode changes)."""
    if _notes is None:
        return
    n = len(text)
    _header[0] = kind[0]
    _header[1] = n & 0xFF
    _header[2] = n >> 8
    _notes.write(_header + text)


class Console:
    """The host link on the board's USB serial (see docs/interfaces.md, the HAL module)."""

    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self.claimed = False

    def readinto(self, buf):
        # Injected faults travel beside the data: apply them where the loop polls the host.
        vfaults.poll()
        n = self._in.readinto(buf)
        return n if n else 0

    def write(self, buf):
        n = self._out.write(buf)
        return n if n else 0

    def claim(self):
        # The supervisor stops turning Ctrl-C into an interrupt; the interpreter keeps its
        # SIGINT handler, so a Ctrl-C that raced the claim interrupts instead of killing.
        self.claimed = True
        note(NOTE_CLAIM)

    def release(self):
        self.claimed = False
        note(NOTE_RELEASE)
