"""Denoising motion transformer (design.md section 5): a pure network that reads a window of
noisy motion latents and predicts the noise (epsilon, as in the paper), the clean latents or
v, whichever `config.diffusion.prediction` names (the loss and the sampler follow it).

Each block: self-attention over the window -> motion attention (cross-attention to the
interactive motion feature f_m, frame-aligned through a learned positional embedding on
queries and keys) -> temporal attention (cross-attention to the previous window's last C
motion latents) -> MLP. Every sublayer is conditioned with adaLN-Zero on the timestep
embedding plus the style embedding. Each condition (f_m, previous motion, style) can be
dropped per sample by a boolean mask and is then replaced by a learned null embedding,
so training drops at random and classifier-free guidance batches its branches.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from infp_lab.stage2.config import Stage2Config


def timestep_embedding(timestep: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (B,) timesteps -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=timestep.device) / half)  # (half,)
    angles = timestep.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return nn.functional.pad(emb, (0, dim % 2))


class Attention(nn.Module):
    """Multi-head attention of `query` (B, N, D) to `key`/`value` (B, M, D)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """`mask` (N, M) bool: True where a query may attend to a key (None: everywhere)."""
        value = key if value is None else value
        q, k, v = (rearrange(proj(x), "b n (h d) -> b h n d", h=self.heads)
                   for proj, x in ((self.to_q, query), (self.to_k, key), (self.to_v, value)))
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, N, d)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class DiTBlock(nn.Module):
    """Self-attention -> motion attention -> temporal attention -> MLP, each with adaLN-Zero."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6) for _ in range(4))
        self.self_attention = Attention(dim, heads)
        self.motion_attention = Attention(dim, heads)
        self.temporal_attention = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp_ratio * dim, dim))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 12 * dim))  # (shift, scale, gate) x 4
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, motion: torch.Tensor, motion_position: torch.Tensor,
                motion_mask: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """x (B, W, D), cond (B, D), motion (B, W, D), motion_position (W, D), motion_mask (W, W)
        bool (the f_m frames each frame may read), previous (B, C, D)."""
        mods = self.modulation(cond)[:, None].chunk(12, dim=-1)  # 12 x (B, 1, D)

        def modulated(i: int) -> torch.Tensor:
            return self.norms[i](x) * (1 + mods[3 * i + 1]) + mods[3 * i]

        h = modulated(0)
        x = x + mods[2] * self.self_attention(h, h)
        h = modulated(1)
        x = x + mods[5] * self.motion_attention(h + motion_position, motion + motion_position, motion, motion_mask)
        h = modulated(2)
        x = x + mods[8] * self.temporal_attention(h, previous)
        h = modulated(3)
        return x + mods[11] * self.mlp(h)


class MotionDiT(nn.Module):
    """Noisy motion latents + timestep + (f_m, previous motion, style) -> prediction."""

    def __init__(self, config: Stage2Config):
        super().__init__()
        dim, dit = config.dim, config.dit
        self.latent_dim, self.dim, self.style_dim = config.latent_dim, dim, config.style.dim
        self.window, self.context, self.motion_band = dit.window, dit.context, dit.motion_band
        self.input = nn.Linear(config.latent_dim, dim)
        self.position = nn.Parameter(torch.randn(dit.window, dim) * 0.02)
        self.motion_position = nn.Parameter(torch.randn(dit.window, dim) * 0.02)
        self.context_position = nn.Parameter(torch.randn(dit.context, dim) * 0.02)
        self.motion_norm = nn.LayerNorm(dim)
        self.previous_proj = nn.Linear(config.latent_dim, dim)
        self.null_motion = nn.Parameter(torch.randn(dim) * 0.02)
        self.null_previous = nn.Parameter(torch.randn(dit.context, dim) * 0.02)
        self.null_style = nn.Parameter(torch.zeros(dim))
        self.time_embed = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.style_embed = nn.Sequential(nn.Linear(config.style.dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(DiTBlock(dim, dit.heads, dit.mlp_ratio) for _ in range(dit.layers))
        self.final_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.output = nn.Linear(dim, config.latent_dim)
        for layer in (self.final_modulation[1], self.output):  # zero-initialised output (adaLN-Zero)
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, noisy: torch.Tensor, timestep: torch.Tensor, motion_feature: torch.Tensor | None,
                previous: torch.Tensor | None, style: torch.Tensor | None, drop_motion: torch.Tensor | None = None,
                drop_previous: torch.Tensor | None = None, drop_style: torch.Tensor | None = None) -> torch.Tensor:
        """The prediction (B, W, latent_dim) for a window of 1 <= W <= window frames.

        Args:
            noisy: (B, W, latent_dim) noisy normalised latents.
            timestep: (B,) or scalar diffusion timesteps (int or float).
            motion_feature: (B, W, dim) f_m, or None (dropped for all samples).
            previous: (B, C', latent_dim) the previous window's last C' <= context normalised
                latents (fewer than C at the start of a sequence: the earliest slots then
                hold null tokens), or None (dropped for all samples).
            style: (B, style_dim) style vector, or None (dropped for all samples).
            drop_motion, drop_previous, drop_style: (B,) bool, True where that condition is
                replaced by its learned null embedding.
        """
        batch, width = self._check(noisy, motion_feature, previous, style)
        timestep = torch.as_tensor(timestep, device=noisy.device)
        timestep = timestep.expand(batch) if timestep.dim() == 0 else timestep
        if timestep.shape != (batch,):
            raise ValueError(f"timestep must be a scalar or ({batch},), got {tuple(timestep.shape)}")

        null_motion = self.null_motion.expand(batch, width, -1)  # (B, W, D)
        motion = null_motion if motion_feature is None else torch.where(
            _mask(drop_motion, batch, noisy.device)[:, None, None], null_motion, self.motion_norm(motion_feature))
        null_context = self.null_previous.expand(batch, -1, -1)  # (B, C, D)
        context = null_context
        if previous is not None:  # C' <= C real frames fill the last C' slots, null tokens the rest
            length = previous.shape[1]
            real = self.previous_proj(previous) + self.context_position[-length:]  # (B, C', D)
            context = torch.cat([null_context[:, :self.context - length], real], dim=1)  # (B, C, D)
            context = torch.where(_mask(drop_previous, batch, noisy.device)[:, None, None], null_context, context)
        null_style = self.null_style.expand(batch, -1)  # (B, D)
        style_emb = null_style if style is None else torch.where(
            _mask(drop_style, batch, noisy.device)[:, None], null_style, self.style_embed(style))
        cond = self.time_embed(timestep_embedding(timestep, self.dim)) + style_emb  # (B, D)

        x = self.input(noisy) + self.position[:width]  # (B, W, D)
        motion_position = self.motion_position[:width]
        frame = torch.arange(width, device=noisy.device)
        motion_mask = (frame[:, None] - frame[None, :]).abs() <= self.motion_band  # (W, W)
        for block in self.blocks:
            x = block(x, cond, motion, motion_position, motion_mask, context)
        shift, scale = self.final_modulation(cond)[:, None].chunk(2, dim=-1)  # (B, 1, D) each
        return self.output(self.final_norm(x) * (1 + scale) + shift)  # (B, W, latent_dim)

    def _check(self, noisy, motion_feature, previous, style) -> tuple[int, int]:
        if noisy.dim() != 3 or noisy.shape[-1] != self.latent_dim:
            raise ValueError(f"noisy latents must be (B, W, {self.latent_dim}), got {tuple(noisy.shape)}")
        batch, width = noisy.shape[:2]
        if not 1 <= width <= self.window:
            raise ValueError(f"window length must be in [1, {self.window}] frames, got {width}")
        if motion_feature is not None and motion_feature.shape != (batch, width, self.dim):
            raise ValueError(f"motion feature must be ({batch}, {width}, {self.dim}) to match the noisy "
                             f"latents, got {tuple(motion_feature.shape)}")
        if previous is not None and (previous.dim() != 3 or previous.shape[0] != batch
                                     or previous.shape[-1] != self.latent_dim
                                     or not 1 <= previous.shape[1] <= self.context):
            raise ValueError(f"previous motion must be ({batch}, C, {self.latent_dim}) with 1 <= C <= "
                             f"{self.context}, got {tuple(previous.shape)}")
        if style is not None and style.shape != (batch, self.style_dim):
            raise ValueError(f"style must be ({batch}, {self.style_dim}), got {tuple(style.shape)}")
        return batch, width


def _mask(drop: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
    """A (B,) bool drop mask; None means keep the condition for every sample."""
    if drop is None:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    drop = torch.as_tensor(drop, device=device)
    if drop.shape != (batch,):
        raise ValueError(f"drop masks must be ({batch},) booleans, got {tuple(drop.shape)}")
    return drop.bool()
