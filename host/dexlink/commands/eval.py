"""`dexlink eval`: success rates of policies in a physics world (dexlink.learn.evaluate)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    from dexlink.cli_support import add_policy_episode_args

    p = subparsers.add_parser(
        "eval", help="success rates of trained policies in a physics world (simulation)",
        description="Run N seeded episodes per policy in a physics world under the virtual "
                    "board (episode k of every policy in the world of seed S + k: the same "
                    "object placement and operator arm for all), each kept as MCAP in "
                    "DIR/<policy>/. Prints the success rate with a 95%% Wilson interval and the "
                    "mean completion time, draws DIR/results.png and writes DIR/results.json. "
                    "Baselines: --baseline-replay plays a recorded demonstration open loop; the "
                    "same policy trained without touch (--obs state,rgb) is another RUN. "
                    "Simulation results, labelled so.",
        epilog="examples:\n  dexlink eval runs/cube runs/cube-vision --world lift_cube "
               "--episodes 20 --seed 100 --out eval/cube\n  dexlink eval runs/cube --world "
               "lift_cube --episodes 10 --seed 100 --out eval/cube "
               "--baseline-replay demos/episode_0000.mcap",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories of dexlink train")
    p.add_argument("--world", required=True, metavar="TASK", help="the world's task (dexlink world --list)")
    p.add_argument("--episodes", type=int, default=10, metavar="N",
                   help="episodes per policy (default 10)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="the first episode's world seed (default 0; use seeds the "
                        "demonstrations did not)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="where the episodes, results.json and results.png go")
    p.add_argument("--baseline-replay", type=Path, action="append", default=[], metavar="EPISODE",
                   help="also replay this recorded demonstration open loop (repeatable)")
    p.add_argument("--skill", type=float, default=0.8, metavar="K",
                   help="the world operator's skill, 0..1: their arm carries the wrist (default 0.8)")
    add_policy_episode_args(p)
    p.set_defaults(func=eval_command)


def eval_command(args) -> int:
    from dexlink.cli_support import check_policy_episode_args
    from dexlink.errors import UserError

    if args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    if not 0 <= args.skill <= 1:
        raise UserError("--skill must be between 0 and 1 (got %g)" % args.skill)
    check_policy_episode_args(args)
    for episode in args.baseline_replay:
        if not episode.is_file():
            raise UserError("%s: no such episode file (--baseline-replay)" % episode)
    try:
        from dexlink.world import tasks
    except ImportError as e:
        raise UserError("physics worlds are not available in this installation (%s)" % e) from None
    tasks.get(args.world)  # an unknown task lists the known ones
    from dexlink.learn import require
    require()
    import torch
    from rich.console import Console

    from dexlink.learn.evaluate import Contender, EvalOptions, evaluate, plot_results, results_table

    torch.set_num_threads(args.threads)
    contenders = [Contender.policy(r) for r in args.runs]
    contenders += [Contender.replay(e) for e in args.baseline_replay]
    options = EvalOptions(args.world, args.episodes, args.seed, args.out, args.skill,
                          args.max_seconds, args.inference_steps)
    results = evaluate(contenders, options, lambda line: print(line, flush=True))
    Console(width=None if sys.stdout.isatty() else 120).print(results_table(results))
    png = plot_results(results, args.out / "results.png")
    print("results: %s, %s (simulation)" % (args.out / "results.json", png))
    return 0
