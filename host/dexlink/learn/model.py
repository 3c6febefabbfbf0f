"""The denoising network of Diffusion Policy (Chi et al.): a 1-D convolutional U-Net over
the time axis of an action chunk, every residual block modulated (FiLM: a per-channel
scale and bias) by the diffusion step and the encoded observation.

Shapes: actions (B, T, A) with T the prediction horizon; the U-Net halves T at every
level but the last, so T must be divisible by 2 ** (levels - 1).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def groups_for(channels: int, wanted: int) -> int:
    """The largest group count <= wanted that divides channels (GroupNorm needs one)."""
    g = max(1, min(wanted, channels))
    while channels % g:
        g -= 1
    return g


class StepEmbedding(nn.Module):
    """Sinusoidal embedding of the diffusion step, then an MLP (as in transformers)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.Mish(), nn.Linear(dim * 4, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / (half - 1))
        angles = t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class ConvNormAct(nn.Sequential):
    """Conv1d (same length) -> GroupNorm -> Mish."""

    def __init__(self, cin: int, cout: int, kernel: int, groups: int):
        super().__init__(nn.Conv1d(cin, cout, kernel, padding=kernel // 2),
                         nn.GroupNorm(groups_for(cout, groups), cout), nn.Mish())


class FiLMResidualBlock(nn.Module):
    """Two conv blocks; between them the condition scales and shifts every channel.

    The condition is Mish of [step embedding, observation features] through one linear
    map, as in Chi et al.; the map is kept as its two halves so the observation's half,
    the same at every denoising step of a chunk, is computed once per chunk
    (`TemporalUNet.observation_terms`).
    """

    def __init__(self, cin: int, cout: int, step_dim: int, obs_dim: int, kernel: int,
                 groups: int):
        super().__init__()
        self.first = ConvNormAct(cin, cout, kernel, groups)
        self.second = ConvNormAct(cout, cout, kernel, groups)
        self.film_step = nn.Linear(step_dim, 2 * cout)
        self.film_obs = nn.Linear(obs_dim, 2 * cout, bias=False)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, step: torch.Tensor, obs_term: torch.Tensor) -> torch.Tensor:
        """step: Mish of the step embedding (B, step_dim); obs_term: film_obs of Mish of
        the observation features (B, 2 * cout)."""
        h = self.first(x)
        scale, bias = (self.film_step(step) + obs_term).unsqueeze(-1).chunk(2, dim=1)
        h = self.second(h * scale + bias)
        return h + self.skip(x)


class TemporalUNet(nn.Module):
    """Predicts the clean chunk (or the noise) of a noisy action chunk.

    Level i works at length T / 2**i with down_dims[i] channels. Unlike Chi et al.'s
    U-Net, whose up path never reads the full-length features (they reach the output only
    through the half-length level), every up level here concatenates the down features
    of its own length, as a standard U-Net does: with the small widths a CPU allows, the
    paper's layout learns even the identity (the answer at high noise) slowly (MSE 0.14
    after 1500 steps, against 0.003 here; see docs/decisions.md).
    """

    def __init__(self, action_dim: int, global_cond_dim: int, down_dims=(32, 64, 128),
                 kernel: int = 5, groups: int = 8, step_embed_dim: int = 64):
        super().__init__()
        self.step_embedding = StepEmbedding(step_embed_dim)
        dims = list(down_dims)
        self.levels = len(dims)

        def block(cin, cout):
            return FiLMResidualBlock(cin, cout, step_embed_dim, global_cond_dim, kernel, groups)

        ins = [action_dim] + dims[:-1]
        self.down = nn.ModuleList(nn.ModuleList([block(cin, cout), block(cout, cout)])
                                  for cin, cout in zip(ins, dims))
        self.downsample = nn.ModuleList(nn.Conv1d(d, d, 3, stride=2, padding=1)
                                        for d in dims[:-1])
        self.middle = nn.ModuleList([block(dims[-1], dims[-1]), block(dims[-1], dims[-1])])
        self.up = nn.ModuleList()
        for i in reversed(range(self.levels - 1)):
            self.up.append(nn.ModuleList([
                nn.ConvTranspose1d(dims[i + 1], dims[i + 1], 4, stride=2, padding=1),
                block(dims[i + 1] + dims[i], dims[i]), block(dims[i], dims[i])]))
        self.head = nn.Sequential(ConvNormAct(dims[0], dims[0], kernel, groups),
                                  nn.Conv1d(dims[0], action_dim, 1))

    def film_blocks(self):
        """The FiLM blocks in the order forward() runs them."""
        for first, second in self.down:
            yield first
            yield second
        yield from self.middle
        for _, first, second in self.up:
            yield first
            yield second

    def observation_terms(self, global_cond: torch.Tensor) -> list:
        """Each block's share of FiLM from the observation features (B, C): the same for
        every denoising step of a chunk."""
        features = F.mish(global_cond)
        return [block.film_obs(features) for block in self.film_blocks()]

    def forward(self, x: torch.Tensor, t: torch.Tensor, global_cond: torch.Tensor | None = None,
                obs_terms: list | None = None) -> torch.Tensor:
        """x (B, T, A) noisy actions, t (B,) diffusion steps, and the observation as
        global_cond (B, C) or as its observation_terms."""
        if x.shape[1] % (2 ** (self.levels - 1)):
            raise ValueError("horizon %d is not divisible by %d (U-Net levels)"
                             % (x.shape[1], 2 ** (self.levels - 1)))
        terms = iter(obs_terms if obs_terms is not None else self.observation_terms(global_cond))
        step = F.mish(self.step_embedding(t))
        h = x.transpose(1, 2)
        skips = []
        for i, (first, second) in enumerate(self.down):
            h = second(first(h, step, next(terms)), step, next(terms))
            if i < self.levels - 1:
                skips.append(h)
                h = self.downsample[i](h)
        for block in self.middle:
            h = block(h, step, next(terms))
        for upsample, first, second in self.up:
            h = torch.cat([upsample(h), skips.pop()], dim=1)
            h = second(first(h, step, next(terms)), step, next(terms))
        return self.head(h).transpose(1, 2)
