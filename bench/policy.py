"""The diffusion policy's costs: inference per action chunk and training throughput.

Inference: `predict_chunk` at batch 1 on the observation a deployment gives it (two
frames of full-size camera images, the joint state, the contact measures), so resizing
and encoding the images count; at 10 and 16 DDIM steps, for the default policy with
tactile as contact measures and with tactile as images (five cameras), on the CPU with
one thread and with torch's default threads, and on a GPU when there is one. Goal: a
chunk in at most 50 ms on the CPU for the default policy.

Training: samples per second of the real loop (`dexlink train`'s Trainer: batches drawn
from a dataset in memory, AdamW, EMA) on a dataset recorded on the virtual board and
exported to LeRobot v3.0 (or --dataset DIR).

Deployment (--run RUN, default the touch policy of `make learn-demo`, skipped when there
is none): episodes of the policy on the virtual board in the lift_cube world, chunks sent
three ways: timed points the firmware interpolates (TARGET_POINTS), TARGETS streamed at
100 Hz interpolated on the host, and TARGETS holding each action (stepwise). From each
episode's telemetry (every loop cycle): the achieved control rate (loop cycles, target
messages and chunks per second) and the smoothness of the servo goal: its largest step
between two cycles, overall and within 30 ms of a chunk being handed over, against what
the joint speed limit allows per cycle (the firmware's slew limit caps every step at it:
the share of cycles at the limit shows how often it had to). Goal: no step at a chunk
boundary above the limit.

The whole demo loop: its stages' times from the learn-demo's timings.json (--demo-dir).

    python bench/policy.py
    python bench/policy.py --dataset datasets/cube --train-steps 30
    python bench/policy.py --run out/learn-demo/runs/touch --seconds 8
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dexlink.learn.config import PolicyConfig, TrainConfig
from dexlink.learn.dataset import LeRobotDataset, dataset_info, select_features
from dexlink.learn.policy import DiffusionPolicy
from dexlink.learn.train import Trainer

GOAL_MS = 50.0
STATE, CONTACT, RGB = "observation.state", "observation.contact", "observation.images.rgb"
TACTILE = ["observation.images.tactile_" + f for f in ("index", "middle", "ring", "thumb")]


def make_dataset(root: Path, episodes: int, seconds: float) -> Path:
    """Episodes recorded on the virtual board, exported at 10 fps: the real pipeline."""
    from dexlink.record.export import export_lerobot
    from dexlink.record.recording import RecordOptions, record_session

    result = record_session(RecordOptions(task="bench", out=root / "session", episodes=episodes,
                                          duration_s=seconds))
    if not result.ok:
        sys.exit("bench/policy.py: recording failed")
    export_lerobot(root / "session", root / "dataset", fps=10)
    return root / "dataset"


def observation(config: PolicyConfig, rng: np.random.Generator) -> dict:
    """What History.observation gives a deployment: 2 frames of every stream."""
    f = config.features
    obs = {STATE: rng.uniform(-30, 60, (config.obs_horizon, 16)).astype(np.float32),
           CONTACT: rng.uniform(0, 1, (config.obs_horizon, f.contact_dim)).astype(np.float32)}
    for key in f.cameras:
        hw = (480, 640) if key == RGB else (240, 320)
        obs[key] = [rng.integers(0, 255, hw + (3,), dtype=np.uint8)
                    for _ in range(config.obs_horizon)]
    return obs


def synthetic_policy(tactile_as: str, device: str) -> DiffusionPolicy:
    """The default policy on iso16's shapes, with stats that leave values as they are."""
    from dexlink.learn.config import FeatureSpec

    cameras = [RGB] + (TACTILE if tactile_as == "images" else [])
    spec = FeatureSpec([STATE], [16], CONTACT if tactile_as == "contact" else None,
                       8 if tactile_as == "contact" else 0, cameras, ["action"], [16],
                       ["j%d" % j for j in range(16)])
    config = PolicyConfig(tactile_as=tactile_as, fps=10.0, features=spec)
    torch.manual_seed(0)
    return DiffusionPolicy(config).to(device).eval()


