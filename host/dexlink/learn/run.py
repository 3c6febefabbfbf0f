"""`dexlink train` as a library call: options as a dataclass, progress through a rich
Progress (or anything with add_task/update), the result as a value.

A new run takes its policy from the options; a resumed one from RUN/config.json, where
only --steps, --save-every and --batch-size may change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dexlink.errors import UsageError, UserError
from dexlink.learn.config import (
    OBS_GROUPS,
    PolicyConfig,
    TrainConfig,
    apply_setting,
    check_policy,
    load_run_config,
)

DEFAULT_OBS = "state,rgb,tactile"
RESUMABLE = ("steps", "save_every", "batch_size")


@dataclass
class TrainOptions:
    dataset: Path
    out: Path
    obs: str | None = None  # comma-separated OBS_GROUPS (default DEFAULT_OBS)
    tactile_as: str | None = None  # images or contact (default contact)
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup: int | None = None
    seed: int | None = None
    save_every: int | None = None
    device: str = "auto"
    threads: int | None = None  # CPU threads per process (None: torch's default)
    settings: list = field(default_factory=list)  # KEY=VALUE policy settings
    resume: bool = False
    rank_digests: bool = False  # each rank writes RUN/rank-N.sha256 of its weights


@dataclass
class TrainResult:
    step: int
    loss: float
    checkpoint: Path | None
    samples_per_s: float
    seconds: float
    main: bool  # rank 0 (the one that reports)


def parse_obs(text: str) -> list[str]:
    groups = [g.strip() for g in text.split(",") if g.strip()]
    if not groups or any(g not in OBS_GROUPS for g in groups):
        raise UsageError("--obs %s: choose from %s" % (text, ", ".join(OBS_GROUPS)))
    return [g for g in OBS_GROUPS if g in groups]


def _check_numbers(o: TrainOptions) -> None:
    for name in ("steps", "batch_size", "save_every"):
        value = getattr(o, name)
        if value is not None and value <= 0:
            raise UsageError("--%s must be positive" % name.replace("_", "-"))
    if o.warmup is not None and o.warmup < 0:
        raise UsageError("--warmup must not be negative")
    if o.threads is not None and o.threads <= 0:
        raise UsageError("--threads must be positive")
    if o.lr is not None and not o.lr > 0:
        raise UsageError("--lr must be positive")


def run_configs(o: TrainOptions) -> tuple[PolicyConfig, TrainConfig]:
    """The run's configs: from the options, or from RUN/config.json on resume."""
    _check_numbers(o)
    out = Path(o.out)
    if out.exists() and not out.is_dir():
        raise UserError("%s: exists and is not a directory (--out names a run directory)" % out)
    if o.resume:
        policy, train = load_run_config(out / "config.json")
        if o.obs and parse_obs(o.obs) != policy.obs:
            raise UsageError("--obs %s: the run in %s observes %s; it cannot change on --resume"
                             % (o.obs, out, ",".join(policy.obs)))
        if o.tactile_as and o.tactile_as != policy.tactile_as:
            raise UsageError("--tactile-as %s: the run in %s uses %s"
                             % (o.tactile_as, out, policy.tactile_as))
        if o.settings:
            raise UsageError("--set: the policy of the run in %s is fixed" % out)
    else:
        if (out / "config.json").exists():
            raise UserError("%s: already holds a run: add --resume to continue it, or choose "
                            "another --out" % out)
        policy = PolicyConfig(obs=parse_obs(o.obs or DEFAULT_OBS),
                              tactile_as=o.tactile_as or "contact")
        train = TrainConfig()
        try:
            for setting in o.settings:
                apply_setting(policy, setting)
            check_policy(policy)
        except ValueError as e:
            raise UsageError(str(e)) from None
    for name in ("steps", "batch_size", "lr", "warmup", "seed", "save_every"):
        value = getattr(o, name)
        if value is None:
            continue
        if o.resume and name not in RESUMABLE and value != getattr(train, name):
            raise UsageError("--%s: the run in %s keeps its own (%s) on --resume"
                             % (name.replace("_", "-"), out, getattr(train, name)))
        setattr(train, name, value)
    train.dataset = str(o.dataset)
    return policy, train


def train_policy(o: TrainOptions, progress=None, say=print) -> TrainResult:
    """Train (or resume) the run o.out on the dataset o.dataset; `say` gets one line
    about the dataset and model (rank 0 only)."""
    from dexlink.learn import require

    require()
    from dexlink.learn.dataset import LeRobotDataset, dataset_info, select_features
    from dexlink.learn.train import Distributed, Trainer

    policy, train = run_configs(o)
    dataset_dir = Path(o.dataset)
    info = dataset_info(dataset_dir)
    spec = select_features(info["features"], policy.obs, policy.tactile_as,
                           str(dataset_dir / "meta" / "info.json"))
    if o.resume and spec != policy.features:
        raise UserError("%s: its features differ from those the run in %s was trained on"
                        % (dataset_dir, o.out))
    policy.features, policy.fps = spec, float(info["fps"])
    if o.threads:
        import torch

        torch.set_num_threads(o.threads)
    dist, device = Distributed.start(o.device)
    try:
        dataset = LeRobotDataset(dataset_dir, spec, policy.image_hw,
                                 progress if dist.main else None)
        trainer = Trainer(Path(o.out), policy, train, dataset, device, dist, o.resume)
        trainer.write_config()
        if dist.main:
            n_params = sum(p.numel() for p in trainer.policy.parameters())
            say("dataset %s: %d episodes, %d frames at %g fps; observing %s; predicting %s; "
                "%s parameters; %s x %d process(es)"
                % (dataset_dir, len(dataset.episodes), len(dataset), policy.fps,
                   ", ".join(spec.lowdim_keys + spec.cameras), ", ".join(spec.action_keys),
                   "{:,}".format(n_params), device, dist.world))
        try:
            r = trainer.run(progress)
        except KeyboardInterrupt:
            if trainer.interrupted_at:
                say("interrupted at step %d: saved %s (--resume continues)"
                    % (trainer.step, trainer.interrupted_at))
            raise
        if o.rank_digests:
            (Path(o.out) / ("rank-%d.sha256" % dist.rank)).write_text(trainer.digest() + "\n")
    finally:
        dist.close()
    return TrainResult(r["step"], r["loss"], r["checkpoint"], r["samples_per_s"], r["seconds"],
                       dist.main)
