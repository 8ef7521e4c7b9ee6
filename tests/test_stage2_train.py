"""Stage-2 training: the latent cache (written once, reused, keyed by the stage-1 weights),
training windows (one-sided, previous motion, audio context as generate() has it), a short
run with export and resume, DDP on CPU, and clear errors. A randomly initialised tiny
stage-1 model and the two-clip SynConv conversation of conftest (CPU, seconds)."""

import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from infp_lab.checkpoint import file_sha256, load_weights
from infp_lab.data.clip import list_clips, save_npz, train_val_clips
from infp_lab.stage1.config import preset as stage1_preset
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2 import MotionGenerator, preset
from infp_lab.stage2.data import WindowDataset, cache_latents, cached_latents, latent_stats
from infp_lab.stage2.pose import pose_directions
from infp_lab.stage2.train import (
    GuideMouthLoss, HeadMotionLoss, MouthShapeLoss, Stage2TrainConfig, WhitenedLatentLoss, train_stage2,
    window_loss,
)
from infp_lab.train.common import read_scalars

CONFIG = preset("tiny", 64)
WINDOW, CONTEXT, LOOKAHEAD = CONFIG.dit.window, CONFIG.dit.context, CONFIG.lookahead
FAST = Stage2TrainConfig(steps=4, batch_size=4, one_sided_steps=2, checkpoint_every=2, val_batches=1)


def _stage1_file(path, seed):
    torch.manual_seed(seed)
    return HeadImitator(stage1_preset("tiny")).save_pretrained(path)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight a busy machine for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def stage1_file(tmp_path_factory):
    return _stage1_file(tmp_path_factory.mktemp("stage1") / "stage1.safetensors", 0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory, synconv_dir, stage1_file):
    """(cache folder, cached .npz of every clip of the conversation)."""
    folder = tmp_path_factory.mktemp("latent_cache")
    return folder, cache_latents(stage1_file, list_clips(synconv_dir), folder, "cpu", progress=False)


def test_cache_is_written_once_and_reused(cache, stage1_file, synconv_dir, monkeypatch):
    folder, paths = cache
    stamps = [p.stat().st_mtime_ns for p in paths]
    with np.load(paths[0]) as npz:
        assert npz["latents"].shape == (200, 64) and npz["self_audio"].shape == npz["other_audio"].shape == (200, 320)
        assert npz["state"].shape == (200,) and str(npz["stage1_sha256"]) == file_sha256(stage1_file)

    def fail(*args, **kwargs):
        raise AssertionError("a cached clip was encoded again")

    monkeypatch.setattr("infp_lab.stage2.data.encode_clip", fail)
    assert cache_latents(stage1_file, list_clips(synconv_dir), folder, "cpu", progress=False) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps


def test_cache_follows_the_stage1_weights(cache, stage1_file, synconv_dir, tmp_path):
    folder, paths = cache
    weights = tmp_path / "w.safetensors"
    shutil.copy(stage1_file, weights)
    clip = list_clips(synconv_dir)[:1]
    assert cache_latents(weights, clip, folder, progress=False) == paths[:1]  # same bytes, other name: reused
    _stage1_file(weights, 1)  # the file changes
    fresh = cache_latents(weights, clip, folder, progress=False)[0]
    assert fresh != paths[0] and fresh.parent != paths[0].parent and paths[0].is_file()
    with np.load(fresh) as new, np.load(paths[0]) as old:
        assert not np.allclose(new["latents"], old["latents"])
        assert np.array_equal(new["self_audio"], old["self_audio"]) and np.array_equal(new["state"], old["state"])


