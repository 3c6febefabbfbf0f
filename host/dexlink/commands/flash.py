"""`dexlink flash`: put the firmware and a hand's config on a board, and check it runs."""
from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

from dexlink.commands.session import CommandError, run_command


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
    p.set_defaults(func=lambda a: run_command(flash_command, a))


def flash_command(args) -> int:
    from dexlink.flash import FlashError, flash

    if not args.sim and not args.board:
        raise CommandError("--board is needed with --port (boards: see hardware/boards/)")
    if not args.sim and (args.fs or args.exit):
        raise CommandError("--fs and --exit go with --sim")
    if not Path(args.hand).is_file():
        raise CommandError("%s: no such hand file" % args.hand)
    try:
        if args.sim:
            return _flash_sim(args)
        with tempfile.TemporaryDirectory(prefix="dexlink-flash-") as work:
            flash(args.port, args.hand, args.board, Path(work), _progress, args.calibration)
    except FlashError as e:
        raise CommandError(str(e)) from None
    return 0


def _progress(line: str) -> None:
    print("flash: " + line, flush=True)


def _flash_sim(args) -> int:
    from dexlink import hwconfig
    from dexlink.commands.sim import serve
    from dexlink.flash import check_config
    from dexlink.sim import VirtualBoard, VirtualBoardError
    from dexlink.sim.flashing import VIRTUAL_BOARD, flash_virtual

    board_name = args.board or VIRTUAL_BOARD
    try:
        hal = hwconfig.load_board(board_name)["hal"]
    except hwconfig.HwConfigError as e:
        raise CommandError(str(e)) from None
    if hal != "vmachine":
        raise CommandError("--sim needs a virtual board description (hal = \"vmachine\"), and "
                           "%s is a real board's (hal = %r): drop --board or use --board %s"
                           % (board_name, hal, VIRTUAL_BOARD))
    try:
        check_config(args.hand, board_name, args.calibration)  # before the board starts
        with VirtualBoard(args.fs) as board:
            _progress("virtual board on %s (filesystem %s)" % (board.port, board.fs_dir))
            flash_virtual(board, args.hand, board_name, _progress, args.calibration)
            if not args.exit:
                serve(board)
    except VirtualBoardError as e:
        raise CommandError(str(e)) from None
    return 0
