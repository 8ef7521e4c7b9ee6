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

What the lip-sync judge reads inside the mouth is fine detail (the edges of the teeth and of the
dark inside), a pixel or two at 128 pixels, which a decoder drawing at 128 pixels blurs. With
`mouth_detail` (an option, off by default) a `MouthDetail` branch redraws a square around the
driven mouth at `mouth_detail` times the image's resolution, from the decoder's features and
the driven maps drawn at that resolution, and averages its residual down into the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from infp_lab.nn.blocks import ConvBlock, ResBlock, Upsample
from infp_lab.stage1.config import Stage1Config
from infp_lab.stage1.hybrid import DRIVEN_MAPS, INTERIOR_MAPS, MOUTH, driven_maps, mouth_interior, mouth_region
from infp_lab.stage1.warping import warp

# The convolutions that read the maps, with how many of their input channels follow the maps
# (init_from widens them when a fine-tune adds maps).
MAP_READERS = {"decoder.stem.conv.weight": 0, "decoder.refine.0.conv.weight": 0, "decoder.mouth_residual.0.conv.weight": 3}
MAX_FLOW_CORRECTION = 0.1  # in [-1, 1] grid units: 6 pixels at 128x128
MOUTH_DETAIL_SIDE = 0.25  # side of `MouthDetail`'s square, as a share of the image's: 32 pixels at 128 (SynConv's widest mouth: 22)


class MouthDetail(nn.Module):
    """An RGB residual over the driven mouth, drawn at `scale` times the image's resolution.

    A square of MOUTH_DETAIL_SIDE of the image, on whole pixels around the driven outer lips, is cut
    from the image and the decoder's last features and upsampled; the driven maps and the
    interior masks (opening, teeth, tongue) are drawn at that resolution from the landmarks;
    FiLM residual blocks conditioned on the motion latent predict a residual inside the mouth
    region (lips and a margin), which is averaged back down to the image's pixels and added.
    Its last layer starts at zero, so it starts as a no-op."""

    def __init__(self, feature_channels: int, latent_dim: int, scale: int, mouth_map: str, width: int = 48,
                 blocks: int = 2):
        super().__init__()
        self.scale, self.mouth_map = scale, mouth_map
        self.stem = ConvBlock(feature_channels + 3 + DRIVEN_MAPS + INTERIOR_MAPS, width)
        self.blocks = nn.ModuleList(ResBlock(width, cond_dim=latent_dim) for _ in range(blocks))
        self.to_rgb = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.to_rgb.weight)
        nn.init.zeros_(self.to_rgb.bias)

    @staticmethod
    def square(landmarks: torch.Tensor, size: int) -> tuple[torch.Tensor, int]:
        """The square around the outer lips of landmarks (B, L, 2) in [0, 1] in a `size` image:
        its top-left pixels (B, 2) and its side in pixels."""
        side = round(MOUTH_DETAIL_SIDE * size)
        centre = landmarks[:, list(MOUTH)].mean(dim=1) * size
        return (centre - side / 2).round().clamp(0, size - side).long(), side

    def forward(self, image: torch.Tensor, features: torch.Tensor, latent: torch.Tensor,
                landmarks: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, H, W), the decoder's features at its resolution (B, C, H, W), the
        driving latent (B, D), driven landmarks (B, L, 2) in [0, 1] -> the image with the mouth redrawn."""
        size = image.shape[-1]
        corners, side = self.square(landmarks, size)
        inputs = torch.cat([image, features], dim=1)
        crops = torch.stack([inputs[b, :, y:y + side, x:x + side] for b, (x, y) in enumerate(corners.tolist())])
        crops = F.interpolate(crops, scale_factor=self.scale, mode="bilinear", align_corners=False)
        local = (landmarks * size - corners[:, None].to(landmarks.dtype)) / side  # in the square's [0, 1]
        fine = side * self.scale
        maps = torch.cat([driven_maps(local, fine, self.mouth_map), mouth_interior(local, fine)], dim=1)
        h = self.stem(torch.cat([crops, maps.to(crops.dtype)], dim=1))
        for block in self.blocks:
            h = block(h, latent)
        residual = torch.tanh(self.to_rgb(h)) * mouth_region(local, fine).unsqueeze(1).to(h.dtype)
        residual = F.avg_pool2d(residual, self.scale)  # (B, 3, side, side)
        canvas = torch.stack([F.pad(residual[b], (x, size - side - x, y, size - side - y))
                              for b, (x, y) in enumerate(corners.tolist())])
        return (image + canvas).clamp(0, 1)


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
        self.mouth_detail = None
        if cfg.mouth_detail:
            self.mouth_detail = MouthDetail(cin, config.latent_dim, cfg.mouth_detail, cfg.mouth_map)

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
        if self.mouth_detail is not None:
            image = self.mouth_detail(image, x, driving_latent, driven_landmarks)
        return image, blend