def test_one_sided_windows_have_one_speaking_side(cache, tmp_path):
    _, paths = cache
    dataset = WindowDataset(paths, WINDOW, CONTEXT, LOOKAHEAD, seed=0, one_sided=True)
    for i in range(40):
        state = dataset[i]["state"].numpy()
        assert set(np.unique(state)) - {0} in ({1}, {2}), state
        assert (state != 0).mean() >= 0.2
    assert torch.equal(dataset[7]["latents"], WindowDataset(paths, WINDOW, CONTEXT, LOOKAHEAD, seed=0,
                                                            one_sided=True)[7]["latents"])

    both = tmp_path / "both.npz"  # both sides speak all the time
    save_npz(both, {"latents": np.zeros((80, 4), np.float32), "self_audio": np.zeros((80, 320), np.float32),
                    "other_audio": np.zeros((80, 320), np.float32), "state": np.full(80, 3, np.int8)})
    with pytest.raises(ValueError, match="only one side speaks"):
        WindowDataset([both], WINDOW, CONTEXT, LOOKAHEAD, one_sided=True)
    with pytest.raises(ValueError, match="frames a training window needs"):
        WindowDataset([both], 78, CONTEXT, LOOKAHEAD)


def test_previous_style_and_audio_context_match_generate(cache):
    _, paths = cache
    dataset = WindowDataset(paths, WINDOW, CONTEXT, LOOKAHEAD, seed=0)
    arrays = dataset.arrays(0)
    length = len(arrays["latents"])
    torch.manual_seed(0)
    model = MotionGenerator(CONFIG).eval()
    with torch.no_grad():  # generate() runs the guider over the whole clip at once
        whole = model.guide(torch.from_numpy(arrays["self_audio"])[None], torch.from_numpy(arrays["other_audio"])[None])
    rng = np.random.default_rng(0)
    for start in (0, 5, CONTEXT, 70, length - WINDOW):
        item = dataset.item(0, start, rng)
        assert bool(item["has_previous"]) == (start >= CONTEXT)
        expected = arrays["latents"][start - CONTEXT:start] if start >= CONTEXT else np.zeros((CONTEXT, 64))
        assert np.array_equal(item["previous"].numpy(), expected)
        assert item["self_audio"].shape == (WINDOW + 2 * LOOKAHEAD, 320)
        style = item["style_reference"].numpy()
        assert style.shape == (WINDOW, 64) and not np.array_equal(style, item["latents"].numpy())
        offset = item["audio_offset"]
        with torch.no_grad():
            window = model.guide(item["self_audio"][None], item["other_audio"][None])
        assert torch.allclose(window.feature[0, offset:offset + WINDOW], whole.feature[0, start:start + WINDOW],
                              atol=1e-5), start


