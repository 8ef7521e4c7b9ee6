"""Optional patch discriminator for stage-1 training (design.md section 4: "+ optional patch GAN")."""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """A PatchGAN: a map of real/fake logits, one per overlapping patch."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers, cin = [], 3
        for cout in channels:
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1, H/8, W/8) logits."""
        return self.net(images * 2 - 1)
