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
                    "tactile fingertip cameras and an RGB-D camera, record lift_cube "
                    "episodes in the physics world (when installed), each judged by the world, "
                    "inspect them with plots, "
                    "and export the session as a LeRobot dataset. Prints where everything is.",
        epilog="examples:\n  dexlink demo\n  dexlink demo --out /tmp/demo --duration 5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/demo"), metavar="DIR",
                   help="where to put the session, plots and dataset (default out/demo)")
    p.add_argument("--duration", type=float, default=4.0, metavar="S",
                   help="seconds per episode (default 4)")
    p.add_argument("--hand", metavar="HAND.toml", help="hand to simulate (default iso16)")
    p.set_defaults(func=demo)


WORLD_TASK = "lift_cube"
# (seed, operator skill): measured to end one in success (~5 s) and one in failure (at the
# task's 15 s limit); the verdicts printed are the world's, the demo does not assume them.
WORLD_RUNS = ((3, 0.9), (1, 0.2))


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
    step("physics world %s through the firmware: %d episodes, each until the world judges it"
         % (WORLD_TASK, len(WORLD_RUNS)))
    world_session = out / ("world-" + stamp)
    recorded = record_world(world_session, args.hand)
    step("inspect")
    status = print_inspection(session, plot=True, plot_dir=plots)
    if recorded:
        status = status or print_inspection(world_session, plot=True,
                                             plot_dir=plots / "world")
    if status:
        return status
    step("export to LeRobot v3.0 at 30 fps")
    print_export(session, dataset, "lerobot", fps=30, robot_type="dexlink-virtual")
    step("where everything is")
    print("session (MCAP episodes + session.json): %s" % session.resolve())
    print("plots and tactile contact sheets:        %s" % plots.resolve())
    print("LeRobot dataset:                         %s" % dataset.resolve())
    if recorded:
        print("world session (%s, marked by the world): %s" % (WORLD_TASK,
                                                              world_session.resolve()))
    print("open an episode in Foxglove, or: dexlink inspect %s" % session)
    return 0


def record_world(session: Path, hand: str | None) -> bool:
    """WORLD_RUNS' episodes of the physics world into `session`, one board run each (a
    world gives one episode), and a plain count of the world's verdicts. False when
    physics worlds are not installed (the `world` extra) or nothing was kept: said, not fatal."""
    try:
        from dexlink.sim.worldbridge import WorldOptions
        from dexlink.world import tasks
        tasks.get(WORLD_TASK)
    except ImportError as e:
        print("world %s: skipped, physics worlds are not installed (%s); "
              "pip install 'dexlink[world]'" % (WORLD_TASK, e))
        return False
    outcomes = []
    for seed, skill in WORLD_RUNS:
        board = BoardOptions(hand=Path(hand) if hand else None,
                             world=WorldOptions(WORLD_TASK, seed=seed, skill=skill, hand=hand))
        result = record_session(RecordOptions(task=WORLD_TASK, out=session, board=board),
                                print_record_progress)
        print_record_result(result)
        for e in result.kept:
            outcomes.append("seed %d skill %g: %s after %.1f s" % (
                seed, skill, e["mark"] or "undecided", e["duration_s"]))
        if not result.kept:
            outcomes.append("seed %d skill %g: not recorded" % (seed, skill))
    wins = sum(": success " in o for o in outcomes)
    print("world %s: %d of %d succeeded (%s)" % (WORLD_TASK, wins, len(WORLD_RUNS),
                                                 "; ".join(outcomes)), flush=True)
    return any("not recorded" not in o for o in outcomes)