def test_train_export_and_resume(cache, stage1_file, synconv_dir, tmp_path):
    from infp_lab.cli import main
    from infp_lab.export import export_checkpoint

    folder, _ = cache
    result = train_stage2(synconv_dir, stage1_file, tmp_path / "a", "tiny", FAST, device="cpu", progress=False,
                          cache_dir=folder)
    assert result["step"] == 4 and np.isfinite(result["loss"])
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4 and state["stage1_sha256"] == file_sha256(stage1_file)
    weights = tmp_path / "a" / "stage2.safetensors"
    model = MotionGenerator.from_pretrained(weights)
    train_clips, _ = train_val_clips(synconv_dir)
    mean, std = latent_stats(cache_latents(stage1_file, train_clips, folder, progress=False))
    assert torch.allclose(model.latent_mean, torch.from_numpy(mean))
    assert torch.allclose(model.latent_std, torch.from_numpy(std))
    directions = pose_directions(HeadImitator.from_pretrained(stage1_file),
                                 cached_latents(cache_latents(stage1_file, train_clips, folder, progress=False)),
                                 model.normalise)
    assert torch.allclose(model.pose_projector, directions @ directions.T, atol=1e-5)  # found in training
    _, config, extra = load_weights(weights, "infp-lab/stage2")
    assert extra["step"] == 4 and extra["stage1_weights"] == "stage1.safetensors"
    assert extra["stage1_sha256"] == state["stage1_sha256"] and extra["val"]["loss"] == pytest.approx(result["loss"])
    logged = read_scalars(tmp_path / "a" / "metrics.csv")
    assert logged["train/loss"][-1][0] == 4 and 2 in [step for step, _ in logged["val/loss"]]
    assert any(name.startswith("attention/verbal_peak") for name in logged)
    assert all(np.isfinite(v) for _, v in logged["train/loss"])

    exported = export_checkpoint(tmp_path / "a" / "checkpoint.pt", tmp_path / "e.safetensors")
    exported_state = MotionGenerator.from_pretrained(exported).state_dict()
    assert all(torch.equal(v, state["ema"][k]) for k, v in exported_state.items())
    assert load_weights(exported, "infp-lab/stage2")[2]["stage1_sha256"] == state["stage1_sha256"]
    assert main(["export", "--checkpoint", str(tmp_path / "a" / "checkpoint.pt"),
                 "--out", str(tmp_path / "r.safetensors"), "--raw"]) == 0

    # 2 steps, then resumed to 4: the same weights as the uninterrupted run
    first = train_stage2(synconv_dir, stage1_file, tmp_path / "b", "tiny", replace(FAST, steps=2), device="cpu",
                         progress=False, cache_dir=folder)
    assert first["step"] == 2
    resumed = train_stage2(synconv_dir, stage1_file, tmp_path / "b", "tiny", FAST, resume=True, device="cpu",
                           progress=False, cache_dir=folder)
    assert resumed["step"] == 4 and resumed["loss"] == pytest.approx(result["loss"], rel=1e-5)
    b = MotionGenerator.from_pretrained(tmp_path / "b" / "stage2.safetensors").state_dict()
    assert all(torch.allclose(v, b[k], atol=1e-6) for k, v in model.state_dict().items())

    # with the guide-mouth read-out: kept in the checkpoint (not the weights), resumed exactly
    lips = replace(FAST, guide_mouth_weight=1.0)
    whole = train_stage2(synconv_dir, stage1_file, tmp_path / "c", "tiny", lips, device="cpu", progress=False,
                         cache_dir=folder)
    lips_state = torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)
    encoder = "self_audio_encoder.frame_mlp.0.weight"
    assert not torch.allclose(lips_state["model"][encoder], state["model"][encoder])  # the term changed the training
    assert "train/guide_mouth" in read_scalars(tmp_path / "c" / "metrics.csv")
    readout = lips_state["guide_mouth"]
    assert set(readout) == {"mean", "std", "readout.weight", "readout.bias"}
    assert not any("readout" in k for k in load_weights(tmp_path / "c" / "stage2.safetensors", "infp-lab/stage2")[0])
    train_stage2(synconv_dir, stage1_file, tmp_path / "d", "tiny", replace(lips, steps=2), device="cpu",
                 progress=False, cache_dir=folder)
    assert train_stage2(synconv_dir, stage1_file, tmp_path / "d", "tiny", lips, resume=True, device="cpu",
                        progress=False, cache_dir=folder)["loss"] == pytest.approx(whole["loss"], rel=1e-5)
    with pytest.raises(ValueError, match="without --guide-mouth-weight"):
        train_stage2(synconv_dir, stage1_file, tmp_path / "b", "tiny", lips, resume=True, device="cpu",
                     progress=False, cache_dir=folder)

    with pytest.raises(FileExistsError, match="--resume"):
        train_stage2(synconv_dir, stage1_file, tmp_path / "a", "tiny", FAST, device="cpu", progress=False,
                     cache_dir=folder)
    other = _stage1_file(tmp_path / "other.safetensors", 2)
    with pytest.raises(ValueError, match="another stage-1 model"):
        train_stage2(synconv_dir, other, tmp_path / "a", "tiny", FAST, resume=True, device="cpu", progress=False,
                     cache_dir=folder)


