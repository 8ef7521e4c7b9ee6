"""Stage 2: shapes of both presets, the guider's attention, style modulation, CFG
identities, per-sample dropout, long and streaming generation, save/from_pretrained and
bad inputs. Tiny randomly initialised models only (CPU, seconds)."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from infp_lab.checkpoint import save_weights
from infp_lab.data.audio import audio_features
from infp_lab.stage2 import (AudioEncoderConfig, DiffusionConfig, DiTConfig, GuiderConfig, MotionGenerator,
                             Stage2Config, StreamingFeatures, StreamingGenerator, StyleConfig, diffusion_loss,
                             generate, generate_from_audio, guided_prediction, make_sampler, preset)
from infp_lab.stage2.diffusion import smooth_over_time
from infp_lab.stage2.memory_guider import MemoryBank

SR = 16000
TINY = Stage2Config(
    latent_dim=8, dim=32, audio=AudioEncoderConfig(layers=2), guider=GuiderConfig(bank_size=8, heads=2),
    style=StyleConfig(dim=16, layers=1), dit=DiTConfig(layers=2, heads=2, window=16, context=4, mlp_ratio=2),
    diffusion=DiffusionConfig(steps=3),
)


def _model(config=TINY, seed=0) -> MotionGenerator:
    """A tiny model with every weight perturbed (the zero-initialised output layers too)."""
    torch.manual_seed(seed)
    model = MotionGenerator(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def audio():
    """2.3 s of two tracks: a tone plus noise (self), noise in the first half (other)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(2.3 * SR)) / SR
    self_audio = 0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.5) + 0.05 * rng.standard_normal(len(t))
    other_audio = 0.2 * rng.standard_normal(len(t)) * (t < 1.2)
    return self_audio.astype(np.float32), other_audio.astype(np.float32)


def _features(b, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 320, generator=g), torch.randn(b, t, 320, generator=g)


@pytest.mark.parametrize("name", ["tiny", "paper"])
def test_presets_build_and_run(name):
    config = preset(name)
    model = MotionGenerator(config).eval()
    width = 8
    with torch.no_grad():
        guide = model.guide(*_features(1, width))
        eps = model(torch.randn(1, width, config.latent_dim), torch.tensor([500]), guide.feature,
                    torch.randn(1, config.dit.context, config.latent_dim), model.encode_style(torch.randn(1, 12, config.latent_dim)))
    assert guide.feature.shape == (1, width, config.dim)
    assert guide.verbal_attention.shape == guide.nonverbal_attention.shape == (1, width, config.guider.bank_size)
    assert eps.shape == (1, width, config.latent_dim) and torch.isfinite(eps).all()
    if name == "paper":
        assert (config.latent_dim, config.dim, config.guider.bank_size) == (512, 512, 64)
        assert (config.dit.layers, config.dit.window, config.dit.context) == (4, 75, 10)
    else:
        assert 1e6 < sum(p.numel() for p in model.parameters()) < 3e6
    assert preset(name, latent_dim=32).latent_dim == 32


def test_config_round_trip_and_validation():
    for config in (TINY, preset("tiny"), preset("paper")):
        assert Stage2Config.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="divisible"):
        replace(TINY, dit=DiTConfig(heads=5))
    with pytest.raises(ValueError, match="sampler"):
        replace(TINY, diffusion=DiffusionConfig(sampler="euler"))
    with pytest.raises(ValueError, match="prediction"):
        replace(TINY, diffusion=DiffusionConfig(prediction="noise"))
    with pytest.raises(ValueError, match="motion_band"):
        replace(TINY, dit=DiTConfig(heads=2, motion_band=-1))
    with pytest.raises(ValueError, match="unknown"):
        Stage2Config.from_dict({**TINY.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="preset"):
        preset("huge")
    with pytest.raises(ValueError, match="audio.path"):
        MotionGenerator(replace(TINY, audio=AudioEncoderConfig(type="wav2vec2", input_dim=640)))


def test_ablations_and_sampling_options_of_the_cli():
    from infp_lab.cli import build_parser
    from infp_lab.stage2.config import ABLATIONS, ablated

    base = preset("tiny")
    assert ablated(base, None) == base
    assert not ablated(base, "no_memory_banks").guider.memory_banks
    assert not ablated(base, "no_style_modulation").guider.style_modulation
    assert ablated(base, "epsilon_prediction").diffusion.prediction == "epsilon" != base.diffusion.prediction
    assert ablated(base, "full_motion_attention").dit.motion_band >= base.dit.window > base.dit.motion_band
    for name in ABLATIONS:
        assert replace(ablated(base, name), guider=base.guider, diffusion=base.diffusion, dit=base.dit) == base
    with pytest.raises(ValueError, match="unknown stage-2 ablation"):
        ablated(base, "no_audio")
    def option(command: str, name: str):
        parser = build_parser()._subparsers._group_actions[0].choices[command]
        stage2 = parser._subparsers._group_actions[0].choices["stage2"]
        return next(a for a in stage2._actions if a.dest == name)

    assert tuple(option("train", "ablation").choices) == tuple(ABLATIONS)
    for name in ("audio_scale", "guidance_smoothing", "pose_gain", "pose_smoothing"):
        assert option("eval", name).default is None  # the weights' own (test_sampling_defaults_travel_with_the_weights)


def test_wav2vec2_without_transformers_says_so(tmp_path):
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="transformers"):
            MotionGenerator(replace(TINY, audio=AudioEncoderConfig(type="wav2vec2", input_dim=640, path=str(tmp_path))))
    else:
        pytest.skip("transformers is installed")


