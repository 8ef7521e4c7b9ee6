"""Audio loading of odd formats and features framed to video frames."""

import subprocess

import numpy as np
import pytest
import soundfile as sf

from infp_lab.data.audio import (
    AudioError, AudioFeatureConfig, audio_features, frame_energy, load_audio, num_video_frames, prepare_audio,
)


def _tone(rate, seconds=1.0, freq=440.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_wav_any_rate_and_depth_to_16k_mono(tmp_path, rate, subtype):
    stereo = np.stack([_tone(rate), _tone(rate)], axis=1)
    path = tmp_path / "x.wav"
    sf.write(path, stereo, rate, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 16000) <= 2
    # the tone survives: its RMS is ~0.5/sqrt(2), whatever the depth
    assert 0.3 < np.sqrt(np.mean(audio**2)) < 0.4
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 5


def test_flac_ogg_mp3_and_m4a(tmp_path):
    import imageio_ffmpeg

    tone = _tone(44100)
    for suffix in ("flac", "ogg"):
        sf.write(tmp_path / f"x.{suffix}", tone, 44100)
        assert abs(len(load_audio(tmp_path / f"x.{suffix}")) - 16000) <= 2
    sf.write(tmp_path / "x.wav", tone, 44100)
    for suffix, codec in (("mp3", "libmp3lame"), ("m4a", "aac")):
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(tmp_path / "x.wav"),
                        "-c:a", codec, str(tmp_path / f"x.{suffix}")], check=True)
        audio = load_audio(tmp_path / f"x.{suffix}")
        assert abs(len(audio) / 16000 - 1.0) < 0.1, suffix
        assert np.sqrt(np.mean(audio**2)) > 0.2, suffix


def test_bad_audio_gives_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    with pytest.raises(AudioError, match="cannot decode"):
        load_audio(tmp_path / "corrupt.wav")
    with pytest.raises(AudioError, match="NaN"):
        prepare_audio(np.array([0.0, np.nan], np.float32), 16000)
    with pytest.raises(AudioError, match="no samples"):
        prepare_audio(np.zeros(0, np.float32), 16000)


def test_features_are_framed_to_video_frames():
    config = AudioFeatureConfig()
    audio = np.concatenate([np.zeros(16000, np.float32), _tone(16000)])  # 1 s silence, 1 s tone
    features = audio_features(audio, config=config)
    assert features.shape == (num_video_frames(len(audio)), config.dim) == (50, 320)
    loud = features.max(axis=1)
    assert loud[30:].mean() > loud[:20].mean() + 0.5  # the tone half is louder, frame-aligned
    assert audio_features(audio, 60).shape == (60, 320)  # padded with silence
    energy = frame_energy(audio)
    assert energy[:24].max() < 1e-6 and energy[26:].min() > 0.3
