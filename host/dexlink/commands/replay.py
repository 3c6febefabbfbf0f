"""`dexlink replay`: play an episode's joint targets to the hand in HOST mode
(dexlink.replay behind options)."""
from __future__ import annotations

import argparse
from pathlib import Path

from dexlink.board import open_link
from dexlink.cli_support import add_board_args, board_options
from dexlink.errors import UserError
from dexlink.replay import check_not_refused, current_pose, load_targets, play, ramp, ramp_seconds
from dexproto import catalog


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "replay", help="play an episode's joint targets to the hand (HOST mode)",
        description="Play the joint targets recorded in an episode (its /telemetry servo "
                    "goals) to the hand in HOST mode, at the recorded timing, after a slow "
                    "ramp from where the hand is to the first pose. Ctrl-C stops and relaxes "
                    "the hand.",
        epilog="examples:\n  dexlink replay session/episode_0003.mcap --sim\n"
               "  dexlink replay episode_0003.mcap --port /dev/ttyACM0 --ramp 5 --speed 0.5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("episode", type=Path, metavar="EPISODE", help="an episode file (.mcap)")
    add_board_args(p)
    p.add_argument("--ramp", type=float, default=2.0, metavar="S",
                   help="seconds to reach the first pose (default 2; longer for big moves)")
    p.add_argument("--ramp-speed", type=float, default=30.0, metavar="DEG/S",
                   help="the ramp is slowed so no joint moves faster than this (default 30)")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument("--source", choices=("goal", "exo"), default="goal",
                   help="replay the recorded servo goals (default) or exoskeleton angles")
    p.add_argument("--end", choices=("idle", "hold"), default="idle",
                   help="after the last target: relax the hand (idle, default) or leave it in "
                        "HOST mode holding the last pose until the watchdog acts (hold)")
    p.set_defaults(func=replay)


def replay(args) -> int:
    if args.speed <= 0:
        raise UserError("--speed must be positive, got %g" % args.speed)
    t_ns, targets = load_targets(args.episode, args.source)
    with open_link(board_options(args)) as link:
        n = link.board.n_joints
        if targets.shape[1] != n:
            raise UserError("%s has %d joints per sample but the board runs %d: replay it on "
                            "the hand it was recorded with" % (args.episode, targets.shape[1], n))
        start = current_pose(link)
        nacks = link.subscribe("NACK")  # TARGETS are not waited for: refusals come here
        link.set_mode(catalog.MODE_HOST)
        try:
            seconds, biggest_deg = ramp_seconds(start, targets[0], args.ramp, args.ramp_speed)
            print("ramping to the first pose over %.1f s (largest move %.1f deg)" % (seconds, biggest_deg))
            ramp(link, start, targets[0], seconds)
            span = (t_ns[-1] - t_ns[0]) / 1e9 / args.speed
            print("playing %d targets over %.1f s" % (len(t_ns), span), flush=True)
            result = play(link, t_ns, targets, args.speed)
            print("sent %d targets in %.1f s; late by %.2f ms median, %.2f ms worst" % (
                result["sent"], result["seconds"], result["late_median_ms"], result["late_worst_ms"]))
        finally:
            if args.end == "idle":
                link.set_mode(catalog.MODE_IDLE)
        check_not_refused(nacks)
    return 0
