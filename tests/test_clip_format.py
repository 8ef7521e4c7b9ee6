"""The dyadic clip format: round trip, contract checks and clear errors."""

import json

import numpy as np
import pytest

from infp_lab.data.clip import ClipFormatError, list_clips, load_clip, save_npz, write_clip


def _meta(T=10):
    return {"fps": 25, "sample_rate": 16000, "language": "en", "identity": "x", "num_frames": T,
            "param_names": ["jaw_open", "blink_left", "blink_right", "yaw", "pitch", "roll"]}


def _motion(T=10, L=5):
    rng = np.random.default_rng(0)
    return {"params": rng.standard_normal((T, 6)).astype(np.float32),
            "landmarks": rng.uniform(0, 256, (T, L, 2)).astype(np.float32),
            "state": rng.integers(0, 4, T).astype(np.int8)}


def test_round_trip(tmp_path):
    audio = (np.sin(np.arange(6400) / 10) * 0.3).astype(np.float32)
    spec = {"renderer": "synconv-face", "base_size": 256, "appearance": {}}
    write_clip(tmp_path / "c", audio, audio * 0.5, _meta(), _motion(), spec)
    clip = load_clip(tmp_path / "c")
    assert clip.num_frames == 10 and clip.fps == 25
    for key, value in _motion().items():
        np.testing.assert_array_equal(clip.motion[key], value)
    np.testing.assert_allclose(clip.self_audio, audio, atol=1e-4)  # 16-bit PCM
    np.testing.assert_allclose(clip.param("jaw_open"), _motion()["params"][:, 0])
    assert clip.landmarks(128).max() <= 128.0
    assert list_clips(tmp_path) == [tmp_path / "c"]


def test_npz_bytes_are_deterministic(tmp_path):
    save_npz(tmp_path / "a.npz", _motion())
    save_npz(tmp_path / "b.npz", _motion())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as npz:
        np.testing.assert_array_equal(npz["params"], _motion()["params"])


def test_bad_clips_give_clear_errors(tmp_path):
    audio = np.zeros(6400, np.float32)
    spec = {"renderer": "synconv-face", "base_size": 256, "appearance": {}}
    with pytest.raises(ClipFormatError, match="not found"):
        load_clip(tmp_path / "nope")
    with pytest.raises(ClipFormatError, match="lacks required keys: identity"):
        write_clip(tmp_path / "c", audio, audio, {k: v for k, v in _meta().items() if k != "identity"}, _motion(), spec)

    path = write_clip(tmp_path / "c", audio, audio, _meta(), _motion(), spec)
    (path / "other.wav").unlink()
    with pytest.raises(ClipFormatError, match="missing audio track: .*other.wav"):
        load_clip(path)

    path = write_clip(tmp_path / "c", audio, audio, _meta(), _motion(), spec)
    (path / "self.wav").write_bytes(b"RIFF garbage" * 20)
    with pytest.raises(ClipFormatError, match="cannot decode"):
        load_clip(path)

    path = write_clip(tmp_path / "c", audio, audio, _meta(), _motion(), spec)
    (path / "meta.json").write_text("{not json")
    with pytest.raises(ClipFormatError, match="not valid JSON"):
        load_clip(path)

    bad = _motion()
    bad["state"] = bad["state"][:5]
    path = write_clip(tmp_path / "c", audio, audio, _meta(), bad, spec)
    with pytest.raises(ClipFormatError, match="state has shape"):
        load_clip(path)

    path = write_clip(tmp_path / "c", audio, audio, _meta(), None, spec)
    with pytest.raises(ClipFormatError, match="missing motion file"):
        load_clip(path)

    (tmp_path / "splits.json").write_text(json.dumps({"train": ["c"]}))
    with pytest.raises(ClipFormatError, match="split 'test' not in"):
        list_clips(tmp_path, "test")


def test_list_clips_skips_partial_writes(tmp_path):
    audio = np.zeros(6400, np.float32)
    write_clip(tmp_path / "c", audio, audio, _meta(), _motion(), {"renderer": "synconv-face", "base_size": 256, "appearance": {}})
    partial = tmp_path / ".d.partial"
    partial.mkdir()
    (partial / "meta.json").write_text("{}")
    assert list_clips(tmp_path) == [tmp_path / "c"]
