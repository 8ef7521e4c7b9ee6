"""A torch Dataset of aligned windows over clip folders (design.md section 3.2).

Each item is a window of `window` video frames with everything aligned frame by frame:
the face frames (rendered on the fly for SynConv, read for real video), the log-mel
features of both voices, the motion parameters, landmarks and speaking states.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from infp_lab.data.audio import AudioFeatureConfig, audio_features
from infp_lab.data.clip import Clip, ClipFormatError, list_clips, load_clip


class DyadicClipDataset(Dataset):
    """Windows of `window` frames from clip folders.

    Args:
        clips: a data folder (all its clips, or one split of its splits.json) or a list of clip folders.
        window: frames per item.
        stride: frames between window starts (default: `window`, no overlap).
        size: frame size in pixels; `None` skips the frames (audio and motion only).
        split: with a data folder, the split to use ("train", "val", "test").
        audio_config: the audio front end.

    Items are dicts of tensors: `frames` (T, 3, size, size) float in [0, 1], `self_audio` and
    `other_audio` (T, D), `params` (T, P), `landmarks` (T, L, 2) in [0, 1] of the frame,
    `state` (T,) long, plus `clip_index` and `start`.
    """

    def __init__(self, clips: str | Path | Sequence[str | Path], window: int = 75, stride: int | None = None,
                 size: int | None = 128, split: str | None = None,
                 audio_config: AudioFeatureConfig = AudioFeatureConfig()):
        if isinstance(clips, (str, Path)):
            clips = list_clips(clips, split)
        if window < 1:
            raise ValueError(f"window must be at least 1 frame, got {window}")
        self.clip_paths = [Path(c) for c in clips]
        if not self.clip_paths:
            raise ClipFormatError("no clips given")
        self.window = window
        self.stride = stride or window
        self.size = size
        self.audio_config = audio_config
        self._clips: dict[int, Clip] = {}
        self._features: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.index: list[tuple[int, int]] = []  # (clip index, start frame)
        for clip_index, path in enumerate(self.clip_paths):
            clip = load_clip(path, load_audio_tracks=False)
            if "params" not in clip.motion:
                raise ClipFormatError(f"clip {path} has no motion.npz; prepare it first")
            starts = range(0, clip.num_frames - window + 1, self.stride)
            self.index.extend((clip_index, start) for start in starts)
        if not self.index:
            raise ClipFormatError(f"no clip is at least {window} frames long")

    def __len__(self) -> int:
        return len(self.index)

    def clip(self, clip_index: int) -> Clip:
        """The clip (with audio), loaded once per process."""
        if clip_index not in self._clips:
            self._clips[clip_index] = load_clip(self.clip_paths[clip_index])
        return self._clips[clip_index]

    def features(self, clip_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Audio features of both tracks, (T, D) each, computed once per process."""
        if clip_index not in self._features:
            clip = self.clip(clip_index)
            num_frames = clip.num_frames
            self._features[clip_index] = (
                audio_features(clip.self_audio, num_frames, self.audio_config),
                audio_features(clip.other_audio, num_frames, self.audio_config),
            )
        return self._features[clip_index]

    def __getitem__(self, item: int) -> dict[str, torch.Tensor | int]:
        clip_index, start = self.index[item]
        stop = start + self.window
        clip = self.clip(clip_index)
        self_feat, other_feat = self.features(clip_index)
        landmarks = clip.motion["landmarks"][start:stop] / float(clip.base_size)  # (T, L, 2) in [0, 1]
        sample: dict[str, torch.Tensor | int] = {
            "self_audio": torch.from_numpy(self_feat[start:stop]),
            "other_audio": torch.from_numpy(other_feat[start:stop]),
            "params": torch.from_numpy(clip.motion["params"][start:stop].astype(np.float32)),
            "landmarks": torch.from_numpy(landmarks.astype(np.float32)),
            "state": torch.from_numpy(clip.motion["state"][start:stop].astype(np.int64)),
            "clip_index": clip_index,
            "start": start,
        }
        if self.size is not None:
            frames = clip.frames(self.size, start, stop)  # (T, H, W, 3) uint8
            sample["frames"] = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)
        return sample
