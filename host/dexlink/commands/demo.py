"""`dexlink demo`: the whole rig without hardware, from a flashed virtual board to a dataset."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from dexlink.commands.session import run_command


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
    p.set_defaults(func=lambda a: run_command(demo, a))


def step(text: str) -> None:
    print("\n== %s" % text, flush=True)


def demo(args) -> int:
    from dexlink.commands.export import export_command
    from dexlink.commands.inspect import inspect_command
    from dexlink.commands.record import record

    out = args.out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    session = out / ("session-" + stamp)
    plots = out / ("plots-" + stamp)
    dataset = out / ("lerobot-" + stamp)
    step("virtual board, TELEOP with the simulated operator, two episodes of %g s" % args.duration)
    rec = argparse.Namespace(
        command="record", sim=True, port=None, baud=1_000_000, hand=args.hand,
        task="grasp the virtual object", episodes=2, duration=args.duration, out=session,
        mode="teleop", tactile=[], realsense=None, sim_cameras=True, no_keys=True)
    status = record(rec)
    if status:
        return status
    step("inspect")
    status = inspect_command(argparse.Namespace(target=session, plot=True, plot_dir=plots))
    if status:
        return status
    step("export to LeRobot v3.0 at 30 fps")
    status = export_command(argparse.Namespace(session=session, format="lerobot", fps=30,
                                               out=dataset, robot_type="dexlink-virtual"))
    if status:
        return status
    step("where everything is")
    print("session (MCAP episodes + session.json): %s" % session.resolve())
    print("plots and tactile contact sheets:        %s" % plots.resolve())
    print("LeRobot dataset:                         %s" % dataset.resolve())
    print("open an episode in Foxglove, or: dexlink inspect %s" % session)
    return 0
