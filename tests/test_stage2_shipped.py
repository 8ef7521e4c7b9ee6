"""The shipped stage-2 weights on a committed sample conversation (unseen in training):
long generation is continuous at window borders, the mouth talks while the avatar speaks and
stays closed while only the partner speaks, and swapping the two tracks swaps the roles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from infp_lab.data.clip import load_clip
from infp_lab.render import PARAM_NAMES
from infp_lab.stage2 import MotionGenerator, generate_from_audio

ROOT = Path(__file__).resolve().parents[1]
JAW = PARAM_NAMES.index("jaw_open")
WEIGHTS = ROOT / "weights" / "stage2_tiny.safetensors"
CLIP = ROOT / "data_samples" / "synconv" / "conv0000_a"


@pytest.fixture(scope="module")
def generated():
    model = MotionGenerator.from_pretrained(WEIGHTS).eval()
    clip = load_clip(CLIP)
    with torch.no_grad():
        out = generate_from_audio(model, clip.self_audio, clip.other_audio, clip.sample_rate, seed=0)
    return model, clip, out


def test_long_generation_is_continuous_at_window_borders(generated):
    """No jump where a window starts, and no burst of motion where its jump is blended in."""
    from infp_lab.stage2.generate import BLEND_FRAMES

    model, clip, out = generated
    latents = out.latents.numpy()
    assert abs(len(latents) - clip.num_frames) <= 1
    step = np.linalg.norm(np.diff(latents, axis=0), axis=1)  # (T-1,) frame-to-frame motion
    window = model.config.dit.window
    borders = np.arange(window, len(latents), window) - 1  # step from the last frame of a window to the next
    blended = np.concatenate([b + np.arange(1, BLEND_FRAMES + 1) for b in borders])
    blended = blended[blended < len(step)]
    inside = np.setdiff1d(np.arange(len(step)), np.concatenate([borders, blended]))
    assert len(borders) >= 3
    assert step[borders].mean() < 1.5 * step[inside].mean(), (step[borders], step[inside].mean())
    assert step[blended].mean() < 1.5 * step[inside].mean(), (step[blended].mean(), step[inside].mean())


@pytest.fixture(scope="module")
def stage1():
    from infp_lab.stage1 import HeadImitator

    return HeadImitator.from_pretrained(ROOT / "weights" / "stage1_tiny.safetensors").eval()


@pytest.fixture(scope="module")
def jaw_reader(stage1):
    """Jaw opening from motion latents, with nothing fitted: the shipped stage 1's lip gap."""

    def read(latents: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return stage1.lip_gap(torch.as_tensor(latents)).numpy()

    return read


def test_the_lip_gap_follows_the_true_jaw(stage1, jaw_reader):
    """The reader the other tests rely on: on the true latents of the clip's frames, the lip
    gap follows SynConv's jaw parameter closely and is near zero with the mouth closed."""
    from infp_lab.stage1.inference import encode_clip

    clip = load_clip(CLIP, load_audio_tracks=False)
    with torch.no_grad():
        gap = jaw_reader(encode_clip(stage1, clip).numpy())
    jaw = clip.motion["params"][: len(gap), JAW]
    assert np.corrcoef(gap, jaw)[0, 1] > 0.9
    assert np.median(gap[jaw < 0.05]) < 0.25 * np.median(gap[jaw > 0.5])


def test_mouth_talks_while_speaking_and_rests_while_listening(generated, jaw_reader):
    """The jaw follows the true jaw, and opens much less while only the partner speaks.

    The bound here is half (the lip gap of this clip's true latents: 0.01 while listening,
    0.16 while speaking); the 25 % target is measured by `infp-lab eval stage2` on 12 test
    clips."""
    _, clip, out = generated
    jaw = jaw_reader(out.latents.numpy())
    state = clip.motion["state"][: len(jaw)]
    true_jaw = np.clip(clip.motion["params"][: len(jaw), JAW], 0, None)
    assert jaw[state == 2].mean() <= 0.5 * jaw[state == 1].mean()
    assert np.corrcoef(jaw, true_jaw)[0, 1] > 0.6


def test_swapping_the_tracks_swaps_the_roles(generated, jaw_reader):
    """No role label: with the voices swapped, the avatar talks where it listened before."""
    model, clip, _ = generated
    with torch.no_grad():
        swapped = generate_from_audio(model, clip.other_audio, clip.self_audio, clip.sample_rate, seed=0)
    jaw = jaw_reader(swapped.latents.numpy())
    state = clip.motion["state"][: len(jaw)]
    assert jaw[state == 2].mean() > 2.0 * jaw[state == 1].mean()


def test_the_head_stays_where_the_portrait_has_it(generated, stage1):
    """Over 20 s the generated head keeps the pose of its portrait (the first frame, seen from
    the side in these clips) instead of drifting toward the training data's average pose.

    Read from the landmarks the renderer is told (the landmark head), over the last 5 s, on the
    two sample test clips. With the portrait as the style reference (the default) the head's
    centre stays 3.8 px and its turn 0.16 inter-ocular distances from the truth's on average
    (4.2 and 0.16 at pose gain 2); without a style they drift 10.7 px and 0.35 (measured on the
    fifth model; scripts/stage2_drift.py does it on the test split)."""
    from infp_lab.metrics import landmark_head_pose
    from infp_lab.stage1.inference import encode_clip
    from infp_lab.stage2.evaluate import first_frame_landmarks

    model = generated[0]
    drifts = []
    for name in ("conv0002_a", "conv0002_b"):
        clip = load_clip(CLIP.parent / name)
        with torch.no_grad():
            true_latents = encode_clip(stage1, clip)
            latents = generate_from_audio(model, clip.self_audio, clip.other_audio, clip.sample_rate, seed=0,
                                          start=true_latents[:1]).latents
        truth, pose = (landmark_head_pose(first_frame_landmarks(stage1, clip, z)) for z in (true_latents, latents))
        tail = 5 * clip.fps
        drifts.append(np.abs(pose[-tail:].mean(0) - truth[-tail:].mean(0)))  # roll, turn, centre x, ...
    _, turn, centre = np.mean(drifts, axis=0)[:3]
    assert centre < 7.0, drifts
    assert turn < 0.3, drifts


def _experiments():
    import importlib.util

    spec = importlib.util.spec_from_file_location("stage2_experiments", ROOT / "scripts" / "stage2_experiments.py")
    experiments = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(experiments)
    return experiments


def _chosen_on_validation(experiments, folder: Path):
    """The sampling defaults the rules of scripts/stage2_experiments.py pick from a model's
    committed validation sweeps (never the test split), in their order: the scale, the guidance
    smoothing at it, the pose gain at both, the low-pass at all three."""
    import json

    from infp_lab.stage2.config import SamplingDefaults

    def load(name):
        sweep = json.loads((folder / f"stage2_{name}.json").read_text())
        assert all(s["split"] == "val" for s in (sweep.values() if name.endswith("smoothing") else [sweep]))
        return sweep

    sweep, smoothing = load("cfg_sweep_val"), load("cfg_sweep_val_smoothing")
    scale = experiments.choose_scale(sweep["rows"])
    assert all(s["guidance_smoothing"] == float(sigma) for sigma, s in smoothing.items())
    sigma = experiments.choose_smoothing(sweep["rows"], {k: s["rows"] for k, s in smoothing.items()}, scale)
    pose = load("pose_gain_val")
    assert (pose["audio_scale"], pose["guidance_smoothing"]) == (scale, sigma)
    gain = experiments.choose_scale(pose["rows"])
    assert gain == pose["chosen_pose_gain"]
    low_pass = load("pose_smoothing_val")
    assert (low_pass["audio_scale"], low_pass["guidance_smoothing"], low_pass["pose_gain"]) == (scale, sigma, gain)
    frames = experiments.choose_pose_smoothing(low_pass["rows"])
    assert frames == low_pass["chosen_pose_smoothing"] == pose["pose_smoothing"]  # the gain was swept at it
    return SamplingDefaults(audio_scale=scale, guidance_smoothing=sigma, pose_gain=gain, pose_smoothing=frames)


@pytest.mark.parametrize("folder", ["weights", "weights/stage2_fourth", "weights/invariance_pair"])
def test_each_models_sampling_defaults_are_those_chosen_on_its_validation_clips(folder):
    """The shipped weights, the fourth model's and the candidate pair's carry the sampling defaults that the
    committed rules pick from their own validation sweeps; the library's constants (what a model
    trained by the README's command generates with until its own are chosen) are the shipped ones."""
    from infp_lab.stage2.config import SamplingDefaults

    model = MotionGenerator.from_pretrained(ROOT / folder / "stage2_tiny.safetensors")
    assert model.sampling == _chosen_on_validation(_experiments(), ROOT / folder)
    if folder == "weights":
        assert model.sampling == SamplingDefaults()
    else:
        assert model.sampling.pose_gain != SamplingDefaults().pose_gain  # 2 and 3.5


def test_the_rules_that_choose_the_sampling_defaults():
    """scripts/stage2_experiments.py's choosing rules on made-up sweeps (the committed sweeps are
    checked above), and the head-only pose-gain rule, tried on the shipped sweep and not adopted."""
    import json

    experiments = _experiments()
    rows = {"ground_truth": {k: 1.0 for k in experiments.DIVERSITY},
            "2": {"state_accuracy": 0.95, **{k: 0.7 for k in experiments.DIVERSITY}},
            "4": {"state_accuracy": 0.95, **{k: 0.9 for k in experiments.DIVERSITY}},
            "6": {"state_accuracy": 0.85, **{k: 1.0 for k in experiments.DIVERSITY}}}
    assert experiments.choose_scale(rows) == 4.0  # 6 is closest but fails the state accuracy
    assert experiments.choose_scale(rows, min_state_accuracy=0.99) is None
    row = {"6.0": {"lse_c": 0.10}}
    assert experiments.choose_smoothing(row, {1.0: {"6.0": {"lse_c": 0.096}}, 2.0: {"6.0": {"lse_c": 0.09}}}, 6) == 1.0
    assert experiments.choose_smoothing(row, {1.0: {"6.0": {"lse_c": 0.05}}}, 6) == 0.0
    pose = json.loads((ROOT / "weights" / "stage2_pose_gain_val.json").read_text())
    # the head-only rule, tried and not adopted (weights/README.md, "The listener's nods")
    assert experiments.choose_pose_gain(pose["rows"]) == pose["chosen_pose_gain_by_head"] != pose["chosen_pose_gain"]
    head = {k: 1.0 for k in experiments.POSE_MEASURES}
    rows = {"ground_truth": {"lse_c": 0.3, "state_accuracy": 0.95, **head},
            "1.0": {"lse_c": 0.150, "state_accuracy": 0.95, **{k: 0.5 for k in head}},
            "2.0": {"lse_c": 0.146, "state_accuracy": 0.95, **{k: 0.8 for k in head}},
            "3.0": {"lse_c": 0.140, "state_accuracy": 0.95, **{k: 1.0 for k in head}},
            "4.0": {"lse_c": 0.148, "state_accuracy": 0.85, **{k: 1.0 for k in head}}}
    assert experiments.choose_pose_gain(rows) == 2.0  # 3 and 4 are closer, but cost lip sync or the states
    assert experiments.choose_pose_gain(rows, tolerance=0.1) == 3.0
    assert experiments.choose_pose_gain({**rows, "2.0": {**rows["2.0"], "nods_per_min_listening": 0.1}}) == 1.0
    assert experiments.choose_pose_gain(rows, min_state_accuracy=0.99) is None
    rows = {"ground_truth": {"lse_c": 0.3, "state_accuracy": 0.95},
            "0.0": {"lse_c": 0.10, "state_accuracy": 0.95}, "1.0": {"lse_c": 0.148, "state_accuracy": 0.95},
            "2.0": {"lse_c": 0.150, "state_accuracy": 0.95}, "3.0": {"lse_c": 0.16, "state_accuracy": 0.85}}
    assert experiments.choose_pose_smoothing(rows) == 1.0  # within 5 % of the best that keeps the states
    assert experiments.choose_pose_smoothing(rows, tolerance=0.01) == 2.0
    assert experiments.choose_pose_smoothing(rows, min_state_accuracy=0.99) is None


def test_the_defaults_chain_feeds_each_choice_to_the_next_sweep(tmp_path, monkeypatch):
    """`stage2_experiments.py choose-defaults` on made-up sweep results: each sweep runs at the
    settings chosen before it, the gain is swept again when the low-pass chosen is not the one
    it was swept at, the files it writes give the same choice when read as the committed ones
    are, and --store writes the defaults; a model no scale suits gets an error and keeps its file."""
    import argparse
    import json
    import shutil

    from infp_lab.stage1 import HeadImitator
    from infp_lab.stage2.config import SamplingDefaults

    experiments = _experiments()
    weights = Path(shutil.copy(WEIGHTS, tmp_path / "stage2.safetensors"))
    model = MotionGenerator.from_pretrained(weights)
    scales, gains = [2, 4], [1, 2.5]  # whole numbers as the command line's defaults may give them
    calls, state_accuracy = [], [0.95]
    measures = {*experiments.DIVERSITY, *experiments.POSE_MEASURES}

    def made_up_sweep(args, settings):
        names = set(settings)
        kind = ("low-pass" if all("pose_smoothing" in s for s in settings.values())
                else "gain" if names <= {str(float(g)) for g in gains} else "scale")
        calls.append((kind, args.smoothing, args.pose_smoothing, sorted(names)))
        rows = {"ground_truth": {"lse_c": 0.3, "state_accuracy": 0.95, **{k: 1.0 for k in measures}}}
        for name, setting in settings.items():
            if kind == "low-pass":
                lse_c, diversity = {0.0: 0.10, 1.0: 0.15, 2.0: 0.19, 3.0: 0.195}[setting["pose_smoothing"]], 1.0
            elif kind == "gain":
                lse_c, diversity = 0.2, {1.0: 0.8, 2.5: 0.98}[setting["pose_gain"]]
            else:  # guidance smoothing costs lip sync: 1 frame stays within 5 % of none, 2 does not
                lse_c = {0.0: 0.2, 0.5: 0.195, 1.0: 0.191, 2.0: 0.15}[args.smoothing]
                diversity = setting["audio_scale"] / 4
            rows[name] = {"lse_c": lse_c, "state_accuracy": state_accuracy[0],
                          **{k: diversity for k in measures}}
        return rows, 4, model

    stage1 = HeadImitator.from_pretrained(ROOT / "weights" / "stage1_tiny.safetensors", mouth_composite=True)
    monkeypatch.setattr(experiments, "sweep", made_up_sweep)
    monkeypatch.setattr(experiments, "models", lambda *paths: (stage1, model, None, None))
    args = argparse.Namespace(stage2=weights, stage1=None, syncnet=None, data=None, train_data=None, split="val",
                              out=tmp_path, clips=4, pose_clips=8, seed=0, sampler=None, sampler_steps=None,
                              scales=scales, gains=gains, time_constants=[0, 1, 2, 3], store=True,
                              mouth_composite=True)
    result = experiments.choose_defaults(args)
    sweeps = [json.loads((tmp_path / f"stage2_{name}.json").read_text())
              for name in ("cfg_sweep_val", "pose_gain_val", "pose_smoothing_val")]
    assert [sweep["mouth_composite"] for sweep in sweeps] == [True] * 3  # each sweep says how it was rendered

    chosen = SamplingDefaults(audio_scale=4.0, guidance_smoothing=1.0, pose_gain=2.5, pose_smoothing=2.0)
    assert result["sampling"] == chosen.to_dict()
    assert calls == [("scale", 0.0, 0.0, ["2.0", "4.0"]),
                     *[("scale", sigma, 0.0, ["4.0"]) for sigma in (0.5, 1.0, 2.0)],
                     ("gain", 1.0, model.defaults.pose_smoothing, ["1.0", "2.5"]),  # the model's low-pass, 1 frame
                     ("low-pass", 1.0, None, ["0.0", "1.0", "2.0", "3.0"]),
                     ("gain", 1.0, 2.0, ["1.0", "2.5"]),  # again, at the low-pass chosen
                     ("low-pass", 1.0, None, ["0.0", "1.0", "2.0", "3.0"])]
    assert _chosen_on_validation(experiments, tmp_path) == chosen
    assert MotionGenerator.from_pretrained(weights).sampling == chosen

    state_accuracy[0] = 0.85
    before = weights.read_bytes()
    with pytest.raises(SystemExit, match="no audio guidance scale keeps the speaking-state accuracy"):
        experiments.choose_defaults(args)
    assert weights.read_bytes() == before


def test_a_runs_sweeps_measure_each_clips_truth_once(tmp_path, monkeypatch):
    """Across the sweeps of one run (as in choose-defaults), a clip's truth is measured at its
    first setting only and handed on after, unless the stage-1 weights differ."""
    import argparse

    experiments = _experiments()
    clips = [tmp_path / name for name in ("a", "b", "c")]
    handed = []

    def made_up_evaluate(stage1, stage2, syncnet, clip, truth=None, **settings):
        handed.append((clip, truth and truth["clip"]))
        return {"clip": clip}

    loaded = []

    def made_up_models(*paths):
        loaded.append(paths)
        return None, None, None, None

    monkeypatch.setattr(experiments, "_truths", {})
    monkeypatch.setattr(experiments, "models", made_up_models)
    monkeypatch.setattr(experiments, "list_clips", lambda data, split: clips)
    monkeypatch.setattr(experiments, "load_clip", lambda path: path)
    monkeypatch.setattr(experiments, "evaluate_clip", made_up_evaluate)
    monkeypatch.setattr(experiments, "summarise", lambda results, refs: {"generated": {}, "ground_truth": {}})
    args = argparse.Namespace(stage1=Path("s1"), stage2=None, syncnet=Path("sync"), train_data=None, data=None,
                              split="val", clips=2, seed=0, smoothing=0.0, sampler=None, sampler_steps=None,
                              pose_smoothing=0.0, mouth_composite=None)
    experiments.sweep(args, {"1": {}, "2": {}})
    experiments.sweep(argparse.Namespace(**{**vars(args), "clips": 3}), {"3": {}})
    experiments.sweep(argparse.Namespace(**{**vars(args), "stage1": Path("other")}), {"1": {}})
    experiments.sweep(argparse.Namespace(**{**vars(args), "mouth_composite": True}), {"1": {}})
    a, b, c = clips
    assert handed == [(a, None), (b, None), (a, a), (b, b),  # first sweep: measured, then handed on
                      (a, a), (b, b), (c, None),  # second: only the new clip is measured
                      (a, None), (b, None),  # other stage-1 weights: measured again
                      (a, None), (b, None)]  # the same weights rendered with the mouth composite: again
    assert [paths[-1] for paths in loaded] == [None, None, None, True]  # the models load as --mouth-composite says


@pytest.fixture(scope="module")
def sample_starts(stage1):
    """Three sample clips and the latent of each one's first frame (the portrait generation continues from)."""
    from infp_lab.stage1.inference import encode_clip

    clips = [load_clip(CLIP.parent / name) for name in ("conv0000_a", "conv0002_a", "conv0002_b")]
    with torch.no_grad():
        return [(clip, encode_clip(stage1, clip)[:1]) for clip in clips]


def _generate_each(model, sample_starts, **settings) -> list[torch.Tensor]:
    """Latents generated from each sample clip's voices (seed 0), continuing from its portrait."""
    with torch.no_grad():
        return [generate_from_audio(model, clip.self_audio, clip.other_audio, clip.sample_rate, seed=0, start=start,
                                    **settings).latents for clip, start in sample_starts]


@pytest.fixture(scope="module")
def sample_defaults(generated, sample_starts):
    """The sample clips generated at the shipped weights' defaults."""
    return _generate_each(generated[0], sample_starts)


def test_the_pose_gain_moves_the_head_more_and_the_mouth_alike(generated, stage1, sample_starts):
    """The shipped weights have head-pose directions, and a pose gain of 2 makes the head nod
    more than plain guidance (gain 1, the default the validation rule chose for these weights)
    at the same scale does, with the mouth moving as much.

    Read from the landmarks the landmark head decodes (nothing fitted), on three sample clips."""
    from infp_lab.metrics import landmark_head_pose

    model = generated[0]
    assert model.has_pose_directions
    nods, lips = {}, {}
    for gain in (1.0, 2.0):
        with torch.no_grad():
            for latents in _generate_each(model, sample_starts, pose_gain=gain):
                nods.setdefault(gain, []).append(landmark_head_pose(stage1.landmark_head(latents).numpy())[:, 3].std())
                lips.setdefault(gain, []).append(stage1.lip_gap(latents).numpy().std())
    nod_ratio = np.mean(nods[2.0]) / np.mean(nods[1.0])
    lip_ratio = np.mean(lips[2.0]) / np.mean(lips[1.0])
    assert nod_ratio > 1.1, (nods, nod_ratio)  # measured 1.19, lip ratio 1.00 (the fourth model alike)
    assert abs(lip_ratio - 1) < 0.05, (lips, lip_ratio)


def test_the_pose_low_pass_stills_the_heads_shake_and_not_the_mouth(generated, stage1, sample_starts,
                                                                   sample_defaults):
    """The default pose smoothing cuts the frame-to-frame shake of the head (nod and roll, read
    from the landmarks the landmark head decodes) and leaves the mouth's motion as it was, on
    three sample clips."""
    from infp_lab.metrics import landmark_head_pose

    assert generated[0].defaults.pose_smoothing > 0
    shake, lips = {}, {}
    for frames, motions in ((0.0, _generate_each(generated[0], sample_starts, pose_smoothing=0.0)),
                            (None, sample_defaults)):
        with torch.no_grad():
            for latents in motions:
                pose = landmark_head_pose(stage1.landmark_head(latents).numpy())[:, [0, 3]]  # roll, nod
                shake.setdefault(frames, []).append(np.diff(pose, axis=0).std(axis=0) / pose.std(axis=0))
                lips.setdefault(frames, []).append(stage1.lip_gap(latents).numpy().std())
    shake_ratio = np.mean(shake[None], axis=0) / np.mean(shake[0.0], axis=0)
    lip_ratio = np.mean(lips[None]) / np.mean(lips[0.0])
    assert (shake_ratio < 0.85).all() and shake_ratio.mean() < 0.75, (shake, shake_ratio)  # 0.73 / 0.58 measured
    assert abs(lip_ratio - 1) < 0.05, (lips, lip_ratio)
