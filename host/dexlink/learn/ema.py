"""Exponential moving average of the weights, the ones a Diffusion Policy is evaluated with.

The decay warms up as 1 - (1 + step) ** -power (capped at max_decay), as in Chi et al.:
early averages follow the weights closely, late ones over thousands of steps.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, power: float = 0.75, max_decay: float = 0.9999):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.power, self.max_decay = power, max_decay

    def decay(self, step: int) -> float:
        return min(self.max_decay, max(0.0, 1 - (1 + step) ** -self.power))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold in the weights after optimiser step `step` (counted from 0)."""
        d = self.decay(step)
        for avg, p in zip(self.model.parameters(), model.parameters()):
            avg.mul_(d).add_(p.detach(), alpha=1 - d)
        for avg, b in zip(self.model.buffers(), model.buffers()):
            avg.copy_(b)
