"""Training windows: for frame r of an episode, the observations at r - obs_horizon + 1
.. r and the action chunk from the first of those on (horizon actions), indices clamped
to the episode's ends (its first and last frames repeat, as Diffusion Policy pads).

Each step draws its batch from its own generator, seeded by (seed, step, rank): a run
resumed at step k draws what the uninterrupted run drew at step k.
"""
from __future__ import annotations

import numpy as np

from dexlink.learn.images import centre_offset, crop
from dexlink.learn.observation import ACTION


def step_rng(seed: int, step: int, rank: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, step, rank])


class WindowSampler:
    def __init__(self, dataset, obs_horizon: int, horizon: int, image_hw, crop_hw):
        self.ds = dataset
        self.spec = dataset.spec
        self.bounds = dataset.episode_of_rows()
        self.obs_offsets = np.arange(-(obs_horizon - 1), 1)
        self.action_offsets = np.arange(-(obs_horizon - 1), -(obs_horizon - 1) + horizon)
        self.image_hw, self.crop_hw = image_hw, crop_hw

    def _windows(self, rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        lo, hi = self.bounds[rows, :1], self.bounds[rows, 1:] - 1
        return np.clip(rows[:, None] + offsets[None], lo, hi)

    def batch(self, rows: np.ndarray, rng: np.random.Generator | None = None) -> dict:
        """Numpy arrays for these frames: vectors (B, obs_horizon, d), frames (B,
        obs_horizon, ch, cw, 3) uint8 cropped (at random with rng, else centred), and
        'action' (B, horizon, A)."""
        rows = np.asarray(rows, np.int64)
        obs = self._windows(rows, self.obs_offsets)
        act = self._windows(rows, self.action_offsets)
        out = {k: self.ds.vectors[k][obs] for k in self.spec.lowdim_keys}
        out[ACTION] = np.concatenate([self.ds.vectors[k][act] for k in self.spec.action_keys],
                                     axis=-1)
        h, w = self.image_hw
        ch, cw = self.crop_hw
        for key in self.spec.cameras:
            if rng is None:
                offsets = np.tile(centre_offset(self.image_hw, self.crop_hw), (len(rows), 1))
            else:
                offsets = np.stack([rng.integers(0, h - ch + 1, len(rows)),
                                    rng.integers(0, w - cw + 1, len(rows))], axis=1)
            out[key] = crop(self.ds.frames[key][obs], offsets, self.crop_hw)
        return out
