"""Real-video preparation: a folder of talking-face videos -> dyadic clip folders
(design.md section 3.2, "A real-video preparation command ...").

Per video: frames resampled to 25 fps (ffmpeg's nearest-frame `fps` filter), MediaPipe Face
Mesh landmarks per frame (`infp_lab.data.face_mesh`), gaps where no face was found filled by
interpolation, a square crop 1.8x the face size around the face, smoothed over time so it
follows the head without jitter, resized to `size` x `size`. The clip folder holds
`self.wav` (the video's own audio), `other.wav` (`NAME.partner.<audio ext>` beside the
video, or silence), `video.mp4` (the cropped face with its audio), `meta.json` and
`motion.npz` with `params` (T, 0), `landmarks` (T, 86, 2) in the crop's pixels, `state`
(T,) from per-track voice activity, `crop` (T, 3) = (cx, cy, side) in source pixels and
`face_found` (T,) bool. Frames are streamed twice (detect, then crop), so long videos
never sit in memory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from infp_lab.data.audio import FPS, SAMPLE_RATE, frame_energy, load_audio
from infp_lab.data.clip import write_clip

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")
CROP_SCALE = 1.8          # crop side / face size (largest side of the landmark box)
CROP_SHIFT_UP = 0.1       # crop centre above the landmark-box centre, in face sizes (hair)
CENTRE_SIGMA_S = 0.2      # temporal Gaussian smoothing of the crop centre, seconds
SIDE_SIGMA_S = 0.4        # ... and of the crop side
MIN_FACE_FRACTION = 0.8   # fewer frames with a face than this fails the video
VAD_RANGE_DB = 25.0       # a frame is voiced within this many dB of the track's loud level
VAD_FLOOR_DB = -50.0      # ... and above this absolute level (dBFS)


class PrepareError(ValueError):
    """A video that cannot become a clip; the message names the file and the reason."""


def _probe(path: Path) -> dict:
    """ffmpeg's header of a video: size, fps, duration, and audio_codec when it has audio."""
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        header = next(reader)
        reader.close()
    except (OSError, RuntimeError, StopIteration, KeyError, ValueError, IndexError):
        header = {}
    if not header.get("size"):
        raise PrepareError(f"{path.name} is not a readable video file")
    return header


def _frames(path: Path):
    """The video's frames (H, W, 3) uint8 at 25 fps (ffmpeg's nearest-frame `fps` filter)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), output_params=["-vf", f"fps={FPS}"])
    try:
        width, height = next(reader)["size"]
        for raw in reader:
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


def _detect_faces(frames, max_misses: float) -> tuple[list[np.ndarray | None], bool]:
    """Face Mesh points (478, 2) or None per frame; stops early (True) after max_misses misses."""
    from infp_lab.data.face_mesh import FaceMeshDetector

    detected, misses = [], 0
    with FaceMeshDetector(static_image_mode=False) as detector:
        try:
            for frame in frames:
                detected.append(detector.detect(frame))
                misses += detected[-1] is None
                if misses > max_misses:
                    return detected, True
        finally:
            frames.close()
    return detected, False


def _fill_gaps(points: list[np.ndarray | None]) -> np.ndarray:
    """Per-frame (478, 2) points with None gaps -> (T, 478, 2), gaps linearly interpolated."""
    found = np.array([p is not None for p in points])
    known = np.flatnonzero(found)
    stacked = np.stack([points[i] for i in known])  # (K, 478, 2)
    flat = stacked.reshape(len(known), -1)
    times = np.arange(len(points))
    filled = np.stack([np.interp(times, known, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return filled.reshape(len(points), *stacked.shape[1:])


def crop_boxes(points: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Smoothed square crops (T, 3) = (cx, cy, side) from landmarks (T, N, 2)."""
    from scipy.ndimage import gaussian_filter1d

    low, high = points.min(axis=1), points.max(axis=1)  # (T, 2) each
    face = (high - low).max(axis=1)  # (T,)
    cx = (low[:, 0] + high[:, 0]) / 2
    cy = (low[:, 1] + high[:, 1]) / 2 - CROP_SHIFT_UP * face
    cx, cy = (gaussian_filter1d(v, CENTRE_SIGMA_S * fps, mode="nearest") for v in (cx, cy))
    side = gaussian_filter1d(CROP_SCALE * face, SIDE_SIGMA_S * fps, mode="nearest")
    return np.stack([cx, cy, side], axis=1).astype(np.float32)


