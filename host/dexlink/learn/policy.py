"""Diffusion Policy: the observation encoder, the temporal U-Net and the noise schedules
in one module, trained with DDPM (from a normalised action chunk with noise added,
predict the chunk, or the noise with prediction_type epsilon) and sampled with DDIM in
few steps, both schedulers from diffusers.

A chunk is `horizon` actions; action i is meant for obs_time + (i - first_action) / fps,
where obs_time is the capture time of the latest observation and first_action =
obs_horizon - 1 (the chunk starts with the past, as in Chi et al.). A deployment executes
n_action_steps of them from first_action on, then asks for the next chunk.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dexlink.learn.config import PolicyConfig, load_run_config
from dexlink.learn.encoders import ObservationEncoder
from dexlink.learn.images import centre_offset, crop, fit_image
from dexlink.learn.model import TemporalUNet
from dexlink.learn.normalise import Normaliser
from dexlink.learn.observation import ACTION


def make_schedulers(config: PolicyConfig):
    from diffusers.schedulers.scheduling_ddim import DDIMScheduler
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

    common = dict(num_train_timesteps=config.train_timesteps, beta_schedule=config.beta_schedule,
                  clip_sample=True, prediction_type=config.prediction_type)
    return DDPMScheduler(**common), DDIMScheduler(**common, set_alpha_to_one=True)


class DiffusionPolicy(nn.Module):
    def __init__(self, config: PolicyConfig, stats=None):
        super().__init__()
        self.config = config
        spec = config.features
        self.normaliser = Normaliser(spec, stats)
        self.encoder = ObservationEncoder(spec.lowdim_keys, spec.lowdim_dim, spec.cameras,
                                          config.obs_horizon, config.encoder_channels,
                                          config.keypoints, config.image_feature_dim)
        self.unet = TemporalUNet(spec.action_dim, self.encoder.out_dim, config.down_dims,
                                 config.kernel_size, config.n_groups, config.step_embed_dim)
        self.train_scheduler, self.sample_scheduler = make_schedulers(config)

    # --- training -----------------------------------------------------------------------
    def condition(self, batch: dict) -> torch.Tensor:
        return self.encoder(self.normaliser.observation(batch))

    def forward(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """The denoising loss of a batch: batch[k] (B, obs_horizon, ...) observations in
        dataset units (images uint8 HWC, cropped), batch['action'] (B, horizon, A).
        Noise and diffusion steps come from `generator` (on the CPU, so a seed gives the
        same numbers on any device)."""
        actions = self.normaliser.action(batch[ACTION])
        cond = self.condition(batch)
        b = actions.shape[0]
        noise = torch.randn(actions.shape, generator=generator).to(actions.device)
        steps = torch.randint(0, self.config.train_timesteps, (b,), generator=generator)
        steps = steps.to(actions.device)
        noisy = self.train_scheduler.add_noise(actions, noise, steps)
        predicted = self.unet(noisy, steps, cond)
        target = noise if self.config.prediction_type == "epsilon" else actions
        return F.mse_loss(predicted, target)

    # --- inference ----------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, cond: torch.Tensor, steps: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised action chunks (B, horizon, A) for conditioning vectors (B, C)."""
        scheduler = self.sample_scheduler
        scheduler.set_timesteps(steps or self.config.inference_steps)
        shape = (cond.shape[0], self.config.horizon, self.config.features.action_dim)
        x = torch.randn(shape, generator=generator).to(cond.device)
        terms = self.unet.observation_terms(cond)  # once per chunk, not once per step
        for t in scheduler.timesteps:
            t_batch = torch.full((shape[0],), int(t), device=cond.device, dtype=torch.long)
            x = scheduler.step(self.unet(x, t_batch, obs_terms=terms), t, x).prev_sample
        return x

    def prepare(self, obs: dict) -> dict:
        """One observation window (as dexlink.learn.observation.assemble gives it, images
        as RGB uint8 frames of any size) as a batch of one on the policy's device."""
        config, spec = self.config, self.config.features
        device = next(self.parameters()).device
        batch = {}
        for key, dim in zip(spec.lowdim_keys, spec.state_dims + [spec.contact_dim]):
            if key not in obs:
                raise KeyError("observation has no %s" % key)
            v = np.asarray(obs[key], np.float32)
            if v.shape != (config.obs_horizon, dim):
                raise ValueError("observation %s has shape %s, the policy takes %s"
                                 % (key, v.shape, (config.obs_horizon, dim)))
            if not np.isfinite(v).all():
                raise ValueError("observation %s holds NaN or infinite values" % key)
            batch[key] = torch.from_numpy(v)[None].to(device)
        dy, dx = centre_offset(config.image_hw, config.crop_hw)
        for key in spec.cameras:
            if key not in obs:
                raise KeyError("observation has no %s" % key)
            frames = [np.asarray(f) for f in obs[key]]
            if len(frames) != config.obs_horizon or any(f.ndim != 3 or f.shape[2] != 3
                                                          for f in frames):
                raise ValueError("observation %s must be %d RGB frames (H, W, 3)"
                                 % (key, config.obs_horizon))
            fitted = np.stack([fit_image(f.astype(np.uint8, copy=False), config.image_hw)
                               for f in frames])[None]
            batch[key] = torch.from_numpy(crop(fitted, np.array([[dy, dx]]), config.crop_hw)).to(device)
        return batch

    @torch.inference_mode()
    def predict_chunk(
        self, obs: dict, steps: int | None = None, generator: torch.Generator | None = None
    ) -> np.ndarray:
        """(horizon, A) actions in dataset units (degrees for joint goals), for one
        observation window; `steps` DDIM steps (default config.inference_steps)."""
        cond = self.condition(self.prepare(obs))
        chunk = self.normaliser.unnormalise_action(self.sample(cond, steps, generator))
        return chunk[0].cpu().numpy()

    @property
    def action_names(self) -> list:
        return list(self.config.features.action_names)


def load_policy(run_dir, device: str = "cpu") -> DiffusionPolicy:
    """The policy of a run directory: RUN/config.json and the EMA weights of its last
    checkpoint, in eval mode. Errors name the file."""
    from dexlink.learn.checkpoint import last_checkpoint, load_weights

    run_dir = Path(run_dir)
    config, _ = load_run_config(run_dir / "config.json")
    policy = DiffusionPolicy(config)
    load_weights(policy, last_checkpoint(run_dir) / "ema.safetensors")
    return policy.to(device).eval()
