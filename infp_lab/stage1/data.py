"""Training pairs for stage 1 (design.md section 4): a source and a driving frame of the
same clip (self-reenactment, as in the paper), and, for SynConv clips, cross-identity
pairs with ground truth, which the paper's real data cannot give.

A cross-identity item drives identity A with the frame of another identity B (B's face
shape, colours and hair) rendered with A's motion parameters at A's placement in the
frame; the target is A's own frame. The motion latent must then carry the motion, not who
shows it.

The landmark head's target is the landmarks of a canonical face (the default Appearance)
with the frame's motion parameters at the clip's placement (`PLACEMENT`: the head's base
turn, position and size in the frame). One frame cannot tell a head turned by its motion
from one turned by its placement (in SynConv the base yaw varies five times more between
identities than the motion yaw within a clip), so the target is the pose the frame shows,
without the identity's face shape. Real clips, which have no parameters, use their own
landmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from infp_lab.data.clip import Clip, ClipFormatError, list_clips, load_clip
from infp_lab.render import Appearance, project_landmarks, render_frame
from infp_lab.stage1.hybrid import lip_gap

if TYPE_CHECKING:
    from infp_lab.syncnet.train import SyncNetTrainConfig

CANONICAL_FACE = Appearance()
PLACEMENT = ("base_yaw", "base_pitch", "centre_x", "centre_y", "head_scale")  # where a head sits in the frame


def placed(face: Appearance, placement_of: Appearance) -> Appearance:
    """`face` (its shape, colours and hair) at the placement of another appearance."""
    return replace(face, **{name: getattr(placement_of, name) for name in PLACEMENT})


def canonical_landmarks(params: np.ndarray, placement_of: Appearance = CANONICAL_FACE) -> np.ndarray:
    """Landmarks of the canonical face with these motion parameters, at the placement of
    `placement_of` (the canonical one by default), in [0, 1]: (..., L, 2)."""
    return project_landmarks(params, placed(CANONICAL_FACE, placement_of), 256) / 256.0


def head_targets(clip: Clip) -> np.ndarray:
    """The landmark head's targets for every frame of a clip: (T, L, 2) in [0, 1]."""
    if clip.render_spec is not None:
        face = Appearance.from_dict(clip.render_spec["appearance"])
        return canonical_landmarks(clip.motion["params"], face).astype(np.float32)
    return (clip.landmarks() / float(clip.base_size)).astype(np.float32)


