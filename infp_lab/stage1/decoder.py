"""Decoder (design.md section 4): warped appearance features -> the driven frame.

The decoder is modulated by the driving motion latent (it must draw what the source does
not show: an open mouth, closed eyes) and predicts a blend mask between its own RGB output
and the source image warped by the same flow, which keeps backgrounds and textures sharp.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from infp_lab.nn.blocks import ConvBlock, ResBlock, Upsample
from infp_lab.stage1.config import Stage1Config


class Decoder(nn.Module):
    """FiLM residual blocks at 1/4 resolution, then x2 upsampling steps to full size."""

    def __init__(self, config: Stage1Config, feature_channels: int, depth: int = 1):
        super().__init__()
        cfg = config.decoder
        width = cfg.channels[0]
        self.stem = ConvBlock(feature_channels * depth, width)
        self.blocks = nn.ModuleList(ResBlock(width, cond_dim=config.latent_dim) for _ in range(cfg.blocks))
        ups, cin = [], width
        for cout in cfg.channels:
            ups.append(Upsample(cin, cout))
            cin = cout
        self.ups = nn.Sequential(*ups)
        self.to_rgb = nn.Conv2d(cin, 4, 3, padding=1)  # RGB + blend mask

    def forward(self, warped: torch.Tensor, driving_latent: torch.Tensor,
                warped_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, C, h, w) or (B, C, D, h, w), latent (B, Dm), warped source (B, 3, H, W)
        -> image (B, 3, H, W) in [0, 1] and the blend mask (B, 1, H, W)."""
        if warped.dim() == 5:
            warped = rearrange(warped, "b c d h w -> b (c d) h w")
        x = self.stem(warped)
        for block in self.blocks:
            x = block(x, driving_latent)
        out = self.to_rgb(self.ups(x))
        rgb, blend = torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3:])
        return blend * warped_source + (1 - blend) * rgb, blend
