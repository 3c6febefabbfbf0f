"""`dexlink inspect`: what an episode (or every episode of a session) holds."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect", help="streams, real rates, gaps and drops of recorded episodes",
        description="For each episode: a table of its streams with message counts, measured "
                    "rates, gaps (intervals over 1.5x the usual one) and drops, plus duration, "
                    "task and success mark. --plot also writes, next to each episode, "
                    "NAME_plot.png (joint traces, goals vs present positions, contact "
                    "measures) and NAME_tactile.png (a contact sheet of tactile frames).",
        epilog="examples:\n  dexlink inspect sessions/cube\n  dexlink inspect "
               "sessions/cube/episode_0000.mcap --plot",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", type=Path, metavar="EPISODE_OR_DIR",
                   help="an episode .mcap file or a session directory")
    p.add_argument("--plot", action="store_true", help="write the plot and contact-sheet PNGs")
    p.add_argument("--plot-dir", type=Path, metavar="DIR",
                   help="where to write the PNGs (default: next to each episode)")
    p.set_defaults(func=inspect_command)


def inspect_command(args) -> int:
    from dexlink.ui.reports import print_inspection

    return print_inspection(args.target, args.plot, args.plot_dir)
