"""Video files: H.264 + AAC writing and frame reading through imageio-ffmpeg (design.md section 7)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from infp_lab.data.audio import SAMPLE_RATE, save_wav


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: int = 25,
                audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write RGB uint8 frames (each (H, W, 3)) as H.264 yuv420p, with an optional AAC track.

    The audio (mono float) is cut to the video's length by ffmpeg (`-shortest`). The file is
    written beside its final name and renamed into place, so a crash leaves no half file.
    """
    import imageio_ffmpeg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("write_video needs at least one frame")
    first = _check_frame(first)
    height, width = first.shape[:2]

    tmp_dir = tempfile.mkdtemp(prefix="infp-video-")
    tmp_video = Path(tmp_dir) / ("partial" + path.suffix)
    audio_path = None
    if audio is not None:
        audio_path = str(Path(tmp_dir) / "audio.wav")
        save_wav(audio_path, np.asarray(audio, np.float32), sample_rate)
    try:
        writer = imageio_ffmpeg.write_frames(
            str(tmp_video), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
            quality=7, macro_block_size=2, audio_path=audio_path, audio_codec="aac",
            output_params=["-shortest"] if audio_path else None, ffmpeg_log_level="error",
        )
        writer.send(None)
        writer.send(np.ascontiguousarray(first))
        for frame in frames:
            frame = _check_frame(frame)
            if frame.shape[:2] != (height, width):
                raise ValueError(f"frame size changed from {(height, width)} to {frame.shape[:2]}")
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        os.replace(tmp_video, path)
    finally:
        for leftover in Path(tmp_dir).iterdir():
            leftover.unlink()
        os.rmdir(tmp_dir)
    return path


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    return frame


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Read a video's frames as (T, H, W, 3) uint8 RGB and its frame rate."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        info = reader.__next__()
    except (RuntimeError, OSError, StopIteration) as error:
        raise ValueError(f"cannot read video {path}: {error}") from None
    width, height = info["size"]
    frames = []
    for raw in reader:
        frames.append(np.frombuffer(raw, np.uint8).reshape(height, width, 3))
        if max_frames is not None and len(frames) >= max_frames:
            reader.close()
            break
    if not frames:
        raise ValueError(f"video {path} has no frames")
    return np.stack(frames), float(info["fps"])