class FramePairDataset(Dataset):
    """Item i is a random (source, driving) frame pair drawn from the stream SeedSequence([seed, i]).

    Items are dicts: `source`, `driving`, `target` (3, size, size) float in [0, 1];
    `source_landmarks`, `driving_landmarks`, `target_frame_landmarks` (L, 2) in [0, 1] of
    those frames (for the hybrid representation); `target_landmarks` (L, 2), the landmark
    head's target; `cross` (1 for a cross-identity item); `clip_index`, `source_frame`,
    `driving_frame`. With probability
    `cross_identity` a SynConv item is a cross-identity one. With probability `open_mouth` the
    driving frame is drawn in proportion to how far its mouth is open (its lip gap) rather than
    uniformly: few frames show a wide-open mouth. The dataset is unbounded (any
    index is valid); the sampler decides how many are used.
    """

    def __init__(self, clips: str | Path | Sequence[str | Path], size: int = 128, split: str | None = None,
                 seed: int = 0, fixed_source: bool = False, cross_identity: float = 0.0,
                 param_names: Sequence[str] = (), open_mouth: float = 0.0):
        if isinstance(clips, (str, Path)):
            clips = list_clips(clips, split)
        self.clip_paths = [Path(c) for c in clips]
        if not self.clip_paths:
            raise ClipFormatError("no clips given")
        self.size, self.seed, self.fixed_source = size, seed, fixed_source
        self.cross_identity = cross_identity
        if not 0 <= open_mouth <= 1:
            raise ValueError(f"open_mouth is a probability in [0, 1], got {open_mouth}")
        self.open_mouth = open_mouth
        self.param_names = list(param_names)
        self._clips: dict[int, Clip] = {}
        self._head_targets: dict[int, np.ndarray] = {}
        self._shown_params: dict[int, np.ndarray | None] = {}
        self._open_mouth_odds: dict[int, np.ndarray | None] = {}

    def __len__(self) -> int:
        return 2**62  # unbounded: indices come from the step sampler

    def clip(self, index: int) -> Clip:
        if index not in self._clips:
            clip = load_clip(self.clip_paths[index], load_audio_tracks=False)
            if "landmarks" not in clip.motion:
                raise ClipFormatError(f"clip {clip.path} has no landmarks; prepare it first")
            self._clips[index] = clip
        return self._clips[index]

    def frame(self, clip_index: int, t: int) -> np.ndarray:
        """Frame t of a clip at `size`: rendered (SynConv) or sliced from the decoded video."""
        return self.clip(clip_index).frames(self.size, t, t + 1)[0]

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
        clip_index = int(rng.integers(len(self.clip_paths)))
        clip = self.clip(clip_index)
        source_t = 0 if self.fixed_source else int(rng.integers(clip.num_frames))
        driving_t = int(rng.integers(clip.num_frames))
        landmarks = clip.landmarks() / float(clip.base_size)  # (T, L, 2) in [0, 1]
        if self.open_mouth > 0 and rng.random() < self.open_mouth:
            by_gap = self.open_mouth_odds(clip_index)
            if by_gap is not None:
                driving_t = int(rng.choice(len(by_gap), p=by_gap))

        def tensor(image: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)

        target = tensor(self.frame(clip_index, driving_t))
        driving, driving_landmarks, cross, shown_identity = target, landmarks[driving_t], 0, clip_index
        other_index = int(rng.integers(len(self.clip_paths)))
        if clip.render_spec is not None and rng.random() < self.cross_identity and other_index != clip_index:
            other = self.clip(other_index)
            if other.render_spec is not None and other.param_names == clip.param_names:
                params = clip.motion["params"][driving_t]
                appearance = placed(Appearance.from_dict(other.render_spec["appearance"]),
                                    Appearance.from_dict(clip.render_spec["appearance"]))
                driving = tensor(render_frame(params, appearance, self.size))
                driving_landmarks = project_landmarks(params, appearance, 256) / 256.0
                cross, shown_identity = 1, other_index
        item = {
            "source": tensor(self.frame(clip_index, source_t)), "driving": driving, "target": target,
            "source_landmarks": torch.from_numpy(landmarks[source_t].astype(np.float32)),
            "driving_landmarks": torch.from_numpy(np.asarray(driving_landmarks, np.float32)),
            "target_landmarks": torch.from_numpy(self.head_targets(clip_index)[driving_t]),
            "target_frame_landmarks": torch.from_numpy(landmarks[driving_t].astype(np.float32)),
            "cross": cross, "clip_index": clip_index, "source_frame": source_t, "driving_frame": driving_t,
            "driving_identity": shown_identity,  # the clip whose face the driving frame shows
        }
        if self.param_names:  # a cross-identity driver wears the target's parameters, at its placement
            shown = self.shown_params(clip_index)
            has_params = shown is not None and clip.param_names == self.param_names
            params = shown[driving_t] if has_params else np.zeros(len(self.param_names), np.float32)
            item.update(params=torch.from_numpy(params), has_params=int(has_params))
        return item

    def shown_params(self, clip_index: int) -> np.ndarray | None:
        """The param head's targets of a clip (T, P), or None; computed once per process."""
        if clip_index not in self._shown_params:
            self._shown_params[clip_index] = shown_params(self.clip(clip_index))
        return self._shown_params[clip_index]

    def open_mouth_odds(self, clip_index: int) -> np.ndarray | None:
        """Each frame's odds (T,) of being drawn in proportion to its lip gap, or None when the
        mouth never opens; computed once per process."""
        if clip_index not in self._open_mouth_odds:
            clip = self.clip(clip_index)
            gap = lip_gap(clip.landmarks())
            self._open_mouth_odds[clip_index] = gap / gap.sum() if gap.sum() > 0 else None
        return self._open_mouth_odds[clip_index]

    def head_targets(self, clip_index: int) -> np.ndarray:
        """The landmark head's targets of a clip (T, L, 2), computed once per process."""
        if clip_index not in self._head_targets:
            self._head_targets[clip_index] = head_targets(self.clip(clip_index))
        return self._head_targets[clip_index]


def shown_params(clip: Clip) -> np.ndarray | None:
    """The param head's targets for every frame of a SynConv clip (T, P): its motion
    parameters with the pose as the frame shows it, at the clip's placement (yaw + base yaw,
    pitch + base pitch, tx + centre x, ty + centre y, scale x head scale), for the reason the
    landmark head's targets are placed; None for clips without parameters."""
    if "params" not in clip.motion or clip.render_spec is None:
        return None
    face = Appearance.from_dict(clip.render_spec["appearance"])
    params = clip.motion["params"].astype(np.float32).copy()
    for name, offset in (("yaw", face.base_yaw), ("pitch", face.base_pitch), ("tx", face.centre_x),
                         ("ty", face.centre_y)):
        if name in clip.param_names:
            params[:, clip.param_names.index(name)] += offset
    if "scale" in clip.param_names:
        params[:, clip.param_names.index("scale")] *= face.head_scale
    return params