def test_guider_attention_sums_to_one_and_follows_each_track(model):
    self_audio, other_audio = _features(2, 10)
    with torch.no_grad():
        base = model.guide(self_audio, other_audio)
        new_self = model.guide(self_audio + torch.randn_like(self_audio), other_audio)
        new_other = model.guide(self_audio, other_audio + torch.randn_like(other_audio))
    for weights in (base.verbal_attention, base.nonverbal_attention):
        assert torch.allclose(weights.sum(-1), torch.ones(2, 10), atol=1e-5) and (weights >= 0).all()
    assert (new_self.verbal_attention - base.verbal_attention).abs().max() > 1e-3
    assert torch.equal(new_self.nonverbal_attention, base.nonverbal_attention)
    assert (new_other.nonverbal_attention - base.nonverbal_attention).abs().max() > 1e-3
    assert torch.equal(new_other.verbal_attention, base.verbal_attention)
    assert (new_self.feature - base.feature).abs().max() > 1e-4 and (new_other.feature - base.feature).abs().max() > 1e-4


def test_style_modulates_memory_banks():
    torch.manual_seed(0)
    bank = MemoryBank(8, 32, 16)
    styles = torch.randn(2, 16)
    plain, styled = bank(None), bank(styles)
    assert plain.shape == (1, 8, 32) and styled.shape == (2, 8, 32)
    rms = bank.entries.pow(2).mean(-1, keepdim=True).sqrt()
    assert torch.allclose(plain[0], bank.entries / rms, atol=1e-5)  # unmodulated, only normalised
    assert (styled[0] - styled[1]).abs().max() > 1e-3 and (styled[0] - plain[0]).abs().max() > 1e-3
    assert torch.allclose(styled.pow(2).mean(-1), torch.ones(2, 8), atol=1e-4)  # demodulated
    dropped = bank(styles, torch.tensor([True, False]))
    assert torch.allclose(dropped[0], plain[0], atol=1e-6) and torch.allclose(dropped[1], styled[1])


