"""What a run is: the policy's shape and inputs, and how it was trained, kept as JSON.

`PolicyConfig` is everything needed to rebuild the network and feed it (it is written
to RUN/config.json and read back by load_policy); `TrainConfig` is how it is optimised.
Defaults follow Diffusion Policy (Chi et al.) where a CPU allows: observation horizon 2,
prediction horizon 16, execution horizon 8, DDPM with 100 steps and a squared-cosine
schedule, DDIM at inference, AdamW 1e-4 with cosine decay after 500 warmup steps, EMA
with power 0.75. Where they differ, and why:

- The network predicts the clean action chunk (prediction_type "sample", as 3D Diffusion
  Policy does), not the noise: on CPU budgets it converges far sooner (300 recorded
  frames, 1500 steps: DDIM-10 chunks 3 deg from the demonstration, against 17 deg with
  epsilon, and still 9 deg after 5000 steps at 1e-3). --set prediction_type=epsilon is
  the paper's.
- The U-Net and image encoders are much smaller: at batch 1 a denoising step reads every
  weight once, so its time on a CPU grows with the weights (the paper's 252M take ~150 ms
  a step, 4.8M ~7 ms); ~1.5M (down_dims 32/64/128) keep a 10-step chunk within 50 ms. On
  a GPU, --set down_dims=256,512,1024 is the paper's low-dim size (512,1024,2048 its
  image one).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from dexlink.errors import FileFormatError

OBS_GROUPS = ("state", "rgb", "tactile")
TACTILE_AS = ("images", "contact")


@dataclass
class FeatureSpec:
    """Which dataset features feed the policy and which it predicts (from meta/info.json).

    state_keys: low-dimensional observations (observation.state, and any other
    observation.* vector such as a wrist pose); contact_key: the contact measures used
    when tactile comes in as contact; cameras: image features, each with the encoder
    that reads it; action_keys: the vectors concatenated into one action.
    """

    state_keys: list = field(default_factory=list)
    state_dims: list = field(default_factory=list)
    contact_key: str | None = None
    contact_dim: int = 0
    cameras: list = field(default_factory=list)  # observation.images.* keys
    action_keys: list = field(default_factory=list)
    action_dims: list = field(default_factory=list)
    action_names: list = field(default_factory=list)

    @property
    def action_dim(self) -> int:
        return sum(self.action_dims)

    @property
    def lowdim_keys(self) -> list:
        """The vectors concatenated, per time step, beside the image features."""
        return self.state_keys + ([self.contact_key] if self.contact_key else [])

    @property
    def lowdim_dim(self) -> int:
        return sum(self.state_dims) + self.contact_dim


@dataclass
class PolicyConfig:
    obs: list = field(default_factory=lambda: list(OBS_GROUPS))
    tactile_as: str = "contact"
    fps: float = 30.0  # the dataset's frame rate: one policy step per frame
    obs_horizon: int = 2
    horizon: int = 16  # actions predicted per chunk
    n_action_steps: int = 8  # actions executed per chunk, from index obs_horizon - 1
    # 1-D temporal U-Net
    down_dims: list = field(default_factory=lambda: [32, 64, 128])
    kernel_size: int = 5
    n_groups: int = 8
    step_embed_dim: int = 64
    # image encoders, one per camera
    image_hw: list = field(default_factory=lambda: [72, 96])  # frames resized to this
    crop_hw: list = field(default_factory=lambda: [64, 88])  # random crop in training, centre after
    encoder_channels: list = field(default_factory=lambda: [16, 32, 64])
    keypoints: int = 32
    image_feature_dim: int = 64
    # diffusion
    train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"
    inference_steps: int = 10
    features: FeatureSpec = field(default_factory=FeatureSpec)

    @property
    def first_action(self) -> int:
        """Index in a chunk of the action for the latest observation's time: action i is
        meant for obs_time + (i - first_action) / fps."""
        return self.obs_horizon - 1


@dataclass
class TrainConfig:
    dataset: str = ""
    steps: int = 3000
    batch_size: int = 64  # per process under torchrun
    lr: float = 1e-4
    weight_decay: float = 1e-6
    betas: list = field(default_factory=lambda: [0.95, 0.999])
    warmup: int = 500
    seed: int = 0
    save_every: int = 1000
    ema_power: float = 0.75
    ema_max_decay: float = 0.9999


def _from_dict(cls, data: dict, where: str):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise FileFormatError("%s: unknown field(s) %s" % (where, ", ".join(unknown)))
    return cls(**data)


def save_run_config(path: Path, policy: PolicyConfig, train: TrainConfig) -> None:
    text = json.dumps({"policy": asdict(policy), "train": asdict(train)}, indent=2)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def load_run_config(path: Path) -> tuple[PolicyConfig, TrainConfig]:
    """Both configs of a run; a missing or malformed file is a user's error naming it."""
    try:
        data = json.loads(Path(path).read_text())
        policy = dict(data["policy"])
        policy["features"] = _from_dict(FeatureSpec, policy.get("features", {}),
                                        "%s: policy.features" % path)
        return (_from_dict(PolicyConfig, policy, "%s: policy" % path),
                _from_dict(TrainConfig, data["train"], "%s: train" % path))
    except FileFormatError:
        raise
    except FileNotFoundError:
        raise FileFormatError("%s: no such file (not a run directory of dexlink train)"
                              % path) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FileFormatError("%s: not a dexlink train config (%s)" % (path, e)) from None


