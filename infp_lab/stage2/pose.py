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

from collections.abc import Callable

import numpy as np
import torch

from infp_lab.metrics import landmark_head_pose
from infp_lab.stage1.model import HeadImitator

MIN_FRAMES = 16


@torch.no_grad()
def pose_directions(stage1: HeadImitator, latents, normalise: Callable[[torch.Tensor], torch.Tensor],
                    batch: int = 4096) -> torch.Tensor:
    """Orthonormal head-pose directions (Dm, k) in the normalised latent space of stage 2.

    For raw stage-1 latents of many frames (N, Dm), e.g. the training set's, the landmark
    head decodes landmarks and `landmark_head_pose` reads the head's pose features from them;
    each feature's direction is the covariance of the normalised latents with it (the
    direction along which the latents move as that feature grows, so it stays within the
    motion the data holds). The k <= 5 directions of the features that vary are
    orthonormalised. `normalise` takes raw latents (N, Dm) on the CPU into the stage-2 model's
    space: its `MotionGenerator.normalise`.
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
    normalised = normalise(latents).cpu().double().numpy()
    patterns = (normalised - normalised.mean(axis=0)).T @ features / len(features)  # (Dm, k)
    basis, _ = np.linalg.qr(patterns)
    return torch.from_numpy(basis).float()


class PoseLowPass:
    """A causal low-pass filter on the head-pose part of generated motion, carried across windows.

    Guidance drives the head with the audio, and the sampled head pose shakes at the pace of
    syllables (4-12 Hz) where the truth's barely moves. The mouth crops that lip sync is read
    from follow the head smoothly, so that shake slides the mouth within them: on validation
    clips it cost about a third of the generated motion's lip sync (weights/README.md). This
    filter passes the pose part of each frame (its projection on the model's head-pose
    directions, in the normalised latent space) through two one-pole low-passes in a row
    (critically damped), each `y += (x - y) / (1 + frames)`, and leaves the rest of the
    motion as sampled. It is causal and keeps its state from one window to the next, so
    generation in windows of any size, offline or streamed, filters alike; what it costs is
    about 2 * frames frames of delay in the head's motion (none in the mouth's).
    """

    def __init__(self, projector: torch.Tensor, frames: float):
        frames = float(frames)
        if not (np.isfinite(frames) and frames >= 0):
            raise ValueError(f"pose_smoothing must be a finite number of frames >= 0, got {frames}")
        self.projector, self.rate = projector, 1.0 / (1.0 + frames)
        self.state: torch.Tensor | None = None  # (2, B, Dm): the two stages' outputs at the last frame

    def reset(self, last: torch.Tensor) -> None:
        """Start from a still head at normalised latents `last` (B, Dm), e.g. the previous motion's last frame."""
        self.state = (last @ self.projector).expand(2, -1, -1).clone()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, W, Dm) -> the same with their pose part low-passed."""
        if self.rate == 1.0:
            return x
        pose = x @ self.projector  # (B, W, Dm)
        if self.state is None:
            self.reset(x[:, 0])
        filtered = []
        for t in range(x.shape[1]):
            self.state[0] += self.rate * (pose[:, t] - self.state[0])
            self.state[1] += self.rate * (self.state[0] - self.state[1])
            filtered.append(self.state[1].clone())
        return x - pose + torch.stack(filtered, dim=1)
