"""Ground-truth videos of clips: rendered face + both voices mixed (design.md section 3.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infp_lab.data.clip import load_clip
from infp_lab.render.video import write_video


def mix_tracks(self_audio: np.ndarray, other_audio: np.ndarray) -> np.ndarray:
    """Both voices in one mono track (clipped to [-1, 1])."""
    n = max(len(self_audio), len(other_audio))
    mixed = np.zeros(n, np.float32)
    mixed[: len(self_audio)] += self_audio
    mixed[: len(other_audio)] += other_audio
    return np.clip(mixed, -1.0, 1.0)


def render_clip_video(clip_dir: str | Path, out: str | Path, size: int = 256, chunk: int = 100) -> Path:
    """Render a clip's frames at `size` and write them with the mixed voices as H.264 + AAC."""
    if not 16 <= size <= 2048:
        raise ValueError(f"--size must be between 16 and 2048 pixels, got {size}")
    clip = load_clip(clip_dir)

    def frames():
        for start in range(0, clip.num_frames, chunk):
            yield from clip.frames(size, start, min(start + chunk, clip.num_frames))

    return write_video(out, frames(), fps=clip.fps, audio=mix_tracks(clip.self_audio, clip.other_audio),
                       sample_rate=clip.sample_rate)
