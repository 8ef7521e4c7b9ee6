"""The dyadic clip format (design.md section 3.2): one folder per clip, the same for SynConv
and real video, so training reads one format only.

A clip folder holds:
- `self.wav`, `other.wav`: the agent's own voice and the partner's, 16 kHz mono;
- `meta.json`: at least `fps`, `sample_rate`, `language`, `identity`, `param_names`, `num_frames`;
- the agent's face, either `video.mp4` (real data) or `render.json` + `motion.npz` (SynConv);
- `motion.npz` (SynConv, optional for real data): `params` (T, P) float32 in `param_names`
  order, `landmarks` (T, L, 2) pixel coordinates at `render.json`'s `base_size`, `state`
  (T,) int8 (0 none, 1 self speaking, 2 other speaking, 3 both), and extra per-frame
  arrays (`viseme`, `phoneme`, ...);
- `landmarks.npy` (real data, optional): (T, L, 2) landmarks in the video's pixels.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infp_lab.data.audio import AudioError, load_audio, save_wav

STATE_NAMES = ("none", "self", "other", "both")
REQUIRED_META = ("fps", "sample_rate", "language", "identity", "param_names")
REQUIRED_MOTION = ("params", "landmarks", "state")


class ClipFormatError(ValueError):
    """A clip folder that does not follow the clip format; the message says what is wrong."""


@dataclass
class Clip:
    """One agent's view of a conversation: two voices, the face, and per-frame ground truth."""

    path: Path
    meta: dict
    self_audio: np.ndarray  # (N,) float32 at meta["sample_rate"]
    other_audio: np.ndarray  # (N,)
    motion: dict[str, np.ndarray] = field(default_factory=dict)
    render_spec: dict | None = None
    _decoded: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # video frames by size

    def _video_frames(self, size: int) -> np.ndarray:
        """The video decoded once per size and kept: every later call slices it."""
        if size not in self._decoded:
            self._decoded[size] = _decode_video(self.path / "video.mp4", size)
        return self._decoded[size]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def fps(self) -> int:
        return int(self.meta["fps"])

    @property
    def sample_rate(self) -> int:
        return int(self.meta["sample_rate"])

    @property
    def num_frames(self) -> int:
        if "params" in self.motion:
            return len(self.motion["params"])
        return int(self.meta["num_frames"])

    @property
    def param_names(self) -> list[str]:
        return list(self.meta["param_names"])

    def param(self, name: str) -> np.ndarray:
        """One motion parameter over time: (T,)."""
        return self.motion["params"][:, self.param_names.index(name)]

    @property
    def base_size(self) -> int:
        return int(self.render_spec["base_size"]) if self.render_spec else int(self.meta.get("video_size", 0))

    def landmarks(self, size: int | None = None) -> np.ndarray:
        """Landmarks (T, L, 2) in pixels of a `size` x `size` frame (default: the base size)."""
        lms = self.motion["landmarks"].astype(np.float32)
        if size is None or size == self.base_size:
            return lms
        return lms * (size / self.base_size)

    def frames(self, size: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Render (SynConv) or read (real video) frames [start, stop): (T, size, size, 3) uint8."""
        stop = self.num_frames if stop is None else stop
        if self.render_spec is not None:
            from infp_lab.render import Appearance, render_frames

            appearance = Appearance.from_dict(self.render_spec["appearance"])
            return render_frames(self.motion["params"][start:stop], appearance, size)
        if (self.path / "video.mp4").is_file():
            return self._video_frames(size)[start:stop]
        raise ClipFormatError(f"clip {self.path} has neither render.json nor video.mp4: no face to show")


def _decode_video(path: Path, size: int) -> np.ndarray:
    """All frames of a clip's video.mp4 resized to size x size: (T, size, size, 3) uint8."""
    import cv2

    from infp_lab.render.video import read_video

    frames, _ = read_video(path)
    if frames.shape[1] != size or frames.shape[2] != size:
        frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
    return frames


def load_clip(path: str | Path, load_audio_tracks: bool = True) -> Clip:
    """Read and check a clip folder; every problem is reported as a ClipFormatError."""
    path = Path(path)
    if not path.is_dir():
        raise ClipFormatError(f"clip folder not found: {path}")
    meta = _read_json(path / "meta.json")
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ClipFormatError(f"{path / 'meta.json'} lacks required keys: {', '.join(missing)}")

    motion: dict[str, np.ndarray] = {}
    motion_file = path / "motion.npz"
    if motion_file.is_file():
        try:
            with np.load(motion_file, allow_pickle=False) as npz:
                motion = {key: npz[key] for key in npz.files}
        except (OSError, ValueError) as error:
            raise ClipFormatError(f"cannot read {motion_file}: {error}") from None
    render_spec = _read_json(path / "render.json") if (path / "render.json").is_file() else None
    if render_spec is not None or motion:
        _check_motion(motion, meta, motion_file)
    if render_spec is None and not (path / "video.mp4").is_file():
        raise ClipFormatError(f"clip {path} needs render.json + motion.npz (SynConv) or video.mp4 (real data)")

    self_audio = other_audio = np.zeros(0, np.float32)
    if load_audio_tracks:
        rate = int(meta["sample_rate"])
        self_audio = _load_track(path / "self.wav", rate)
        other_audio = _load_track(path / "other.wav", rate)
    return Clip(path=path, meta=meta, self_audio=self_audio, other_audio=other_audio,
                motion=motion, render_spec=render_spec)


def _check_motion(motion: dict, meta: dict, motion_file: Path) -> None:
    if not motion:
        raise ClipFormatError(f"missing motion file: {motion_file}")
    missing = [key for key in REQUIRED_MOTION if key not in motion]
    if missing:
        raise ClipFormatError(f"{motion_file} lacks arrays: {', '.join(missing)}")
    params, landmarks, state = motion["params"], motion["landmarks"], motion["state"]
    if params.ndim != 2 or params.shape[1] != len(meta["param_names"]):
        raise ClipFormatError(f"{motion_file}: params has shape {params.shape}, expected (T, {len(meta['param_names'])})")
    num_frames = len(params)
    if landmarks.shape[0] != num_frames or landmarks.ndim != 3 or landmarks.shape[2] != 2:
        raise ClipFormatError(f"{motion_file}: landmarks has shape {landmarks.shape}, expected ({num_frames}, L, 2)")
    if state.shape != (num_frames,):
        raise ClipFormatError(f"{motion_file}: state has shape {state.shape}, expected ({num_frames},)")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ClipFormatError(f"missing file: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ClipFormatError(f"{path} is not valid JSON: {error}") from None


def _load_track(path: Path, rate: int) -> np.ndarray:
    if not path.is_file():
        raise ClipFormatError(f"missing audio track: {path}")
    try:
        return load_audio(path, rate)
    except AudioError as error:
        raise ClipFormatError(str(error)) from None


def write_clip(path: str | Path, self_audio: np.ndarray, other_audio: np.ndarray, meta: dict,
               motion: dict[str, np.ndarray] | None = None, render_spec: dict | None = None) -> Path:
    """Write a clip folder atomically (a temporary sibling folder renamed into place).

    An existing folder of the same name is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ClipFormatError(f"meta lacks required keys: {', '.join(missing)}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        rate = int(meta["sample_rate"])
        save_wav(tmp / "self.wav", self_audio, rate)
        save_wav(tmp / "other.wav", other_audio, rate)
        if motion is not None:
            save_npz(tmp / "motion.npz", motion)
        if render_spec is not None:
            (tmp / "render.json").write_text(json.dumps(render_spec, indent=1, sort_keys=True))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, ensure_ascii=False))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but byte-identical for identical arrays (fixed zip timestamps)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def list_clips(root: str | Path, split: str | None = None) -> list[Path]:
    """Clip folders under `root`, optionally those of one split of `root/splits.json`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    if split is not None:
        splits_file = root / "splits.json"
        if not splits_file.is_file():
            raise ClipFormatError(f"{root} has no splits.json, so split {split!r} is unknown")
        splits = json.loads(splits_file.read_text())
        if split not in splits:
            raise ClipFormatError(f"split {split!r} not in {splits_file} (has: {', '.join(splits)})")
        return [root / name for name in splits[split]]
    clips = sorted(p.parent for p in root.glob("*/meta.json") if not p.parent.name.startswith("."))  # skip partial writes
    if not clips:
        raise ClipFormatError(f"no clip folders (with meta.json) under {root}")
    return clips


def train_val_clips(data: str | Path) -> tuple[list[Path], list[Path]]:
    """Training and validation clips: the data's train/val splits, or a 90/10 cut of all clips."""
    data = Path(data)
    if (data / "splits.json").is_file():
        train, val = list_clips(data, "train"), list_clips(data, "val")
        if train and val:
            return train, val
    clips = list_clips(data)
    cut = max(1, len(clips) // 10)
    return clips[cut:] or clips, clips[:cut]
