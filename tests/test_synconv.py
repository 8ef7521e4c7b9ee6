"""SynConv end to end: the issue's reference conversation, determinism, state/energy and
viseme/mouth agreement, splits, the dataset and the video render."""

import json

import numpy as np
import pytest
import torch

from infp_lab.data.audio import frame_energy
from infp_lab.data.clip import list_clips, load_clip
from infp_lab.data.dataset import DyadicClipDataset
from infp_lab.data.synconv import generate_dataset
from infp_lab.data.synconv.generate import split_of_variant


def _clips(root):
    return [load_clip(p) for p in list_clips(root)]


def test_reference_conversation_contract(synconv_dir):
    clips = _clips(synconv_dir)
    assert [c.name for c in clips] == ["conv0000_a", "conv0000_b"]
    for clip in clips:
        assert clip.num_frames == 200 and clip.fps == 25 and clip.sample_rate == 16000
        assert len(clip.self_audio) == len(clip.other_audio) == 8 * 16000
        for name in ("jaw_open", "blink_left", "blink_right", "yaw", "pitch", "roll"):
            assert name in clip.param_names
        assert clip.motion["params"].dtype == np.float32
        assert clip.motion["landmarks"].shape[:2] == (200, clip.motion["landmarks"].shape[1])
        assert clip.motion["landmarks"].shape[1] >= 68
        assert set(np.unique(clip.motion["state"])) <= {0, 1, 2, 3}
        assert {"language", "identity", "param_names"} <= set(clip.meta)
    a, b = clips
    # each agent's "self" is the other's "other"
    np.testing.assert_array_equal(a.self_audio, b.other_audio)
    swapped = np.array([0, 2, 1, 3], np.int8)[a.motion["state"]]
    np.testing.assert_array_equal(swapped, b.motion["state"])
    assert a.meta["identity"] == b.meta["partner_identity"]


def test_state_labels_agree_with_track_energy(synconv_dir):
    for clip in _clips(synconv_dir):
        state = clip.motion["state"]
        own = frame_energy(clip.self_audio, num_frames=clip.num_frames)
        other = frame_energy(clip.other_audio, num_frames=clip.num_frames)
        self_only, other_only = state == 1, state == 2
        assert self_only.sum() > 10 and other_only.sum() > 10, "both speakers must talk alone somewhere"
        ratio_self = np.median(own[self_only]) / (np.median(other[self_only]) + 1e-6)
        ratio_other = np.median(other[other_only]) / (np.median(own[other_only]) + 1e-6)
        assert ratio_self > 10 and ratio_other > 10, (ratio_self, ratio_other)
        # and silence really is quiet on both tracks
        if (state == 0).sum() > 5:
            assert np.median(own[state == 0]) < 0.01 and np.median(other[state == 0]) < 0.01


def test_mouth_tracks_own_speech_and_closes_while_listening(synconv_dir):
    for clip in _clips(synconv_dir):
        jaw, state = clip.param("jaw_open"), clip.motion["state"]
        speaking, listening = jaw[state == 1], jaw[state == 2]
        assert speaking.mean() > 0.2
        assert listening.mean() < 0.25 * speaking.mean()
        assert np.percentile(listening, 90) < 0.12
        # open vowels open the jaw more than bilabials do
        viseme = clip.motion["viseme"]
        names = clip.meta["visemes"]
        open_v, bilabial = viseme == names.index("aa"), viseme == names.index("PP")
        if open_v.sum() > 3 and bilabial.sum() > 3:
            assert jaw[open_v].mean() > jaw[bilabial].mean() + 0.15
            press = clip.param("lip_press")
            assert press[bilabial].mean() > press[open_v].mean() + 0.2
        # the mouth correlates with the own voice's loudness, frame by frame
        own = frame_energy(clip.self_audio, num_frames=clip.num_frames)
        assert np.corrcoef(jaw, np.log(own + 1e-4))[0, 1] > 0.4


