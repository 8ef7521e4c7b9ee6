"""Audio loading and log-mel features framed to video frames (design.md section 3.3).

Every track the project uses goes through `load_audio` (any common format, rate, channel
count and bit depth -> 16 kHz mono float32) and `audio_features` (log-mel at 100 Hz, four
mel frames stacked per 25 fps video frame).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
FPS = 25


class AudioError(ValueError):
    """An audio file or array that cannot be used, with the reason."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as mono float32 at `sample_rate`.

    WAV/FLAC/OGG/MP3 are read with soundfile; anything else (M4A, AAC, audio inside a
    video) is decoded with the ffmpeg binary that imageio-ffmpeg ships.

    Raises:
        FileNotFoundError: the file does not exist.
        AudioError: the file cannot be decoded, is empty, or holds NaN/inf samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {path}")
    try:
        audio, rate = _read_soundfile(path)
    except Exception:  # soundfile cannot read this container: fall back to ffmpeg
        audio, rate = _read_ffmpeg(path, sample_rate), sample_rate
    return prepare_audio(audio, rate, sample_rate, name=str(path))


def prepare_audio(audio: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE, name: str = "audio") -> np.ndarray:
    """Check an in-memory signal and convert it to mono float32 at `sample_rate`.

    `audio` is (N,) or (N, C) (channels last, as soundfile returns); integer PCM is scaled
    to [-1, 1].
    """
    audio = np.asarray(audio)
    if audio.size == 0:
        raise AudioError(f"{name} holds no samples")
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max)
    audio = audio.astype(np.float32, copy=False)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)  # (N, C) -> (N,)
    elif audio.ndim != 1:
        raise AudioError(f"{name} must be (samples,) or (samples, channels), got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{name} contains NaN or infinite samples")
    if rate <= 0:
        raise AudioError(f"{name} has an invalid sample rate {rate}")
    if rate != sample_rate:
        import soxr

        audio = soxr.resample(audio, rate, sample_rate).astype(np.float32)
    return np.ascontiguousarray(audio)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (N, C)
    return audio, rate


def _read_ffmpeg(path: Path, sample_rate: int) -> np.ndarray:
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn",
           "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    result = subprocess.run(cmd, capture_output=True)
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"cannot decode audio file {path}: {reason[-1] if reason else 'no audio stream'}")
    return np.frombuffer(result.stdout, dtype=np.float32)


def save_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio as 16-bit PCM WAV."""
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")


@dataclass(frozen=True)
class AudioFeatureConfig:
    """Audio front end; `type` selects the backbone (only log-mel is built in)."""

    type: str = "logmel"
    sample_rate: int = SAMPLE_RATE
    n_mels: int = 80
    hop_length: int = 160  # 10 ms: 100 Hz mel frames
    win_length: int = 400  # 25 ms
    fps: int = FPS

    @property
    def mels_per_frame(self) -> int:
        return self.sample_rate // self.hop_length // self.fps

    @property
    def dim(self) -> int:
        """Feature size per video frame."""
        return self.n_mels * self.mels_per_frame


def num_video_frames(num_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Number of whole video frames covered by `num_samples` of audio."""
    return int(num_samples * fps // sample_rate)


def log_mel(audio: np.ndarray, config: AudioFeatureConfig = AudioFeatureConfig()) -> np.ndarray:
    """Log-mel spectrogram at 100 Hz: (N,) -> (M, n_mels) float32, in dB (floor -80)."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=audio, sr=config.sample_rate, n_fft=512, hop_length=config.hop_length,
        win_length=config.win_length, n_mels=config.n_mels, fmin=40, fmax=config.sample_rate // 2,
        center=True, power=2.0,
    )  # (n_mels, M)
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-8, top_db=None)
    return np.maximum(db, -80.0).T.astype(np.float32)  # (M, n_mels)


def audio_features(audio: np.ndarray, num_frames: int | None = None,
                   config: AudioFeatureConfig = AudioFeatureConfig()) -> np.ndarray:
    """Log-mel features framed to video frames: (N,) -> (T, mels_per_frame * n_mels).

    Frame t stacks the mel frames covering [t / fps, (t + 1) / fps). Values are scaled to
    roughly [-1, 1] ((dB + 40) / 40). `num_frames` pads (with silence) or cuts to a length.
    """
    if config.type != "logmel":
        raise ValueError(f"audio feature type {config.type!r} is not built in (only 'logmel')")
    if num_frames is None:
        num_frames = num_video_frames(len(audio), config.sample_rate, config.fps)
    k = config.mels_per_frame
    mel = log_mel(audio, config)  # (M, n_mels)
    need = num_frames * k
    if len(mel) < need:
        mel = np.concatenate([mel, np.full((need - len(mel), config.n_mels), -80.0, np.float32)])
    mel = mel[:need].reshape(num_frames, k * config.n_mels)  # (T, k * n_mels)
    return (mel + 40.0) / 40.0


def frame_energy(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, fps: int = FPS,
                 num_frames: int | None = None) -> np.ndarray:
    """RMS energy per video frame: (N,) -> (T,) float32."""
    hop = sample_rate // fps
    if num_frames is None:
        num_frames = len(audio) // hop
    padded = np.zeros(num_frames * hop, np.float32)
    n = min(len(audio), len(padded))
    padded[:n] = audio[:n]
    return np.sqrt(np.mean(padded.reshape(num_frames, hop) ** 2, axis=1))
