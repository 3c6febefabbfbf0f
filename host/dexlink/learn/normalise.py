"""Normalisation from the dataset's meta/stats.json, kept inside the model as buffers (so
a checkpoint carries it and deployment needs no dataset).

Vectors (state, contact, actions) map their [min, max] to [-1, 1], the range DDPM clips
its samples to; a constant component maps to 0 and back to its value. Images map
x / 255 to (x / 255 - mean) / std per channel.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dexlink.learn.config import FeatureSpec
from dexlink.learn.encoders import module_name
from dexlink.learn.observation import ACTION

TINY = 1e-6


class Normaliser(nn.Module):
    def __init__(self, spec: FeatureSpec, stats=None):
        """stats(key, name) -> array gives the dataset's statistics; None leaves
        placeholders that a checkpoint's weights replace."""
        super().__init__()
        self.vectors = {k: d for k, d in zip(spec.state_keys, spec.state_dims)}
        if spec.contact_key:
            self.vectors[spec.contact_key] = spec.contact_dim
        self.cameras = list(spec.cameras)
        for key, dim in self.vectors.items():
            self._vector(key, dim, stats and (stats(key, "min"), stats(key, "max")))
        action_range = None
        if stats:
            action_range = (np.concatenate([stats(k, "min").reshape(-1) for k in spec.action_keys]),
                            np.concatenate([stats(k, "max").reshape(-1) for k in spec.action_keys]))
        self._vector(ACTION, spec.action_dim, action_range)
        for key in self.cameras:
            mean = torch.as_tensor(stats(key, "mean"), dtype=torch.float32).reshape(3) if stats \
                else torch.zeros(3)
            std = torch.as_tensor(stats(key, "std"), dtype=torch.float32).reshape(3) if stats \
                else torch.ones(3)
            self.register_buffer(module_name(key) + "__mean", mean.reshape(3, 1, 1))
            self.register_buffer(
                module_name(key) + "__std",
                torch.where(std < TINY, torch.ones_like(std), std).reshape(3, 1, 1),
            )

    def _vector(self, key: str, dim: int, lo_hi) -> None:
        if lo_hi is None:
            centre, scale = torch.zeros(dim), torch.ones(dim)
        else:
            lo = torch.as_tensor(np.asarray(lo_hi[0], np.float32).reshape(-1))
            hi = torch.as_tensor(np.asarray(lo_hi[1], np.float32).reshape(-1))
            if lo.numel() != dim or hi.numel() != dim:
                raise ValueError(
                    "stats of %s have %d values, the feature has %d" % (key, lo.numel(), dim)
                )
            span = hi - lo
            centre = (hi + lo) / 2
            scale = torch.where(span > TINY, 2 / span.clamp_min(TINY), torch.ones_like(span))
        self.register_buffer(module_name(key) + "__centre", centre)
        self.register_buffer(module_name(key) + "__scale", scale)

    def _get(self, key: str, what: str) -> torch.Tensor:
        return getattr(self, module_name(key) + "__" + what)

    def vector(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x - self._get(key, "centre")) * self._get(key, "scale")

    def action(self, x: torch.Tensor) -> torch.Tensor:
        return self.vector(ACTION, x)

    def unnormalise_action(self, y: torch.Tensor) -> torch.Tensor:
        return y / self._get(ACTION, "scale") + self._get(ACTION, "centre")

    def image(self, key: str, frames: torch.Tensor) -> torch.Tensor:
        """(..., H, W, 3) uint8 -> (..., 3, H, W) float, normalised per channel."""
        x = frames.movedim(-1, -3).float() / 255
        return (x - self._get(key, "mean")) / self._get(key, "std")

    def observation(self, batch: dict) -> dict:
        out = {k: self.vector(k, batch[k]) for k in self.vectors}
        out.update({k: self.image(k, batch[k]) for k in self.cameras})
        return out
