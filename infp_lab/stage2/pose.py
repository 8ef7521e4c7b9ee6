"""Head-pose directions in the motion-latent space, found without labels.

Guidance strengthens the audio's effect on all of the motion alike; at the scale that gives
the best lip sync and state accuracy, the head's pose moves less than in the data (Var pose
below the truth's), while expression is about right. The generator can therefore guide the
head-pose part of the motion more strongly (`pose_gain` in `generate`). What is "head pose"
in the latents is read here from the stage-1 landmark head alone: the pose that
`metrics.landmark_head_pose` reads from its landmarks (roll, turn, nod and where the head
sits), and the directions along which the training latents move with it.
"""

from __future__ import annotations

import numpy as np
import torch

from infp_lab.metrics import landmark_head_pose
from infp_lab.stage1.model import HeadImitator

MIN_FRAMES = 16


@torch.no_grad()
def pose_directions(stage1: HeadImitator, latents, latent_mean: torch.Tensor, latent_std: torch.Tensor,
                    batch: int = 4096) -> torch.Tensor:
    """Orthonormal head-pose directions (Dm, k) in the normalised latent space of stage 2.

    For raw stage-1 latents of many frames (N, Dm), e.g. the training set's, the landmark
    head decodes landmarks and `landmark_head_pose` reads the head's pose features from them;
    each feature's direction is the covariance of the normalised latents with it (the
    direction along which the latents move as that feature grows, so it stays within the
    motion the data holds). The k <= 5 directions of the features that vary are
    orthonormalised; `latent_mean` and `latent_std` (Dm,) are the stage-2 model's.
    """
    latents = torch.as_tensor(np.asarray(latents, dtype=np.float32) if not torch.is_tensor(latents) else latents)
    dim = stage1.config.latent_dim
    if latents.dim() != 2 or latents.shape[1] != dim:
        raise ValueError(f"latents must be (N, {dim}), got {tuple(latents.shape)}")
    if len(latents) < MIN_FRAMES:
        raise ValueError(f"pose directions need the latents of at least {MIN_FRAMES} frames, got {len(latents)}")
    if not torch.isfinite(latents).all():
        raise ValueError("latents contain NaN or infinite values")
    latents = latents.float().cpu()
    head = stage1.landmark_head
    device = next(head.parameters()).device
    landmarks = torch.cat([head(latents[s:s + batch].to(device)).cpu() for s in range(0, len(latents), batch)])
    features = landmark_head_pose(landmarks.numpy())  # (N, 5)
    spread = features.std(axis=0)
    moving = spread > 1e-6 * np.maximum(np.abs(features).max(axis=0), 1.0)
    if not moving.any():
        raise ValueError("the head does not move in these latents: no pose directions to find")
    features = (features[:, moving] - features[:, moving].mean(axis=0)) / spread[moving]
    normalised = ((latents - latent_mean.cpu()) / latent_std.cpu()).double().numpy()
    patterns = (normalised - normalised.mean(axis=0)).T @ features / len(features)  # (Dm, k)
    basis, _ = np.linalg.qr(patterns)
    return torch.from_numpy(basis).float()
