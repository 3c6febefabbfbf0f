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
    """Two conv blocks; between them the condition scales and shifts every channel."""

    def __init__(self, cin: int, cout: int, cond_dim: int, kernel: int, groups: int):
        super().__init__()
        self.first = ConvNormAct(cin, cout, kernel, groups)
        self.second = ConvNormAct(cout, cout, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * cout))
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.second(h * scale + bias)
        return h + self.skip(x)


class TemporalUNet(nn.Module):
    """Predicts the noise (or the clean chunk) of a noisy action chunk."""

    def __init__(self, action_dim: int, global_cond_dim: int, down_dims=(64, 128, 256),
                 kernel: int = 5, groups: int = 8, step_embed_dim: int = 64):
        super().__init__()
        self.step_embedding = StepEmbedding(step_embed_dim)
        cond_dim = step_embed_dim + global_cond_dim
        dims = [action_dim] + list(down_dims)
        levels = list(zip(dims[:-1], dims[1:]))
        self.levels = len(levels)
        self.down = nn.ModuleList()
        for i, (cin, cout) in enumerate(levels):
            last = i == len(levels) - 1
            self.down.append(nn.ModuleList([
                FiLMResidualBlock(cin, cout, cond_dim, kernel, groups),
                FiLMResidualBlock(cout, cout, cond_dim, kernel, groups),
                nn.Identity() if last else nn.Conv1d(cout, cout, 3, stride=2, padding=1)]))
        mid = dims[-1]
        self.middle = nn.ModuleList([FiLMResidualBlock(mid, mid, cond_dim, kernel, groups),
                                     FiLMResidualBlock(mid, mid, cond_dim, kernel, groups)])
        self.up = nn.ModuleList()
        # Each up level takes the skip of the down level of the same length, so every one
        # of them doubles the length back (the first down level's output is not reused).
        for cin, cout in reversed(levels[1:]):
            self.up.append(nn.ModuleList([
                FiLMResidualBlock(cout * 2, cin, cond_dim, kernel, groups),
                FiLMResidualBlock(cin, cin, cond_dim, kernel, groups),
                nn.ConvTranspose1d(cin, cin, 4, stride=2, padding=1)]))
        start = dims[1]
        self.head = nn.Sequential(ConvNormAct(start, start, kernel, groups),
                                  nn.Conv1d(start, action_dim, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """x (B, T, A) noisy actions, t (B,) diffusion steps, global_cond (B, C)."""
        if x.shape[1] % (2 ** (self.levels - 1)):
            raise ValueError("horizon %d is not divisible by %d (U-Net levels)"
                             % (x.shape[1], 2 ** (self.levels - 1)))
        cond = torch.cat([self.step_embedding(t), global_cond], dim=-1)
        h = x.transpose(1, 2)
        skips = []
        for first, second, downsample in self.down:
            h = second(first(h, cond), cond)
            skips.append(h)
            h = downsample(h)
        for block in self.middle:
            h = block(h, cond)
        for first, second, upsample in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = upsample(second(first(h, cond), cond))
        return self.head(h).transpose(1, 2)
