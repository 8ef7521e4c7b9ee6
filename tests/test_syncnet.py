"""SyncNet-SynConv: shapes, mouth crops, save/load, training + resume, and the LSE-D/LSE-C
scoring logic checked with an oracle whose embeddings encode mouth opening and loudness."""

import numpy as np
import pytest
import torch

from infp_lab.data.audio import audio_features
from infp_lab.data.clip import load_clip
from infp_lab.syncnet import SyncNet, SyncNetTrainConfig, mouth_crops, preset, sync_scores, train_syncnet
from infp_lab.syncnet.train import CachedClip, sample_batch
from infp_lab.train.common import read_scalars

SIZE = 128


@pytest.fixture(scope="module")
def speaker(synconv_dir):
    """The reference clip that speaks most: frames, landmarks and jaw opening at 128 px."""
    clip = load_clip(synconv_dir / "conv0000_a")
    return clip.frames(SIZE), clip.landmarks(SIZE), clip.param("jaw_open")


def test_shapes_and_unit_embeddings():
    model = SyncNet(preset("tiny"))
    c = model.config
    out = model(torch.randn(3, c.window, 320), torch.rand(3, c.window, *c.crop_size))
    assert out.audio.shape == out.visual.shape == (3, c.embed_dim)
    assert torch.allclose(out.audio.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(out.visual.norm(dim=-1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError, match="crops must be"):
        model.embed_visual(torch.rand(3, c.window, 10, 10))
    with pytest.raises(ValueError, match="audio must be"):
        model.embed_audio(torch.rand(3, c.window + 1, 320))


def test_mouth_crops_show_the_mouth(speaker):
    frames, landmarks, jaw = speaker
    crops = mouth_crops(frames, landmarks, size=(48, 96))
    assert crops.shape == (len(frames), 48, 96) and crops.dtype == np.float32
    assert 0.0 <= crops.min() and crops.max() <= 1.0
    closed, opened = int(np.argmin(jaw)), int(np.argmax(jaw))
    assert jaw[opened] - jaw[closed] > 0.5
    middle = (slice(12, 36), slice(24, 72))
    assert crops[opened][middle].mean() < crops[closed][middle].mean() - 0.05  # open mouth: dark interior
    darkness = 1 - crops[:, 12:36, 24:72].mean(axis=(1, 2))
    assert np.corrcoef(darkness, jaw)[0, 1] > 0.8
    with pytest.raises(ValueError):
        mouth_crops(frames[:5], landmarks[:4])


def test_save_and_from_pretrained_identity(tmp_path):
    torch.manual_seed(0)
    model = SyncNet(preset("tiny")).eval()
    path = model.save_pretrained(tmp_path / "syncnet.safetensors")
    loaded = SyncNet.from_pretrained(path)
    assert loaded.config == model.config
    audio, crops = torch.randn(2, 5, 320), torch.rand(2, 5, *model.config.crop_size)
    for a, b in zip(model(audio, crops), loaded(audio, crops)):
        assert torch.equal(a, b)


def _train(data, out, steps, resume=False):
    cfg = SyncNetTrainConfig(steps=steps, batch_size=6, warmup=4, frame_size=64, checkpoint_every=2,
                             val_clips=1, val_max_offset=5)
    return train_syncnet(data, out, cfg, resume=resume, device="cpu", progress=False)


def test_training_runs_and_resumes_exactly(synconv_dir, tmp_path):
    straight = _train(synconv_dir, tmp_path / "straight", 4)
    assert straight["step"] == 4 and np.isfinite(straight["loss"]) and np.isfinite(straight["lse_d"])
    _train(synconv_dir, tmp_path / "split", 2)
    with pytest.raises(FileExistsError):
        _train(synconv_dir, tmp_path / "split", 4)
    resumed = _train(synconv_dir, tmp_path / "split", 4, resume=True)
    assert resumed["step"] == 4
    a = SyncNet.from_pretrained(tmp_path / "straight" / "syncnet.safetensors").state_dict()
    b = SyncNet.from_pretrained(tmp_path / "split" / "syncnet.safetensors").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = {step for curve in read_scalars(tmp_path / "split" / "metrics.csv").values() for step, _ in curve}
    assert {2, 4} <= steps


def test_blur_augmentation_softens_about_half_the_windows():
    """--max-blur blurs some training windows and leaves the others (and every window
    without it) as crisp as the cached crops: a checkerboard's pixel-to-pixel contrast."""
    board = (np.indices((8, 16, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)  # (T, h, w)
    clips = [CachedClip(board, np.zeros((8, 320), np.float32), np.ones(5, bool))]

    def contrast(max_blur):
        cfg = SyncNetTrainConfig(batch_size=32, max_blur=max_blur, min_shift=1, max_shift=2)
        crops = sample_batch(clips, step=0, cfg=cfg, window=4)["crops"]  # (B, W, h, w) in [0, 1]
        return (crops[..., 1:] - crops[..., :-1]).abs().mean(dim=(1, 2, 3))  # per window

    assert torch.allclose(contrast(0.0), torch.ones(32))
    blurred = contrast(3.0)
    assert 6 <= (blurred < 0.9).sum() <= 26 and (blurred == 1).sum() >= 6
    with pytest.raises(ValueError, match="max_blur"):
        SyncNetTrainConfig(max_blur=-1.0)


class OracleSync(torch.nn.Module):
    """A perfect expert for constructed audio: both embeddings are the window's standardised
    mouth darkness / loudness per frame, so aligned windows coincide."""

    def __init__(self, visual_stats, audio_stats):
        super().__init__()
        self.config = preset("tiny")
        self.visual_stats, self.audio_stats = visual_stats, audio_stats

    @staticmethod
    def darkness(crops):
        h, w = crops.shape[-2:]
        return 1 - crops[..., h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean(axis=(-2, -1))

    def embed_visual(self, crops):  # (B, W, h, w) -> (B, W)
        mean, std = self.visual_stats
        return (self.darkness(crops) - mean) / std

    def embed_audio(self, features):  # (B, W, 320) -> (B, W)
        mean, std = self.audio_stats
        return (features.mean(-1) - mean) / std


def _loud_when_open(jaw, lag_frames, seed=0):
    """Noise whose log-mel loudness follows the jaw opening `lag_frames` later (16 kHz)."""
    delayed = np.concatenate([np.full(lag_frames, jaw[0]), jaw[: len(jaw) - lag_frames]]) if lag_frames else jaw
    amplitude = 1e-3 * 10 ** (2.5 * np.repeat(delayed, 640))
    return (np.random.default_rng(seed).standard_normal(len(amplitude)) * amplitude).astype(np.float32)


@pytest.mark.parametrize("lag", [0, 6])
def test_sync_scores_find_the_injected_offset(speaker, lag):
    frames, landmarks, jaw = speaker
    audio = _loud_when_open(jaw, lag)
    crops = mouth_crops(frames, landmarks, preset("tiny").crop_size)
    darkness, loudness = OracleSync.darkness(crops), audio_features(audio, len(frames)).mean(-1)
    oracle = OracleSync((darkness.mean(), darkness.std()), (loudness.mean(), loudness.std()))
    scores = sync_scores(oracle, frames, landmarks, audio, max_offset=10)
    assert scores.offset == lag
    assert np.isfinite(scores.lse_d) and scores.lse_c > 0
    assert scores.distances.shape == (21,) and scores.distance_at(lag) == scores.lse_d
    if lag:
        assert scores.distance_at(0) > scores.lse_d


def test_sync_scores_reject_bad_inputs(speaker):
    frames, landmarks, jaw = speaker
    model = SyncNet(preset("tiny"))
    audio = _loud_when_open(jaw, 0)
    with pytest.raises(ValueError, match="too short"):
        sync_scores(model, frames[:30], landmarks[:30], audio[: 30 * 640], max_offset=15)
    with pytest.raises(ValueError, match="audio covers"):
        sync_scores(model, frames, landmarks, audio[: len(audio) // 2])
    with pytest.raises(ValueError, match="landmark"):
        sync_scores(model, frames, landmarks[:-3], audio)
    scores = sync_scores(model, frames, landmarks, audio, max_offset=5)
    assert np.isfinite(scores.lse_d) and np.isfinite(scores.lse_c) and -5 <= scores.offset <= 5


def test_differentiable_crops_match_the_metrics_crops(speaker):
    """`crop_images` (the sync loss's crops) cuts what `mouth_crops` (the metric's) cuts, and
    passes gradients back to the frame's pixels inside the box only."""
    from infp_lab.syncnet.crops import crop_images, crop_matrices

    frames, landmarks, _ = speaker
    size = preset("tiny").crop_size
    expected = mouth_crops(frames, landmarks, size)
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255).requires_grad_(True)
    crops = crop_images(images, torch.from_numpy(crop_matrices(landmarks, size)).float(), size)
    assert crops.shape == expected.shape
    assert np.abs(crops.detach().numpy() - expected).max() < 0.02  # the metric rounds its gray frames to uint8
    crops[0].sum().backward()
    touched = images.grad[0].abs().sum(0) > 0  # (H, W)
    ys, xs = np.nonzero(touched.numpy())
    mouth = landmarks[0, 48:60]
    assert images.grad[1:].abs().sum() == 0 and touched.sum() > 100
    assert mouth[:, 0].min() - 20 < xs.mean() < mouth[:, 0].max() + 20
    assert mouth[:, 1].min() - 20 < ys.mean() < mouth[:, 1].max() + 20