def test_same_seed_same_bytes(synconv_dir, tmp_path):
    generate_dataset(tmp_path, conversations=1, seconds=8.0, seed=3)
    for path in sorted(synconv_dir.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (tmp_path / path.relative_to(synconv_dir)).read_bytes(), path.name
    other = tmp_path / "other"
    generate_dataset(other, conversations=1, seconds=8.0, seed=4)
    assert (other / "conv0000_a" / "self.wav").read_bytes() != (tmp_path / "conv0000_a" / "self.wav").read_bytes()


def test_workers_do_not_change_bytes(synconv_many, tmp_path):
    generate_dataset(tmp_path, conversations=6, seconds=10.0, seed=11, workers=1)
    for name in ("conv0004_b/motion.npz", "conv0005_a/self.wav", "splits.json"):
        assert (synconv_many / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_splits_disjoint_by_identity_and_voice(synconv_many):
    splits = json.loads((synconv_many / "splits.json").read_text())
    assert all(splits[s] for s in ("train", "val", "test"))
    seen = {}
    for split, names in splits.items():
        for name in names:
            meta = load_clip(synconv_many / name, load_audio_tracks=False).meta
            assert split_of_variant(meta["voice"]["variant"]) == split
            seen.setdefault("identity", {}).setdefault(meta["identity"], set()).add(split)
            seen.setdefault("voice", {}).setdefault(meta["voice_id"], set()).add(split)
    for kind in ("identity", "voice"):
        assert all(len(s) == 1 for s in seen[kind].values()), kind
    languages = {load_clip(p, load_audio_tracks=False).meta["language"] for p in list_clips(synconv_many)}
    assert len(languages) == 6


def test_rendered_frames_follow_the_landmarks(synconv_dir):
    clip = load_clip(synconv_dir / "conv0000_a")
    frames = clip.frames(128, 0, 40)
    assert frames.shape == (40, 128, 128, 3) and frames.dtype == np.uint8
    assert frames.std() > 20  # not blank
    lms = clip.landmarks(128)[:40]
    assert lms.min() >= 0 and lms.max() <= 128
    # the frame changes where the face moves: consecutive frames differ
    assert np.abs(np.diff(frames.astype(np.int16), axis=0)).mean() > 0.1


def test_dataset_windows_with_workers(synconv_many):
    dataset = DyadicClipDataset(synconv_many, window=25, size=64, split="train")
    assert len(dataset) == len(list_clips(synconv_many, "train")) * 10
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    batch = next(iter(loader))
    assert batch["frames"].shape == (4, 25, 3, 64, 64)
    assert batch["self_audio"].shape == batch["other_audio"].shape == (4, 25, 320)
    assert batch["params"].shape[:2] == (4, 25) and batch["state"].dtype == torch.int64
    assert 0 <= batch["landmarks"].min() and batch["landmarks"].max() <= 1
    # items are aligned: the motion of an item is the clip's motion at that window
    item = dataset[3]
    clip = load_clip(dataset.clip_paths[item["clip_index"]])
    start = item["start"]
    np.testing.assert_allclose(item["params"].numpy(), clip.motion["params"][start:start + 25])
    with pytest.raises(ValueError, match="window"):
        DyadicClipDataset(synconv_many, window=0)


def test_bad_synth_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown language"):
        generate_dataset(tmp_path, conversations=1, seconds=4, languages=["xx"])
    with pytest.raises(ValueError, match="at least 1"):
        generate_dataset(tmp_path, conversations=0, seconds=4)
    with pytest.raises(ValueError, match="seconds"):
        generate_dataset(tmp_path, conversations=1, seconds=0.5)


def test_data_samples_are_what_their_command_makes(tmp_path):
    """data_samples/synconv is reproducible from its recorded command (seed 0) and covers its promises."""
    from pathlib import Path

    samples = Path(__file__).resolve().parents[1] / "data_samples" / "synconv"
    generate_dataset(tmp_path, conversations=3, seconds=10.0, seed=0, languages=["en", "es", "ja"])
    for path in sorted(samples.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (tmp_path / path.relative_to(samples)).read_bytes(), path.name
    metas = [load_clip(p, load_audio_tracks=False).meta for p in list_clips(samples)]
    assert any(s["kind"] == "singing" for m in metas for s in m["segments"])
    assert any(m["species"] != "human" for m in metas)
    assert any(abs(m["base_yaw"]) >= 20 for m in metas)
    assert len({m["language"] for m in metas}) == 3
