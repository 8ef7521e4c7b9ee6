"""Flow estimator and warping (design.md section 4): from the source and driving motion
latents (and the source's appearance features) predict a dense flow and an occlusion map
that warp the appearance features (and the source image) towards the driving motion.

The estimator starts from a landmark prior: the landmark head decodes both latents, their
displacement is moved onto the source's own landmarks, and a Gaussian-weighted
sparse-to-dense interpolation of those displacements gives a first flow (as keypoint-based
reenactment models do); the network predicts a residual on top of it and the occlusion."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from infp_lab.nn.blocks import ConvBlock, ResBlock
from infp_lab.stage1.config import Stage1Config
from infp_lab.stage1.hybrid import mouth_opening

MOUTH_REACH = 4  # pixels (at 128 px) beyond the driven and the source lips that the sharp mouth prior covers


class Flow(NamedTuple):
    """Backward flow in normalised coordinates and an occlusion (visibility) map."""

    flow: torch.Tensor  # (B, 2, h, w) or (B, 3, D, h, w): offsets in [-1, 1] grid units
    occlusion: torch.Tensor  # (B, 1, h, w) or (B, 1, D, h, w) in [0, 1]


def identity_grid(shape: tuple[int, ...], device, dtype=torch.float32) -> torch.Tensor:
    """Sampling grid (1, *spatial, ndim) of pixel centres in [-1, 1] (x first, as grid_sample wants)."""
    axes = [torch.linspace(-1 + 1 / n, 1 - 1 / n, n, device=device, dtype=dtype) for n in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")  # (y, x) or (z, y, x)
    return torch.stack(mesh[::-1], dim=-1).unsqueeze(0)


def landmark_flow(source_landmarks: torch.Tensor, driving_landmarks: torch.Tensor, shape: tuple[int, int],
                  sigma: float = 0.05, background: float = 0.05) -> torch.Tensor:
    """Dense backward flow (B, 2, h, w) in grid units from matching landmarks (B, L, 2) in [0, 1].

    At each output location the flow is the Gaussian-weighted mean of the landmarks'
    driving-to-source offsets; a constant background weight makes it fade to zero far
    from the face.
    """
    h, w = shape
    ys = (torch.arange(h, device=source_landmarks.device, dtype=source_landmarks.dtype) + 0.5) / h
    xs = (torch.arange(w, device=source_landmarks.device, dtype=source_landmarks.dtype) + 0.5) / w
    dx = xs.view(1, 1, 1, w) - driving_landmarks[:, :, 0, None, None]  # (B, L, 1, w)
    dy = ys.view(1, 1, h, 1) - driving_landmarks[:, :, 1, None, None]  # (B, L, h, 1)
    weights = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))  # (B, L, h, w)
    offsets = 2.0 * (source_landmarks - driving_landmarks)  # (B, L, 2) in grid units
    flow = torch.einsum("blhw,blc->bchw", weights, offsets)
    return flow / (weights.sum(dim=1, keepdim=True) + background)


def sharpen_mouth(flow: torch.Tensor, prior: torch.Tensor, source_landmarks: torch.Tensor,
                  driving_landmarks: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """The flow (B, 2, h, w) that warps the source image, at full resolution (B, 2, size, size),
    with its landmark prior recomputed around the mouth at the smaller `sigma`.

    The prior's Gaussian (sigma 0.05, 6 pixels at 128) averages the upper lip's displacement
    with the lower lip's a few pixels away, and the flow comes at a quarter of the image's
    resolution, so the warped lips cannot part: the render draws an open mouth nearly shut
    (weights/README.md, "The inside of the mouth"). Around the driven and the source lips the
    sharp prior takes the smooth one's place; elsewhere the flow is unchanged.
    """
    def full(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)

    sharp = landmark_flow(source_landmarks, driving_landmarks, (size, size), sigma=sigma)
    lips = torch.maximum(mouth_opening(driving_landmarks, size), mouth_opening(source_landmarks, size))
    reach = 2 * round(MOUTH_REACH * size / 128) + 1
    near = F.max_pool2d(lips.unsqueeze(1), reach, stride=1, padding=reach // 2)  # (B, 1, size, size)
    return full(flow) + near * (sharp - full(prior))


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `x` (B, C, *S) at identity + flow, flow (B, ndim, *S') resized to S if needed."""
    spatial = x.shape[2:]
    if flow.shape[2:] != spatial:
        mode = "bilinear" if flow.dim() == 4 else "trilinear"
        flow = F.interpolate(flow, size=spatial, mode=mode, align_corners=False)
    grid = identity_grid(tuple(spatial), x.device, x.dtype) + flow.movedim(1, -1)  # (B, *S, ndim)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class FlowEstimator(nn.Module):
    """A small FiLM-conditioned U-Net on the appearance features."""

    def __init__(self, config: Stage1Config, feature_channels: int, depth: int = 1):
        super().__init__()
        cfg = config.flow
        width = cfg.channels
        self.depth, self.max_flow = depth, cfg.max_flow
        self.cond = nn.Sequential(nn.Linear(2 * config.latent_dim, 256), nn.SiLU(), nn.Linear(256, 256))
        self.stem = ConvBlock(feature_channels * depth + 4, width)  # + coordinates + landmark prior
        self.down = nn.ModuleList(ConvBlock(width, width, stride=2) for _ in range(cfg.levels))
        self.mid = nn.ModuleList(ResBlock(width, cond_dim=256) for _ in range(cfg.levels + 1))
        self.up = nn.ModuleList(ConvBlock(2 * width, width) for _ in range(cfg.levels))
        out_per_depth = 4 if depth > 1 else 3  # (flow..., occlusion)
        self.head = nn.Conv2d(width, out_per_depth * depth, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, features: torch.Tensor, source_latent: torch.Tensor, driving_latent: torch.Tensor,
                prior: torch.Tensor) -> Flow:
        """Appearance features, both latents (B, Dm) and the landmark prior flow (B, 2, h, w)."""
        if features.dim() == 5:
            features = rearrange(features, "b c d h w -> b (c d) h w")
        b, _, h, w = features.shape
        cond = self.cond(torch.cat([source_latent, driving_latent], dim=1))  # (B, 256)
        coords = identity_grid((h, w), features.device, features.dtype).movedim(-1, 1).expand(b, -1, -1, -1)
        x = self.stem(torch.cat([features, coords, prior], dim=1))
        skips = []
        for down, block in zip(self.down, self.mid):
            x = block(x, cond)
            skips.append(x)
            x = down(x)
        x = self.mid[-1](x, cond)
        for up, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[2:], mode="nearest")
            x = up(torch.cat([x, skip], dim=1))
        out = self.head(x)  # (B, k * D, h, w)
        if self.depth > 1:
            out = rearrange(out, "b (k d) h w -> b k d h w", d=self.depth)
        flow = torch.tanh(out[:, :-1]) * self.max_flow  # the residual on top of the prior
        if self.depth > 1:
            flow = flow + F.pad(prior, (0, 0, 0, 0, 0, 1)).unsqueeze(2)  # prior moves x and y, not depth
        else:
            flow = flow + prior
        occlusion = torch.sigmoid(out[:, -1:] + 3.0)  # starts near 1: everything visible
        return Flow(flow, occlusion)
