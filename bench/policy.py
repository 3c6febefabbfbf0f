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

    python bench/policy.py
    python bench/policy.py --dataset datasets/cube --train-steps 30
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, help="a LeRobot v3.0 dataset (default: record one)")
    ap.add_argument("--repeats", type=int, default=30, help="chunks timed per setting")
    ap.add_argument("--train-steps", type=int, default=10, help="training steps timed")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    ok = inference(args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset or make_dataset(Path(tmp), episodes=2, seconds=3.0)
        training(dataset, args.train_steps, args.batch_size)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
