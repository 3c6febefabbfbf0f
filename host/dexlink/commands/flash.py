"""`dexlink flash`: put the firmware and a hand's config on a board, and check it runs."""
from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

from dexlink.board import check_hand, flash_virtual_board, resolve_hand, started_virtual_board
from dexlink.cli_support import add_target_arg, print_flash_progress, serve
from dexlink.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "flash", help="flash the firmware and a hand's config onto a board (or a virtual one)",
        description=textwrap.fill(
            "Compile the board config from the hand file, precompile the firmware with "
            "mpy-cross for the board's architecture, hand a running firmware's port back "
            "to the REPL, copy everything with mpremote, reboot, and check with HELLO that "
            "the board runs this firmware version and this config. A flash that fails "
            "half way leaves a board that boots to the REPL: flash again to repair it.", 88),
        epilog="examples:\n"
               "  dexlink flash --port /dev/ttyACM0 --hand hardware/hands/iso16.toml --board pico\n"
               "  dexlink flash --port /dev/ttyACM0 --hand my/iso16.toml --board pico "
               "--calibration my/iso16.calibration.toml\n"
               "  dexlink flash --sim --hand hardware/hands/iso22.toml            # serve until Ctrl-C\n"
               "  dexlink flash --sim --hand hardware/hands/iso16.toml --fs vb --exit\n"
               "  dexlink flash --sim --hand iso16 --target pico --exit   # at a Pico's speed\n"
               "  make flash PORT=/dev/ttyACM0 HAND=hardware/hands/iso16.toml BOARD=pico",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="PORT", help="the board's serial port, e.g. /dev/ttyACM0")
    where.add_argument("--sim", action="store_true",
                       help="flash a fresh virtual board, then keep it running and print its port")
    p.add_argument("--hand", metavar="HAND.toml", required=True, help="the hand description")
    p.add_argument("--board", metavar="BOARD",
                   help="board name in hardware/boards/ or a board .toml (default with --sim: virtual)")
    p.add_argument("--calibration", metavar="FILE",
                   help="encoder calibration to merge (default: HAND.calibration.toml next to "
                        "the hand file, when present; written by `dexlink calibrate`)")
    p.add_argument("--fs", metavar="DIR",
                   help="with --sim: keep the virtual board's filesystem in DIR "
                        "(`dexlink sim --fs DIR` boots it again later)")
    p.add_argument("--exit", action="store_true",
                   help="with --sim: stop the virtual board once the flash is verified")
    add_target_arg(p)
    p.set_defaults(func=flash_command)


def flash_command(args) -> int:
    from dexlink.flash import FlashError, flash

    if not args.sim and not args.board:
        raise UserError("--board is needed with --port (boards: see hardware/boards/)")
    if not args.sim and (args.fs or args.exit or args.target):
        raise UserError("--fs, --exit and --target go with --sim")
    hand = resolve_hand(args.hand)
    if args.sim:
        return _flash_sim(args, hand)
    try:
        with tempfile.TemporaryDirectory(prefix="dexlink-flash-") as work:
            flash(args.port, hand, args.board, Path(work), print_flash_progress,
                  args.calibration)
    except FlashError as e:
        raise UserError(str(e)) from None
    return 0


def _flash_sim(args, hand: Path) -> int:
    from dexlink import hwconfig
    from dexlink.sim.flashing import VIRTUAL_BOARD

    board_name = args.board or VIRTUAL_BOARD
    hal = hwconfig.load_board(board_name)["hal"]
    if hal != "vmachine":
        raise UserError("--sim needs a virtual board description (hal = \"vmachine\"), and "
                        "%s is a real board's (hal = %r): drop --board or use --board %s "
                        "(--target %s runs it at that board's speed)"
                        % (board_name, hal, VIRTUAL_BOARD, board_name))
    check_hand(hand, board_name, args.calibration)  # before the board starts
    with started_virtual_board(args.fs) as board:
        print_flash_progress("virtual board on %s (filesystem %s)" % (board.port, board.fs_dir))
        flash_virtual_board(board, hand, board=board_name, calibration=args.calibration,
                            progress=print_flash_progress, target=args.target)
        if not args.exit:
            serve(board)
    return 0
