"""Stage-2 training data (design.md section 5): the stage-1 motion latents of every
ground-truth frame, cached once per stage-1 weights file, and random training windows.

A cached clip is one .npz: `latents` (T, Dm) raw stage-1 motion latents, `self_audio` and
`other_audio` (T, 320) log-mel features (`infp_lab.data.audio.audio_features`), `state`
(T,) speaking states (`infp_lab.data.clip.STATE_NAMES`) and `stage1_sha256`. T is the
shortest of the clip's frame count and the whole 25 fps frames of each audio track: a
frame one stream has beyond the others (a partial last frame of audio, a track cut short)
has nothing to pair with and is dropped. Cache files live in a folder named by the sha256
of the stage-1 weights file and are named by the clip's path and its files' sizes and
times, so new weights or regenerated clips are encoded afresh and all else is reused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from infp_lab.checkpoint import file_sha256
from infp_lab.data.audio import FPS, SAMPLE_RATE, audio_features, num_video_frames
from infp_lab.data.clip import STATE_NAMES, Clip, ClipFormatError, load_clip, save_npz
from infp_lab.stage1.inference import encode_clip
from infp_lab.stage1.model import HeadImitator

SELF, OTHER, BOTH = (STATE_NAMES.index(name) for name in ("self", "other", "both"))


def _clip_key(path: Path) -> str:
    """A clip's cache file stem: its name + a hash of its absolute path and files' sizes and times."""
    path = Path(path).resolve()
    if not path.is_dir():
        raise ClipFormatError(f"clip folder not found: {path}")
    stamps = [str(path)] + [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                            for f in sorted(path.iterdir()) if f.is_file()]
    digest = hashlib.sha256("\n".join(stamps).encode()).hexdigest()
    return f"{path.name}-{digest[:12]}"


def clip_arrays(model: HeadImitator, clip: Clip, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Latents (T, Dm), both tracks' features (T, 320) and states (T,) of one clip, trimmed to
    the frames all of them have."""
    if clip.fps != FPS or clip.sample_rate != SAMPLE_RATE:
        raise ClipFormatError(f"clip {clip.path} has {clip.fps} fps and {clip.sample_rate} Hz audio; "
                              f"stage 2 needs {FPS} fps and {SAMPLE_RATE} Hz")
    if "state" not in clip.motion or "landmarks" not in clip.motion:
        raise ClipFormatError(f"clip {clip.path} has no motion.npz (landmarks and speaking states); prepare it first")
    frames = min(clip.num_frames, num_video_frames(len(clip.self_audio)), num_video_frames(len(clip.other_audio)))
    if frames < 1:
        raise ClipFormatError(f"clip {clip.path} has no whole frame of both video and audio")
    latents = encode_clip(model, clip, np.arange(frames), batch_size)  # (T, Dm)
    return {"latents": latents.float().cpu().numpy(), "self_audio": audio_features(clip.self_audio, frames),
            "other_audio": audio_features(clip.other_audio, frames),
            "state": clip.motion["state"][:frames].astype(np.int8)}


def cache_latents(stage1_weights: str | Path, clip_paths: Sequence[str | Path], cache_dir: str | Path,
                  device: str | torch.device = "cpu", batch_size: int = 64, progress: bool = True) -> list[Path]:
    """Cache the stage-1 latents, audio features and states of clips; reuse what is cached.

    Args:
        stage1_weights: stage-1 weights (.safetensors); the cache is keyed by its sha256.
        clip_paths: clip folders.
        cache_dir: the cache root; files go to `cache_dir/stage1-<sha256[:16]>/`.
        device: where the stage-1 motion encoder runs (no grad, eval mode).
        batch_size: frames per encoder call.
        progress: show a progress bar over the clips that need encoding.

    Returns:
        The .npz path of every clip, in the order of `clip_paths`.
    """
    stage1_weights = Path(stage1_weights)
    if not stage1_weights.is_file():
        raise FileNotFoundError(f"stage-1 weights not found: {stage1_weights}")
    digest = file_sha256(stage1_weights)
    folder = Path(cache_dir) / f"stage1-{digest[:16]}"
    targets = [folder / f"{_clip_key(path)}.npz" for path in clip_paths]
    missing = [(Path(path), target) for path, target in zip(clip_paths, targets) if not target.is_file()]
    if missing:
        model = HeadImitator.from_pretrained(stage1_weights, device)
        folder.mkdir(parents=True, exist_ok=True)
        for path, target in tqdm(missing, desc="caching stage-1 latents", unit="clip", disable=not progress):
            arrays = clip_arrays(model, load_clip(path), batch_size)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # atomic: a kill leaves no half file
            try:
                save_npz(tmp, {**arrays, "stage1_sha256": np.array(digest)})
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    return targets


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in ("latents", "self_audio", "other_audio", "state")}


def cached_latents(cached_paths: Sequence[str | Path]) -> np.ndarray:
    """The latents of all frames of cached clips, one after another: (sum of T, Dm)."""
    return np.concatenate([_load(Path(path))["latents"] for path in cached_paths])


