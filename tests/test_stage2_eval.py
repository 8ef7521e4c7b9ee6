"""Stage-2 evaluation end to end on random weights: the report has every measure, finite
where it must be, and the ground truth scores what the metrics' reference models learnt."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.render import PARAM_NAMES
from infp_lab.stage1 import HeadImitator
from infp_lab.stage1.config import preset as stage1_preset
from infp_lab.stage2 import MotionGenerator, preset as stage2_preset
from infp_lab.stage2.evaluate import MotionReader, References, evaluate_stage2, motion_summary
from infp_lab.syncnet import SyncNet, preset as syncnet_preset


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    stage1 = HeadImitator(stage1_preset("tiny")).save_pretrained(folder / "s1.safetensors")
    stage2 = MotionGenerator(stage2_preset("tiny", latent_dim=64)).save_pretrained(folder / "s2.safetensors")
    sync = SyncNet(syncnet_preset("tiny")).save_pretrained(folder / "sync.safetensors")
    return stage1, stage2, sync


def test_motion_reader_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(400, 64))
    mapping = rng.normal(size=(64, len(PARAM_NAMES)))
    clips = np.split(latents[:300], 6)
    reader = MotionReader(clips, [z @ mapping for z in clips])
    predicted = reader(latents[300:])
    assert np.allclose(predicted, latents[300:] @ mapping, atol=0.05 * np.abs(predicted).max())


def test_motion_reader_regularisation_is_chosen_over_whole_clips():
    """Each frame repeated 10 times (neighbouring frames as alike as they can be) is the same
    data: the reader's fit must not change. Cross-validation over single frames would see
    each left-out frame's copies and choose almost no regularisation."""
    rng = np.random.default_rng(0)
    mapping = rng.normal(size=(32, 4))
    latents = [rng.normal(size=(40, 32)) for _ in range(6)]
    params = [z @ mapping + 4 * rng.normal(size=(40, 4)) for z in latents]  # noisy: regularisation pays
    reader = MotionReader(latents, params)
    repeated = MotionReader([np.repeat(z, 10, axis=0) for z in latents], [np.repeat(p, 10, axis=0) for p in params])
    assert 0.01 < reader.alpha < 1000  # chosen inside the grid, not at its floor
    assert repeated.alpha == pytest.approx(10 * reader.alpha)  # the same regularisation per distinct frame
    new = rng.normal(size=(50, 32))
    assert np.allclose(repeated(new), reader(new), atol=1e-8)


def test_motion_reader_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 2 clips"):
        MotionReader([rng.normal(size=(10, 8))], [rng.normal(size=(10, 3))])
    with pytest.raises(ValueError, match="of one length"):
        MotionReader([rng.normal(size=(10, 8))] * 2, [rng.normal(size=(9, 3))] * 2)


def test_report_end_to_end(synconv_many, weights):
    stage1, stage2, sync = weights
    report, results = evaluate_stage2(stage2, stage1, sync, synconv_many, synconv_many, split="test",
                                      reference_clips=4, max_clips=1, progress=False)
    clip = load_clip(list_clips(synconv_many, "test")[0])
    assert report["clips"] == 1 and results[0]["frames"] == len(results[0]["latents"])
    assert report["mouth_composite"] is False  # the stage-1 weights' own setting
    assert abs(results[0]["frames"] - clip.num_frames) <= 1
    for row in ("ground_truth", "generated"):
        for key in ("state_accuracy", "sid_expression", "sid_pose", "var_expression", "var_pose", "fd_pose",
                    "jitter_expression", "jitter_pose", "lse_c", "lse_d", "rpcc"):
            assert math.isfinite(report[row][key]), (row, key)
    assert report["ground_truth"]["fd_pose"] == pytest.approx(0.0, abs=1e-6)  # the truth against itself
    assert results[0]["head_pose_generated"].shape == (results[0]["frames"], 5)
    for row, key in (("ground_truth", "head_pose_reconstruction"), ("generated", "head_pose_generated")):
        roll, turn, nod = (results[0][key][:, column].var() for column in (0, 1, 3))
        assert report[row]["var_head_roll"] == pytest.approx(roll)
        assert report[row]["var_head_turn"] == pytest.approx(turn) and report[row]["var_head_nod"] == pytest.approx(nod)
    assert 0 <= report["generated"]["ssim"] <= 1 and report["generated"]["psnr"] > 0
    assert set(report["targets"]) == {"state_accuracy>=0.9", "mouth_listening<=25%", "lse_c_within_20%",
                                      "sid_within_20%", "var_within_20%"}
    attention = results[0]["verbal_attention"]
    assert np.allclose(attention.sum(axis=1), 1.0, atol=1e-4)
    # the render-free summary of the same latents (scripts/stage2_head_sweep.py) reads them as the report does
    refs = References.from_training_clips(HeadImitator.from_pretrained(stage1).eval(), synconv_many, clips=4)
    table = motion_summary([r["latents"] for r in results], [r["true_latents"] for r in results],
                           [r["state"] for r in results], [r["partner_energy"] for r in results], refs)
    for row in ("ground_truth", "generated"):
        assert table[row].keys() <= report[row].keys()
        for key, value in table[row].items():
            assert value == pytest.approx(report[row][key], nan_ok=True), (row, key)


