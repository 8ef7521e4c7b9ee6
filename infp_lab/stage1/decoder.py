"""Decoder (design.md section 4): warped appearance features -> the driven frame.

The decoder is modulated by the driving motion latent (it must draw what the source does
not show: an open mouth, closed eyes) and predicts a blend mask between its own RGB output
and the source image warped by the same flow, which keeps backgrounds and textures sharp.
The latent says *what* to draw but a FiLM vector has no place in the image; with
`driven_maps` the decoder also gets masks of where the driven mouth and eyes open (drawn
from the driven landmarks), at its first and at its last resolution. Without them the
tiny model learnt to stretch the source's closed lips instead of opening the mouth.

Left to learn it, the blend mask saturates at 1 over the whole face, mouth included: the
model pastes the source's stretched, closed lips there, and a saturated sigmoid passes too
little gradient for training to undo it. With `mouth_from_decoder` (an option, off by
default) the blend mask is zero inside the driven mouth opening, so the decoder must draw
the inside of the mouth itself; a 500-step fine-tune with it drew a blurred blob there and
lost 2 dB of PSNR (weights/README.md).

The flow comes at the appearance features' resolution (1/4 of the image in `tiny`), so
warping the source image with it, upsampled, smears every edge where the flow jumps: the
outline of the hair against the background, the collar. Most of the self-reenactment error
was there. With `refine_flow` the decoder predicts a full-resolution correction of that
flow from its last features and the coarsely warped source (it sees where the edges landed
and where its features say they belong), and warps the source again with it.

Inside the opening the truth shows a band of teeth under the upper lip, a dark cavity, the
tongue and the lower teeth, each a pixel or two tall at 128 pixels when the mouth is half
open; the lip dots do not say where. With `mouth_interior` (an option, off by default) the
maps also hold masks of the opening, the teeth and the tongue, drawn from the driven
landmarks (`mouth_interior`); fine-tunes with them drew the mouth no better (weights/README.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from infp_lab.nn.blocks import ConvBlock, ResBlock, Upsample
from infp_lab.stage1.config import Stage1Config
from infp_lab.stage1.hybrid import DRIVEN_MAPS, INTERIOR_MAPS, driven_maps, mouth_interior
from infp_lab.stage1.warping import warp

# The convolutions that read the maps, with how many of their input channels follow the maps
# (init_from widens them when a fine-tune adds maps).
MAP_READERS = {"decoder.stem.conv.weight": 0, "decoder.refine.0.conv.weight": 0, "decoder.mouth_residual.0.conv.weight": 3}
MAX_FLOW_CORRECTION = 0.1  # in [-1, 1] grid units: 6 pixels at 128x128


class Decoder(nn.Module):
    """FiLM residual blocks at 1/4 resolution, then x2 upsampling steps to full size."""

    def __init__(self, config: Stage1Config, feature_channels: int, depth: int = 1):
        super().__init__()
        cfg = config.decoder
        width = cfg.channels[0]
        if (cfg.mouth_from_decoder or cfg.mouth_residual) and not cfg.driven_maps:
            raise ValueError("mouth_from_decoder and mouth_residual need driven_maps: the mouth opening is one of the maps")
        self.driven_maps = cfg.driven_maps
        self.mouth_from_decoder = cfg.mouth_from_decoder
        self.mouth_map = cfg.mouth_map
        self.mouth_interior = cfg.mouth_interior
        maps = (DRIVEN_MAPS + INTERIOR_MAPS * cfg.mouth_interior) if cfg.driven_maps else 0
        self.stem = ConvBlock(feature_channels * depth + maps, width)
        self.blocks = nn.ModuleList(ResBlock(width, cond_dim=config.latent_dim) for _ in range(cfg.blocks))
        ups, cin = [], width
        for cout in cfg.channels:
            ups.append(Upsample(cin, cout))
            cin = cout
        self.ups = nn.Sequential(*ups)
        self.refine = None  # a residual branch that starts as a no-op
        if cfg.driven_maps:
            self.refine = nn.Sequential(ConvBlock(cin + maps, cin), nn.Conv2d(cin, cin, 3, padding=1))
            nn.init.zeros_(self.refine[-1].weight)
            nn.init.zeros_(self.refine[-1].bias)
        self.to_rgb = nn.Conv2d(cin, 4, 3, padding=1)  # RGB + blend mask
        self.flow_correction = None  # full-resolution flow correction, starts at zero
        if cfg.refine_flow:
            self.flow_correction = nn.Sequential(ConvBlock(cin + 3, cin), nn.Conv2d(cin, 2, 3, padding=1))
            nn.init.zeros_(self.flow_correction[-1].weight)
            nn.init.zeros_(self.flow_correction[-1].bias)
        self.mouth_residual = None  # RGB added inside the driven mouth opening, starts at zero
        if cfg.mouth_residual:
            self.mouth_residual = nn.Sequential(ConvBlock(cin + maps + 3, cin), ConvBlock(cin, cin),
                                                nn.Conv2d(cin, 3, 3, padding=1))
            nn.init.zeros_(self.mouth_residual[-1].weight)
            nn.init.zeros_(self.mouth_residual[-1].bias)

    def maps(self, landmarks: torch.Tensor, size: int) -> torch.Tensor:
        """The driven maps (B, M, size, size) the decoder reads, from landmarks (B, L, 2) in [0, 1]."""
        maps = driven_maps(landmarks, size, self.mouth_map)
        if self.mouth_interior:
            maps = torch.cat([maps, mouth_interior(landmarks, size)], dim=1)
        return maps

    def forward(self, warped: torch.Tensor, driving_latent: torch.Tensor, source: torch.Tensor, flow: torch.Tensor,
                driven_landmarks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, C, h, w) or (B, C, D, h, w), latent (B, Dm), the source image
        (B, 3, H, W) with the (x, y) flow that warps it (B, 2, h, w) and, with `driven_maps`,
        the driven landmarks (B, L, 2) in [0, 1]
        -> image (B, 3, H, W) in [0, 1] and the blend mask (B, 1, H, W)."""
        if warped.dim() == 5:
            warped = rearrange(warped, "b c d h w -> b (c d) h w")
        if self.driven_maps:
            if driven_landmarks is None:
                raise ValueError("this decoder draws at the driven landmarks; pass driven_landmarks")
            warped = torch.cat([warped, self.maps(driven_landmarks, warped.shape[-1]).to(warped.dtype)], dim=1)
        x = self.stem(warped)
        for block in self.blocks:
            x = block(x, driving_latent)
        x = self.ups(x)
        if self.refine is not None:
            maps = self.maps(driven_landmarks, x.shape[-1]).to(x.dtype)
            x = x + self.refine(torch.cat([x, maps], dim=1))
        warped_source = warp(source, flow)
        if self.flow_correction is not None:
            flow = F.interpolate(flow, size=source.shape[-2:], mode="bilinear", align_corners=False)
            correction = self.flow_correction(torch.cat([x, warped_source], dim=1))
            warped_source = warp(source, flow + MAX_FLOW_CORRECTION * torch.tanh(correction))
        out = self.to_rgb(x)
        rgb, blend = torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3:])
        if self.mouth_from_decoder:
            blend = blend * (1 - maps[:, :1])  # channel 0: the opening between the driven inner lips
        image = blend * warped_source + (1 - blend) * rgb
        if self.mouth_residual is not None:
            # Where the blend saturates, the composite passes no gradient to the decoder's own RGB;
            # this residual gets all of it, inside the opening only (teeth, the dark inside).
            residual = torch.tanh(self.mouth_residual(torch.cat([x, maps, warped_source], dim=1)))
            image = (image + maps[:, :1] * residual).clamp(0, 1)
        return image, blend