def latent_stats(cached_paths: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (Dm,) of the latents of all frames of cached clips (std
    floored at 1e-6, so a constant channel stays finite once normalised)."""
    if not cached_paths:
        raise ValueError("latent_stats needs at least one cached clip")
    total = total_sq = 0.0
    count = 0
    for path in cached_paths:
        latents = _load(Path(path))["latents"].astype(np.float64)  # (T, Dm)
        total, total_sq, count = total + latents.sum(0), total_sq + (latents**2).sum(0), count + len(latents)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def one_sided_starts(state: np.ndarray, window: int, min_speech: float = 0.2) -> np.ndarray:
    """Starts of the windows in which only one side speaks: states none + self only, or
    none + other only, with that side speaking in at least `min_speech` of the frames."""
    state = np.asarray(state)
    if len(state) < window:
        return np.zeros(0, np.int64)
    counts = [np.convolve(state == code, np.ones(window, int), "valid") for code in (SELF, OTHER, BOTH)]
    self_count, other_count, both_count = counts  # (T - window + 1,) each
    need = max(1, int(np.ceil(min_speech * window)))
    talking = (self_count >= need) & (other_count == 0)
    listening = (other_count >= need) & (self_count == 0)
    return np.flatnonzero((both_count == 0) & (talking | listening))


class WindowDataset(Dataset):
    """Item i is a random training window drawn from the stream SeedSequence([seed, i]).

    Windows are drawn uniformly over all valid (clip, start) pairs. Items are dicts of
    tensors: `latents` (W, Dm) raw latents of the window; `self_audio`, `other_audio`
    (W + 2 * lookahead, A) features around it, with the window at frames
    [audio_offset, audio_offset + W): `generate` runs the audio encoders over the whole
    sequence, so a window's edge frames see `lookahead` frames of real neighbouring audio,
    and the clip's own ends only at its ends; the stretch is shifted inside the clip at
    its ends, which keeps the encoders' output on the window's frames equal to generate's;
    `previous` (C, Dm) raw latents just before the window, zeros with `has_previous` False
    when the window starts before frame C; `style_reference` (W, Dm) raw latents of another
    segment of the same clip (not overlapping the window where the clip allows);
    `state` (W,) long; `clip_index` (into `cached_paths`) and `start`.

    With `one_sided`, windows are drawn only where one side speaks (`one_sided_starts`);
    clips without such windows are skipped. Clips shorter than W + 2 * lookahead frames are
    skipped. The dataset is unbounded; the sampler decides how many items are used.
    """

    def __init__(self, cached_paths: Sequence[str | Path], window: int, context: int, lookahead: int = 0,
                 seed: int = 0, one_sided: bool = False, min_speech: float = 0.2):
        if window < 1 or context < 1 or lookahead < 0:
            raise ValueError(f"window and context must be positive and lookahead >= 0, got {window}, {context}, "
                             f"{lookahead}")
        self.paths = [Path(p) for p in cached_paths]
        if not self.paths:
            raise ValueError("no cached clips given")
        self.window, self.context, self.lookahead, self.seed = window, context, lookahead, seed
        need = window + 2 * lookahead
        self.clips, self.starts = [], []  # usable clip indices and their window starts
        for index, path in enumerate(self.paths):
            with np.load(path, allow_pickle=False) as npz:
                state = npz["state"]
            if len(state) < need:
                continue
            starts = one_sided_starts(state, window, min_speech) if one_sided else np.arange(len(state) - window + 1)
            if len(starts):
                self.clips.append(index)
                self.starts.append(starts)
        if not self.clips:
            if one_sided:
                raise ValueError(f"no clip has a {window}-frame window where only one side speaks (at least "
                                 f"{min_speech:.0%} of it); train with one_sided_steps=0 to skip that warm-up")
            raise ValueError(f"no clip has the {need} frames a training window needs ({window} frames + "
                             f"{lookahead} frames of audio context each side)")
        self.ends = np.cumsum([len(s) for s in self.starts])
        self._arrays: dict[int, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return 2**62  # unbounded: indices come from the step sampler

    def arrays(self, clip_index: int) -> dict[str, np.ndarray]:
        """A cached clip's arrays, read once per process."""
        if clip_index not in self._arrays:
            self._arrays[clip_index] = _load(self.paths[clip_index])
        return self._arrays[clip_index]

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
        k = int(rng.integers(self.ends[-1]))
        usable = int(np.searchsorted(self.ends, k, side="right"))
        start = int(self.starts[usable][k - (self.ends[usable - 1] if usable else 0)])
        return self.item(self.clips[usable], start, rng)

    def item(self, clip_index: int, start: int, rng: np.random.Generator) -> dict:
        """The window of clip `clip_index` at `start` (rng draws the style segment)."""
        arrays = self.arrays(clip_index)
        latents = arrays["latents"].astype(np.float32)
        length, width, context, margin = len(latents), self.window, self.context, self.lookahead
        audio_start = min(max(start - margin, 0), length - width - 2 * margin)
        audio = slice(audio_start, audio_start + width + 2 * margin)
        has_previous = start >= context
        previous = latents[start - context:start] if has_previous else np.zeros((context, latents.shape[1]), np.float32)
        far = np.concatenate([np.arange(0, start - width + 1), np.arange(start + width, length - width + 1)])
        style_start = int(rng.choice(far)) if len(far) else int(rng.integers(length - width + 1))

        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

        return {
            "latents": tensor(latents[start:start + width]),
            "self_audio": tensor(arrays["self_audio"][audio]), "other_audio": tensor(arrays["other_audio"][audio]),
            "audio_offset": start - audio_start,
            "previous": tensor(previous), "has_previous": torch.tensor(has_previous),
            "style_reference": tensor(latents[style_start:style_start + width]),
            "state": torch.from_numpy(arrays["state"][start:start + width].astype(np.int64)),
            "clip_index": clip_index, "start": start,
        }
