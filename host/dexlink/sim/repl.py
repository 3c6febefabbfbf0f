"""The REPL of the virtual board, as the host sees it on the serial port.

The MicroPython Unix port has no raw REPL, so the supervisor plays MicroPython's
`pyexec` towards the host: the friendly REPL (`>>> `, line editing, continuation lines),
the raw REPL (Ctrl-A; Ctrl-D runs the collected code and answers `OK`, output, `\\x04`,
traceback, `\\x04`, `>`) and raw-paste mode (`\\x05A\\x01`, flow-controlled by a window),
with the same bytes a board prints, so that unmodified mpremote and terminals work.
Running the code is the agent's job (inside the interpreter); this class only decides
what to run and what to print around it.
"""
from __future__ import annotations

import struct

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
PASTE_WINDOW = 4096  # bytes the host may send before waiting for a \x01 (u16 on the wire)

PASTE_BANNER = b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== "

FRIENDLY, PASTE, RAW, RAW_PASTE, BUSY = "friendly", "paste", "raw", "raw-paste", "busy"


class Reply:
    """What the REPL wants done after a byte: run code, or soft-reset the board."""

    def __init__(self, action, code="", kind="exec"):
        self.action = action  # "exec" | "soft_reset"
        self.code = code
        self.kind = kind  # "exec" (file input) | "single" (friendly line: echo values)


class Repl:
    """Turns host bytes into prompts, echo and commands. `out(bytes)` sends to the host."""

    def __init__(self, out, banner: str):
        self.out = out
        self.banner = banner
        self.raw_mode = False  # survives a soft reset, like pyexec_mode_kind
        self.state = BUSY
        self._line = bytearray()
        self._block: list[str] = []
        self._escape = 0
        self._paste_left = 0
        self._running_from = FRIENDLY

    # -- entering -------------------------------------------------------------------
    def enter(self):
        """The board finished booting: show the REPL of the current mode."""
        self._line.clear()
        self._block.clear()
        if self.raw_mode:
            self._enter_raw()
        else:
            self._enter_friendly()

    def _enter_friendly(self):
        self.raw_mode = False
        self.state = FRIENDLY
        self.out(self.banner.encode() + b'\r\nType "help()" for more information.\r\n>>> ')

    def _enter_raw(self):
        self.raw_mode = True
        self.state = RAW
        self._line.clear()
        self.out(RAW_BANNER + b">")

    # -- after a command ------------------------------------------------------------
    def finished(self, traceback: str):
        """The command the REPL asked for ended, with this traceback ('' if none)."""
        tb = traceback.replace("\n", "\r\n").encode()
        if self._running_from == FRIENDLY:
            self.state = FRIENDLY
            self.out(tb + (b"... " if self._block else b">>> "))
        else:
            self.state = RAW
            self.out(b"\x04" + tb + b"\x04>")

    # -- input ----------------------------------------------------------------------
    def feed(self, c: int) -> Reply | None:
        if self.state == FRIENDLY:
            return self._friendly(c)
        if self.state == PASTE:
            return self._friendly_paste(c)
        if self.state == RAW:
            return self._raw(c)
        if self.state == RAW_PASTE:
            return self._paste(c)
        return None

    def _run(self, code: str, kind: str) -> Reply:
        self._running_from = FRIENDLY if self.state in (FRIENDLY, PASTE) else RAW
        self.state = BUSY
        return Reply("exec", code, kind)

    def _friendly(self, c):
        # Swallow VT100 sequences (arrow keys: no history or cursor moves here).
        if self._escape == 1:  # after ESC: '[' opens a control sequence
            self._escape = 2 if c == 0x5B else 0
            return None
        if self._escape == 2:  # parameters until the final byte
            if 0x40 <= c <= 0x7E:
                self._escape = 0
            return None
        if c == 0x1B:
            self._escape = 1
        elif c == CTRL_A:
            self.out(b"\r\n")
            self._enter_raw()
        elif c == CTRL_B:
            self.out(b"\r\n")
            self._line.clear()
            self._block.clear()
            self._enter_friendly()
        elif c == CTRL_C:
            self._line.clear()
            self._block.clear()
            self.out(b"\r\n>>> ")
        elif c == CTRL_E:
            self._line.clear()
            self._block.clear()
            self.state = PASTE
            self.out(PASTE_BANNER)
        elif c == CTRL_D:
            if not self._line and not self._block:
                self.out(b"\r\n")
                self.state = BUSY
                return Reply("soft_reset")
        elif c == 0x0D:
            self.out(b"\r\n")
            return self._friendly_line()
        elif c in (0x08, 0x7F):
            if self._line:
                self._line.pop()
                self.out(b"\x08 \x08")
        elif c >= 0x20 or c == 0x09:
            self._line.append(c)
            self.out(bytes((c,)))
        return None

    def _friendly_line(self):
        line = self._line.decode("utf-8", "replace")
        self._line.clear()
        if self._block:
            if line.strip():
                self._block.append(line)
                self.out(b"... ")
                return None
            code = "\n".join(self._block) + "\n"
            self._block.clear()
            return self._run(code, "exec")
        if not line.strip():
            self.out(b">>> ")
            return None
        if line.rstrip().endswith((":", "\\")):
            self._block.append(line)
            self.out(b"... ")
            return None
        return self._run(line, "single")

    def _friendly_paste(self, c):
        """Ctrl-E paste mode: lines echoed after '=== ', run as one file on Ctrl-D."""
        if c == CTRL_C:
            self._line.clear()
            self.state = FRIENDLY
            self.out(b"\r\n>>> ")
        elif c == CTRL_D:
            self.out(b"\r\n")
            code = self._line.decode("utf-8", "replace")
            self._line.clear()
            return self._run(code, "exec")
        elif c == 0x0D:
            self._line.append(0x0A)
            self.out(b"\r\n=== ")
        elif c != 0x0A:
            self._line.append(c)
            self.out(bytes((c,)))
        return None

    def _raw(self, c):
        if c == CTRL_A:
            if len(self._line) == 2 and self._line[0] == CTRL_E:
                return self._start_paste(self._line[1])
            self.out(b"\r\n")
            self._enter_raw()
        elif c == CTRL_B:
            self.out(b"\r\n")
            self._line.clear()
            self._enter_friendly()
        elif c == CTRL_C:
            self._line.clear()
        elif c == CTRL_D:
            self.out(b"OK")
            if not self._line:
                self.out(b"\r\n")
                self.state = BUSY
                return Reply("soft_reset")
            code = self._line.decode("utf-8", "replace")
            self._line.clear()
            return self._run(code, "exec")
        else:
            self._line.append(c)
        return None

    def _start_paste(self, command):
        self._line.clear()
        if command != ord("A"):
            self.out(b"R\x00")  # unknown paste command: stay in the raw REPL
            return None
        self.out(b"R\x01" + struct.pack("<H", PASTE_WINDOW))
        self.state = RAW_PASTE
        self._paste_left = PASTE_WINDOW
        return None

    def _paste(self, c):
        if c == CTRL_D:
            self.out(b"\x04")  # end of data acknowledged; output follows
            code = self._line.decode("utf-8", "replace")
            self._line.clear()
            self.state = RAW
            return self._run(code, "exec")
        self._line.append(c)
        self._paste_left -= 1
        if self._paste_left == 0:
            self._paste_left = PASTE_WINDOW
            self.out(b"\x01")  # the host may send another window
        return None
