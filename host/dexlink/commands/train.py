"""`dexlink train`: a diffusion policy from a dexlink-exported LeRobot v3.0 dataset."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a diffusion policy on an exported LeRobot dataset",
        description="Train a Diffusion Policy (Chi et al.: 1-D temporal U-Net with FiLM "
                    "conditioning, DDPM training, DDIM sampling) on a LeRobot v3.0 dataset "
                    "written by `dexlink export --format lerobot`. It predicts the hand's "
                    "joint goals (every action.* vector of the dataset) from the last 2 "
                    "frames of the chosen observations; checkpoints (safetensors, EMA "
                    "weights for deployment) go to RUN/checkpoints, the config to "
                    "RUN/config.json, the loss to RUN/log.jsonl. Ctrl-C saves a checkpoint. "
                    "Runs unchanged under torchrun (DistributedDataParallel; --batch-size "
                    "is per process).",
        epilog="examples:\n  dexlink train datasets/cube --out runs/cube\n"
               "  dexlink train datasets/cube --out runs/cube-vision --obs state,rgb --steps 5000\n"
               "  dexlink train datasets/cube --out runs/cube --resume --steps 8000\n"
               "  torchrun --nproc-per-node 2 -m dexlink train datasets/cube --out runs/cube\n"
               "  dexlink train datasets/cube --out runs/small --set down_dims=32,64,128 "
               "--set image_hw=48x64 --set crop_hw=44x58",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path, metavar="DATASET", help="a LeRobot v3.0 dataset directory")
    p.add_argument("--out", type=Path, required=True, metavar="RUN",
                   help="run directory (config, checkpoints, log)")
    p.add_argument("--obs", metavar="GROUPS",
                   help="what the policy observes, comma-separated from state, rgb, tactile "
                        "(default state,rgb,tactile)")
    p.add_argument("--tactile-as", choices=["images", "contact"],
                   help="tactile as camera images through a CNN, or as the contact measures "
                        "(area, intensity per finger; default contact)")
    p.add_argument("--steps", type=int, metavar="N", help="optimiser steps in all (default 3000)")
    p.add_argument("--batch-size", type=int, metavar="B",
                   help="frames per step and process (default 64)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-4)")
    p.add_argument("--warmup", type=int, metavar="N", help="warmup steps (default 500)")
    p.add_argument("--seed", type=int, help="seed of weights and batches (default 0)")
    p.add_argument("--save-every", type=int, metavar="N",
                   help="checkpoint every N steps (default 1000; always at the end)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to train (default auto: CUDA when present)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads per process (default: torch's, one per core; on a "
                        "shared machine fewer is often faster)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="a policy setting, e.g. down_dims=64,128,256, image_hw=72x96, "
                        "crop_hw=64x88, horizon=16, n_action_steps=8, inference_steps=10")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN from its last checkpoint (a larger --steps "
                        "extends it; the cosine decay then stretches to the new end)")
    # For the DistributedDataParallel test: each rank writes RUN/rank-N.sha256.
    p.add_argument("--write-rank-digests", action="store_true", dest="rank_digests",
                   help=argparse.SUPPRESS)
    p.set_defaults(func=train_command)


class LineProgress:
    """Progress as a line every `every_s` seconds and at the end of each task: what a log
    file (nohup, a cluster job) keeps, where a live bar would not show."""

    def __init__(self, every_s: float = 30.0):
        self.every_s = every_s
        self.tasks: list[dict] = []

    def add_task(self, description: str, total=None, completed: int = 0, **fields) -> int:
        now = time.monotonic()
        self.tasks.append({"description": description, "total": total, "completed": completed,
                           "start": completed, "t0": now, "shown": now, **fields})
        return len(self.tasks) - 1

    def advance(self, task: int, n: int = 1) -> None:
        self.update(task, completed=self.tasks[task]["completed"] + n)

    def update(self, task: int, completed=None, **fields) -> None:
        t = self.tasks[task]
        t.update(fields)
        if completed is not None:
            t["completed"] = completed
        now = time.monotonic()
        done = t["total"] is not None and t["completed"] >= t["total"]
        if done or now - t["shown"] >= self.every_s:
            t["shown"] = now
            print(self.line(t, now), flush=True)

    @staticmethod
    def line(t: dict, now: float) -> str:
        parts = ["%s %d/%s" % (t["description"], t["completed"], t["total"])]
        if "loss" in t:
            parts.append("loss %.4f" % t["loss"])
        if "rate" in t:
            parts.append("%.0f samples/s" % t["rate"])
        moved = t["completed"] - t["start"]
        if moved > 0 and t["total"]:
            left = (now - t["t0"]) * (t["total"] - t["completed"]) / moved
            parts.append("ETA %d:%02d" % divmod(int(left), 60))
        return "  ".join(parts)


def train_command(args) -> int:
    import os

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from dexlink.learn.run import TrainOptions, train_policy

    class Field(ProgressColumn):
        """A task field, formatted; blank for tasks without it (decoding videos)."""

        def __init__(self, name: str, fmt: str):
            super().__init__()
            self.name, self.fmt = name, fmt

        def render(self, task):
            value = task.fields.get(self.name)
            return Text("" if value is None else self.fmt % value)

    options = TrainOptions(**{k: v for k, v in vars(args).items()
                              if k in TrainOptions.__dataclass_fields__})
    if not sys.stdout.isatty():
        result = train_policy(options, LineProgress(), say=print)
    else:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   Field("loss", "loss %.4f"), Field("rate", "%.0f samples/s"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        rank0 = os.environ.get("RANK", "0") == "0"  # under torchrun, one progress bar
        with Progress(*columns, disable=not rank0) as progress:
            def say(line: str) -> None:  # above the bar, unwrapped, no rich markup
                progress.console.print(line, soft_wrap=True, markup=False, highlight=False)

            result = train_policy(options, progress, say=say)
    if result.main:
        print("trained to step %d (loss %.4f, %.0f samples/s) -> %s"
              % (result.step, result.loss, result.samples_per_s,
                 result.checkpoint or args.out / "checkpoints" / "last"))
    return 0
