"""`dexlink session`: the live dashboard of a board; also the --port/--sim opener the
board commands share (calibrate, replay)."""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from dexproto import catalog

from dexlink.errors import UserError
from dexlink.link import DEFAULT_BAUD, Link, LinkError

DEFAULT_HAND = "iso16"
MODES = {name.lower(): i for i, name in enumerate(catalog.MODE_NAMES)}


class CommandError(UserError):
    """A user mistake or a board problem: printed as one line, exit status 1."""


def add_board_args(p: argparse.ArgumentParser, hand_required: bool = False) -> None:
    """--port URL | --sim, --baud, --hand: how every board command finds its board."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="URL",
                       help="serial port or pyserial URL: /dev/ttyACM0, socket://host:port")
    where.add_argument("--sim", action="store_true",
                       help="start a virtual board (the real firmware on MicroPython) and use it")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="baud rate (default %(default)s)")
    p.add_argument("--hand", metavar="HAND.toml", required=hand_required,
                   help="hand description (joint names; with --sim, the hand to simulate; "
                        "default: hardware/hands/%s.toml)" % DEFAULT_HAND)


def hand_path(args) -> Path:
    from dexlink.hwconfig import HANDS
    path = Path(args.hand) if args.hand else HANDS / (DEFAULT_HAND + ".toml")
    if not path.is_file():
        raise CommandError("%s: no such hand file (hands come with dexlink in %s)" % (path, HANDS))
    return path


def joint_names(args) -> list[str]:
    """The hand's joint names, from --hand (or the default hand with --sim)."""
    if not args.hand and not args.sim:
        return []
    from dexlink.hwconfig import load_hand
    return [j["name"] for j in load_hand(hand_path(args))["joints"]]


def motor_names(args) -> list[str]:
    """The hand's motor names, in the board's motor order: a coupled hand's [[motors]],
    else the joints that have a servo (as hwconfig.compile_config numbers them)."""
    if not args.hand and not args.sim:
        return []
    from dexlink.hwconfig import load_hand
    t = load_hand(hand_path(args))
    if "motors" in t:
        return [m.get("name", "") for m in t["motors"]]
    return [j["name"] for j in t["joints"] if "servo" in j]


@contextlib.contextmanager
def board_link(args, **link_options):
    """An open Link to --port, or to a freshly flashed virtual board with --sim."""
    with sim_board_and_link(args, **link_options) as (_, link):
        yield link


@contextlib.contextmanager
def sim_board_and_link(args, **link_options):
    """(the VirtualBoard with --sim, else None; an open Link to the board)."""
    with contextlib.ExitStack() as stack:
        url = args.port
        board = None
        joint_names(args)  # a bad hand file: say so before any board is touched
        if args.sim:
            board = stack.enter_context(started_virtual_board(hand_path(args)))
            url = board.stable_port  # like /dev/serial/by-id: survives an unplug and replug
        link = Link(url, args.baud, **link_options)
        link.use_names(joint_names(args), motor_names(args))  # FAULTs name their joint
        try:
            link.open()
        except LinkError as e:
            raise CommandError(str(e)) from None
        stack.callback(link.close)
        yield board, link


@contextlib.contextmanager
def virtual_board(hand: Path):
    """A virtual board running the firmware for `hand`; yields its port."""
    with started_virtual_board(hand) as board:
        yield board.port


@contextlib.contextmanager
def started_virtual_board(hand: Path):
    """A virtual board running the firmware for `hand` (a VirtualBoard)."""
    try:
        from dexlink.flash import FlashError, check_config
        from dexlink.sim import VirtualBoard, VirtualBoardError
        from dexlink.sim.flashing import VIRTUAL_BOARD, flash_virtual
    except ImportError as e:
        raise CommandError("the virtual board is not available in this installation (%s)" % e) from None
    try:
        check_config(hand, VIRTUAL_BOARD)  # a hand that cannot be flashed: before the board starts
    except FlashError as e:
        raise CommandError(str(e)) from None
    board = VirtualBoard()
    try:
        try:
            board.start()
            flash_virtual(board, hand)
        except (FlashError, VirtualBoardError) as e:
            raise CommandError("could not start the virtual board with %s: %s" % (hand.name, e)) from None
        yield board
    finally:
        board.close()


def run_command(func, args) -> int:
    """Run a command body; user-facing failures become one line on stderr and status 1."""
    try:
        return int(func(args) or 0)
    except (UserError, LinkError) as e:
        print("dexlink %s: %s" % (args.command, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dexlink %s: interrupted" % args.command, file=sys.stderr)
        return 130


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "session", help="live dashboard of a board: joints, loop, link; keys switch modes",
        description="Connect to a board and show, live, each joint's exoskeleton angle, servo "
                    "goal, present position and status, the loop's rate, overruns and worst "
                    "cycle, and the link's statistics. Keys: i idle, t teleop, h host, "
                    "c calibrate, space or e emergency stop, q quit. When stdout is not a "
                    "terminal it prints plain lines instead.",
        epilog="examples:\n  dexlink session --sim\n  dexlink session --port /dev/ttyACM0 "
               "--hand hardware/hands/iso16.toml --mode teleop\n  dexlink session --sim "
               "--duration 5 --mode teleop > session.log",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_board_args(p)
    p.add_argument("--mode", choices=sorted(MODES), help="switch to this mode after connecting")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (scripts)")
    p.add_argument("--every", type=float, default=1.0, metavar="S",
                   help="seconds between plain lines when not on a terminal (default 1)")
    p.add_argument("--plain", action="store_true", help="plain lines even on a terminal")
    p.set_defaults(func=lambda a: run_command(session, a))


def session(args) -> int:
    from dexlink.ui.dashboard import run_live, run_plain
    from dexlink.ui.state import SessionState

    names = joint_names(args)
    with board_link(args) as link:
        state = SessionState(link, names)
        if args.mode:
            link.set_mode(MODES[args.mode])
        if sys.stdout.isatty() and sys.stdin.isatty() and not args.plain:
            run_live(state, args.duration)
        else:
            run_plain(state, args.duration, args.every)
        if args.mode in ("host", "teleop"):
            link.set_mode(catalog.MODE_IDLE)  # leave the hand relaxed, as we found it
    return 0
