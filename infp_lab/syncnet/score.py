"""SyncScore with SyncNet-SynConv: LSE-D and LSE-C (design.md section 8), following the
definition of Wav2Lip's evaluation (syncnet_python's `calc_pdist` + confidence).

For every video window t, the Euclidean distance between its visual embedding and the
audio embeddings of windows t + o, o in [-max_offset, max_offset], is averaged over t per
offset o. LSE-D is the smallest mean distance, LSE-C the median over offsets minus it
(confidence), and the offset is the argmin: o > 0 means the audio lags the video by o
frames (the sound of video frame t is heard at t + o). Only windows whose every offset is
inside the clip are used (syncnet_python pads with zeros instead).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from infp_lab.data.audio import FPS, SAMPLE_RATE, audio_features, num_video_frames
from infp_lab.syncnet.crops import mouth_crops


class SyncScores(NamedTuple):
    """LSE-D (lower is better), LSE-C (higher is better) and the best audio offset."""

    lse_d: float
    lse_c: float
    offset: int  # frames; > 0: the audio lags the video
    distances: np.ndarray  # (2 * max_offset + 1,) mean distance per offset, offset -max..+max

    def distance_at(self, offset: int) -> float:
        """Mean distance at one offset (0: as given)."""
        return float(self.distances[offset + (len(self.distances) - 1) // 2])


def windows(x: np.ndarray, window: int) -> np.ndarray:
    """All windows of `window` consecutive frames: (T, ...) -> (T - window + 1, window, ...)."""
    return np.moveaxis(sliding_window_view(x, window, axis=0), -1, 1)


def _device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.no_grad()
def embed_clip(model, crops: np.ndarray, features: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every window of a clip: crops (T, h, w), features (T, F) ->
    visual (N, E), audio (N, E) with N = T - window + 1."""
    window, device = model.config.window, _device(model)
    crop_windows, audio_windows = windows(crops, window), windows(features, window)  # (N, window, ...)
    visual, audio = [], []
    was_training = model.training
    model.eval()
    for start in range(0, len(crop_windows), batch_size):
        batch = slice(start, start + batch_size)
        visual.append(model.embed_visual(torch.as_tensor(np.ascontiguousarray(crop_windows[batch]), dtype=torch.float32, device=device)))
        audio.append(model.embed_audio(torch.as_tensor(np.ascontiguousarray(audio_windows[batch]), dtype=torch.float32, device=device)))
    model.train(was_training)
    return torch.cat(visual).float().cpu().numpy(), torch.cat(audio).float().cpu().numpy()


def score_crops(model, crops: np.ndarray, features: np.ndarray, max_offset: int = 15) -> SyncScores:
    """LSE-D / LSE-C of prepared inputs: mouth crops (T, h, w) and audio features (T, F)."""
    window = model.config.window
    if len(crops) != len(features):
        raise ValueError(f"{len(crops)} mouth crops but {len(features)} audio feature frames")
    if max_offset < 1:
        raise ValueError(f"max_offset must be >= 1, got {max_offset}")
    if len(crops) < window + 2 * max_offset:
        raise ValueError(f"a clip of {len(crops)} frames is too short for SyncScore: it needs at least "
                         f"window + 2 * max_offset = {window + 2 * max_offset} frames")
    visual, audio = embed_clip(model, crops, features)  # (N, E) each
    count = len(visual)
    times = np.arange(max_offset, count - max_offset)  # video windows with every offset inside the clip
    offsets = np.arange(-max_offset, max_offset + 1)
    distances = np.array([np.linalg.norm(visual[times] - audio[times + o], axis=1).mean() for o in offsets])
    best = int(np.argmin(distances))
    lse_d = float(distances[best])
    return SyncScores(lse_d, float(np.median(distances)) - lse_d, int(offsets[best]), distances)


def sync_scores(model, frames: np.ndarray, landmarks: np.ndarray, self_audio: np.ndarray,
                max_offset: int = 15) -> SyncScores:
    """SyncScore of a talking-face clip with SyncNet-SynConv.

    Args:
        model: a SyncNet (or anything with `config.window`, `config.crop_size`,
            `embed_visual` and `embed_audio`).
        frames: (T, H, W, 3) uint8 frames of the avatar at 25 fps.
        landmarks: (T, L, 2) landmarks in the frames' pixels.
        self_audio: (N,) the avatar's own voice at 16 kHz, covering the T frames
            (one frame more or less is tolerated).
        max_offset: offsets searched, in frames, each way.

    Returns:
        SyncScores(lse_d, lse_c, offset, distances).

    Raises:
        ValueError: mismatched lengths, or a clip shorter than window + 2 * max_offset frames.
    """
    frames, landmarks = np.asarray(frames), np.asarray(landmarks)
    if len(frames) != len(landmarks):
        raise ValueError(f"{len(frames)} frames but {len(landmarks)} landmark sets")
    audio_frames = num_video_frames(len(self_audio), SAMPLE_RATE, FPS)
    if abs(audio_frames - len(frames)) > 1:
        raise ValueError(f"the audio covers {audio_frames} frames but the video has {len(frames)}")
    if len(frames) < model.config.window + 2 * max_offset:
        raise ValueError(f"a clip of {len(frames)} frames is too short for SyncScore: it needs at least "
                         f"window + 2 * max_offset = {model.config.window + 2 * max_offset} frames")
    crops = mouth_crops(frames, landmarks, model.config.crop_size)  # (T, h, w)
    features = audio_features(np.asarray(self_audio, np.float32), len(frames))  # (T, 320)
    return score_crops(model, crops, features, max_offset)