def test_audio_encoder_options_set_what_it_hears(cache, stage1_file, synconv_dir, tmp_path, capsys):
    """audio_layers / audio_kernel (--audio-layers, --audio-kernel) change the audio encoders'
    convolutions; the weights carry them, and so the lookahead that training windows and the
    streaming generator take."""
    from infp_lab.cli import main

    folder, _ = cache
    train_stage2(synconv_dir, stage1_file, tmp_path / "w", "tiny", replace(FAST, steps=2), device="cpu",
                 progress=False, cache_dir=folder, audio_layers=4, audio_kernel=5)
    model = MotionGenerator.from_pretrained(tmp_path / "w" / "stage2.safetensors")
    assert (model.config.audio.layers, model.config.audio.kernel, model.config.lookahead) == (4, 5, 8)
    assert len(model.other_audio_encoder.blocks) == 4
    assert model.other_audio_encoder.blocks[0].conv.kernel_size == (5,)
    base = ["train", "stage2", "--data", str(synconv_dir), "--stage1", str(stage1_file), "--out", str(tmp_path / "o")]
    assert main([*base, "--audio-kernel", "4"]) == 2
    assert "audio.kernel must be odd" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_whiten_latents_whitens_the_diffusion_space(cache, stage1_file, synconv_dir, tmp_path, capsys):
    """--whiten-latents FLOOR: the weights' normalised space is whitened with the training
    latents' principal directions (as `set_latent_whitening` does with them), and the pose
    directions are found in that space; a negative floor is one clear line."""
    from infp_lab.cli import main

    folder, _ = cache
    base = ["train", "stage2", "--data", str(synconv_dir), "--stage1", str(stage1_file), "--preset", "tiny",
            "--steps", "2", "--batch-size", "4", "--one-sided-steps", "1", "--checkpoint-every", "2",
            "--cache", str(folder)]
    assert main([*base, "--out", str(tmp_path / "w"), "--whiten-latents", "1e-3"]) == 0
    model = MotionGenerator.from_pretrained(tmp_path / "w" / "stage2.safetensors")
    train_clips, _ = train_val_clips(synconv_dir)
    latents = torch.from_numpy(cached_latents(cache_latents(stage1_file, train_clips, folder, progress=False)))
    expected = MotionGenerator(model.config)
    expected.set_latent_stats(model.latent_mean, model.latent_std)
    expected.set_latent_whitening(latents, 1e-3)
    assert model.is_whitened and torch.allclose(model.latent_whitening, expected.latent_whitening, atol=1e-4)
    directions = pose_directions(HeadImitator.from_pretrained(stage1_file), latents, model.normalise)
    assert torch.allclose(model.pose_projector, directions @ directions.T, atol=1e-5)
    assert main([*base, "--out", str(tmp_path / "bad"), "--whiten-latents", "-1"]) == 2
    assert "whiten_floor must be >= 0" in capsys.readouterr().err


def test_mouth_loss_compares_the_decoded_lips(cache, stage1_file):
    _, paths = cache
    stage1 = HeadImitator.from_pretrained(stage1_file)
    latents = torch.from_numpy(np.concatenate([np.load(p)["latents"] for p in paths]))
    mouth = MouthShapeLoss(stage1, latents)
    with torch.no_grad():
        shapes = stage1.mouth_shape(latents)  # (N, 20, 2), centred: where the head is drops out
        assert shapes.shape == (len(latents), 20, 2) and shapes.mean(dim=1).abs().max() < 1e-5
        assert mouth.variance == pytest.approx(shapes.var(dim=0).mean().item(), rel=1e-5)
        a, b = latents[:100].reshape(2, 50, 64), latents[100:200].reshape(2, 50, 64)
        assert mouth(a, a).item() == pytest.approx(0.0, abs=1e-9)
        by_hand = (stage1.mouth_shape(a.flatten(0, 1)) - stage1.mouth_shape(b.flatten(0, 1))).pow(2).mean()
        assert mouth(a, b).item() == pytest.approx(by_hand.item() / mouth.variance, rel=1e-5)

    _assert_term_reaches_the_loss(paths, stage1, "mouth", mouth)


def _assert_term_reaches_the_loss(paths, stage1, name: str, term) -> MotionGenerator:
    """The `name` term reaches the loss and its gradient, weighted; the diffusion part is unchanged.
    Returns the model, its gradients those of the term alone."""
    torch.manual_seed(0)
    model = MotionGenerator(CONFIG)
    model.set_latent_stats(*(torch.from_numpy(x) for x in latent_stats(paths)))
    dataset = WindowDataset(paths, WINDOW, CONTEXT, LOOKAHEAD, seed=0)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    plain = window_loss(model, batch, torch.Generator().manual_seed(1))
    weighted = window_loss(model, batch, torch.Generator().manual_seed(1), **{name: term, f"{name}_weight": 2.0})
    assert weighted[name].item() > 0
    assert weighted["loss"].item() == pytest.approx(plain["loss"].item() + 2.0 * weighted[name].item(), rel=1e-5)
    weighted[name].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert all(p.grad is None for p in stage1.parameters())  # the landmark head stays frozen
    return model


