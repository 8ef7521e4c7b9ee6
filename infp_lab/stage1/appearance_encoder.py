"""Appearance encoder (design.md section 4): the source portrait -> appearance features,
a 3-D feature volume at paper scale (as in INFP's figure) or a 2-D map in the tiny preset."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from infp_lab.nn.blocks import ConvBlock, ResBlock
from infp_lab.stage1.config import Stage1Config


class AppearanceEncoder(nn.Module):
    """Strided convolutions to 1/4 resolution; "3d" lifts channels into a (C, D) volume."""

    def __init__(self, config: Stage1Config):
        super().__init__()
        cfg = config.appearance
        if cfg.type not in ("2d", "3d"):
            raise ValueError(f"appearance type must be '2d' or '3d', got {cfg.type!r}")
        layers = [ConvBlock(3, cfg.channels[0])]
        for cin, cout in zip(cfg.channels[:-1], cfg.channels[1:]):
            layers.append(ConvBlock(cin, cout, stride=2))
        self.features = nn.Sequential(*layers)
        self.type, self.depth = cfg.type, cfg.depth
        width = cfg.channels[-1]
        dims = 3 if cfg.type == "3d" else 2
        self.volume_channels = width // cfg.depth if cfg.type == "3d" else width
        self.blocks = nn.ModuleList(ResBlock(self.volume_channels, dims=dims) for _ in range(cfg.blocks))

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C, H/4, W/4) for "2d" or (B, C, D, H/4, W/4) for "3d"."""
        feat = self.features(source)
        if self.type == "3d":
            feat = rearrange(feat, "b (c d) h w -> b c d h w", d=self.depth)
        for block in self.blocks:
            feat = block(feat)
        return feat
