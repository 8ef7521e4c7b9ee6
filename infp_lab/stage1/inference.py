"""Stage-1 inference helpers (design.md section 4): motion latents of a clip's frames, and
a fixed source portrait rendered with any sequence of motion latents (what stage 2 does
with generated latents)."""

from __future__ import annotations

import numpy as np
import torch

from infp_lab.data.clip import Clip
from infp_lab.stage1.model import HeadImitator


def clip_frames(clip: Clip, size: int, indices: np.ndarray | None = None) -> torch.Tensor:
    """Frames of a clip (N, 3, size, size) in [0, 1], rendered (SynConv) or read (video)."""
    indices = np.arange(clip.num_frames) if indices is None else np.asarray(indices)
    if clip.render_spec is not None:
        from infp_lab.render import Appearance, render_frames

        appearance = Appearance.from_dict(clip.render_spec["appearance"])
        images = render_frames(clip.motion["params"][indices], appearance, size)
    else:
        images = clip.frames(size)[indices]
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def clip_landmarks(clip: Clip, indices: np.ndarray | None = None) -> torch.Tensor:
    """Landmarks of a clip's frames (N, L, 2) in [0, 1] of the frame."""
    indices = np.arange(clip.num_frames) if indices is None else np.asarray(indices)
    return torch.from_numpy((clip.landmarks()[indices] / float(clip.base_size)).astype(np.float32))


@torch.no_grad()
def encode_clip(model: HeadImitator, clip: Clip, indices: np.ndarray | None = None, batch: int = 64) -> torch.Tensor:
    """Motion latents (N, latent_dim) of a clip's frames, on the model's device."""
    indices = np.arange(clip.num_frames) if indices is None else np.asarray(indices)
    device = next(model.parameters()).device
    latents = []
    for start in range(0, len(indices), batch):
        part = indices[start:start + batch]
        latents.append(model.encode_motion(clip_frames(clip, model.config.image_size, part).to(device),
                                           clip_landmarks(clip, part).to(device)))
    return torch.cat(latents)


@torch.no_grad()
def reenact(model: HeadImitator, source: torch.Tensor, source_landmarks: torch.Tensor, latents: torch.Tensor,
            batch: int = 32, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Render one source portrait (3, H, W) with each motion latent (N, D) -> (N, 3, H, W).

    The source's appearance features and motion latent are computed once. `targets`: the
    landmarks (N, L, 2) in [0, 1] to draw each frame at (`HeadImitator.render`'s `target`);
    by default the landmark head's.
    """
    source, source_landmarks = source.unsqueeze(0), source_landmarks.unsqueeze(0)
    appearance = model.encode_appearance(source)
    source_latent = model.encode_motion(source, source_landmarks)
    frames = []
    for start in range(0, len(latents), batch):
        part = latents[start:start + batch]
        n = len(part)
        expand = (n, *([-1] * (appearance.dim() - 1)))
        image, *_ = model.render(source.expand(n, -1, -1, -1), source_landmarks.expand(n, -1, -1),
                                 appearance.expand(*expand), source_latent.expand(n, -1), part,
                                 target=None if targets is None else targets[start:start + n])
        frames.append(image.clamp(0, 1))
    return torch.cat(frames)
