"""Motion style generator (design.md section 5): the motion latents of a reference clip ->
a small temporal-convolution encoder -> a temporal mean ("squeeze") -> the style vector
s_m, which modulates the memory banks and conditions the denoiser's adaLN."""

from __future__ import annotations

import torch
from torch import nn

from infp_lab.stage2.audio_encoder import TemporalConvBlock
from infp_lab.stage2.config import Stage2Config


class StyleEncoder(nn.Module):
    """Reference motion latents -> one style vector per clip."""

    def __init__(self, config: Stage2Config):
        super().__init__()
        dim = config.style.dim
        self.latent_dim = config.latent_dim
        self.embed = nn.Linear(config.latent_dim, dim)
        self.blocks = nn.ModuleList(TemporalConvBlock(dim, 3) for _ in range(config.style.layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T, latent_dim) normalised motion latents, any T >= 1 -> style (B, style.dim)."""
        if latents.dim() != 3 or latents.shape[-1] != self.latent_dim or latents.shape[1] < 1:
            raise ValueError(f"style reference must be (B, T >= 1, {self.latent_dim}) motion latents, "
                             f"got {tuple(latents.shape)}")
        x = self.embed(latents)  # (B, T, Ds)
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x).mean(dim=1))  # (B, Ds)
