"""Audio encoders (design.md sections 3.3 and 5): one per track (self, other), per-frame
audio features (B, T, input_dim) -> per-frame embeddings (B, T, dim).

The built-in "logmel" encoder is a per-frame MLP followed by a few residual 1-D
convolutions. Its receptive field is small and symmetric (`lookahead` frames each side),
and it normalises per frame only, so the streaming generator reproduces the offline
output exactly from a slice with `lookahead` frames of context on both sides.
"wav2vec2" loads a user's local transformers model (nothing is downloaded).
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from torch import nn

from infp_lab.stage2.config import Stage2Config


class TemporalConvBlock(nn.Module):
    """Residual LayerNorm -> SiLU -> Conv1d over time (zero padding, same length)."""

    def __init__(self, dim: int, kernel: int = 3):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        h = rearrange(nn.functional.silu(self.norm(x)), "b t d -> b d t")
        return x + rearrange(self.conv(h), "b d t -> b t d")


class AudioEncoder(nn.Module):
    """Per-frame audio features -> audio embedding of size `config.dim`."""

    def __init__(self, config: Stage2Config):
        super().__init__()
        audio = config.audio
        self.type, self.input_dim = audio.type, audio.input_dim
        self.lookahead = config.lookahead  # frames of future (and past) context per output frame
        if audio.type == "logmel":
            self.backbone = None
            self.frame_mlp = nn.Sequential(nn.Linear(audio.input_dim, config.dim), nn.SiLU(),
                                           nn.Linear(config.dim, config.dim))
        else:
            self.backbone = _load_wav2vec2(audio.path)
            self.frame_mlp = nn.Linear(self.backbone.config.hidden_size, config.dim)
        self.blocks = nn.ModuleList(TemporalConvBlock(config.dim, audio.kernel)
                                    for _ in range(audio.layers if audio.type == "logmel" else 0))
        self.out_norm = nn.LayerNorm(config.dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, input_dim) -> (B, T, dim)."""
        if features.dim() != 3 or features.shape[-1] != self.input_dim:
            raise ValueError(f"audio features must be (B, T, {self.input_dim}) for the {self.type!r} "
                             f"encoder, got {tuple(features.shape)}")
        if self.backbone is not None:
            features = self._wav2vec2(features)  # (B, T, hidden)
        x = self.frame_mlp(features)  # (B, T, D)
        for block in self.blocks:
            x = block(x)
        return self.out_norm(x)

    def _wav2vec2(self, framed: torch.Tensor) -> torch.Tensor:
        """Raw audio framed per video frame (B, T, samples) -> hidden states per frame (B, T, H)."""
        frames = framed.shape[1]
        wave = rearrange(framed, "b t s -> b (t s)")
        hidden = self.backbone(wave).last_hidden_state  # (B, ~2T, H) at 50 Hz
        hidden = rearrange(hidden, "b n h -> b h n")
        hidden = nn.functional.interpolate(hidden, size=frames, mode="linear", align_corners=False)
        return rearrange(hidden, "b h t -> b t h")


def _load_wav2vec2(path: str) -> nn.Module:
    """A local wav2vec2-style model (transformers' AutoModel) from `path`."""
    from pathlib import Path

    if not path:
        raise ValueError("audio.type 'wav2vec2' needs audio.path: a local folder with a transformers "
                         "wav2vec2 model (config.json + weights); nothing is downloaded")
    if not Path(path).is_dir():
        raise ValueError(f"audio.path {path!r} is not a folder with a local wav2vec2 model")
    try:
        from transformers import AutoModel
    except ImportError:
        raise ImportError("audio.type 'wav2vec2' needs the `transformers` package "
                          "(pip install transformers); the built-in 'logmel' encoder does not") from None
    return AutoModel.from_pretrained(path, local_files_only=True)


def encoder_inputs(audio: np.ndarray, num_frames: int, config: Stage2Config) -> np.ndarray:
    """What the audio encoder of `config` reads from 16 kHz mono audio: (N,) -> (T, input_dim).

    "logmel": `infp_lab.data.audio.audio_features`; "wav2vec2": the raw samples, one row per
    video frame (padded with silence).
    """
    from infp_lab.data.audio import FPS, SAMPLE_RATE, AudioFeatureConfig, audio_features

    if config.audio.type == "logmel":
        if config.audio.input_dim != AudioFeatureConfig().dim:
            raise ValueError(f"audio.input_dim {config.audio.input_dim} does not match the log-mel "
                             f"features ({AudioFeatureConfig().dim} per frame)")
        return audio_features(audio, num_frames)
    hop = SAMPLE_RATE // FPS
    if config.audio.input_dim != hop:
        raise ValueError(f"the wav2vec2 encoder reads {hop} samples per frame; set audio.input_dim = {hop}")
    framed = np.zeros(num_frames * hop, np.float32)
    n = min(len(audio), len(framed))
    framed[:n] = audio[:n]
    return framed.reshape(num_frames, hop)