def time_chunks(policy, steps: int, repeats: int) -> list[float]:
    rng = np.random.default_rng(0)
    obs = observation(policy.config, rng)
    sync = torch.cuda.synchronize if next(policy.parameters()).is_cuda else (lambda: None)
    for _ in range(3):
        policy.predict_chunk(obs, steps)
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        policy.predict_chunk(obs, steps)
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def inference(repeats: int) -> bool:
    ok = True
    devices = [("cpu", 1), ("cpu", torch.get_num_threads())]
    if torch.cuda.is_available():
        devices.append(("cuda", torch.get_num_threads()))
    default_threads = torch.get_num_threads()
    print("== inference per chunk (batch 1, horizon 16; fastest / median / p90 of %d)" % repeats)
    for tactile_as in ("contact", "images"):
        for device, threads in dict.fromkeys(devices):
            torch.set_num_threads(threads)
            policy = synthetic_policy(tactile_as, device)
            n = sum(p.numel() for p in policy.parameters())
            for steps in (10, 16):
                t = sorted(time_chunks(policy, steps, repeats))
                median, p90 = statistics.median(t), t[int(0.9 * (len(t) - 1))]
                fastest = t[0]
                goal = ""
                if device == "cpu" and steps == 10 and tactile_as == "contact":
                    met = median <= GOAL_MS
                    ok = ok and (met or threads != 1)
                    goal = "  goal <= %.0f ms: %s" % (GOAL_MS, "met" if met else "MISSED")
                print("  tactile as %-8s %-4s %d thread(s)  %d params  DDIM %2d: %6.1f / %6.1f / "
                      "%6.1f ms%s" % (tactile_as, device, threads, n, steps, fastest, median, p90,
                                      goal))
    torch.set_num_threads(default_threads)
    return ok


def training(dataset: Path, steps: int, batch: int) -> None:
    print("== training throughput (batch %d, dataset %s)" % (batch, dataset))
    info = dataset_info(dataset)
    for tactile_as in ("contact", "images"):
        config = PolicyConfig(tactile_as=tactile_as, fps=float(info["fps"]))
        config.features = select_features(info["features"], config.obs, tactile_as, "info")
        ds = LeRobotDataset(dataset, config.features, config.image_hw)
        for threads in dict.fromkeys([1, torch.get_num_threads()]):
            torch.set_num_threads(threads)
            with tempfile.TemporaryDirectory() as run:
                trainer = Trainer(Path(run), config, TrainConfig(steps=steps + 2, batch_size=batch,
                                                                 warmup=1), ds,
                                  torch.device("cpu"))
                trainer.train_step()  # the first step allocates
                t0 = time.perf_counter()
                for _ in range(steps):
                    trainer.train_step()
                rate = steps * batch / (time.perf_counter() - t0)
            print("  tactile as %-8s cpu %d thread(s): %6.1f samples/s (%.0f ms per step)"
                  % (tactile_as, threads, rate, 1e3 * batch / rate))


DEMO_DIR = Path("out/learn-demo")
BOUNDARY_NS = 30_000_000  # a step this soon after a chunk is handed over is at its boundary


def goal_steps(path: Path, chunk_starts_ns: list, limit: float) -> dict:
    """Servo-goal steps between consecutive loop cycles of a HOST-mode episode (degrees)."""
    import json

    from dexlink.record.reader import read_episode

    s = read_episode(path, keep=lambda topic: topic == "/telemetry").streams["/telemetry"]
    rows = [json.loads(d) for d in s.data]
    host = np.array([r["mode"] == "HOST" for r in rows])
    t = s.times[host]
    goal = np.array([r["goal_cdeg"] for r in rows], float)[host] / 100
    cycle = np.array([r["cycle"] for r in rows], np.int64)[host]
    # Per loop cycle: a sample missing from the telemetry spreads its step over the cycles.
    steps = np.abs(np.diff(goal, axis=0)).max(axis=1) / np.maximum(np.diff(cycle), 1)
    span = (t[-1] - t[0]) / 1e9
    near = np.zeros(len(steps), bool)
    for c in chunk_starts_ns:
        near |= (t[1:] >= c) & (t[1:] < c + BOUNDARY_NS)
    return {"cycles_per_s": (cycle[-1] - cycle[0]) / span if span > 0 else 0.0,
            "max_step": float(steps.max()), "p99_step": float(np.percentile(steps, 99)),
            "boundary_max_step": float(steps[near].max()) if near.any() else 0.0,
            "at_limit": float((steps >= limit - 0.005).mean())}


