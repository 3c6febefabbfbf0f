"""`dexlink sim`: a virtual board on a pseudo-terminal, until Ctrl-C."""
from __future__ import annotations

import argparse
import signal
import textwrap
import time
from pathlib import Path

from dexlink.commands.session import DEFAULT_HAND, CommandError, run_command


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sim", help="run a virtual board (the real firmware on MicroPython) on a serial port",
        description=textwrap.fill(
            "Start a virtual board: the MicroPython Unix interpreter behind a "
            "pseudo-terminal that behaves like a board on USB (boot.py and main.py, the "
            "REPL, raw REPL, soft and hard reset; mpremote works), with simulated "
            "encoders, servos and operator. It prints the port and runs until Ctrl-C. "
            "By default it is flashed with the firmware for a hand first.", 88),
        epilog="examples:\n"
               "  dexlink sim                                   # firmware for iso16\n"
               "  dexlink sim --hand hardware/hands/iso22.toml\n"
               "  dexlink sim --fs vb                           # keep (or boot again) its filesystem\n"
               "  dexlink sim --blank                           # bare MicroPython, e.g. for mpremote\n"
               "then, in another terminal: dexlink session --port PORT",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hand", metavar="HAND.toml",
                   help="flash the firmware for this hand (default: hardware/hands/%s.toml, "
                        "unless --fs already holds a flashed board)" % DEFAULT_HAND)
    p.add_argument("--fs", metavar="DIR", help="the board's filesystem directory (kept)")
    p.add_argument("--blank", action="store_true", help="no firmware: a bare MicroPython board")
    p.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds")
    p.set_defaults(func=lambda a: run_command(sim, a))


def serve(board, seconds: float | None = None) -> None:
    """Print the port and keep the board up until Ctrl-C (or `seconds`)."""
    print(board.port, flush=True)
    print("virtual board running on %s (filesystem %s); Ctrl-C stops it"
          % (board.port, board.fs_dir), flush=True)
    deadline = None if seconds is None else time.monotonic() + seconds

    def stop(signum, frame):
        raise KeyboardInterrupt  # SIGTERM too: close the board and remove its temp files

    signal.signal(signal.SIGTERM, stop)
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass


def sim(args) -> int:
    from dexlink.flash import FlashError, check_config
    from dexlink.hwconfig import HANDS
    from dexlink.sim import VirtualBoard, VirtualBoardError
    from dexlink.sim.flashing import VIRTUAL_BOARD, flash_virtual

    if args.blank and args.hand:
        raise CommandError("--blank and --hand contradict each other")
    flashed = args.fs and (Path(args.fs) / "main.py").exists()
    hand = args.hand or (None if args.blank or flashed else HANDS / (DEFAULT_HAND + ".toml"))
    if hand is not None and not Path(hand).is_file():
        raise CommandError("%s: no such hand file" % hand)
    try:
        if hand is not None:
            check_config(hand, VIRTUAL_BOARD)  # a hand that cannot be flashed: before the board starts
        with VirtualBoard(args.fs) as board:
            if hand is not None:
                flash_virtual(board, hand, progress=lambda line: print("flash: " + line, flush=True))
            serve(board, args.seconds)
    except (VirtualBoardError, FlashError) as e:
        raise CommandError(str(e)) from None
    return 0
