"""Motion encoder (design.md section 4): the hybrid representation of a driving frame ->
a 1-D motion latent (INFP's implicit motion code)."""

from __future__ import annotations

import torch
from torch import nn

from infp_lab.nn.blocks import ConvBlock
from infp_lab.stage1.config import Stage1Config


class MotionEncoder(nn.Module):
    """Strided convolutions, then a linear map of the flattened 4x4 grid to the latent."""

    def __init__(self, config: Stage1Config):
        super().__init__()
        channels = config.motion.channels
        layers, cin = [], 3
        for cout in channels:
            layers.append(ConvBlock(cin, cout, stride=2))
            cin = cout
        self.features = nn.Sequential(*layers)
        side = config.image_size // 2 ** len(channels)
        self.to_latent = nn.Linear(cin * side * side, config.latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, latent_dim)."""
        return self.to_latent(self.features(x).flatten(1))


class LandmarkHead(nn.Module):
    """Motion latent -> the project's landmarks, normalised to [0, 1] of the frame."""

    def __init__(self, config: Stage1Config, hidden: int = 256):
        super().__init__()
        self.num_landmarks = config.num_landmarks
        self.net = nn.Sequential(nn.Linear(config.latent_dim, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2 * config.num_landmarks))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, L, 2)."""
        return 0.5 + self.net(latent).view(-1, self.num_landmarks, 2)