def speed_limit_per_cycle() -> float:
    """The smallest joint speed limit of the default hand, in degrees per loop cycle."""
    from dexlink import hwconfig
    from dexlink.board import default_hand

    cfg = hwconfig.compile_config(default_hand(), "virtual")
    speed = min(j["max_speed_cdeg_per_ms"] for j in cfg["joints"]) / 100  # deg per ms
    return speed * 1000 / cfg["loop"]["hz"]


def deployment(run: Path, seconds: float) -> bool:
    from dexlink.board import BoardOptions
    from dexlink.learn import load_policy
    from dexlink.learn.deploy_episode import EpisodeOptions, run_policy_episode
    from dexlink.sim.worldbridge import WorldOptions

    torch.set_num_threads(1)
    policy = load_policy(run)
    limit = speed_limit_per_cycle()
    print("== deployment of %s in the lift_cube world (%g s episodes, seed 1000; speed limit "
          "%.2f deg per cycle)" % (run, seconds, limit))
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for label, timed, interpolate in (("timed points (firmware interpolates)", True, True),
                                          ("TARGETS 100 Hz, host-interpolated", False, True),
                                          ("TARGETS 100 Hz, stepwise", False, False)):
            options = EpisodeOptions(BoardOptions(world=WorldOptions("lift_cube", 1000)),
                                     Path(tmp) / label.split()[0], max_seconds=seconds,
                                     timed=timed, interpolate=interpolate)
            out = run_policy_episode(policy, options)
            if timed and not out.timed:
                label += " [board took none: TARGETS]"
            s = goal_steps(out.path, out.chunk_starts_ns, limit)
            met = s["boundary_max_step"] <= limit + 1e-9
            ok = ok and met
            print("  %-40s loop %5.0f cycles/s, %4.1f chunks/s, %5.0f target msgs/s, inference "
                  "%3.0f ms | goal step max %.2f p99 %.2f, at chunk starts %.2f deg (%s); "
                  "%.0f%% of cycles at the speed limit"
                  % (label, s["cycles_per_s"], out.chunks / max(out.seconds, 1e-9), out.target_hz,
                     out.inference_ms, s["max_step"], s["p99_step"], s["boundary_max_step"],
                     "within the limit" if met else "ABOVE the limit", 100 * s["at_limit"]))
    return ok


def demo_loop(demo_dir: Path) -> None:
    path = demo_dir / "timings.json"
    if not path.is_file():
        print("== demo loop: no %s (run `make learn-demo`)" % path)
        return
    import json

    t = json.loads(path.read_text())
    print("== demo loop (%s): collect %.0f s, export %.0f s, train %.0f s (%s samples/s), "
          "eval %.0f s, total %.1f min" % (path, t["collect_s"], t["export_s"], t["train_s"],
                                           ", ".join("%s %s" % kv for kv in
                                                     t["train_samples_per_s"].items()),
                                           t["eval_s"], t["total_s"] / 60))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, help="a LeRobot v3.0 dataset (default: record one)")
    ap.add_argument("--repeats", type=int, default=30, help="chunks timed per setting")
    ap.add_argument("--train-steps", type=int, default=10, help="training steps timed")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--run", type=Path, default=DEMO_DIR / "runs" / "touch",
                    help="a trained run to deploy (default: learn-demo's touch policy)")
    ap.add_argument("--seconds", type=float, default=6.0, help="seconds per deployment episode")
    ap.add_argument("--demo-dir", type=Path, default=DEMO_DIR, help="a learn-demo output")
    ap.add_argument("--only", choices=["inference", "training", "deployment", "demo"],
                    help="one part only")
    args = ap.parse_args()
    ok = True
    if args.only in (None, "inference"):
        ok = inference(args.repeats)
    if args.only in (None, "training"):
        with tempfile.TemporaryDirectory() as tmp:
            dataset = args.dataset or make_dataset(Path(tmp), episodes=2, seconds=3.0)
            training(dataset, args.train_steps, args.batch_size)
    if args.only in (None, "deployment"):
        if (args.run / "config.json").is_file():
            ok = deployment(args.run, args.seconds) and ok
        else:
            print("== deployment: no run in %s (run `make learn-demo`, or give --run)" % args.run)
    if args.only in (None, "demo"):
        demo_loop(args.demo_dir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