def _crop(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Cut one square box out of a frame (black outside it) and resize: (size, size, 3)."""
    import cv2

    x0, y0, side = _integer_box(box)
    height, width = frame.shape[:2]
    patch = np.zeros((side, side, 3), np.uint8)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if xb > xa and yb > ya:
        patch[ya - y0:yb - y0, xa - x0:xb - x0] = frame[ya:yb, xa:xb]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def _cropped_frames(path: Path, boxes: np.ndarray, size: int):
    """Second pass over the video: exactly len(boxes) cropped frames (size, size, 3)."""
    frames = _frames(path)
    count = 0
    try:
        for frame, box in zip(frames, boxes):
            count += 1
            yield _crop(frame, box, size)
    finally:
        frames.close()
    if count != len(boxes):
        raise PrepareError(f"{path.name} gave {count} frames on a second read, {len(boxes)} on the first")


def _integer_box(box: np.ndarray) -> tuple[int, int, int]:
    side = max(int(round(float(box[2]))), 2)
    return int(round(float(box[0]) - side / 2)), int(round(float(box[1]) - side / 2)), side


def voice_activity(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """Per-frame voiced flags (T,) from RMS energy relative to the track's own loud level."""
    from scipy.ndimage import median_filter

    level = 20 * np.log10(frame_energy(audio, num_frames=num_frames) + 1e-10)  # (T,) dBFS
    loud = np.percentile(level, 95)
    voiced = (level > loud - VAD_RANGE_DB) & (level > VAD_FLOOR_DB)
    return median_filter(voiced.astype(np.uint8), size=5, mode="nearest").astype(bool)


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, np.float32)
    out[:min(length, len(audio))] = audio[:length]
    return out


