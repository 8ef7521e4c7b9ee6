"""Optional patch discriminators for stage-1 training (design.md section 4: "+ optional patch
GAN"): one over the whole frame, and one over mouth crops that also sees where the mouth
should be open (the inside of an open mouth, teeth included, is what L1 blurs most)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from infp_lab.stage1.hybrid import EYES, MOUTH, mouth_opening

MOUTH_CROP = (32, 48)  # (height, width) of the mouth discriminator's crops
MOUTH_CROP_EXTENT = (0.9, 1.35)  # the crop's height and width in inter-ocular distances


class PatchDiscriminator(nn.Module):
    """A PatchGAN: a map of real/fake logits, one per overlapping patch."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), in_channels: int = 3):
        super().__init__()
        layers, cin = [], in_channels
        for cout in channels:
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, 1, H / 2^n, W / 2^n) logits, n = len(channels)."""
        return self.net(images * 2 - 1)


def mouth_crops(images: torch.Tensor, landmarks: torch.Tensor, size: tuple[int, int] = MOUTH_CROP) -> torch.Tensor:
    """Differentiable crops (B, C, h, w) of `images` (B, C, H, W) centred on the outer lip of
    `landmarks` (B, L, 2) in [0, 1], sized by the inter-ocular distance (so they follow the
    head's scale, not the mouth's own width)."""
    centre = landmarks[:, list(MOUTH)].mean(dim=1)  # (B, 2)
    eyes = [landmarks[:, list(group)].mean(dim=1) for group in EYES]
    iod = (eyes[0] - eyes[1]).norm(dim=-1)  # (B,)
    theta = torch.zeros(len(images), 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = MOUTH_CROP_EXTENT[1] * iod  # normalised half-extent = extent in [0, 1] units
    theta[:, 1, 1] = MOUTH_CROP_EXTENT[0] * iod
    theta[:, :, 2] = centre * 2 - 1
    grid = F.affine_grid(theta, [len(images), images.shape[1], *size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def mouth_discriminator_input(images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Mouth crops of the images with the opening between the inner lips of `landmarks` as a
    fourth channel: (B, 4, h, w). The discriminator judges a mouth given where it opens."""
    opening = mouth_opening(landmarks, images.shape[-1]).unsqueeze(1).to(images.dtype)
    return mouth_crops(torch.cat([images, opening], dim=1), landmarks)


class MouthDiscriminator(PatchDiscriminator):
    """A patch discriminator over `mouth_discriminator_input` crops."""

    def __init__(self):
        super().__init__(channels=(32, 64, 128), in_channels=4)

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, H, W) and their landmarks (B, L, 2) in [0, 1] -> (B, 1, 4, 6) logits."""
        return super().forward(mouth_discriminator_input(images, landmarks))
