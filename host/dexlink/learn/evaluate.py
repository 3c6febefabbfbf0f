"""Success of policies in a physics world (`dexlink eval`): N seeded episodes each, every
one kept as MCAP, success rates with 95 % Wilson intervals and completion times, written
to DIR/results.json and drawn in DIR/results.png. All of it is simulation.

    results = evaluate([Contender.policy(Path("runs/cube")),
                        Contender.replay(Path("demos/episode_0000.mcap"))],
                       EvalOptions("lift_cube", episodes=10, seed=100, out=Path("eval")))

Episode k of every contender runs in the world of seed `seed + k` (the same object
placement and the same operator arm for all): the comparison is paired. The baselines
are contenders too: the open-loop replay of a recorded demonstration, and any other run
(the same policy trained without touch, --obs state,rgb).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dexlink.board import BoardOptions
from dexlink.errors import UserError

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (successes of n); (0, 1) for n 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At 0 or n successes a bound is exactly 0 or 1 (rounding would leave a hair off it).
    return (0.0 if successes == 0 else max(0.0, centre - half),
            1.0 if successes == n else min(1.0, centre + half))


@dataclass
class Contender:
    name: str
    kind: str  # "policy" or "replay"
    source: Path  # the run directory, or the demonstration's episode file

    @classmethod
    def policy(cls, run: Path, name: str | None = None) -> Contender:
        return cls(name or Path(run).resolve().name, "policy", Path(run))

    @classmethod
    def replay(cls, episode: Path) -> Contender:
        return cls("replay " + Path(episode).stem, "replay", Path(episode))


@dataclass(frozen=True)
class EvalOptions:
    task: str
    episodes: int
    seed: int
    out: Path
    skill: float = 0.8  # the world operator's (their arm carries the wrist)
    max_seconds: float | None = None
    steps: int | None = None  # DDIM steps per chunk


@dataclass
class Tally:
    contender: Contender
    obs: str = ""
    episodes: list = field(default_factory=list)  # dicts: seed, verdict, seconds, file, error

    def summary(self) -> dict:
        n = len(self.episodes)
        wins = [e for e in self.episodes if e["verdict"] == "success"]
        lo, hi = wilson(len(wins), n)
        return {"name": self.contender.name, "kind": self.contender.kind,
                "source": str(self.contender.source), "obs": self.obs, "episodes": n,
                "successes": len(wins), "success_rate": len(wins) / n if n else 0.0,
                "ci95": [lo, hi],
                "mean_time_s": (sum(e["seconds"] for e in wins) / len(wins)) if wins else None,
                "runs": self.episodes}


def unique_names(contenders: list[Contender]) -> None:
    seen: dict = {}
    for c in contenders:
        seen[c.name] = seen.get(c.name, 0) + 1
        if seen[c.name] > 1:
            c.name = "%s (%d)" % (c.name, seen[c.name])


def evaluate(contenders: list[Contender], options: EvalOptions,
             progress: Callable[[str], None] | None = None) -> dict:
    """Run every contender's episodes; write and return the results."""
    from dexlink.learn import load_policy
    from dexlink.learn.deploy_episode import (
        EpisodeOptions,
        load_replay,
        replay_episode,
        run_policy_episode,
    )
    from dexlink.sim.worldbridge import WorldOptions

    unique_names(contenders)
    # Everything is loaded before the first episode: a bad RUN or EPISODE fails at once.
    actors = [load_policy(c.source) if c.kind == "policy" else load_replay(c.source)
              for c in contenders]
    options.out.mkdir(parents=True, exist_ok=True)
    tallies = []
    for c, actor in zip(contenders, actors):
        tally = Tally(c, ",".join(actor.config.obs) if c.kind == "policy" else "replay")
        tallies.append(tally)
        for k in range(options.episodes):
            seed = options.seed + k
            world = WorldOptions(options.task, seed=seed, skill=options.skill)
            episode = EpisodeOptions(BoardOptions(world=world), options.out / safe(c.name),
                                     task="eval %s" % c.name, max_seconds=options.max_seconds,
                                     steps=options.steps)
            if c.kind == "policy":
                outcome = run_policy_episode(actor, episode)
            else:
                outcome = replay_episode(actor, episode)
            tally.episodes.append({"seed": seed, "verdict": outcome.verdict or "undecided",
                                   "seconds": round(outcome.seconds, 3),
                                   "reason": outcome.reason, "error": outcome.error,
                                   "file": str(outcome.path.relative_to(options.out))
                                   if outcome.path else None,
                                   "inference_ms": round(outcome.inference_ms, 1)})
            if progress:
                progress("%s: episode %d/%d (seed %d): %s after %.1f s%s" % (
                    c.name, k + 1, options.episodes, seed, outcome.verdict or "undecided",
                    outcome.seconds, " (%s)" % outcome.error if outcome.error else ""))
    results = {"simulation": True,
               "note": "simulation: a MuJoCo world under the virtual board, not a real hand",
               "world": options.task, "episodes": options.episodes, "seed": options.seed,
               "skill": options.skill, "policies": [t.summary() for t in tallies]}
    (options.out / "results.json").write_text(json.dumps(results, indent=1))
    return results


def safe(name: str) -> str:
    """A directory name for a contender."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def load_results(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError("%s: not readable results (%s)" % (path, e)) from None


def results_table(results: dict):
    """A rich Table of the results."""
    from rich.table import Table

    table = Table(title="%s, %d seeded episodes each from seed %d (simulation)"
                  % (results["world"], results["episodes"], results["seed"]))
    for col in ("policy", "observes", "successes", "rate", "95% CI (Wilson)", "mean time"):
        table.add_column(col, justify="left" if col in ("policy", "observes") else "right")
    for p in results["policies"]:
        lo, hi = p["ci95"]
        table.add_row(p["name"], p["obs"], "%d/%d" % (p["successes"], p["episodes"]),
                      "%.0f%%" % (100 * p["success_rate"]), "%.0f-%.0f%%" % (100 * lo, 100 * hi),
                      "%.1f s" % p["mean_time_s"] if p["mean_time_s"] is not None else "-")
    return table


def plot_results(results: dict, path: Path) -> Path:
    """Success rates with their Wilson intervals as a bar chart (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    policies = results["policies"]
    rates = [100 * p["success_rate"] for p in policies]
    lo = [max(0.0, r - 100 * p["ci95"][0]) for r, p in zip(rates, policies)]
    hi = [max(0.0, 100 * p["ci95"][1] - r) for r, p in zip(rates, policies)]
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(policies), 4), dpi=100)
    colours = ["#888888" if p["kind"] == "replay" else "#3b75af" for p in policies]
    ax.bar(range(len(policies)), rates, yerr=[lo, hi], capsize=6, color=colours)
    ax.set_xticks(range(len(policies)))
    ax.set_xticklabels(["%s\n%s" % (p["name"], p["obs"]) for p in policies], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("success (%), 95% Wilson interval")
    ax.set_title("%s in simulation, %d episodes each" % (results["world"], results["episodes"]),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