def test_whitened_loss_weighs_every_principal_direction_alike(cache, stage1_file):
    _, paths = cache
    latents = torch.from_numpy(np.concatenate([np.load(p)["latents"] for p in paths]))
    mean, std = (torch.from_numpy(x) for x in latent_stats(paths))
    normalised = (latents - mean) / std
    whitened = WhitenedLatentLoss(normalised, floor=1e-3)
    directions = whitened.directions
    torch.testing.assert_close(directions.T @ directions, torch.eye(64), atol=1e-4, rtol=0)
    variances = (normalised - normalised.mean(dim=0)).double().pow(2).mean(dim=0)  # per channel
    along = ((normalised - normalised.mean(dim=0)) @ directions).pow(2).mean(dim=0)  # per direction
    torch.testing.assert_close(whitened.weights, 1 / (along + 1e-3), rtol=1e-3, atol=0)
    assert along.sum().item() == pytest.approx(variances.sum().item(), rel=1e-4)  # a rotation of the same spread
    a = normalised[:100].reshape(2, 50, 64)
    assert whitened(a, a).item() == pytest.approx(0.0, abs=1e-12)
    # the same small error costs far more along the faintest direction than along the strongest
    faint, strong = directions[:, 0], directions[:, -1]  # eigh: ascending variances
    cost = [whitened(a + 0.01 * d, a).item() for d in (faint, strong)]
    assert cost[0] == pytest.approx(0.01 ** 2 * whitened.weights[0].item() / 64, rel=1e-3)
    assert cost[0] > 100 * cost[1]
    with pytest.raises(ValueError, match="floor must be > 0"):
        WhitenedLatentLoss(normalised, floor=0)
    _assert_term_reaches_the_loss(paths, HeadImitator.from_pretrained(stage1_file), "whitened", whitened)


def test_guide_mouth_loss_reads_the_lips_out_of_f_m(cache, stage1_file):
    _, paths = cache
    stage1 = HeadImitator.from_pretrained(stage1_file)
    latents = torch.from_numpy(np.concatenate([np.load(p)["latents"] for p in paths]))
    torch.manual_seed(0)
    guide_mouth = GuideMouthLoss(stage1, latents, CONFIG.dim)
    assert [name for name, _ in guide_mouth.named_parameters()] == ["readout.weight", "readout.bias"]  # not stage 1
    with torch.no_grad():
        shapes = stage1.mouth_shape(latents).flatten(1)  # (N, 40)
        torch.testing.assert_close(guide_mouth.mean, shapes.mean(dim=0))
        torch.testing.assert_close(guide_mouth.std, shapes.std(dim=0))
        window = latents[:100].reshape(2, 50, 64)
        target = (stage1.mouth_shape(window.flatten(0, 1)).flatten(1) - guide_mouth.mean) / guide_mouth.std
        # a read-out that gives the true lips from a feature holding them scores 0; a silent one, the variance
        feature = torch.cat([target, torch.zeros(100, CONFIG.dim - target.shape[1])], dim=1).reshape(2, 50, -1)
        guide_mouth.readout.weight.copy_(torch.eye(target.shape[1], CONFIG.dim))
        guide_mouth.readout.bias.zero_()
        assert guide_mouth(feature, window).item() == pytest.approx(0.0, abs=1e-9)
        assert guide_mouth(torch.zeros_like(feature), window).item() == pytest.approx(target.pow(2).mean().item())

    model = _assert_term_reaches_the_loss(paths, stage1, "guide_mouth", guide_mouth)
    grads = {name: p.grad is not None and p.grad.abs().sum() > 0 for name, p in model.named_parameters()}
    assert any(v for k, v in grads.items() if k.startswith("self_audio_encoder."))  # f_m learns to hold the lips
    assert not any(v for k, v in grads.items() if k.startswith("dit."))  # the denoiser is not asked
    assert guide_mouth.readout.weight.grad.abs().sum() > 0


