"""`dexlink demo`: the whole rig without hardware, from a flashed virtual board to a dataset,
through the same library calls and reports as `dexlink record`, `inspect` and `export`."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from dexlink.board import BoardOptions
from dexlink.record.recording import RecordOptions, record_session
from dexlink.ui.reports import (
    print_export,
    print_inspection,
    print_record_progress,
    print_record_result,
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="virtual board -> teleop -> two recorded episodes -> inspect -> LeRobot",
        description="Run the rig with no hardware: flash the firmware into a virtual board "
                    "(the real MicroPython interpreter on a pseudo-terminal), switch to TELEOP "
                    "with the simulated operator, record two short episodes with simulated "
                    "tactile fingertip cameras and an RGB-D camera, inspect them with plots, "
                    "and export the session as a LeRobot dataset. Prints where everything is.",
        epilog="examples:\n  dexlink demo\n  dexlink demo --out /tmp/demo --duration 5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/demo"), metavar="DIR",
                   help="where to put the session, plots and dataset (default out/demo)")
    p.add_argument("--duration", type=float, default=4.0, metavar="S",
                   help="seconds per episode (default 4)")
    p.add_argument("--hand", metavar="HAND.toml", help="hand to simulate (default iso16)")
    p.set_defaults(func=demo)


def step(text: str) -> None:
    print("\n== %s" % text, flush=True)


def demo(args) -> int:
    out = args.out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    session = out / ("session-" + stamp)
    plots = out / ("plots-" + stamp)
    dataset = out / ("lerobot-" + stamp)
    step("virtual board, TELEOP with the simulated operator, two episodes of %g s" % args.duration)
    result = record_session(
        RecordOptions(task="grasp the virtual object", out=session, episodes=2,
                      duration_s=args.duration, sim_cameras=True,
                      board=BoardOptions(hand=Path(args.hand) if args.hand else None)),
        print_record_progress)
    print_record_result(result)
    if not result.ok:
        return 1
    step("inspect")
    status = print_inspection(session, plot=True, plot_dir=plots)
    if status:
        return status
    step("export to LeRobot v3.0 at 30 fps")
    print_export(session, dataset, "lerobot", fps=30, robot_type="dexlink-virtual")
    step("where everything is")
    print("session (MCAP episodes + session.json): %s" % session.resolve())
    print("plots and tactile contact sheets:        %s" % plots.resolve())
    print("LeRobot dataset:                         %s" % dataset.resolve())
    print("open an episode in Foxglove, or: dexlink inspect %s" % session)
    return 0