def test_rejects_mismatched_latent_sizes(synconv_many, weights, tmp_path):
    stage1, _, sync = weights
    other = MotionGenerator(stage2_preset("tiny", latent_dim=32)).save_pretrained(tmp_path / "s2.safetensors")
    with pytest.raises(ValueError, match="latents"):
        evaluate_stage2(other, stage1, sync, synconv_many, synconv_many, max_clips=1, progress=False)


def test_evaluate_clip_passes_the_sampler_on(synconv_many, weights, monkeypatch):
    """The sweeps' --sampler / --sampler-steps reach the generator (the default is the model's)."""
    from infp_lab.stage2 import evaluate

    class Stop(Exception):
        pass

    asked = []

    def generator(*args, **kwargs):
        asked.append({k: kwargs.get(k, "missing") for k in ("sampler", "steps")})
        raise Stop

    monkeypatch.setattr(evaluate, "generate_from_audio", generator)
    stage1, stage2, sync = (cls.from_pretrained(path).eval() for cls, path in
                            zip((HeadImitator, MotionGenerator, SyncNet), weights))
    clip = load_clip(list_clips(synconv_many, "test")[0])
    for settings in ({}, {"sampler": "dpmsolver++", "steps": 7}):
        with pytest.raises(Stop):
            evaluate.evaluate_clip(stage1, stage2, sync, clip, **settings)
    assert asked == [{"sampler": None, "steps": None}, {"sampler": "dpmsolver++", "steps": 7}]


def test_generated_mouth_budget_replaces_only_the_part_read_and_finds_a_late_mouth():
    """scripts/generated_mouth_budget.py: a part's reading replaces those columns of the true
    motion alone, inside SynConv's ranges; a reading that comes 2 frames late at half the
    amplitude is found so."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "generated_mouth_budget.py"
    spec = importlib.util.spec_from_file_location("generated_mouth_budget", path)
    budget = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget)

    params = np.random.default_rng(0).uniform(0, 0.5, (40, len(PARAM_NAMES)))
    read = np.full_like(params, 2.0)
    drawn = budget.with_part(params, read, budget.PARTS["jaw"])
    jaw = PARAM_NAMES.index("jaw_open")
    assert np.all(drawn[:, jaw] == 1.0)  # clipped to jaw_open's range
    assert np.array_equal(np.delete(drawn, jaw, axis=1), np.delete(params, jaw, axis=1))
    lips = budget.with_part(params, read, budget.PARTS["lips"])
    assert np.array_equal(lips[:, jaw], params[:, jaw]) and not np.array_equal(lips, params)

    truth = np.sin(np.arange(300) / 4.0) + 0.2 * np.random.default_rng(1).normal(size=300)
    late = 0.5 * np.roll(truth, 2)
    found = budget.follows(truth, late)
    assert found["best lag (frames)"] == 2 and found["std ratio"] == pytest.approx(0.5)
    assert found["correlation at the best lag"] > 0.99 > found["correlation"]
    assert budget.follows(truth, truth)["best lag (frames)"] == 0


def test_lips_in_the_latent_fits_and_scores_the_mouth_parameters():
    """scripts/lips_in_the_latent.py: `fit_r` finds a parameter that is a mix of the features
    (r 1) and not one that is independent of them; `clip_r` scores the four mouth columns."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "lips_in_the_latent.py"
    spec = importlib.util.spec_from_file_location("lips_in_the_latent", path)
    lips = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lips)

    rng = np.random.default_rng(0)
    features = rng.normal(size=(2000, 5))
    targets = np.c_[features @ rng.normal(size=5) + 3.0, rng.normal(size=2000)]
    mixed, independent = lips.fit_r(features, targets)
    assert mixed == pytest.approx(1.0) and abs(independent) < 0.1

    truth = rng.uniform(0, 1, (300, len(PARAM_NAMES)))
    read = truth.copy()
    smile = PARAM_NAMES.index("smile")
    read[:, smile] = -read[:, smile]
    assert lips.clip_r(truth, read) == pytest.approx([1.0, -1.0, 1.0, 1.0])  # jaw_open, smile, lip_round, lip_press
