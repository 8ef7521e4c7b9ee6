"""Convolutional building blocks shared by the stages (design.md sections 4-5)."""

from __future__ import annotations

import torch
from torch import nn


def norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ConvBlock(nn.Module):
    """Conv -> GroupNorm -> SiLU, optionally strided (2-D or 3-D)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dims: int = 2):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.conv = conv(cin, cout, 3, stride=stride, padding=1)
        self.norm = norm(cout)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection, optionally FiLM-modulated by a vector."""

    def __init__(self, channels: int, cond_dim: int = 0, dims: int = 2):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.norm1, self.conv1 = norm(channels), conv(channels, channels, 3, padding=1)
        self.norm2, self.conv2 = norm(channels), conv(channels, channels, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * channels) if cond_dim else None
        self.act = nn.SiLU()
        self.dims = dims

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None:
            scale, shift = self.film(cond).chunk(2, dim=1)  # (B, C) each
            shape = (*scale.shape, *([1] * self.dims))
            h = h * (1 + scale.view(shape)) + shift.view(shape)
        return x + self.conv2(self.act(h))


class Upsample(nn.Module):
    """Nearest x2 upsampling followed by a ConvBlock."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = ConvBlock(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))
