"""SyncNet-SynConv: a SyncNet-style audio/mouth expert for the SyncScore metrics LSE-C and
LSE-D (design.md section 8), trained on SynConv training clips (infp_lab.syncnet.train).

Two encoders map a window of `window` video frames to one embedding each: the audio
encoder reads the window's log-mel features ((B, window, 320) from
infp_lab.data.audio.audio_features), the visual encoder the window's stacked grayscale
mouth crops ((B, window, h, w) from infp_lab.syncnet.crops.mouth_crops). Embeddings are
L2-normalised; aligned audio and mouth lie close, shifted ones far apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from infp_lab.checkpoint import load_pretrained, save_weights
from infp_lab.nn.blocks import ConvBlock, norm

WEIGHTS_KIND = "infp-lab/syncnet"


@dataclass(frozen=True)
class SyncNetConfig:
    """SyncNet-SynConv: window length, crop size and encoder widths."""

    window: int = 5  # video frames per sample (0.2 s at 25 fps)
    crop_height: int = 48
    crop_width: int = 96
    n_mels: int = 80
    mels_per_frame: int = 4  # audio_features stacks 4 mel frames (10 ms) per 40 ms video frame
    embed_dim: int = 128
    visual_channels: tuple[int, ...] = (32, 64, 128, 256)  # one stride-2 step per entry
    audio_channels: tuple[int, ...] = (128, 192, 256)  # one stride-2 step per entry after the first

    @property
    def crop_size(self) -> tuple[int, int]:
        return self.crop_height, self.crop_width

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SyncNetConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


PRESETS: dict[str, SyncNetConfig] = {
    # CPU-trainable in minutes: 32x64 crops (a 128-px frame's mouth box is ~40x20 px).
    "tiny": SyncNetConfig(crop_height=32, crop_width=64, embed_dim=64, visual_channels=(24, 48, 96, 128),
                          audio_channels=(96, 128, 128)),
    # Wider crops and encoders for GPUs and larger frames.
    "base": SyncNetConfig(),
}


def preset(name: str) -> SyncNetConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown SyncNet-SynConv preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def _halved(size: int, steps: int) -> int:
    for _ in range(steps):
        size = math.ceil(size / 2)
    return size


class SyncOutput(NamedTuple):
    """Both embeddings of a batch of windows."""

    audio: torch.Tensor  # (B, E), unit length
    visual: torch.Tensor  # (B, E), unit length


class AudioEncoder(nn.Module):
    """Log-mel window (B, window, mels_per_frame * n_mels) -> embedding (B, E)."""

    def __init__(self, config: SyncNetConfig):
        super().__init__()
        self.config = config
        layers, cin = [], config.n_mels
        for i, cout in enumerate(config.audio_channels):  # 1-D convolutions over mel time, mels as channels
            layers += [nn.Conv1d(cin, cout, 3, stride=1 if i == 0 else 2, padding=1), norm(cout), nn.SiLU()]
            cin = cout
        self.convs = nn.Sequential(*layers)
        length = _halved(config.window * config.mels_per_frame, len(config.audio_channels) - 1)
        self.head = nn.Linear(cin * length, config.embed_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = rearrange(features, "b t (k m) -> b m (t k)", k=self.config.mels_per_frame)  # (B, n_mels, window * 4)
        return F.normalize(self.head(self.convs(x).flatten(1)), dim=-1)  # (B, E)


class VisualEncoder(nn.Module):
    """Stacked mouth crops (B, window, h, w) in [0, 1] -> embedding (B, E)."""

    def __init__(self, config: SyncNetConfig):
        super().__init__()
        layers, cin = [], config.window
        for cout in config.visual_channels:
            layers.append(ConvBlock(cin, cout, stride=2))
            cin = cout
        self.convs = nn.Sequential(*layers)
        steps = len(config.visual_channels)
        self.head = nn.Linear(cin * _halved(config.crop_height, steps) * _halved(config.crop_width, steps),
                              config.embed_dim)

    def features(self, crops: torch.Tensor) -> list[torch.Tensor]:
        """Each block's activations, (B, C, h', w') from the first to the last."""
        # Standardise each window: skin tone, lighting and contrast say nothing about sync.
        mean = crops.mean(dim=(1, 2, 3), keepdim=True)
        std = crops.std(dim=(1, 2, 3), keepdim=True).clamp(min=1e-3)
        x, activations = (crops - mean) / std, []
        for block in self.convs:
            x = block(x)
            activations.append(x)
        return activations

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.features(crops)[-1].flatten(1)), dim=-1)  # (B, E)


class SyncNet(nn.Module):
    """SyncNet-SynConv: audio encoder + visual encoder into one embedding space."""

    def __init__(self, config: SyncNetConfig = SyncNetConfig()):
        super().__init__()
        self.config = config
        self.audio_encoder = AudioEncoder(config)
        self.visual_encoder = VisualEncoder(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))  # InfoNCE temperature (CLIP-style)

    def _check(self, audio: torch.Tensor | None, crops: torch.Tensor | None) -> None:
        c = self.config
        if audio is not None and (audio.dim() != 3 or audio.shape[1:] != (c.window, c.n_mels * c.mels_per_frame)):
            raise ValueError(f"audio must be (B, {c.window}, {c.n_mels * c.mels_per_frame}), got {tuple(audio.shape)}")
        if crops is not None and (crops.dim() != 4 or crops.shape[1:] != (c.window, c.crop_height, c.crop_width)):
            raise ValueError(f"crops must be (B, {c.window}, {c.crop_height}, {c.crop_width}), got {tuple(crops.shape)}")

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, window, 320) log-mel windows -> (B, E) unit embeddings."""
        self._check(audio, None)
        return self.audio_encoder(audio)

    def embed_visual(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, window, h, w) mouth-crop windows -> (B, E) unit embeddings."""
        self._check(None, crops)
        return self.visual_encoder(crops)

    def forward(self, audio: torch.Tensor, crops: torch.Tensor) -> SyncOutput:
        """Embed paired windows: audio (B, window, 320), crops (B, window, h, w)."""
        return SyncOutput(self.embed_audio(audio), self.embed_visual(crops))

    def save_pretrained(self, path: str | Path, extra: dict | None = None) -> Path:
        """Slim inference weights (safetensors, config in the metadata)."""
        return save_weights(path, self.state_dict(), WEIGHTS_KIND, self.config.to_dict(), extra)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "SyncNet":
        """Rebuild SyncNet-SynConv from a file written by `save_pretrained` alone."""
        return load_pretrained(cls, SyncNetConfig, path, WEIGHTS_KIND, device)
