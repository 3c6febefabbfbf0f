"""`dexlink session`: the live dashboard of a board."""
from __future__ import annotations

import argparse
import contextlib
import sys

from dexlink.board import connect
from dexlink.cli_support import MODES, add_board_args, add_foxglove_arg, board_options
from dexlink.errors import UsageError
from dexlink.telemetry_rate import telemetry_rate
from dexproto import catalog


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
    p.add_argument("--telemetry-hz", type=float, metavar="HZ",
                   help="telemetry samples per second while the session runs (default: the "
                        "hand file's, every 10th loop cycle; at most the loop rate)")
    add_foxglove_arg(p)
    p.set_defaults(func=session)


def session(args) -> int:
    from dexlink.ui.dashboard import run_live, run_plain
    from dexlink.ui.state import SessionState

    if args.telemetry_hz is not None and not args.telemetry_hz > 0:
        raise UsageError("--telemetry-hz must be positive")
    with connect(board_options(args)) as board, contextlib.ExitStack() as stack:
        link = board.link
        if args.telemetry_hz is not None:
            stack.enter_context(telemetry_rate(link, args.telemetry_hz))
        if args.foxglove is not None:
            watch_in_foxglove(board, args.foxglove, stack)
        state = SessionState(link, board.joint_names)
        if args.mode:
            link.set_mode(MODES[args.mode])
        if sys.stdout.isatty() and sys.stdin.isatty() and not args.plain:
            run_live(state, args.duration)
        else:
            run_plain(state, args.duration, args.every)
        if args.mode in ("host", "teleop"):
            link.set_mode(catalog.MODE_IDLE)  # leave the hand relaxed, as we found it
    return 0


def watch_in_foxglove(board, port: int, stack: contextlib.ExitStack) -> None:
    """A Foxglove live view fed from the link until the session ends."""
    import threading

    from dexlink.live.foxglove import LinkTap, open_view
    from dexlink.record.recorder import follow_link

    view, text = open_view(board, port)
    stack.callback(view.close)
    stop = threading.Event()
    follow_link(board.link, LinkTap(view), stop)
    stack.callback(stop.set)
    print(text, flush=True)
