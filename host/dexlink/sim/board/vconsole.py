# The virtual board's USB serial, as the firmware sees it (the HAL's Console), and the
# agent's notes to the supervisor that plays the board's USB side.
#
# Data path: the interpreter's stdin / stdout, which the supervisor connects to the
# pseudo-terminal. The supervisor made stdin non-blocking, so readinto() returns None
# when nothing waits: one read() per call, no allocation.
# Notes path: a pipe to the supervisor carrying short records (vnotes: the note types and
# the record's layout, shared with the supervisor), only outside the steady-state loop.
import sys
import time

import vfaults
from vnotes import HEADER_SIZE, NOTE_CLAIM, NOTE_RELEASE

_notes = None
_header = bytearray(HEADER_SIZE)
_claims = 0  # console claims made since boot: each is acknowledged by number


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


def claim():
    """Make Ctrl-C data, as micropython.kbd_intr(-1) does on a board; return once in effect.

    The supervisor acknowledges the claim (through vfaults) after it has marked the console
    claimed, so every Ctrl-C it turned into an interrupt before has been delivered by then.
    Such a Ctrl-C (it came before the claim) is raised here, once the claim holds, as a
    board raises a Ctrl-C received just before kbd_intr(-1): no interrupt can come later.
    """
    global _claims
    _claims = (_claims + 1) & 0x3FFFFFFF
    if _acknowledged(_claims):
        raise KeyboardInterrupt


def _acknowledged(token):
    """Note claim `token` and wait for its acknowledgement; True if a Ctrl-C came meanwhile.

    An interrupt may land anywhere until then (the VM raises it at any jump), even where
    it costs the acknowledgement: so everything is inside the try, and an interrupt starts
    over (a repeated note is acknowledged again). Each level of recursion is one Ctrl-C
    delivered before the claim took effect: a handful.
    """
    try:
        if _notes is None:
            return False  # not under a supervisor (tests running modules directly)
        note(NOTE_CLAIM, b"%d" % token)
        while vfaults.claim_ack != token:
            vfaults.poll()
            time.sleep_ms(1)
        return False
    except KeyboardInterrupt:
        _acknowledged(token)
        return True


def release():
    """Ctrl-C interrupts again (micropython.kbd_intr(3))."""
    note(NOTE_RELEASE)


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
        claim()

    def release(self):
        self.claimed = False
        release()