SETTABLE = ("obs_horizon", "horizon", "n_action_steps", "down_dims", "kernel_size", "n_groups",
            "step_embed_dim", "image_hw", "crop_hw", "encoder_channels", "keypoints",
            "image_feature_dim", "train_timesteps", "beta_schedule", "prediction_type",
            "inference_steps")


def apply_setting(config: PolicyConfig, text: str) -> None:
    """KEY=VALUE (a list as 64,128,256 or 72x96) into the config; ValueError says why not."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or key not in SETTABLE:
        raise ValueError("--set %s: expected KEY=VALUE with KEY one of %s"
                         % (text, ", ".join(SETTABLE)))
    current = getattr(config, key)
    try:
        if isinstance(current, list):
            parsed = [int(v) for v in value.replace("x", ",").split(",") if v.strip()]
        elif isinstance(current, int):
            parsed = int(value)
        else:
            parsed = value.strip()
    except ValueError:
        raise ValueError("--set %s: %r is not a %s" % (key, value, type(current).__name__)) from None
    setattr(config, key, parsed)


def check_policy(config: PolicyConfig) -> None:
    """Refuse a config that cannot build or run, saying which setting is wrong."""
    def need(ok, why):
        if not ok:
            raise ValueError(why)

    need(config.obs_horizon >= 1, "obs_horizon must be at least 1")
    need(config.horizon >= config.obs_horizon, "horizon must be at least obs_horizon")
    need(1 <= config.n_action_steps <= config.horizon - config.obs_horizon + 1,
         "n_action_steps must be 1 .. horizon - obs_horizon + 1 (%d)"
         % (config.horizon - config.obs_horizon + 1))
    need(len(config.down_dims) >= 1 and min(config.down_dims) > 0, "down_dims must be positive")
    levels = 2 ** (len(config.down_dims) - 1)
    need(config.horizon % levels == 0, "horizon %d must be divisible by %d (2 ** (levels of "
         "down_dims - 1))" % (config.horizon, levels))
    need(config.kernel_size % 2 == 1, "kernel_size must be odd")
    need(config.step_embed_dim >= 4 and config.step_embed_dim % 2 == 0,
         "step_embed_dim must be even and at least 4")
    need(len(config.image_hw) == 2 and len(config.crop_hw) == 2, "image_hw and crop_hw are HxW")
    need(0 < config.crop_hw[0] <= config.image_hw[0] and 0 < config.crop_hw[1] <= config.image_hw[1],
         "crop_hw must fit in image_hw")
    need(len(config.encoder_channels) >= 1 and min(config.encoder_channels) > 0,
         "encoder_channels must be positive")
    need(config.prediction_type in ("epsilon", "sample"), "prediction_type: epsilon or sample")
    need(1 <= config.inference_steps <= config.train_timesteps,
         "inference_steps must be 1 .. train_timesteps")