def _conditions(model, b=2, w=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    latent, dim, ds = model.config.latent_dim, model.config.dim, model.config.style.dim
    return (torch.randn(b, w, latent, generator=g), torch.tensor([300, 700][:b]), torch.randn(b, w, dim, generator=g),
            torch.randn(b, 3, latent, generator=g), torch.randn(b, ds, generator=g))


def test_cfg_scale_one_is_conditional_and_zero_unconditional(model):
    x, t, feature, previous, style = _conditions(model)
    unstyled = feature + 0.5
    with torch.no_grad():
        full = model(x, t, feature, previous, style)
        uncond = model(x, t, feature, previous, style, drop_motion=torch.ones(2, dtype=torch.bool),
                       drop_style=torch.ones(2, dtype=torch.bool))
        no_style = model(x, t, feature, previous, None)
        assert (full - uncond).abs().max() > 1e-3
        for unstyled_feature in (None, unstyled):
            guided = guided_prediction(model, x, t, feature, previous, style, 1.0, 1.0, unstyled_feature)
            assert torch.allclose(guided, full, atol=1e-5)
            zero = guided_prediction(model, x, t, feature, previous, style, 0.0, 0.0, unstyled_feature, smoothing=0.0)
            assert torch.allclose(zero, uncond, atol=1e-5)
            smoothed = guided_prediction(model, x, t, feature, previous, style, 1.0, 1.0, unstyled_feature,
                                         smoothing=2.0)
            assert torch.allclose(smoothed, full, atol=1e-5)
        assert torch.allclose(guided_prediction(model, x, t, feature, previous, None, 1.0), no_style, atol=1e-5)
        strong = guided_prediction(model, x, t, feature, previous, style, 3.0, 2.0)
        assert (strong - full).abs().max() > 1e-3


def test_guidance_smoothing_low_passes_only_what_guidance_adds(model):
    """What guidance adds beyond the conditional prediction is smoothed over the window's
    frames (it jitters far less from frame to frame); the conditional part is untouched."""
    x, t, feature, previous, style = _conditions(model, w=16)
    with torch.no_grad():
        full = model(x, t, feature, previous, style)
        plain = guided_prediction(model, x, t, feature, previous, style, 4.0, 1.0, smoothing=0.0)
        smooth = guided_prediction(model, x, t, feature, previous, style, 4.0, 1.0, smoothing=2.0)
    added, added_smoothly = plain - full, smooth - full
    assert torch.allclose(added_smoothly, smooth_over_time(added, 2.0), atol=1e-5)
    assert added_smoothly.diff(dim=1).pow(2).mean() < 0.2 * added.diff(dim=1).pow(2).mean()


def test_smooth_over_time_is_a_normalised_gaussian():
    constant = torch.full((1, 9, 2), 3.0)
    assert torch.allclose(smooth_over_time(constant, 1.5), constant)
    impulse = torch.zeros(1, 21, 1)
    impulse[0, 10] = 1.0
    spread = smooth_over_time(impulse, 2.0)[0, :, 0]
    assert abs(float(spread.sum()) - 1.0) < 1e-5 and int(spread.argmax()) == 10
    assert 0.15 < float(spread[10]) < 0.25 and torch.allclose(spread.flip(0), spread)  # 1 / (2 sqrt(2 pi)) ~ 0.2
    assert torch.equal(smooth_over_time(impulse, 0.0), impulse)
    assert smooth_over_time(torch.randn(2, 1, 3), 1.0).shape == (2, 1, 3)  # one frame: repeated edges
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        smooth_over_time(impulse, -1.0)


def test_drop_masks_act_per_sample(model):
    x, t, feature, previous, style = _conditions(model)
    with torch.no_grad():
        base = model(x, t, feature, previous, style)
        for name in ("drop_motion", "drop_previous", "drop_style"):
            out = model(x, t, feature, previous, style, **{name: torch.tensor([True, False])})
            assert (out[0] - base[0]).abs().max() > 1e-4, name
            assert torch.allclose(out[1], base[1], atol=1e-6), name
        # a dropped condition's value does not matter
        dropped = model(x, t, feature * 0, previous * 0, style * 0, torch.ones(2, dtype=torch.bool),
                        torch.ones(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool))
        assert torch.allclose(dropped, model(x, t, None, None, None), atol=1e-6)
        short = model(x[:, :1], t, feature[:, :1], previous[:, -1:], style)  # W = 1, one previous frame
        assert short.shape == (2, 1, model.config.latent_dim)


def test_diffusion_loss_trains_and_is_reproducible(model):
    b, w = 3, 6
    latents, previous = torch.randn(b, w, 8), torch.randn(b, 4, 8)
    self_audio, other_audio = _features(b, w)
    has_previous = torch.tensor([True, False, True])
    args = (model, latents, self_audio, other_audio, previous, has_previous, torch.randn(b, 20, 8))
    out = diffusion_loss(*args, generator=torch.Generator().manual_seed(5))
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    assert out["drop_previous"][1] and out["verbal_attention"].shape == (b, w, 8)
    out["loss"].backward()
    assert model.dit.output.weight.grad is not None and model.guider.verbal_bank.entries.grad is not None
    model.zero_grad()
    again = diffusion_loss(*args, generator=torch.Generator().manual_seed(5))
    assert torch.equal(again["loss"], out["loss"]) and torch.equal(again["timesteps"], out["timesteps"])
    no_style = diffusion_loss(model, latents, self_audio, other_audio, None, None, None,
                              generator=torch.Generator().manual_seed(5))
    assert no_style["drop_style"].all() and no_style["drop_previous"].all()
    model.zero_grad()


@pytest.mark.parametrize("band", [0, 2])
def test_motion_attention_reads_only_nearby_frames(band):
    """With one block, the output at frame t depends on f_m only within t +- motion_band."""
    model = _model(replace(TINY, dit=DiTConfig(layers=1, heads=2, window=16, context=4, mlp_ratio=2,
                                               motion_band=band)))
    w, changed_frame = 12, 6
    noisy, feature = torch.randn(1, w, 8), torch.randn(1, w, 32)
    moved = feature.clone()
    moved[0, changed_frame] = torch.randn(32)
    with torch.no_grad():
        a = model(noisy, torch.tensor([300]), feature, None, None)
        b = model(noisy, torch.tensor([300]), moved, None, None)
    differs = (a - b).abs().amax(dim=-1)[0] > 1e-6  # (W,)
    near = (torch.arange(w) - changed_frame).abs() <= band
    assert torch.equal(differs, near)


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_diffusion_loss_targets_follow_the_prediction_type(prediction):
    """A fresh network outputs zeros (zero-initialised output), so the loss is the mean
    square of its target: the noise (about 1), the clean latents (here 9) or v."""
    model = MotionGenerator(replace(TINY, diffusion=DiffusionConfig(steps=3, prediction=prediction)))
    latents = torch.full((4, 16, 8), 3.0)
    loss = diffusion_loss(model, latents, *_features(4, 16), None, None, None,
                          generator=torch.Generator().manual_seed(0))["loss"].item()
    if prediction == "sample":
        assert loss == pytest.approx(9.0)
    elif prediction == "epsilon":
        assert loss == pytest.approx(1.0, abs=0.15)
    else:  # v = sqrt(a) eps - sqrt(1 - a) x0: between the two
        assert 0.5 < loss < 9.0 and loss != pytest.approx(1.0, abs=0.15)


def test_velocity_loss_adds_steps_and_the_window_border():
    """Zero predictions of latents that ramp by 1 per frame from 3: the step error is 1 per
    step, the first frame's error (the border step, counted where the previous motion is
    kept) 9; clean-latent models only."""
    model = MotionGenerator(replace(TINY, diffusion=DiffusionConfig(steps=3, prediction="sample")))
    latents = (3.0 + torch.arange(16.0))[None, :, None].expand(4, 16, 8)
    previous = torch.zeros(4, 4, 8)
    plain = (latents ** 2).mean().item()

    def loss(**kwargs) -> float:
        return diffusion_loss(model, latents, *_features(4, 16), previous, None, None,
                              generator=torch.Generator().manual_seed(0), **kwargs)["loss"].item()

    assert loss(p_previous=0.0) == pytest.approx(plain)
    assert loss(p_previous=0.0, velocity_weight=1.0) == pytest.approx(plain + 1.0 + 9.0)
    assert loss(p_previous=1.0, velocity_weight=0.5) == pytest.approx(plain + 0.5 * 1.0)
    epsilon = MotionGenerator(replace(TINY, diffusion=DiffusionConfig(steps=3, prediction="epsilon")))
    with pytest.raises(ValueError, match="clean latents"):
        diffusion_loss(epsilon, latents, *_features(4, 16), None, None, None, velocity_weight=1.0)


def test_window_chain_spreads_the_jump_into_a_window(model, monkeypatch):
    """A window sampled 5 units away from the previous window's last latent is moved back by
    5 * (1 - (i + 1) / (blend + 1)) at its frame i: evenly spread steps, then the raw sample."""
    import importlib

    gen = importlib.import_module("infp_lab.stage2.generate")  # the module (the package exports a function of that name)
    width, dim = 8, model.config.latent_dim
    monkeypatch.setattr(gen, "sample", lambda *args, **kwargs: torch.full((1, width, dim), 5.0))
    cases = ((3, [1.25, 2.5, 3.75, 5, 5, 5, 5, 5]), (0, [5.0] * 8), (20, [5 * (i + 1) / 9 for i in range(8)]))
    for blend, expected in cases:
        chain = gen.WindowChain(model, None, 1.0, 1.0, None, None, seed=0, blend=blend)
        chain.previous = torch.zeros(1, 4, dim)
        out = model.normalise(chain(torch.zeros(1, width, model.config.dim), None))  # (W, Dm)
        assert torch.allclose(out[:, 0], torch.tensor(expected), atol=1e-5), (blend, out[:, 0])
        assert torch.allclose(chain.previous[0, -1], out[-1])
    first = gen.WindowChain(model, None, 1.0, 1.0, None, None, seed=0)
    assert torch.equal(model.normalise(first(torch.zeros(1, width, model.config.dim), None)),
                       torch.full((width, dim), 5.0))  # the first window has nothing to blend with
    with pytest.raises(ValueError, match="blend"):
        gen.WindowChain(model, None, 1.0, 1.0, None, None, seed=0, blend=-1)


def test_generate_lengths_and_seeds(model):
    t = 40  # 2.5 windows of 16
    self_audio, other_audio = (f[0].numpy() for f in _features(1, t))
    out = generate(model, self_audio, other_audio, seed=1)
    assert out.latents.shape == (t, 8) and torch.isfinite(out.latents).all()
    assert out.verbal_attention.shape == out.nonverbal_attention.shape == (t, 8)
    assert torch.equal(generate(model, self_audio, other_audio, seed=1).latents, out.latents)
    assert (generate(model, self_audio, other_audio, seed=2).latents - out.latents).abs().max() > 1e-3
    assert generate(model, self_audio[:1], other_audio[:1]).latents.shape == (1, 8)
    styled = generate(model, self_audio, other_audio, style_reference=torch.randn(30, 8), sampler="dpmsolver++",
                      steps=4, window=7, seed=1)
    assert styled.latents.shape == (t, 8) and torch.isfinite(styled.latents).all()
    model.set_latent_stats(torch.full((8,), 2.0), torch.full((8,), 3.0))  # outputs are de-normalised
    shifted = generate(model, self_audio, other_audio, seed=1).latents
    assert torch.allclose(shifted, out.latents * 3 + 2, atol=1e-4)
    model.set_latent_stats(torch.zeros(8), torch.ones(8))


def test_generate_from_audio_pads_the_shorter_track(model, audio):
    self_audio, other_audio = audio
    out = generate_from_audio(model, self_audio, other_audio[: SR // 2], steps=2, window=16)
    assert out.latents.shape == (len(self_audio) * 25 // SR, 8)
    with pytest.raises(ValueError, match="shorter than one video frame"):
        generate_from_audio(model, self_audio[:100], other_audio[:100])
    with pytest.raises(ValueError, match="NaN"):
        generate_from_audio(model, np.full(SR, np.nan, np.float32), other_audio)


@pytest.mark.parametrize("chunk", [640, 3200, 1000, 7])
def test_streaming_features_match_offline(audio, chunk):
    self_audio, other_audio = audio
    stream, parts = StreamingFeatures(), []
    for i in range(0, len(self_audio), chunk):
        parts.append(stream.push(self_audio[i:i + chunk], other_audio[i:i + chunk]))
    parts.append(stream.flush())
    for track, offline in enumerate((audio_features(self_audio), audio_features(other_audio))):
        streamed = np.concatenate([p[track] for p in parts])
        assert streamed.shape == offline.shape
        assert np.abs(streamed - offline).max() < 1e-3
    assert len(stream.buffers[0]) < 2 * 640 + chunk  # the audio buffer stays bounded


@pytest.mark.parametrize("chunk_ms, start", [(40, None), (200, None), (200, torch.full((1, 8), 4.0))])
def test_streaming_generator_matches_offline(model, audio, chunk_ms, start):
    self_audio, other_audio = audio
    frames = len(self_audio) * 25 // SR
    stream = StreamingGenerator(model, chunk_ms=chunk_ms, window=5, seed=3, start=start)
    step, parts, emitted = stream.chunk_samples, [], 0
    for i in range(0, len(self_audio), step):
        parts.append(stream.push(self_audio[i:i + step], other_audio[i:i + step]))
        received = min(i + step, len(self_audio))
        for t in range(emitted, emitted + len(parts[-1])):  # frame t's audio was complete at 640 (t + 1)
            assert received - 640 * (t + 1) <= stream.latency_samples
        emitted += len(parts[-1])
    parts.append(stream.flush())
    streamed = torch.cat(parts)
    assert streamed.shape == (frames, 8)
    offline = generate(model, audio_features(self_audio), audio_features(other_audio), window=5, seed=3, start=start)
    assert (streamed - offline.latents).abs().max() < 1e-3
    if start is not None:  # and both really started from it
        assert (streamed - generate(model, audio_features(self_audio), audio_features(other_audio), window=5,
                                    seed=3).latents).abs().max() > 0.1
    assert emitted >= frames - stream.latency_frames  # only the last frames wait for the flush
    assert stream.latency_s == pytest.approx(stream.latency_samples / SR)
    default = StreamingGenerator(model, chunk_ms=chunk_ms)
    assert default.window == max(1, chunk_ms // 40) and default.latency_s < 0.5


def test_streaming_rejects_bad_chunks(model):
    stream = StreamingGenerator(model, chunk_ms=40)
    chunk = np.zeros(640, np.float32)
    with pytest.raises(ValueError, match="same length"):
        stream.push(chunk, chunk[:320])
    with pytest.raises(ValueError, match="no samples"):
        stream.push(chunk[:0], chunk[:0])
    with pytest.raises(ValueError, match="NaN"):
        stream.push(np.full(640, np.nan, np.float32), chunk)
    assert stream.push(chunk, chunk).shape[1] == 8
    stream.flush()
    with pytest.raises(ValueError, match="flushed"):
        stream.push(chunk, chunk)


def test_save_and_from_pretrained(model, tmp_path):
    model.set_latent_stats(torch.linspace(-1, 1, 8), torch.linspace(0.5, 2, 8))
    path = model.save_pretrained(tmp_path / "stage2.safetensors", extra={"note": "test"})
    loaded = MotionGenerator.from_pretrained(path)
    assert loaded.config == model.config and torch.equal(loaded.latent_std, model.latent_std)
    model.set_latent_stats(torch.zeros(8), torch.ones(8))
    wrong_kind = save_weights(tmp_path / "s1.safetensors", model.state_dict(), "infp-lab/stage1", model.config.to_dict())
    with pytest.raises(ValueError, match="expected 'infp-lab/stage2'"):
        MotionGenerator.from_pretrained(wrong_kind)
    other = replace(TINY, dim=64)
    mismatched = save_weights(tmp_path / "bad.safetensors", model.state_dict(), "infp-lab/stage2", other.to_dict())
    with pytest.raises(ValueError, match="does not match"):
        MotionGenerator.from_pretrained(mismatched)
    (tmp_path / "junk.safetensors").write_bytes(b"not a weights file")
    with pytest.raises(ValueError):
        MotionGenerator.from_pretrained(tmp_path / "junk.safetensors")


def test_round_trip_outputs_identical(model, tmp_path):
    model.set_latent_stats(torch.linspace(-1, 1, 8), torch.linspace(0.5, 2, 8))
    loaded = MotionGenerator.from_pretrained(model.save_pretrained(tmp_path / "m.safetensors"))
    self_audio, other_audio = (f[0] for f in _features(1, 20))
    ref = torch.randn(10, 8)
    a = generate(model, self_audio, other_audio, style_reference=ref, seed=4)
    b = generate(loaded, self_audio, other_audio, style_reference=ref, seed=4)
    model.set_latent_stats(torch.zeros(8), torch.ones(8))
    assert torch.equal(a.latents, b.latents) and torch.equal(a.verbal_attention, b.verbal_attention)


def test_generation_continues_from_a_start_latent(model):
    self_audio, other_audio = (f[0].numpy() for f in _features(1, 20))
    start = torch.full((1, 8), 4.0)  # far from anything the model generates on its own
    free = generate(model, self_audio, other_audio, seed=1).latents
    held = generate(model, self_audio, other_audio, seed=1, start=start).latents
    assert held.shape == free.shape
    assert (held[0] - start[0]).norm() < 0.5 * (free[0] - start[0]).norm()  # the first frame starts at the portrait
    longer_start = torch.cat([torch.zeros(30, 8), start.expand(4, 8)])
    longer = generate(model, self_audio, other_audio, seed=1, start=longer_start).latents
    assert torch.allclose(longer, held)  # only the last `context` rows count; fewer are padded with the earliest
    with pytest.raises(ValueError, match=r"start must be \(T, 8\)"):
        generate(model, self_audio, other_audio, start=torch.zeros(1, 5))


def test_the_portrait_is_the_default_style_reference(model):
    """Without a style reference, the start latent (the portrait) held still for one window is
    the style; an explicit reference replaces it, and portrait_style=False turns it off."""
    self_audio, other_audio = (f[0].numpy() for f in _features(1, 20))
    start = torch.full((1, 8), 4.0)
    held_still = start.expand(model.config.dit.window, 8)
    default = generate(model, self_audio, other_audio, seed=1, start=start).latents
    explicit = generate(model, self_audio, other_audio, seed=1, start=start, style_reference=held_still).latents
    unstyled = generate(model, self_audio, other_audio, seed=1, start=start, portrait_style=False).latents
    other = generate(model, self_audio, other_audio, seed=1, start=start, style_reference=torch.zeros(10, 8)).latents
    assert torch.allclose(default, explicit)
    assert (default - unstyled).abs().max() > 1e-3
    assert (default - other).abs().max() > 1e-3
    stream = StreamingGenerator(model, chunk_ms=200, window=5, seed=1, start=start)
    assert torch.allclose(stream.style, model.encode_style(held_still[None]))
    assert StreamingGenerator(model, chunk_ms=200, start=start, portrait_style=False).style is None


def test_bad_inputs_raise_clear_errors(model):
    self_audio, other_audio = _features(1, 10)
    with pytest.raises(ValueError, match=r"\(B, T, 320\)"):
        model.guide(self_audio[..., :100], other_audio[..., :100])
    with pytest.raises(ValueError, match="same shape"):
        model.guide(self_audio, other_audio[:, :5])
    x, t, feature, previous, style = _conditions(model)
    with pytest.raises(ValueError, match="noisy latents"):
        model(torch.randn(2, 6, 5), t, feature, previous, style)
    with pytest.raises(ValueError, match=r"window length must be in \[1, 16\]"):
        model(torch.randn(2, 17, 8), t, None, None, None)
    with pytest.raises(ValueError, match="motion feature"):
        model(x, t, feature[:, :3], previous, style)
    with pytest.raises(ValueError, match="previous motion"):
        model(x, t, feature, torch.randn(2, 5, 8), style)
    with pytest.raises(ValueError, match="drop masks"):
        model(x, t, feature, previous, style, drop_motion=torch.tensor([True]))
    with pytest.raises(ValueError, match="stage-1 latent size"):
        model.encode_style(torch.randn(1, 10, 64))
    with pytest.raises(ValueError, match="latent stats"):
        model.set_latent_stats(torch.zeros(4), torch.ones(4))
    with pytest.raises(ValueError, match="same number of frames"):
        generate(model, self_audio[0], other_audio[0, :5])
    with pytest.raises(ValueError, match="window must be"):
        generate(model, self_audio[0], other_audio[0], window=40)
    for option in ("guidance_smoothing", "audio_scale"):
        for bad in (-1.0, float("nan")) if option == "guidance_smoothing" else (float("nan"),):
            with pytest.raises(ValueError, match=f"{option} must be a finite number"):
                generate(model, self_audio[0], other_audio[0], **{option: bad})
    with pytest.raises(ValueError, match="sampler"):
        make_sampler(TINY.diffusion, sampler="euler")
    with pytest.raises(ValueError, match="window must be"):
        StreamingGenerator(model, window=0)


def _posed_model(directions: int = 2, seed: int = 3) -> tuple[MotionGenerator, torch.Tensor]:
    """A tiny model with `directions` random orthonormal pose directions, and their projector."""
    model = _model(seed=seed)
    basis, _ = torch.linalg.qr(torch.randn(8, directions, generator=torch.Generator().manual_seed(seed)))
    model.set_pose_directions(basis)
    return model, basis @ basis.T


def test_pose_gain_strengthens_the_head_motion_only_along_the_pose_directions():
    model, projector = _posed_model()
    x, t, feature, previous, style = _conditions(model)
    with torch.no_grad():
        for s in (None, style):
            def guided(scale, **kw):
                return guided_prediction(model, x, t, feature, previous, s, scale, 1.0, smoothing=0.0, **kw)

            audio_part = guided(1.0) - guided(0.0)  # what the audio condition adds at scale 1: p_a - p_u
            plain, gained = guided(3.0), guided(3.0, pose_gain=2.5)
            assert torch.allclose(guided(3.0, pose_gain=1.0), plain)
            pose_part = audio_part @ projector
            moving = pose_part - pose_part.mean(dim=1, keepdim=True)  # where the head sits is not pushed
            assert torch.allclose(gained - plain, 1.5 * 2.0 * moving, atol=1e-5)
            assert (gained - plain).abs().max() > 1e-3
            assert torch.allclose((gained - plain).mean(dim=1), torch.zeros(2, 8), atol=1e-5)
            assert torch.allclose((gained - plain) @ (torch.eye(8) - projector), torch.zeros_like(x), atol=1e-5)
            assert torch.allclose(guided(1.0, pose_gain=4.0), guided(1.0), atol=1e-6)  # no guidance, nothing to gain


@pytest.mark.parametrize("option, neutral", [("pose_gain", 1.0), ("pose_smoothing", 0.0)])
def test_pose_options_default_to_the_models_directions(model, option, neutral):
    """pose_gain and pose_smoothing: the neutral value for a model without head-pose directions
    (anything else is an error), the config's default for one with them; bad values rejected."""
    from infp_lab.stage2 import config

    default_value = {"pose_gain": config.POSE_GAIN, "pose_smoothing": config.POSE_SMOOTHING}[option]
    self_audio, other_audio = (f[0].numpy() for f in _features(1, 30))
    assert not model.has_pose_directions
    assert torch.equal(generate(model, self_audio, other_audio, seed=1).latents,
                       generate(model, self_audio, other_audio, seed=1, **{option: neutral}).latents)
    with pytest.raises(ValueError, match="no head-pose directions"):
        generate(model, self_audio, other_audio, **{option: 2.0})
    with pytest.raises(ValueError, match="no head-pose directions"):
        StreamingGenerator(model, **{option: 2.0})
    posed, _ = _posed_model()
    assert posed.has_pose_directions
    default = generate(posed, self_audio, other_audio, seed=1).latents
    assert torch.equal(default, generate(posed, self_audio, other_audio, seed=1, **{option: default_value}).latents)
    neutral_latents = generate(posed, self_audio, other_audio, seed=1, **{option: neutral}).latents
    other = default_value if default_value != neutral else 2.0  # the option acts on a model with directions
    assert (generate(posed, self_audio, other_audio, seed=1, **{option: other}).latents
            - neutral_latents).abs().max() > 1e-4
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match=f"{option} must be"):
            generate(posed, self_audio, other_audio, **{option: bad})


def test_sampling_defaults_travel_with_the_weights(tmp_path, capsys):
    """Weights carry the sampling defaults chosen for them (`infp-lab defaults` writes them, the
    tensors and other metadata kept); generation uses them where a call leaves a setting out,
    and a file without them gets the library's; bad values are refused and change nothing."""
    from infp_lab.checkpoint import load_weights
    from infp_lab.cli import main
    from infp_lab.stage2.config import SamplingDefaults
    from infp_lab.stage2.model import set_sampling_defaults

    posed, _ = _posed_model()
    path = posed.save_pretrained(tmp_path / "w.safetensors", extra={"step": 7})
    plain = MotionGenerator.from_pretrained(path)
    assert plain.sampling is None and plain.defaults == SamplingDefaults()
    chosen = SamplingDefaults(audio_scale=2.0, guidance_smoothing=1.0, pose_gain=2.5, pose_smoothing=2.0)
    set_sampling_defaults(path, chosen)
    tuned = MotionGenerator.from_pretrained(path)
    assert tuned.sampling == chosen
    state, _, extra = load_weights(path, "infp-lab/stage2")
    assert extra["step"] == 7 and all(torch.equal(v, plain.state_dict()[k]) for k, v in state.items())

    self_audio, other_audio = (f[0].numpy() for f in _features(1, 30))
    own = generate(tuned, self_audio, other_audio, seed=1).latents
    assert torch.equal(own, generate(plain, self_audio, other_audio, seed=1, **chosen.to_dict()).latents)
    assert (own - generate(plain, self_audio, other_audio, seed=1).latents).abs().max() > 1e-4
    assert StreamingGenerator(tuned).chain.options == StreamingGenerator(plain, **chosen.to_dict()).chain.options
    again = MotionGenerator.from_pretrained(tuned.save_pretrained(tmp_path / "again.safetensors"))
    assert again.sampling == chosen

    assert main(["defaults", "--weights", str(path), "--pose-gain", "3"]) == 0
    assert MotionGenerator.from_pretrained(path).sampling == replace(chosen, pose_gain=3.0)
    assert "pose_gain: 3" in capsys.readouterr().out
    before = path.read_bytes()
    assert main(["defaults", "--weights", str(path), "--audio-scale", "nan"]) == 2
    assert "audio_scale must be a finite number" in capsys.readouterr().err
    assert path.read_bytes() == before
    for bad in ({"pose_gain": -1.0}, {"audio_scale": float("inf")}, {"pose_smoothing": "1"}):
        with pytest.raises(ValueError, match="must be a finite number"):
            SamplingDefaults(**bad)
    with pytest.raises(ValueError, match="unknown sampling defaults"):
        SamplingDefaults.from_dict({"audio_scale": 2.0, "temperature": 1.0})


def test_pose_low_pass_smooths_only_the_head_pose_causally_and_across_windows():
    from infp_lab.stage2.pose import PoseLowPass

    _, projector = _posed_model()
    x = torch.randn(1, 40, 8, generator=torch.Generator().manual_seed(0))
    filtered = PoseLowPass(projector, 2.0)(x)
    rest = torch.eye(8) - projector
    assert torch.allclose(filtered @ rest, x @ rest, atol=1e-5)  # the mouth and the rest: as sampled
    assert torch.allclose(filtered[:, 0], x[:, 0], atol=1e-5)  # starts from the first frame, still
    shake = lambda y: (y @ projector).diff(dim=1).pow(2).mean()  # noqa: E731
    assert shake(filtered) < 0.2 * shake(x)
    later = x.clone()
    later[:, 25:] += 5.0
    assert torch.allclose(PoseLowPass(projector, 2.0)(later)[:, :25], filtered[:, :25], atol=1e-6)  # causal
    chunked = PoseLowPass(projector, 2.0)
    assert torch.allclose(torch.cat([chunked(x[:, :7]), chunked(x[:, 7:9]), chunked(x[:, 9:])], dim=1), filtered,
                          atol=1e-5)  # windows of any size filter alike
    assert torch.equal(PoseLowPass(projector, 0.0)(x), x)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="pose_smoothing must be"):
            PoseLowPass(projector, bad)


def test_pose_smoothing_stills_the_generated_head():
    posed, projector = _posed_model()
    self_audio, other_audio = (f[0].numpy() for f in _features(1, 30))
    raw = generate(posed, self_audio, other_audio, seed=1, pose_smoothing=0.0).latents
    smooth = generate(posed, self_audio, other_audio, seed=1, pose_smoothing=3.0).latents

    def shake(latents):
        return (posed.normalise(latents) @ projector).diff(dim=0).pow(2).mean()

    assert shake(smooth) < 0.5 * shake(raw)


def test_streaming_with_pose_smoothing_matches_offline(audio):
    self_audio, other_audio = audio
    posed, _ = _posed_model()
    stream = StreamingGenerator(posed, chunk_ms=200, window=5, seed=3, pose_smoothing=2.0)
    step, parts = stream.chunk_samples, []
    for i in range(0, len(self_audio), step):
        parts.append(stream.push(self_audio[i:i + step], other_audio[i:i + step]))
    parts.append(stream.flush())
    offline = generate(posed, audio_features(self_audio), audio_features(other_audio), window=5, seed=3,
                       pose_smoothing=2.0).latents
    assert (torch.cat(parts) - offline).abs().max() < 1e-3
    unsmoothed = generate(posed, audio_features(self_audio), audio_features(other_audio), window=5, seed=3,
                          pose_smoothing=0.0).latents
    assert (unsmoothed - offline).abs().max() > 1e-3


def test_pose_directions_are_saved_checked_and_optional_in_old_files(tmp_path):
    posed, projector = _posed_model()
    loaded = MotionGenerator.from_pretrained(posed.save_pretrained(tmp_path / "posed.safetensors"))
    assert loaded.has_pose_directions and torch.allclose(loaded.pose_projector, projector, atol=1e-6)
    state = {k: v for k, v in posed.state_dict().items() if k != "pose_projector"}  # a file from before them
    old = MotionGenerator.from_pretrained(save_weights(tmp_path / "old.safetensors", state, "infp-lab/stage2",
                                                       TINY.to_dict()))
    assert not old.has_pose_directions
    with pytest.raises(ValueError, match="orthonormal"):
        posed.set_pose_directions(torch.ones(8, 2))
    with pytest.raises(ValueError, match=r"must be \(8, k\)"):
        posed.set_pose_directions(torch.eye(5)[:, :2])


def test_pose_directions_follow_the_landmark_heads_pose_not_the_mouth():
    """A stage-1 landmark head built by hand: latent 0 moves the whole face sideways, latent 2
    moves the nose tip down (a nod), latent 1 opens the mouth. The pose directions span
    latents 0 and 2 and leave the mouth out."""
    from infp_lab.render.face_model import LANDMARK_GROUPS
    from infp_lab.stage1.config import preset as stage1_preset
    from infp_lab.stage1.model import HeadImitator
    from infp_lab.stage2.pose import pose_directions

    stage1 = HeadImitator(stage1_preset("tiny")).eval()
    dim, count = stage1.config.latent_dim, stage1.config.num_landmarks
    rng = np.random.default_rng(0)
    points = rng.uniform(0.3, 0.7, (count, 2))
    points[36], points[45], points[30] = (0.4, 0.4), (0.6, 0.4), (0.5, 0.5)  # eye corners, nose tip
    weight = torch.zeros(count, 2, dim)
    weight[:, 0, 0] = 0.01
    weight[30, 1, 2] = 0.01
    weight[list(LANDMARK_GROUPS["inner_lip"][4:]), 1, 1] = 0.01
    with torch.no_grad():
        stage1.landmark_head.linear.weight.copy_(weight.reshape(2 * count, dim))
        stage1.landmark_head.linear.bias.copy_(torch.from_numpy(points - 0.5).float().reshape(-1))
    latents = torch.zeros(2000, dim)
    latents[:, :3] = torch.randn(2000, 3, generator=torch.Generator().manual_seed(0))
    basis = pose_directions(stage1, latents, lambda raw: raw)
    assert basis.shape == (dim, 2)  # only where the head sits (x) and the nod vary
    assert torch.allclose(basis.T @ basis, torch.eye(2), atol=1e-5)
    inside = (basis.T @ torch.eye(dim)[:, :3]).norm(dim=0)  # how much of latents 0, 1, 2 the span holds
    assert inside[0] > 0.95 and inside[2] > 0.95 and inside[1] < 0.15, inside
    with pytest.raises(ValueError, match="at least"):
        pose_directions(stage1, latents[:3], lambda raw: raw)
    with pytest.raises(ValueError, match=r"latents must be \(N"):
        pose_directions(stage1, latents[:, :5], lambda raw: raw)
    with pytest.raises(ValueError, match="does not move"):
        pose_directions(stage1, torch.zeros(100, dim), lambda raw: raw)


def test_whitening_gives_every_strong_direction_unit_variance_and_inverts(tmp_path):
    """`set_latent_whitening`: after it, the training latents' principal directions well above
    the floor have unit variance in the normalised space (those far below stay faint),
    denormalise undoes normalise, and the files keep it; files from before it load unwhitened."""
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    spread = np.array([3.0, 1.0, 0.5, 0.1, 0.03, 1e-4, 1e-4, 1e-5])  # std along each principal direction
    latents = torch.from_numpy((rng.normal(size=(20000, 8)) * spread) @ rotation.T + 3.0).float()
    model = _model()
    assert not model.is_whitened
    model.set_latent_stats(latents.mean(dim=0), latents.std(dim=0))
    standardised = model.normalise(latents)
    model.set_latent_whitening(latents, floor=1e-5)
    assert model.is_whitened
    whitened = model.normalise(latents).double()
    variances = torch.linalg.eigvalsh(torch.cov(whitened.T)).flip(0)  # descending
    assert torch.allclose(variances[:5], torch.ones(5, dtype=torch.float64), atol=0.05)  # 0.03 std included
    assert variances[-1] < 0.01  # 1e-5 std: far under the floor, still fainter than the rest
    plain_variances = torch.linalg.eigvalsh(torch.cov(standardised.double().T)).flip(0)
    assert plain_variances[4] < 0.01  # without whitening that direction is hundreds of times fainter
    assert torch.allclose(model.denormalise(model.normalise(latents[:100])), latents[:100], atol=1e-3)
    loaded = MotionGenerator.from_pretrained(model.save_pretrained(tmp_path / "white.safetensors"))
    assert loaded.is_whitened and torch.allclose(loaded.normalise(latents[:10]), model.normalise(latents[:10]))
    state = {k: v for k, v in model.state_dict().items() if k not in ("latent_whitening", "latent_colouring")}
    old = MotionGenerator.from_pretrained(save_weights(tmp_path / "old.safetensors", state, "infp-lab/stage2",
                                                       TINY.to_dict()))
    assert not old.is_whitened and torch.allclose(old.normalise(latents[:10]), standardised[:10])
    with pytest.raises(ValueError, match="floor must be > 0"):
        model.set_latent_whitening(latents, floor=0.0)
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        model.set_latent_whitening(latents[:, :5], floor=1e-3)
    with pytest.raises(ValueError, match="NaN"):
        model.set_latent_whitening(torch.full((10, 8), float("nan")), floor=1e-3)


def test_normalise_stays_float32_under_autocast():
    """The whitening matmul must not round the latents to bf16 where training autocasts; an
    unwhitened model gives the per-channel normalisation back exactly."""
    model = _model()
    model.set_latent_stats(torch.linspace(-1, 1, 8), torch.linspace(0.5, 2, 8))
    latents = torch.randn(3, 16, 8) * 3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        normalised = model.normalise(latents)
        back = model.denormalise(normalised)
    assert normalised.dtype == torch.float32
    assert torch.equal(normalised, (latents - model.latent_mean) / model.latent_std)
    assert torch.allclose(back, latents, atol=1e-5)
