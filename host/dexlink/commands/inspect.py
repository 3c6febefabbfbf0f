"""`dexlink inspect`: what an episode (or every episode of a session) holds."""
from __future__ import annotations

import argparse
import sys
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
    from rich.console import Console

    from dexlink.errors import UserError, error_text

    from dexlink.record.inspect import contact_sheet, plot_episode, print_report, report
    from dexlink.record.reader import episode_files, read_episode
    from dexlink.record.session import Session

    # Piped output has no width: give the stream names room rather than cut them.
    console = Console() if sys.stdout.isatty() else Console(width=120)
    try:
        files = episode_files(args.target)
    except (OSError, ValueError) as e:
        print("dexlink inspect: %s" % e, file=sys.stderr)
        return 1
    if args.target.is_dir() and (args.target / "session.json").exists():
        left = Session(args.target).unindexed()
        if left:
            console.print("not in the index (unfinished or cut short; see `dexlink recover`): "
                          + ", ".join(p.name for p in left))
    status = 0
    for path in files:
        try:
            ep = read_episode(path) if args.plot else None
            rep = report(path, ep)
        except (OSError, ValueError) as e:
            print("dexlink inspect: %s" % error_text(e), file=sys.stderr)
            status = 1
            continue
        print_report(rep, console)
        if args.plot:
            where = args.plot_dir or path.parent
            try:
                where.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UserError("%s: cannot write the plots there: %s" % (where, e.strerror or e))
            plot = plot_episode(ep, where / (path.stem + "_plot.png"))
            sheet = contact_sheet(ep, where / (path.stem + "_tactile.png"))
            console.print("plots: %s%s" % (plot, ", %s" % sheet if sheet else ""))
    return status
