"""`dexlink sim`: a virtual board on a pseudo-terminal, until Ctrl-C."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from dexlink.board import DEFAULT_HAND, default_hand, resolve_hand, virtual_board
from dexlink.cli_support import (
    add_target_arg,
    add_world_args,
    print_flash_progress,
    serve,
    world_options,
)
from dexlink.errors import UserError

# How to get a REPL: the firmware owns the port (Ctrl-C is data there) until it is asked.
REPL_HINT = ("REPL: dexlink repl --port %(port)s (stops the firmware, then mpremote's terminal); "
             "plain mpremote commands stop it by themselves, e.g. mpremote connect %(port)s "
             "exec \"print(1)\"")


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
               "  dexlink sim --world lift_cube                 # in a physics world, lifting a cube\n"
               "  dexlink sim --target pico                     # at a Raspberry Pi Pico's speed\n"
               "then, in another terminal: dexlink session --port PORT",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hand", metavar="HAND.toml",
                   help="flash the firmware for this hand (default: hardware/hands/%s.toml, "
                        "unless --fs already holds a flashed board)" % DEFAULT_HAND)
    p.add_argument("--fs", metavar="DIR", help="the board's filesystem directory (kept)")
    p.add_argument("--blank", action="store_true", help="no firmware: a bare MicroPython board")
    p.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds")
    add_world_args(p)
    add_target_arg(p)
    p.set_defaults(func=sim)


def sim(args) -> int:
    if args.blank and args.hand:
        raise UserError("--blank and --hand contradict each other")
    flashed = args.fs and (Path(args.fs) / "main.py").exists()
    if args.hand:
        hand = resolve_hand(args.hand)
    else:
        hand = None if args.blank or flashed else default_hand()
    world = world_options(args)
    if world is not None and hand is None:
        raise UserError("--world needs the firmware for a hand: not with --blank or an "
                        "already flashed --fs (name the --hand)")
    if args.target and hand is None:
        raise UserError("--target is set when the board is flashed: name the --hand")
    with virtual_board(hand, fs=args.fs, progress=print_flash_progress, world=world,
                       target=args.target) as board:
        serve(board, args.seconds, hints=[REPL_HINT % {"port": board.port}])
    return 0
