"""Motion and interaction metrics on constructed signals with known answers."""

import math

import numpy as np
import pytest

from infp_lab.metrics import (
    SpeakingStateClassifier, fit_clusters, frechet_distance, motion_variance, mouth_opening_ratio, nod_rate, rpcc,
    rpcc_mean, transition_lags,
)


def test_frechet_distance_zero_for_identical_and_grows_with_shift():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 6))
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    distances = [frechet_distance(real, real + shift) for shift in (0.5, 1.0, 2.0)]
    assert distances == sorted(distances)
    assert distances[1] == pytest.approx(6 * 1.0**2, rel=1e-4)  # a pure mean shift adds ||shift||^2


def test_frechet_distance_singular_covariance_is_finite():
    rng = np.random.default_rng(1)
    real = np.concatenate([rng.normal(size=(100, 3)), np.zeros((100, 1))], axis=1)  # a constant dim
    generated = np.concatenate([rng.normal(size=(80, 3)), np.ones((80, 1))], axis=1)
    value = frechet_distance(real, generated)
    assert math.isfinite(value) and value >= 1.0 - 1e-3
    with pytest.raises(ValueError):
        frechet_distance(real, generated[:, :2])


def test_sid_uniform_is_log_k_and_single_cluster_is_zero():
    rng = np.random.default_rng(0)
    centres = np.arange(9)[:, None] * 10.0 * np.ones((1, 3))
    real = np.concatenate([c + rng.normal(scale=0.1, size=(50, 3)) for c in centres])
    clusters = fit_clusters(real, k=9, seed=0)
    assert clusters.sid(real) == pytest.approx(math.log(9), abs=1e-6)
    assert clusters.sid(centres[3] + rng.normal(scale=0.1, size=(40, 3))) == pytest.approx(0.0, abs=1e-9)


def test_variance_and_rpcc():
    assert motion_variance([np.ones((50, 4)), np.full((30, 4), 3.0)]) == 0.0
    assert motion_variance([np.array([0.0, 2.0] * 10)]) == pytest.approx(1.0)
    t = np.linspace(0, 10, 250)
    partner, real = np.sin(t), np.sin(t - 0.3)
    assert rpcc(real, partner, real) == 0.0
    assert rpcc(real, partner, np.cos(3 * t)) > 0.5
    assert rpcc(real, partner, np.zeros_like(t)) == pytest.approx(abs(np.corrcoef(real, partner)[0, 1]))
    real2 = np.stack([real, -real], axis=1)
    assert rpcc_mean([real2], [partner], [real2]) == 0.0
    assert rpcc_mean([real2], [np.stack([partner, partner], 1)], [real2[:, ::-1]]) > 1.0


