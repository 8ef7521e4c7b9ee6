"""Interactive motion guider (design.md section 5): two learnable memory banks, verbal
(Mv) and non-verbal (Mnv), each modulated by the motion style vector (StyleGAN2-style
modulation and demodulation); the self track's audio attends to Mv, the other track's to
Mnv; the two results are added and passed through an MLP to give the interactive motion
feature f_m. There is no role label: whichever track carries speech shapes f_m.

The attention is computed explicitly so that its weights (averaged over heads) are an
output: the notebooks and the demo plot which memory entries each frame reads.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from torch import nn

from infp_lab.stage2.config import Stage2Config


class GuiderOutput(NamedTuple):
    """The interactive motion feature and the attention over both memory banks."""

    feature: torch.Tensor  # (B, T, D): f_m
    verbal_attention: torch.Tensor  # (B, T, K): self audio over Mv, rows sum to 1
    nonverbal_attention: torch.Tensor  # (B, T, K): other audio over Mnv, rows sum to 1


class MemoryBank(nn.Module):
    """K learnable entries of size `dim`, modulated per channel by a style vector."""

    def __init__(self, size: int, dim: int, style_dim: int, eps: float = 1e-6):
        super().__init__()
        self.entries = nn.Parameter(torch.randn(size, dim))
        self.affine = nn.Linear(style_dim, dim)  # style -> per-channel scales
        nn.init.ones_(self.affine.bias)  # StyleGAN2: scales start around 1
        self.eps = eps

    def forward(self, style: torch.Tensor | None = None, drop: torch.Tensor | None = None) -> torch.Tensor:
        """Style (B, Ds) or None -> entries (B, K, D), or (1, K, D) when `style` is None.

        Modulation scales every entry's channels by an affine map of the style, then
        demodulation normalises each entry to unit RMS. Without a style (or where the
        boolean mask `drop` (B,) is True) the entries are not modulated, only normalised.
        """
        entries = self.entries[None]  # (1, K, D)
        if style is None:
            return self._demodulate(entries)
        scales = self.affine(style)  # (B, D)
        if drop is not None:
            scales = torch.where(drop[:, None], torch.ones_like(scales), scales)
        return self._demodulate(entries * scales[:, None, :])  # (B, K, D)

    def _demodulate(self, entries: torch.Tensor) -> torch.Tensor:
        return entries * torch.rsqrt(entries.pow(2).mean(dim=-1, keepdim=True) + self.eps)


class BankAttention(nn.Module):
    """Cross-attention of per-frame queries to a memory bank, returning the weights."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, bank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, T, D), bank (B, K, D) -> (read-out (B, T, D), weights (B, T, K))."""
        q = rearrange(self.to_q(self.norm(queries)), "b t (h d) -> b h t d", h=self.heads)
        k = rearrange(self.to_k(bank), "b k (h d) -> b h k d", h=self.heads)
        v = rearrange(self.to_v(bank), "b k (h d) -> b h k d", h=self.heads)
        weights = torch.einsum("bhtd,bhkd->bhtk", q, k).mul(self.scale).softmax(dim=-1)  # (B, H, T, K)
        out = rearrange(torch.einsum("bhtk,bhkd->bhtd", weights, v), "b h t d -> b t (h d)")
        return self.to_out(out), weights.mean(dim=1)


class InteractiveMotionGuider(nn.Module):
    """Self audio -> verbal bank, other audio -> non-verbal bank; add, MLP -> f_m."""

    def __init__(self, config: Stage2Config):
        super().__init__()
        dim, size = config.dim, config.guider.bank_size
        self.verbal_bank = MemoryBank(size, dim, config.style.dim)
        self.nonverbal_bank = MemoryBank(size, dim, config.style.dim)
        self.verbal_attention = BankAttention(dim, config.guider.heads)
        self.nonverbal_attention = BankAttention(dim, config.guider.heads)
        self.fuse = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.memory_banks, self.style_modulation = config.guider.memory_banks, config.guider.style_modulation
        self.bank_size = size

    def forward(self, self_audio: torch.Tensor, other_audio: torch.Tensor, style: torch.Tensor | None = None,
                drop_style: torch.Tensor | None = None) -> GuiderOutput:
        """Encoded audio of both tracks (B, T, D) and a style (B, Ds) or None -> GuiderOutput.

        `drop_style` (B,) bool leaves the banks unmodulated for those samples.
        """
        batch, frames = self_audio.shape[:2]
        if not self.memory_banks:  # ablation: no banks, the audio goes straight to the fusion (uniform weights)
            uniform = self_audio.new_full((batch, frames, self.bank_size), 1.0 / self.bank_size)
            return GuiderOutput(self.fuse(self_audio + other_audio), uniform, uniform)
        if not self.style_modulation:  # ablation: banks without style modulation
            style = None
        verbal = self.verbal_bank(style, drop_style).expand(batch, -1, -1)  # (B, K, D)
        nonverbal = self.nonverbal_bank(style, drop_style).expand(batch, -1, -1)  # (B, K, D)
        speaking, verbal_weights = self.verbal_attention(self_audio, verbal)  # (B, T, D), (B, T, K)
        listening, nonverbal_weights = self.nonverbal_attention(other_audio, nonverbal)
        feature = self.fuse(speaking + listening)  # (B, T, D)
        return GuiderOutput(feature, verbal_weights, nonverbal_weights)
