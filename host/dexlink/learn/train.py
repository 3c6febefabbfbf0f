"""The training loop: AdamW with a linear warmup and cosine decay, EMA weights, periodic
checkpoints, and PyTorch DistributedDataParallel when started by torchrun.

Reproducible by construction: the weights start from the seed, and every step draws its
frames, crops, noise and diffusion steps from a generator seeded by (seed, step, rank),
so a resumed run takes exactly the steps the uninterrupted one would have. Under
torchrun each process trains on its own draws with --batch-size frames; DDP averages the
gradients, so all ranks hold the same weights, and rank 0 alone writes to the run.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dexlink.errors import UserError
from dexlink.learn.checkpoint import last_checkpoint, load_checkpoint, save_checkpoint
from dexlink.learn.config import PolicyConfig, TrainConfig, save_run_config
from dexlink.learn.ema import EMA
from dexlink.learn.policy import DiffusionPolicy
from dexlink.learn.sampler import WindowSampler, step_rng

GRAD_CLIP = 10.0  # LeRobot's default: a bad batch cannot throw the weights far
LOG_EVERY = 10


@dataclass
class Distributed:
    """Where this process stands in a torchrun job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device_choice: str) -> tuple["Distributed", torch.device]:
        """Join torchrun's process group (gloo on CPU, NCCL on GPU) when WORLD_SIZE > 1."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        dist = cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
        if device_choice == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device here (torch %s)" % torch.__version__)
        cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
        device = torch.device("cuda", dist.local_rank) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        if world > 1:
            torch.distributed.init_process_group("nccl" if cuda else "gloo", rank=dist.rank,
                                                 world_size=world)
        return dist, device

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup over config.warmup steps, then cosine decay to 0 at config.steps."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def weights_digest(*modules: torch.nn.Module) -> str:
    """sha256 of the modules' tensors, in name order: equal iff the weights are equal."""
    h = hashlib.sha256()
    for m in modules:
        for name, value in sorted(m.state_dict().items()):
            h.update(name.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class Trainer:
    def __init__(self, run_dir: Path, policy_config: PolicyConfig, config: TrainConfig,
                 dataset, device: torch.device, dist: Distributed | None = None,
                 resume: bool = False):
        self.run_dir, self.config, self.device = Path(run_dir), config, device
        self.dist = dist or Distributed()
        self.policy_config = policy_config
        torch.manual_seed(config.seed)
        self.policy = DiffusionPolicy(policy_config, dataset.stat).to(device)
        self.ema = EMA(self.policy, config.ema_power, config.ema_max_decay)
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=config.lr,
                                           betas=tuple(config.betas),
                                           weight_decay=config.weight_decay)
        self.step = 0
        if resume:
            self.step = load_checkpoint(last_checkpoint(self.run_dir), self.policy,
                                        self.ema.model, self.optimizer)
        self.net = self.policy
        if self.dist.world > 1:
            import warnings

            from torch.nn.parallel import DistributedDataParallel

            # The 1x1 shortcut convolutions get weight gradients whose size-1 dimensions
            # carry other strides than DDP's buckets: the same memory order, nothing to fix.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
            self.net = DistributedDataParallel(
                self.policy, device_ids=[device.index] if device.type == "cuda" else None,
                gradient_as_bucket_view=True)
        self.sampler = WindowSampler(dataset, policy_config.obs_horizon, policy_config.horizon,
                                     policy_config.image_hw, policy_config.crop_hw)
        self.n_frames = len(dataset)
        self.last_loss = float("nan")
        self.interrupted_at: Path | None = None  # the checkpoint a Ctrl-C saved

    def batch(self, step: int) -> tuple[dict, torch.Generator]:
        rng = step_rng(self.config.seed, step, self.dist.rank)
        rows = rng.integers(0, self.n_frames, self.config.batch_size)
        arrays = self.sampler.batch(rows, rng)
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        return {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}, generator

    def train_step(self) -> float:
        """One optimiser step (self.step counts the completed ones)."""
        batch, generator = self.batch(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.step, self.config)
        self.policy.train()
        loss = self.net(batch, generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), GRAD_CLIP)
        self.optimizer.step()
        self.ema.update(self.policy, self.step)
        self.step += 1
        self.last_loss = float(loss.detach())
        return self.last_loss

    def save(self) -> Path | None:
        if not self.dist.main:
            return None
        return save_checkpoint(self.run_dir, self.step, self.policy, self.ema.model,
                               self.optimizer)

    def write_config(self) -> None:
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_run_config(self.run_dir / "config.json", self.policy_config, self.config)

    def run(self, progress=None, until: int | None = None) -> dict:
        """Train to config.steps (or `until`), checkpointing every save_every steps and at
        the end; Ctrl-C checkpoints the steps done, then stops."""
        end = min(self.config.steps, until or self.config.steps)
        task = None
        if progress is not None and self.dist.main:
            task = progress.add_task("train", total=self.config.steps, completed=self.step,
                                     loss=float("nan"), rate=0.0)
        log = open(self.run_dir / "log.jsonl", "a") if self.dist.main else None
        samples = self.config.batch_size * self.dist.world
        started, first = time.monotonic(), self.step
        try:
            while self.step < end:
                loss = self.train_step()
                rate = samples * (self.step - first) / max(1e-9, time.monotonic() - started)
                if task is not None:
                    progress.update(task, completed=self.step, loss=loss, rate=rate)
                if log and (self.step % LOG_EVERY == 0 or self.step == end):
                    log.write(json.dumps({"step": self.step, "loss": loss,
                                          "lr": self.optimizer.param_groups[0]["lr"],
                                          "samples_per_s": round(rate, 1)}) + "\n")
                    log.flush()
                if self.step % self.config.save_every == 0 and self.step < end:
                    self.save()
        except KeyboardInterrupt:
            self.interrupted_at = self.save() if self.step > first else None
            raise
        finally:
            if log:
                log.close()
        path = self.save() if self.step > first or not (self.run_dir / "checkpoints").exists() \
            else None
        elapsed = time.monotonic() - started
        return {"step": self.step, "loss": self.last_loss, "checkpoint": path,
                "samples_per_s": samples * (self.step - first) / max(1e-9, elapsed),
                "seconds": elapsed}

    def digest(self) -> str:
        return weights_digest(self.policy, self.ema.model)