def _speaking_data(rng, clips=6, frames=400):
    motions, states = [], []
    for _ in range(clips):
        state = np.repeat(rng.choice([0, 1, 2, 3], size=frames // 40), 40)  # turns of 1.6 s
        speaking = np.isin(state, (1, 3))
        motion = rng.normal(scale=0.05, size=(frames, 4))
        motion[:, 0] += speaking * np.abs(rng.normal(scale=0.5, size=frames))  # jaw moves while speaking
        motions.append(motion)
        states.append(state)
    return motions, states


def test_speaking_state_classifier_learns_and_fails_on_shuffled_labels(tmp_path):
    rng = np.random.default_rng(0)
    motions, states = _speaking_data(rng)
    test_motions, test_states = _speaking_data(rng, clips=3)
    clf = SpeakingStateClassifier().fit(motions, states)
    accuracy = np.mean([clf.accuracy(m, s) for m, s in zip(test_motions, test_states)])
    assert accuracy > 0.9
    # Labels shuffled across all clips carry no information: the probe falls to chance.
    shuffled_states = np.split(rng.permutation(np.concatenate(states)), len(states))
    shuffled = SpeakingStateClassifier().fit(motions, shuffled_states)
    chance = np.mean([shuffled.accuracy(m, s, balanced=True) for m, s in zip(test_motions, test_states)])
    assert abs(chance - 0.5) < 0.1
    # And the good probe scored against shuffled test labels is at chance too.
    chance = np.mean([clf.accuracy(m, rng.permutation(s), balanced=True) for m, s in zip(test_motions, test_states)])
    assert abs(chance - 0.5) < 0.1
    loaded = SpeakingStateClassifier.load(clf.save(tmp_path / "clf.json"))
    assert np.array_equal(loaded.predict(test_motions[0]), clf.predict(test_motions[0]))
    with pytest.raises(ValueError):
        SpeakingStateClassifier().predict(test_motions[0])


def test_transition_lag_recovers_known_shift():
    truth = np.zeros(500, bool)
    truth[100:200] = truth[300:420] = True
    predicted = np.roll(truth, 7)
    result = transition_lags(truth, predicted, fps=25)
    assert result.lags == pytest.approx([7 / 25] * 4) and result.misses == []
    never = transition_lags(truth, np.zeros(500, bool), fps=25)
    assert never.misses == pytest.approx([4.0, 12.0]) and never.lags == [0.0, 0.0]
    assert never.miss_rate == 0.5


def test_mouth_opening_ratio():
    states = np.array([1] * 50 + [2] * 50 + [0] * 20)
    mouth = np.where(states == 1, 0.4, np.where(states == 2, 0.1, 0.9))
    assert mouth_opening_ratio(mouth, states) == pytest.approx(0.25)
    assert math.isnan(mouth_opening_ratio(mouth, np.zeros(120, int)))


def test_nod_rate_counts_sine_nods_on_listening_frames():
    fps, seconds = 25, 60
    t = np.arange(fps * seconds) / fps
    pitch = 4.0 * np.clip(np.sin(2 * np.pi * 0.5 * t), 0, None)  # a 4-degree nod every 2 s: 30 nods
    pitch += 0.1 * np.sin(2 * np.pi * 0.05 * t)  # slow drift is not a nod
    everything = np.ones_like(t, bool)
    assert nod_rate(pitch, everything, fps) == pytest.approx(30.0, abs=1.0)
    half = t < 30  # 15 nods in 0.5 min of listening
    assert nod_rate(pitch, half, fps) == pytest.approx(30.0, abs=2.0)
    assert nod_rate(0.5 * np.sin(2 * np.pi * 0.5 * t), everything, fps) == 0.0  # below the threshold
    assert math.isnan(nod_rate(pitch, np.zeros_like(everything), fps))


def test_nod_timing_tells_nods_that_answer_the_partner_from_random_ones():
    from infp_lab.metrics import nod_timing

    fps = 25
    partner = np.zeros(60 * fps, bool)
    for start in range(0, 60, 6):  # the partner speaks 3 s of every 6
        partner[start * fps:(start + 3) * fps] = True
    t = np.arange(len(partner)) / fps

    def nods_at(centres):
        return sum(4.0 * np.exp(-0.5 * ((t - c) / 0.15) ** 2) for c in centres)

    listening = np.ones_like(partner)
    answering = nod_timing(nods_at(np.arange(3.5, 60, 6)), listening, partner, fps)  # 0.5 s after each phrase
    assert answering.nods == answering.after == 10
    assert answering.window_frames / answering.listening_frames == pytest.approx(1.5 / 6, abs=0.01)
    early = nod_timing(nods_at(np.arange(1.5, 60, 6)), listening, partner, fps)  # mid-phrase
    assert early.nods == 10 and early.after == 0
    assert nod_timing(nods_at([3.5]), ~partner & (t > 10), partner, fps).nods == 0  # not a listening frame
    with pytest.raises(ValueError, match="differ in shape"):
        nod_timing(t, listening, partner[:-1], fps)


def test_landmark_head_pose_reads_roll_turn_nod_and_place():
    from infp_lab.metrics import landmark_head_pose

    points = np.zeros((2, 86, 2))
    points[:, 36], points[:, 45], points[:, 30] = (40, 50), (80, 50), (60, 70)  # eye corners, nose tip
    points[1, 30, 0] += 10  # the nose turns a quarter of the inter-ocular distance
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = (points[:1] - (60, 50)) @ rotation.T + (60, 50) + (5, 0)  # rolled about the eyes' midpoint, moved
    pose = landmark_head_pose(np.concatenate([points, rolled]))
    np.testing.assert_allclose(pose[:, 0], [0, 0, 30], atol=1e-9)
    np.testing.assert_allclose(pose[:2, 1], [0, 0.25], atol=1e-9)
    np.testing.assert_allclose(pose[:, 2], [60, 60, 65], atol=1e-9)
    np.testing.assert_allclose(pose[:, 3], [0.5, 0.5, 0.5], atol=1e-9)  # 20 below the eyes, 40 apart; rolled too
    np.testing.assert_allclose(pose[:, 4], [50, 50, 50], atol=1e-9)
    tipped = points[:1].copy()
    tipped[:, 30, 1] -= 8  # the nose tip rises toward the eyes: the head tips back
    assert landmark_head_pose(tipped)[0, 3] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="landmarks must be"):
        landmark_head_pose(np.zeros((3, 10, 2)))
    # a tensor gives the same pose as a tensor, differentiable (stage 2's head-motion loss)
    import torch

    tensor = torch.from_numpy(np.concatenate([points, rolled])).float().requires_grad_(True)
    from_tensor = landmark_head_pose(tensor)
    assert torch.is_tensor(from_tensor) and from_tensor.dtype == torch.float32
    np.testing.assert_allclose(from_tensor.detach().numpy(), pose, atol=1e-4)
    from_tensor[:, 3].sum().backward()
    assert tensor.grad[:, 30].abs().sum() > 0  # the nod moves with the nose tip
