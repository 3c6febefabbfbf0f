"""Observation encoders: one small ResNet-style CNN per camera (GroupNorm, not BatchNorm,
as Diffusion Policy does so EMA and small batches behave; spatial softmax keypoints, not
global pooling, so where things are survives), and the low-dimensional vectors as they
are. Written here: torchvision's PyPI build does not load beside the CPU torch."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with groups of 16 channels (at least one group)."""
    return nn.GroupNorm(max(1, channels // 16), channels)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (a 1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), norm(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), norm(cout))
        self.shortcut = (nn.Identity() if cin == cout and stride == 1 else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class SpatialSoftmax(nn.Module):
    """Keypoints of a feature map: each of K learned maps, softmaxed over space, gives the
    expected (x, y) in [-1, 1] of what it responds to (Levine et al.)."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.project = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.project(x)
        b, k, h, w = maps.shape
        weights = F.softmax(maps.reshape(b, k, h * w), dim=-1)
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        expected_x = weights @ grid_x.reshape(h * w, 1)
        expected_y = weights @ grid_y.reshape(h * w, 1)
        return torch.cat([expected_x, expected_y], dim=-1).reshape(b, 2 * k)


class ImageEncoder(nn.Module):
    """(N, 3, H, W) normalised images -> (N, feature_dim)."""

    def __init__(self, channels=(16, 32, 64), keypoints: int = 32, feature_dim: int = 64):
        super().__init__()
        c0 = channels[0]
        layers = [nn.Conv2d(3, c0, 3, 2, 1, bias=False), norm(c0), nn.ReLU(inplace=True)]
        prev = c0
        for i, c in enumerate(channels):
            layers.append(ResidualBlock(prev, c, 1 if i == 0 else 2))
            prev = c
        self.backbone = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax(prev, keypoints)
        self.out = nn.Sequential(nn.Linear(2 * keypoints, feature_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.keypoints(self.backbone(x)))


def module_name(key: str) -> str:
    """A feature key as a module or buffer name (no dots)."""
    return key.replace(".", "__")


class ObservationEncoder(nn.Module):
    """A normalised observation window -> one conditioning vector per sample.

    Per time step: the low-dimensional vectors, then each camera's features; the time
    steps are concatenated (B, obs_horizon * (lowdim + cameras * feature_dim)).
    """

    def __init__(self, lowdim_keys, lowdim_dim: int, cameras, obs_horizon: int,
                 channels=(16, 32, 64), keypoints: int = 32, feature_dim: int = 64):
        super().__init__()
        self.lowdim_keys = list(lowdim_keys)
        self.cameras = list(cameras)
        self.encoders = nn.ModuleDict({module_name(k): ImageEncoder(channels, keypoints,
                                                                    feature_dim)
                                       for k in self.cameras})
        self.out_dim = obs_horizon * (lowdim_dim + len(self.cameras) * feature_dim)

    def forward(self, obs: dict) -> torch.Tensor:
        parts = [obs[k] for k in self.lowdim_keys]
        for key in self.cameras:
            images = obs[key]  # (B, T, 3, H, W)
            b, t = images.shape[:2]
            features = self.encoders[module_name(key)](images.flatten(0, 1))
            parts.append(features.reshape(b, t, -1))
        return torch.cat(parts, dim=-1).flatten(1)
