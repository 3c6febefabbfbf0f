"""`dexlink repl`: hand a board's port from the firmware to MicroPython's REPL.

The firmware owns the port while it runs (Ctrl-C is data there). If it answers HELLO, it
is sent the REPL message, the orderly way; otherwise the port gets the break-in plain
mpremote uses (dexfw.breakin: Ctrl-C keys that cannot begin a frame, then silence), asking
for the friendly REPL. Then mpremote's terminal takes over, or the command says how.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap

from dexlink.errors import UserError

PROMPT = b">>> "
# '\r', Ctrl-C, Ctrl-C: no frame begins so (see dexfw.breakin); '\r', Ctrl-B: the friendly REPL.
BREAK_IN = b"\r\x03\x03\r\x02"
BREAK_IN_WAIT_S = 4.0  # the firmware's quiet gap (1 s), stopping, the REPL's banner


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "repl", help="hand a board's port from the firmware to the MicroPython REPL",
        description=textwrap.fill(
            "Stop the dexlink firmware on a board (torque off) and give its port to "
            "MicroPython's friendly REPL: with the REPL message when the firmware answers, "
            "else with the break-in that plain mpremote also uses. Then open mpremote's "
            "terminal on it (in a terminal), or print how to. The firmware starts again at "
            "the next reset (Ctrl-D at the prompt).", 88),
        epilog="examples:\n"
               "  dexlink repl --port /dev/ttyACM0\n"
               "  dexlink repl --port /dev/ttyACM0 --no-terminal   # then: mpremote connect ...\n"
               "  dexlink repl --sim                              # a virtual board's REPL\n"
               "plain mpremote works too (it breaks in by itself, ~1 s):\n"
               "  mpremote connect /dev/ttyACM0 exec \"print(1)\"",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="PORT", help="the board's serial port, e.g. /dev/ttyACM0")
    where.add_argument("--sim", action="store_true",
                       help="start a virtual board flashed with the firmware, and use it")
    p.add_argument("--hand", metavar="HAND.toml", help="with --sim: the hand it is flashed for")
    p.add_argument("--no-terminal", action="store_true",
                   help="only hand the port over and print how to connect")
    p.set_defaults(func=repl)


def repl(args) -> int:
    if args.hand and not args.sim:
        raise UserError("--hand goes with --sim")
    if not args.sim:
        hand_over(args.port, print)
        return _terminal(args.port, args.no_terminal)
    from dexlink.board import default_hand, resolve_hand, virtual_board
    from dexlink.cli_support import print_flash_progress, serve
    hand = resolve_hand(args.hand) if args.hand else default_hand()
    with virtual_board(hand, progress=print_flash_progress) as board:
        hand_over(board.port, print)
        if args.no_terminal or not sys.stdin.isatty():
            _terminal(board.port, True)
            serve(board)  # until Ctrl-C: the board lives as long as this command
            return 0
        return _terminal(board.port, False)


def hand_over(port: str, progress) -> None:
    """Leave the board on `port` at its friendly REPL, or raise UserError saying why not."""
    from dexlink.flash import FlashError, open_port, read_for, stop_firmware

    try:
        s = open_port(port)  # no such port, or a busy one: said plainly
    except FlashError as e:
        raise UserError(str(e)) from None
    with s:
        s.reset_input_buffer()
        s.write(BREAK_IN)  # a REPL answers at once; firmware waits for 1 s of quiet...
        seen = read_for(s, 0.5, PROMPT)
        stopped = False
        if PROMPT not in seen:
            answer = stop_firmware(s, progress)  # HELLO's leading 0x00 ends the break-in
            if answer is not None:
                seen, stopped = answer, True
            else:
                progress("no dexlink firmware answers on %s: sending the break-in" % port)
                s.write(BREAK_IN)
                seen = read_for(s, BREAK_IN_WAIT_S, PROMPT)
    if PROMPT not in seen:
        raise UserError("%s: no MicroPython REPL answered (it sent %r); reset the board "
                        "holding its safe-boot pin, or flash it" % (port, seen[-60:]))
    progress("the port is at MicroPython's REPL" + (" (the firmware stopped: torque off)"
                                                    if stopped else ""))


def _terminal(port: str, print_only: bool) -> int:
    """mpremote's terminal on the port (the REPL waits there), or how to open it."""
    from dexlink.flash import MPREMOTE
    if print_only or not sys.stdin.isatty():
        print("the REPL is ready: mpremote connect %s repl" % port, flush=True)
        return 0
    return subprocess.call([str(MPREMOTE), "connect", port, "repl"])
