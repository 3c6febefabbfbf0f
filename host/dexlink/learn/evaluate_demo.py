"""The learning loop in one command (`make learn-demo`): demonstrations in a world, export,
training, evaluation, the success table.

    python -m dexlink.learn.evaluate_demo --out out/learn-demo

1. Demonstrations: `--demos` episodes of --task (lift_cube; feel_lift is the world's touch
   task) recorded as `dexlink record --sim --world`
   records them (seeds 0..demos-1, the simulated operator at --skill); the ones the world
   judged a success are indexed in DIR/demos-success (the operator's own success rate is
   reported: a policy is measured against it).
2. Export to LeRobot v3.0 at 10 fps, the RGB camera at 64x48 (the contact measures of every
   tactile camera are always exported).
3. Two policies, trained side by side (one CPU thread each): with touch (state,rgb,tactile
   as contact measures) and vision only (state,rgb); a small image encoder and few steps
   so that it takes minutes on a CPU.
4. `dexlink eval` of both and the open-loop replay of the first successful demonstration
   on --episodes worlds of seeds 1000.. (unseen object placements), with the table.

Every stage reports progress; DIR/timings.json keeps how long each took. Simulation.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FPS = 10
IMAGE_SIZE = (64, 48)  # exported RGB (width, height); the policy's image_hw is the same
SMALL = ["--set", "image_hw=48x64", "--set", "crop_hw=44x58", "--set", "encoder_channels=16,32",
         "--set", "keypoints=16", "--set", "down_dims=32,64,128"]
POLICIES = (("touch", "state,rgb,tactile"), ("vision", "state,rgb"))
EVAL_SEED = 1000


def record_demonstration(out: Path, world) -> dict:
    """One world episode by the simulated operator into the session `out`, as `dexlink
    record --sim --world` records it, except that teleoperation (torque, and with it the
    world's clock) starts with the episode, as a policy's does (deploy_episode): the file
    holds the whole attempt however long the cameras took to start. Its index entry."""
    from dexlink.board import BoardOptions
    from dexlink.record.recording import RecordOptions, open_recording, run_world_episode
    from dexproto.catalog import MODE_IDLE, MODE_TELEOP

    with open_recording(RecordOptions(task=world.task, out=out, mode=MODE_IDLE,
                                      board=BoardOptions(world=world))) as rec:
        rec.link.set_mode(MODE_TELEOP)
        run_world_episode(rec.recorder, rec.virtual.world)
    result = rec.result()
    return result.kept[-1] if result.kept else {"mark": "", "file": None}


def collect(root: Path, task: str, demos: int, skill: float, say) -> tuple[Path, list]:
    """Record the demonstrations; index the successful ones in root/demos-success. Seeds
    already recorded (root/demos.json) are kept: an interrupted demo goes on from there."""
    from dexlink.board import BoardError
    from dexlink.record.session import Session
    from dexlink.sim.worldbridge import WorldOptions

    good = Session(root / "demos-success", task)
    done_path = root / "demos.json"
    done = json.loads(done_path.read_text()) if done_path.is_file() else {}
    for seed in range(demos):
        if str(seed) not in done:
            world = WorldOptions(task, seed=seed, skill=skill)
            for attempt in (1, 2):  # a virtual board that failed to start gets one more go
                try:
                    entry = record_demonstration(root / "demos", world)
                    break
                except BoardError as e:
                    say("  seed %d: %s%s" % (seed, e, "; again" if attempt == 1 else "; skipped"))
                    entry = {"mark": "board failed", "file": None}
            if entry["mark"] == "success":
                target = good.dir / entry["file"]
                if not target.exists():
                    os.link(root / "demos" / entry["file"], target)
                good.add(target, **{k: v for k, v in entry.items() if k != "file"})
            done[str(seed)] = entry["mark"] or "undecided"
            done_path.write_text(json.dumps(done, indent=1))
        say("  demonstration %d/%d (seed %d): %s" % (seed + 1, demos, seed, done[str(seed)]))
    marks = [done[str(seed)] for seed in range(demos) if done[str(seed)] != "board failed"]
    return good.dir, marks


def train_both(dataset: Path, root: Path, steps: int, batch: int, say) -> dict:
    """Both policies at once, a process and a CPU thread each; progress from their logs."""
    procs = {}
    for name, obs in POLICIES:
        run = root / "runs" / name
        if last_log(run, "step") == steps:
            say("  %s: trained already (%s)" % (name, run))
            continue
        log = open(root / ("train-%s.log" % name), "w")
        cmd = [sys.executable, "-m", "dexlink", "train", str(dataset), "--out", str(run),
               "--obs", obs, "--steps", str(steps), "--batch-size", str(batch),
               "--warmup", str(min(200, steps // 10)), "--threads", "1",
               "--save-every", str(steps), *SMALL]
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), run, log)
    while any(p.poll() is None for p, _, _ in procs.values()):
        time.sleep(10)
        say("  training: " + ", ".join("%s %s" % (n, last_log(run)) for n, (_, run, _) in procs.items()))
    for name, (p, _, log) in procs.items():
        log.close()
        if p.returncode != 0:
            sys.exit("learn-demo: training %s failed; see %s" % (name, log.name))
    return {name: last_log(root / "runs" / name, "samples_per_s") for name, _ in POLICIES}


def last_log(run: Path, key: str | None = None):
    """The latest line of a run's log.jsonl: 'step N loss L' (or one of its fields)."""
    try:
        lines = (run / "log.jsonl").read_text().splitlines()
        entry = json.loads(lines[-1])
    except (OSError, ValueError, IndexError):
        return None if key else "starting"
    return entry.get(key) if key else "step %d loss %.3f" % (entry["step"], entry["loss"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("out/learn-demo"))
    ap.add_argument("--task", default="lift_cube", help="the world's task (default lift_cube)")
    ap.add_argument("--demos", type=int, default=20, help="demonstrations recorded (default 20)")
    ap.add_argument("--skill", type=float, default=0.9, help="the operator's skill (default 0.9)")
    ap.add_argument("--steps", type=int, default=800, help="training steps per policy (default 800)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--episodes", type=int, default=6, help="evaluation episodes per policy (default 6)")
    args = ap.parse_args(argv)
    from rich.console import Console

    from dexlink.learn.evaluate import (
        Contender,
        EvalOptions,
        evaluate,
        plot_results,
        results_table,
        wilson,
    )
    from dexlink.record.export import export_lerobot

    say = lambda line: print(line, flush=True)  # noqa: E731
    root = args.out
    root.mkdir(parents=True, exist_ok=True)
    timings, t_all = {}, time.monotonic()

    t = time.monotonic()
    say("[1/4] recording %d demonstrations of %s (simulated operator, skill %g)"
        % (args.demos, args.task, args.skill))
    session, marks = collect(root, args.task, args.demos, args.skill, say)
    timings["collect_s"] = time.monotonic() - t
    wins = marks.count("success")
    if wins < 2:
        sys.exit("learn-demo: only %d successful demonstration(s); nothing to learn from" % wins)

    t = time.monotonic()
    say("[2/4] exporting the %d successful demonstrations (LeRobot v3.0, %d fps)" % (wins, FPS))
    _, frames, _ = export_lerobot(session, root / "dataset", fps=FPS, cameras=["rgb"],
                                  image_size=IMAGE_SIZE)
    timings["export_s"] = time.monotonic() - t

    t = time.monotonic()
    say("[3/4] training with touch and vision-only, %d steps of %d (%d frames)"
        % (args.steps, args.batch_size, frames))
    rates = train_both(root / "dataset", root, args.steps, args.batch_size, say)
    timings["train_s"] = time.monotonic() - t
    timings["train_samples_per_s"] = rates

    t = time.monotonic()
    say("[4/4] evaluating on %d unseen worlds each (seeds %d..)" % (args.episodes, EVAL_SEED))
    demo = sorted(Path(session).glob("*.mcap"))[0]
    contenders = [Contender.policy(root / "runs" / n, "%s policy" % n) for n, _ in POLICIES]
    contenders.append(Contender.replay(demo))
    results = evaluate(contenders, EvalOptions(args.task, args.episodes, EVAL_SEED,
                                               root / "eval", args.skill),
                       lambda line: say("  " + line))
    timings["eval_s"] = time.monotonic() - t
    timings["total_s"] = time.monotonic() - t_all
    lo, hi = wilson(wins, len(marks))
    results["operator"] = {"demonstrations": len(marks), "successes": wins,
                           "success_rate": wins / len(marks), "ci95": [lo, hi]}
    (root / "eval" / "results.json").write_text(json.dumps(results, indent=1))
    (root / "timings.json").write_text(json.dumps(timings, indent=1))
    plot_results(results, root / "eval" / "results.png")
    Console(width=None if sys.stdout.isatty() else 120).print(results_table(results))
    say("the demonstrating operator: %d/%d successes (%.0f%%, 95%% CI %.0f-%.0f%%)"
        % (wins, len(marks), 100 * wins / len(marks), 100 * lo, 100 * hi))
    say("timings: collect %.0f s, export %.0f s, train %.0f s (%s samples/s), eval %.0f s, "
        "total %.1f min" % (timings["collect_s"], timings["export_s"], timings["train_s"],
                            ", ".join("%s %s" % kv for kv in rates.items()), timings["eval_s"],
                            timings["total_s"] / 60))
    say("results: %s (simulation)" % (root / "eval" / "results.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
