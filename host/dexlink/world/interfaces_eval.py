"""Teleop interfaces side by side in the physics world (`dexlink eval-teleop`): N seeded
episodes per interface per task, success rates with 95 % Wilson intervals, completion
times and the joint-space error each interface adds; DIR/results.json, DIR/results.png.
All of it is simulation.

Episode k of every interface runs in the world of seed `seed + k` with the same operator
(the same habits, the same arm): the comparison is paired, and only the hand input differs.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dexlink.errors import UserError
from dexlink.learn.evaluate import wilson
from dexlink.world import tasks
from dexlink.world.interfaces import INTERFACES, PROFILES
from dexlink.world.interfaces_episode import EpisodeResult, run_episode

LABEL = "simulation: simulated operators and devices in the physics world, not people"


@dataclass(frozen=True)
class TeleopEvalOptions:
    hand: str
    tasks: tuple
    inputs: tuple
    episodes: int
    seed: int
    out: Path
    skill: float = 0.8
    max_seconds: float | None = None  # cut episodes short (tests, quick looks)

    def check(self) -> None:
        for t in self.tasks:
            tasks.get(t)  # UnknownTask names the valid ones
        bad = [i for i in self.inputs if i not in INTERFACES]
        if bad:
            raise UserError("unknown input %s; the inputs are: %s"
                            % (", ".join(map(repr, bad)), ", ".join(INTERFACES)))
        if self.episodes < 1:
            raise UserError("--episodes must be at least 1, got %d" % self.episodes)


def summarise(input_name: str, task: str, runs: list[EpisodeResult]) -> dict:
    wins = [r for r in runs if r.success]
    lo, hi = wilson(len(wins), len(runs))
    times = [r.time_s for r in wins]
    row = {"input": input_name, "task": task, "episodes": len(runs), "successes": len(wins),
           "success_rate": len(wins) / len(runs), "ci95": [lo, hi],
           "mean_time_s": float(np.mean(times)) if times else None,
           "median_time_s": float(np.median(times)) if times else None,
           "joint_error_deg": float(np.mean([r.error_deg for r in runs])),
           "shape_error_deg": float(np.mean([r.shape_error_deg for r in runs])),
           "frames_lost": int(sum(r.lost for r in runs)),
           "retarget_ms": float(np.mean([r.retarget_mean_ms for r in runs])),
           "simulation": True,
           "episodes_detail": [r.as_dict() for r in runs]}
    return row


def evaluate_interfaces(options: TeleopEvalOptions,
                        progress: Callable[[str], None] | None = None) -> dict:
    options.check()
    options.out.mkdir(parents=True, exist_ok=True)
    from dexlink import hwconfig

    hand_path = hwconfig.hand_path(options.hand)
    retargeters: dict = {}
    rows = []
    for task in options.tasks:
        for name in options.inputs:
            runs = []
            for k in range(options.episodes):
                seed = options.seed + k
                r = run_episode(hand_path, task, name, seed, options.skill, retargeters,
                                options.max_seconds)
                runs.append(r)
                if progress:
                    progress("%s %s episode %d/%d (seed %d): %s in %.1f s"
                             % (task, name, k + 1, options.episodes, seed, r.outcome, r.time_s))
            rows.append(summarise(name, task, runs))
    results = {"simulation": True, "label": LABEL, "hand": str(options.hand),
               "tasks": list(options.tasks), "episodes": options.episodes, "seed": options.seed,
               "skill": options.skill, "inputs": rows,
               "devices": {n: {"label": p.label, "rate_hz": p.rate_hz, "latency_s": p.latency_s,
                               "angle_error_deg": p.angle_error_deg,
                               "fingertip_error_m": p.fingertip_error_m, "method": p.method,
                               "sources": p.sources}
                           for n, p in PROFILES.items() if n in options.inputs}}
    (options.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    plot_results(results, options.out / "results.png")
    return results


def results_table(results: dict):
    from rich.table import Table

    table = Table(title="Teleop interfaces on %s, %d seeded episodes each from seed %d "
                        "(SIMULATION)" % (", ".join(results["tasks"]), results["episodes"],
                                          results["seed"]))
    for col in ("task", "input", "wins", "rate", "95% CI", "time", "joint err", "shape err"):
        table.add_column(col, justify="left" if col in ("task", "input") else "right")
    for r in results["inputs"]:
        lo, hi = r["ci95"]
        table.add_row(r["task"], r["input"], "%d/%d" % (r["successes"], r["episodes"]),
                      "%.0f%%" % (100 * r["success_rate"]), "%.0f-%.0f%%" % (100 * lo, 100 * hi),
                      "%.1f s" % r["mean_time_s"] if r["mean_time_s"] is not None else "-",
                      "%.1f deg" % r["joint_error_deg"], "%.1f deg" % r["shape_error_deg"])
    table.caption = ("95% CI: Wilson score interval; time: mean of the successes; joint err: "
                     "|target - operator's joints| per tick, latency included; shape err: "
                     "retargeted posture vs the joints at capture. " + LABEL)
    return table


def plot_results(results: dict, path: Path) -> Path:
    """Success per interface per task with Wilson intervals, and the joint error (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = results["inputs"]
    task_names = results["tasks"]
    inputs = list(dict.fromkeys(r["input"] for r in rows))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(4 + 2.2 * len(task_names), 4), dpi=100,
                                  gridspec_kw={"width_ratios": [max(2, len(task_names)), 1.3]})
    width = 0.8 / len(inputs)
    for i, name in enumerate(inputs):
        mine = {r["task"]: r for r in rows if r["input"] == name}
        xs, rates, err = [], [], [[], []]
        for k, t in enumerate(task_names):
            r = mine[t]
            xs.append(k + (i - (len(inputs) - 1) / 2) * width)
            rates.append(100 * r["success_rate"])
            err[0].append(rates[-1] - 100 * r["ci95"][0])
            err[1].append(100 * r["ci95"][1] - rates[-1])
        ax.bar(xs, rates, width, yerr=err, capsize=3, label=name)
        ax2.bar(i, np.mean([m["joint_error_deg"] for m in mine.values()]), color="C%d" % i)
    ax.set_xticks(range(len(task_names)))
    ax.set_xticklabels(task_names, fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success (%), 95% Wilson interval")
    ax.legend(fontsize=8)
    ax.set_title("SIMULATION: %d episodes each" % results["episodes"], fontsize=10)
    ax2.set_xticks(range(len(inputs)))
    ax2.set_xticklabels(inputs, fontsize=8)
    ax2.set_ylabel("mean joint error added (deg)")
    ax2.set_title("joint error (simulation)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
