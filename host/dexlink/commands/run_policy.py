"""`dexlink run-policy`: a trained policy drives the hand for one episode, recorded as MCAP
(dexlink.learn.deploy_episode behind options)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def register(subparsers) -> None:
    from dexlink.cli_support import add_board_args, add_policy_episode_args, add_world_args

    p = subparsers.add_parser(
        "run-policy", help="run a trained policy on the hand for one recorded episode",
        description="Load the policy of a `dexlink train` run (EMA weights of its last "
                    "checkpoint) and let it drive the hand in HOST mode: observations are "
                    "assembled from the live telemetry and cameras by the function export "
                    "aligns datasets with; inference runs on its own thread beside the link; "
                    "each action chunk goes to the board timed from its observation's capture "
                    "time (timed points the firmware interpolates, or TARGETS streamed by the "
                    "host on older firmware). A NaN or infinite action is refused and ends the "
                    "episode. The episode is recorded like `dexlink record` (inspect it with "
                    "`dexlink inspect`); with --sim --world it ends when the world judges the "
                    "task. In a world the wrist is the world operator's arm. On a terminal, "
                    "the space bar is an e-stop; a status line each second shows inference "
                    "time, chunk age and the target rate.",
        epilog="examples:\n  dexlink run-policy runs/cube --sim --world lift_cube --world-seed 7\n"
               "  dexlink run-policy runs/cube --port /dev/ttyACM0 --max-seconds 20 "
               "--out sessions/policy",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, metavar="RUN", help="a run directory of dexlink train")
    add_board_args(p)
    add_world_args(p)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="session directory for the episode (default sessions/policy-<date-time>)")
    p.add_argument("--tactile", action="append", default=[], metavar="NAME=DEVICE[:PRESET]",
                   help="a visuotactile camera of a real rig, as `dexlink record` takes it")
    p.add_argument("--realsense", nargs="?", const="", metavar="SERIAL",
                   help="an Intel RealSense RGB-D camera (optionally by serial number)")
    add_policy_episode_args(p)
    p.set_defaults(func=run_policy)


def run_policy(args) -> int:
    import time

    from dexlink.cli_support import (
        board_options,
        check_policy_episode_args,
        tactile_spec,
        world_options,
    )
    from dexlink.errors import UserError

    if args.world and not args.sim:
        raise UserError("--world needs --sim: a world runs under the virtual board")
    check_policy_episode_args(args)
    world = world_options(args)
    from dexlink.learn import load_policy
    from dexlink.learn.deploy_episode import EpisodeOptions, run_policy_episode

    policy = load_policy(args.run)
    import torch
    torch.set_num_threads(args.threads)
    out = args.out or Path("sessions") / ("policy-" + time.strftime("%Y%m%d-%H%M%S"))
    options = EpisodeOptions(dataclasses.replace(board_options(args), world=world), out,
                             task="policy %s" % args.run.name, max_seconds=args.max_seconds,
                             steps=args.inference_steps,
                             tactile=tuple(tactile_spec(t) for t in args.tactile),
                             realsense=args.realsense)
    print("running %s (%s) on %s" % (args.run, ",".join(policy.config.obs),
                                      "the world %s, seed %d" % (world.task, world.seed)
                                      if world else "the board"), flush=True)
    say = lambda line: print(line, flush=True)  # noqa: E731
    if sys.stdin.isatty():
        from dexlink.ui.dashboard import Keys

        print("space: e-stop (torque off)", flush=True)
        with Keys() as keys:
            outcome = run_policy_episode(policy, options, say, lambda: keys.read(0) == " ")
    else:
        outcome = run_policy_episode(policy, options, say)
    print("%s: %s after %.1f s; %d chunks, inference %.0f ms median, %.0f target messages/s"
          % (outcome.path, outcome.verdict or "no verdict", outcome.seconds, outcome.chunks,
             outcome.inference_ms, outcome.target_hz))
    if outcome.reason and outcome.verdict:
        print("  the world: " + outcome.reason)
    if outcome.error:
        raise UserError("the policy stopped: %s (the episode is kept in %s)"
                        % (outcome.error, outcome.path))
    return 0
