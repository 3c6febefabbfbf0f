"""`dexlink eval-teleop`: teleop interfaces side by side in the physics world
(dexlink.world.interfaces_eval). Simulation."""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_INPUTS = "exo,glove,avp,camera"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-teleop", help="exoskeleton vs glove, headset and camera teleop (simulation)",
        description="Run N seeded episodes per teleop interface per task in the physics world: "
                    "the same simulated operator (episode k: world seed S + k, the same habits "
                    "and arm for every interface) through the exoskeleton (joint i drives joint "
                    "i) or a simulated device (a human hand of human proportions, the device's "
                    "published latency, error and dropouts) and the real retargeting. Prints "
                    "the success rate with a 95%% Wilson interval, the completion time and the "
                    "joint error each interface adds; writes DIR/results.json and "
                    "DIR/results.png. Simulation, labelled so everywhere.",
        epilog="examples:\n  dexlink eval-teleop --world lift_cube,pinch_lift --inputs "
               "exo,glove,avp,camera --episodes 10 --seed 0 --out eval/teleop\n"
               "  dexlink eval-teleop --world lift_cube --inputs exo,avp --episodes 3 "
               "--max-seconds 8 --out /tmp/teleop",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", required=True, metavar="TASK[,TASK...]",
                   help="the world's tasks (dexlink world --list)")
    p.add_argument("--inputs", default=DEFAULT_INPUTS, metavar="INPUT[,INPUT...]",
                   help="interfaces to compare (default %s)" % DEFAULT_INPUTS)
    p.add_argument("--episodes", type=int, default=10, metavar="N",
                   help="episodes per interface per task (default 10)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="first world seed (default 0)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="where results.json and results.png go")
    p.add_argument("--hand", default="iso16", metavar="HAND",
                   help="hand file name or path (default iso16)")
    p.add_argument("--skill", type=float, default=0.8, metavar="K",
                   help="the simulated operator's skill, 0..1 (default 0.8)")
    p.add_argument("--max-seconds", type=float, metavar="T",
                   help="end an episode after T s of world time (default: the task's limit)")
    p.set_defaults(func=eval_teleop_command)


def _names(text: str, option: str) -> tuple:
    from dexlink.errors import UserError

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UserError("%s: give at least one name" % option)
    return tuple(dict.fromkeys(names))


def eval_teleop_command(args) -> int:
    from dexlink.errors import UserError

    if not 0 <= args.skill <= 1:
        raise UserError("--skill must be between 0 and 1 (got %g)" % args.skill)
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise UserError("--max-seconds must be positive")
    try:
        from dexlink.world.interfaces_eval import (
            TeleopEvalOptions,
            evaluate_interfaces,
            results_table,
        )
    except ImportError as e:
        raise UserError("teleop evaluation is not available in this installation (%s); "
                        "pip install 'dexlink[retarget]'" % e) from None
    import torch
    from rich.console import Console

    torch.set_num_threads(1)  # the optimiser's tensors are tiny: threads only cost time
    options = TeleopEvalOptions(args.hand, _names(args.world, "--world"),
                                _names(args.inputs, "--inputs"), args.episodes, args.seed,
                                args.out, args.skill, args.max_seconds)
    options.check()
    print("SIMULATION: simulated operators and devices in the physics world", flush=True)
    results = evaluate_interfaces(options, lambda line: print(line, flush=True))
    Console().print(results_table(results))
    print("results: %s, %s (simulation)" % (args.out / "results.json", args.out / "results.png"))
    return 0
