# The raw REPL, played by the board after a break-in (dexfw.breakin) that asked for it.
#
# mpremote's Ctrl-A reached the firmware as data, so MicroPython's own REPL never saw it:
# when main.py returns, it would start the friendly REPL, and mpremote (waiting for
# "raw REPL; CTRL-B to exit\r\n>") would give up. So the board answers the raw REPL
# protocol itself, byte for byte as MicroPython's pyexec does, until the host leaves it:
#   code, then Ctrl-D   -> "OK", the code's output, \x04, its traceback, \x04, ">"
#   Ctrl-A              -> the banner again;  Ctrl-C: the line is dropped
#   \x05 A \x01         -> "R\x00": raw-paste is not offered (mpremote falls back)
#   Ctrl-B              -> back to MicroPython's friendly REPL (main.py returns)
#   Ctrl-D, no code     -> soft reset. MicroPython would boot into its raw REPL (boot.py,
#                          no main.py); main.py cannot ask for that, so a flag file makes
#                          the next boot play this REPL again instead of the firmware.
# Ctrl-C is an interrupt here, as at any REPL: it stops the code that runs.
# Not on the loop's path: it may allocate.
import builtins
import io
import os
import sys
import time

RESUME_FLAG = "/.dexlink-raw-repl"
BANNER = b"raw REPL; CTRL-B to exit\r\n"
_CTRL_A = 1
_CTRL_B = 2
_CTRL_C = 3
_CTRL_D = 4
_CTRL_E = 5
_compile = getattr(builtins, "compile", None)


class RawRepl:
    """The raw REPL over a hal Console (readinto without blocking, write)."""

    def __init__(self, console):
        self.console = console
        self.line = bytearray()
        self.namespace = {"__name__": "__main__"}
        self._one = bytearray(1)

    def serve(self):
        """Until Ctrl-B (returns) or a soft reset (raises SystemExit, as machine.soft_reset)."""
        self.console.release()  # Ctrl-C interrupts again
        self._write(BANNER + b">")
        while True:
            try:
                if not self._key(self._next()):
                    return
            except KeyboardInterrupt:
                self.line = bytearray()  # Ctrl-C at the prompt

    def _next(self):
        while True:
            if self.console.readinto(self._one):
                return self._one[0]
            time.sleep_ms(1)

    def _write(self, data):
        self.console.write(data)

    def _key(self, c):
        """Handle one byte from the host; False when the host left for the friendly REPL."""
        line = self.line
        if c == _CTRL_A:
            if len(line) == 2 and line[0] == _CTRL_E:
                self._write(b"R\x00")  # raw-paste asked for: not offered, stay raw
            else:
                self._write(b"\r\n" + BANNER + b">")
            self.line = bytearray()
        elif c == _CTRL_B:
            self._write(b"\r\n")
            return False
        elif c == _CTRL_C:
            self.line = bytearray()
        elif c == _CTRL_D:
            self._write(b"OK")
            if line:
                self.line = bytearray()
                self._run(bytes(line).decode())
            else:
                self._write(b"\r\n")
                soft_reset()
        else:
            line.append(c)
        return True

    def _run(self, source):
        try:
            # compile() names the code "<stdin>" in tracebacks, as the REPL does; a port
            # built without it runs the text as it is.
            exec(_compile(source, "<stdin>", "exec") if _compile else source, self.namespace)
        except SystemExit:
            self._write(b"\x04\x04")
            soft_reset()
        except BaseException as e:  # KeyboardInterrupt too: the host sees it, as at a REPL
            self._write(b"\x04")
            _print_traceback(e)
            self._write(b"\x04>")
            return
        self._write(b"\x04\x04>")


def _print_traceback(e):
    """The traceback as a board's REPL prints it: from the host's code, not this file's."""
    text = io.StringIO()
    sys.print_exception(e, text)
    for line in text.getvalue().split("\n"):
        if line and not (line.startswith('  File "') and "rawrepl" in line):
            sys.stdout.write(line + "\n")


def soft_reset():
    """Reset the VM; the next boot plays this REPL again (see RESUME_FLAG)."""
    try:
        open(RESUME_FLAG, "w").close()
    except OSError:
        pass  # a read-only filesystem: the board boots into the firmware, as after any reset
    import machine
    machine.soft_reset()


def resume(console):
    """At boot: play the raw REPL if a soft reset in it asked for that; True if it did."""
    try:
        os.remove(RESUME_FLAG)
    except OSError:
        return False
    RawRepl(console).serve()
    return True


def after_firmware(fw, console):
    """The firmware stopped: play the raw REPL if a break-in asked for it."""
    if fw is not None and fw.link.breakin.raw:
        RawRepl(console).serve()