def param_statistics(clips: Sequence[str | Path]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The param head's targets (`shown_params`) of clips that have them (SynConv): their
    names and their mean and std (P,) over every frame. Raises ClipFormatError when no clip
    has parameters or clips name different ones."""
    names, frames = None, []
    for path in clips:
        clip = load_clip(path, load_audio_tracks=False)
        params = shown_params(clip)
        if params is None:
            continue
        if names is not None and clip.param_names != names:
            raise ClipFormatError(f"{clip.path} names other motion parameters than the clips before it")
        names = clip.param_names
        frames.append(params)
    if names is None:
        raise ClipFormatError("the param head needs clips with motion parameters (SynConv); these clips have none")
    stacked = np.concatenate(frames).astype(np.float64)
    return names, stacked.mean(axis=0).astype(np.float32), np.maximum(stacked.std(axis=0), 1e-6).astype(np.float32)


class SyncWindowDataset(Dataset):
    """Windows for training the renderer through a lip-sync expert (Wav2Lip's expert loss):
    item i is `window` consecutive frames of one clip where the avatar speaks (any window
    of a clip with no speaking-state labels), a source frame of the same clip, the window's
    audio features and `sync_cfg.shifted_negatives` shifted audio windows, drawn from the
    stream SeedSequence([seed, i]).

    Items are dicts: `source` (3, size, size) and `source_landmarks` (L, 2) in [0, 1];
    `driving` (window, 3, size, size) and `driving_landmarks` (window, L, 2) in [0, 1];
    `crop_matrices` (window, 2, 3), the expert's mouth boxes (`syncnet.crops.crop_matrices`,
    smoothed over the whole clip as the metric smooths them); `audio` (window, F) and
    `shifted` (K, window, F) log-mel features.
    """

    def __init__(self, clips: Sequence[str | Path], size: int, window: int, crop_size: tuple[int, int],
                 sync_cfg: SyncNetTrainConfig | None = None, seed: int = 0):
        from infp_lab.syncnet.train import SyncNetTrainConfig

        self.clip_paths = [Path(c) for c in clips]
        if not self.clip_paths:
            raise ClipFormatError("no clips given")
        self.size, self.window, self.crop_size, self.seed = size, window, crop_size, seed
        self.sync_cfg = sync_cfg or SyncNetTrainConfig()
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return 2**62  # unbounded: indices come from the step sampler

    def clip(self, index: int) -> dict:
        """A clip with its landmarks, crop maps, audio features and speaking windows, once per process."""
        if index not in self._cache:
            from infp_lab.data.audio import audio_features
            from infp_lab.metrics.interaction import is_speaking
            from infp_lab.syncnet.crops import crop_matrices

            clip = load_clip(self.clip_paths[index])
            if "landmarks" not in clip.motion:
                raise ClipFormatError(f"clip {clip.path} has no landmarks; prepare it first")
            if clip.num_frames < self.window + 2 * self.sync_cfg.max_shift:
                raise ClipFormatError(f"clip {clip.path} has {clip.num_frames} frames, too few for sync windows")
            windows = clip.num_frames - self.window + 1
            starts = np.arange(windows)
            if "state" in clip.motion:  # the avatar speaks in most of the window
                speaking = np.lib.stride_tricks.sliding_window_view(is_speaking(clip.motion["state"]), self.window)
                starts = np.flatnonzero(speaking.mean(axis=1) > 0.5)
            landmarks = (clip.landmarks() / float(clip.base_size)).astype(np.float32)  # (T, L, 2) in [0, 1]
            self._cache[index] = {
                "clip": clip, "starts": starts, "landmarks": landmarks,
                "crop_matrices": crop_matrices(landmarks * self.size, self.crop_size).astype(np.float32),
                "audio": audio_features(clip.self_audio, clip.num_frames)}
        return self._cache[index]

    def __getitem__(self, index: int) -> dict:
        from infp_lab.syncnet.train import shifted_audio

        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
        first = int(rng.integers(len(self.clip_paths)))
        for step in range(len(self.clip_paths)):  # a clip where the avatar never speaks has no windows: the next one
            cached = self.clip((first + step) % len(self.clip_paths))
            if len(cached["starts"]):
                break
        else:
            raise ClipFormatError(f"none of the {len(self.clip_paths)} clips has a window where the avatar speaks")
        clip, window = cached["clip"], self.window
        start = int(rng.choice(cached["starts"]))
        source_t = int(rng.integers(clip.num_frames))
        frames = torch.from_numpy(clip.frames(self.size, start, start + window)).permute(0, 3, 1, 2).float() / 255.0
        source = torch.from_numpy(clip.frames(self.size, source_t, source_t + 1)[0]).permute(2, 0, 1).float() / 255.0
        return {
            "source": source, "source_landmarks": torch.from_numpy(cached["landmarks"][source_t]),
            "driving": frames, "driving_landmarks": torch.from_numpy(cached["landmarks"][start:start + window]),
            "crop_matrices": torch.from_numpy(cached["crop_matrices"][start:start + window]),
            "audio": torch.from_numpy(cached["audio"][start:start + window]),
            "shifted": torch.from_numpy(shifted_audio(cached["audio"], start, window, rng, self.sync_cfg)),
        }