def prepare_video(video_path: str | Path, out_dir: str | Path, size: int = 256,
                  partner_audio: str | Path | None = None, name: str | None = None) -> Path:
    """Turn one talking-face video into a clip folder `out_dir / name` (default: the video's stem).

    Args:
        video_path: the video (any container ffmpeg reads) with its own audio track.
        out_dir: the folder that receives the clip folder (created if needed).
        size: side of the square face crop in pixels.
        partner_audio: the partner's voice (any audio file); silence if None.
        name: clip folder name (default: the video's stem).

    Returns:
        The clip folder (an existing one of the same name is replaced).

    Raises:
        FileNotFoundError: the video or partner track does not exist.
        PrepareError (ValueError): not a readable video, no audio track, shorter than 1 s,
            or a face in fewer than 80 % of the frames.
    """
    from infp_lab.data.face_mesh import to_layout
    from infp_lab.render.video import write_video

    video_path, out_dir = Path(video_path), Path(out_dir)
    if not video_path.is_file():
        raise FileNotFoundError(f"video file not found: {video_path}")
    if size < 16:
        raise ValueError(f"crop size must be at least 16 pixels, got {size}")
    header = _probe(video_path)
    if "audio_codec" not in header:
        raise PrepareError(f"{video_path.name} has no audio track (the agent's own voice is needed)")
    duration = float(header.get("duration") or 0.0)
    if 0 < duration < 1.0:
        raise PrepareError(f"{video_path.name} is shorter than 1 s ({duration:.2f} s)")
    expected = duration * FPS if duration else np.inf  # frames, to give up early on faceless videos
    detected, stopped = _detect_faces(_frames(video_path), max_misses=(1 - MIN_FACE_FRACTION) * expected + 1)
    num_frames = len(detected)
    if num_frames < FPS and not stopped:
        raise PrepareError(f"{video_path.name} is shorter than 1 s ({num_frames} frames at {FPS} fps)")
    found = np.array([p is not None for p in detected])
    if stopped or found.mean() < MIN_FACE_FRACTION:
        what = "no face found" if not found.any() else f"a face in only {found.sum()} of {num_frames} frames"
        raise PrepareError(f"{video_path.name}: {what} (need {MIN_FACE_FRACTION:.0%} of the frames)")
    points = _fill_gaps(detected)  # (T, 478, 2) source pixels
    boxes = crop_boxes(points)  # (T, 3)

    num_samples = num_frames * SAMPLE_RATE // FPS
    try:
        self_audio = _fit(load_audio(video_path, SAMPLE_RATE), num_samples)
    except ValueError as error:
        raise PrepareError(f"{video_path.name}: cannot decode its audio track ({error})") from None
    other_audio = (np.zeros(num_samples, np.float32) if partner_audio is None
                   else _fit(load_audio(partner_audio, SAMPLE_RATE), num_samples))
    state = (voice_activity(self_audio, num_frames).astype(np.int8)
             + 2 * voice_activity(other_audio, num_frames).astype(np.int8))  # (T,)

    corners = np.array([_integer_box(box) for box in boxes], np.float32)  # (T, 3) x0, y0, side
    layout = to_layout(points)  # (T, 86, 2) source pixels
    landmarks = (layout - corners[:, None, :2]) * (size / corners[:, None, 2:])  # (T, 86, 2)
    name = name or video_path.stem
    meta = {"fps": FPS, "sample_rate": SAMPLE_RATE, "num_frames": num_frames, "language": "und",
            "identity": video_path.stem, "param_names": [], "video_size": size,
            "source": video_path.name, "source_size": list(header["size"]),
            "source_fps": float(header.get("fps", 0.0)), "face_frames": int(found.sum()),
            "partner": Path(partner_audio).name if partner_audio is not None else None}
    motion = {"params": np.zeros((num_frames, 0), np.float32), "landmarks": landmarks.astype(np.float32),
              "state": state, "crop": boxes, "face_found": found}

    final = out_dir / name
    partial = out_dir / f".{name}.partial"
    try:
        write_clip(partial, self_audio, other_audio, meta, motion)
        write_video(partial / "video.mp4", _cropped_frames(video_path, boxes, size), fps=FPS, audio=self_audio)
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final


def partner_track(video_path: Path) -> Path | None:
    """`NAME.partner.<audio ext>` beside `NAME.<video ext>`, if there is one."""
    for suffix in AUDIO_SUFFIXES:
        candidate = video_path.with_name(f"{video_path.stem}.partner{suffix}")
        if candidate.is_file():
            return candidate
    return None


def prepare_videos(videos: str | Path, out: str | Path, size: int = 256, progress: bool = False) -> dict:
    """Prepare every video of a folder; a video that fails is reported and skipped.

    Returns:
        {"clips": [clip names written], "failed": {video file name: reason}}.

    Raises:
        FileNotFoundError: `videos` is not a folder.
        ValueError: the folder holds no video (.mp4, .mov, .mkv, .avi, .webm).
    """
    from tqdm.auto import tqdm

    videos, out = Path(videos), Path(out)
    if not videos.is_dir():
        raise FileNotFoundError(f"video folder not found: {videos}")
    files = sorted(p for p in videos.iterdir()
                   if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ValueError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {videos}")
    stems = [p.stem for p in files]
    report: dict = {"clips": [], "failed": {}}
    for path in tqdm(files, desc="preparing videos", unit="video", disable=not progress):
        name = path.stem if stems.count(path.stem) == 1 else f"{path.stem}-{path.suffix[1:].lower()}"
        try:
            prepare_video(path, out, size=size, partner_audio=partner_track(path), name=name)
        except (ValueError, OSError) as error:
            report["failed"][path.name] = str(error)
            continue
        report["clips"].append(name)
    return report