def test_head_loss_compares_the_decoded_head_motion(cache, stage1_file):
    from infp_lab.metrics import landmark_head_pose

    _, paths = cache
    stage1 = HeadImitator.from_pretrained(stage1_file)
    clips = [torch.from_numpy(np.load(p)["latents"]) for p in paths]
    window = 20
    head = HeadMotionLoss(stage1, clips, window)
    with torch.no_grad():
        windows = torch.cat([z[:len(z) // window * window].reshape(-1, window, 64) for z in clips])
        pose = landmark_head_pose(stage1.landmark_head(windows.flatten(0, 1))).reshape(len(windows), window, 5)
        centred = pose[..., [0, 1, 3]] - pose[..., [0, 1, 3]].mean(dim=1, keepdim=True)  # roll, turn, nod
        torch.testing.assert_close(head.variance, centred.pow(2).mean(dim=(0, 1)), rtol=1e-5, atol=0)
        a, b = windows[:2], windows[2:4]
        motion = head.motion(a)
        assert motion.shape == (2, window, 3) and motion.mean(dim=1).abs().max() < 1e-4  # where the head is drops out
        assert head(a, a).item() == pytest.approx(0.0, abs=1e-9)
        by_hand = ((head.motion(a) - head.motion(b)).pow(2).mean(dim=(0, 1)) / head.variance).mean()
        assert head(a, b).item() == pytest.approx(by_hand.item(), rel=1e-5)
    nod = HeadMotionLoss(stage1, clips, window, features=("nod",))
    torch.testing.assert_close(nod.variance, head.variance[2:])
    with torch.no_grad():
        torch.testing.assert_close(nod.motion(a), motion[..., 2:])
    with pytest.raises(ValueError, match="at least 1000 frames"):
        HeadMotionLoss(stage1, clips, 1000)
    with pytest.raises(ValueError, match="features must be some of roll, turn, nod"):
        HeadMotionLoss(stage1, clips, window, features=("pitch",))
    _assert_term_reaches_the_loss(paths, stage1, "head", head)


def test_bad_inputs_are_one_clear_line(synconv_dir, stage1_file, tmp_path, capsys):
    from infp_lab.cli import main

    base = ["train", "stage2", "--data", str(synconv_dir), "--out", str(tmp_path / "o")]
    assert main([*base, "--stage1", str(tmp_path / "missing.safetensors")]) == 2
    assert "stage-1 weights not found" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"not weights")
    assert main([*base, "--stage1", str(tmp_path / "junk.safetensors")]) == 2
    assert "not a readable safetensors" in capsys.readouterr().err
    assert main([*base, "--stage1", str(stage1_file), "--preset", "huge"]) == 2
    err = capsys.readouterr().err
    assert "unknown stage-2 preset" in err and "Traceback" not in err
    for option in ("--velocity-weight", "--mouth-weight", "--head-weight", "--whitened-weight"):
        assert main([*base, "--stage1", str(stage1_file), "--ablation", "epsilon_prediction", option, "1"]) == 2
        assert f"{option} needs a model that predicts the clean latents" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="invalid stage-2 training config"):
        Stage2TrainConfig(p_motion=1.5)
    with pytest.raises(ValueError, match="velocity_weight"):
        Stage2TrainConfig(velocity_weight=-1)
    for field in ("mouth_weight", "head_weight", "guide_mouth_weight", "whitened_weight", "whitened_floor"):
        with pytest.raises(ValueError, match=field):
            Stage2TrainConfig(**{field: -1})
    with pytest.raises(ValueError, match="head_features"):
        Stage2TrainConfig(head_features=())


def test_ddp_on_cpu_with_two_processes(cache, stage1_file, synconv_dir, tmp_path):
    folder, _ = cache
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "infp_lab", "train", "stage2", "--data", str(synconv_dir), "--stage1", str(stage1_file),
           "--out", str(tmp_path / "ddp"), "--cache", str(folder), "--steps", "2", "--one-sided-steps", "1",
           "--checkpoint-every", "2", "--batch-size", "2", "--device", "cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    state = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2
    assert MotionGenerator.from_pretrained(tmp_path / "ddp" / "stage2.safetensors") is not None
