"""Attention summaries of the interactive motion guider, the state helpers for tampered
tracks, and the stage-2 plots (they draw without error on small inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from infp_lab.metrics import swap_roles, without_partner
from infp_lab.stage2.attention import (attention_by_state, dominant_entries, entry_motion_profiles, peak_frames,
                                       summarise_attention)


def _attention(frames: int = 40, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(size), size=frames)


def test_summary_bounds_uniform_and_one_hot():
    size = 8
    uniform = np.full((3, size), 1.0 / size)
    one_hot = np.eye(size)[[2, 5, 5]]
    summary = summarise_attention(np.concatenate([uniform, one_hot]))
    assert np.allclose(summary.entropy[:3], np.log(size)) and np.allclose(summary.entropy[3:], 0.0, atol=1e-9)
    assert np.allclose(summary.peak, [1 / size] * 3 + [1.0] * 3)
    assert list(summary.argmax[3:]) == [2, 5, 5]


def test_dominant_entries_and_peak_frames():
    attention = np.full((10, 4), 0.1)
    attention[:6, 3], attention[6:, 1] = 0.7, 0.7  # entry 3 wins 6 frames, entry 1 wins 4
    assert dominant_entries(attention, 2) == [3, 1]
    attention[4, 3] = 0.9
    frames = peak_frames(attention, 3, count=2, min_gap=3)
    assert 4 in frames and len(frames) == 2 and abs(frames[1] - frames[0]) >= 3
    with pytest.raises(ValueError):
        peak_frames(attention, 4)


def test_entry_profiles_in_standard_deviations():
    attention = np.zeros((20, 3))
    attention[:10, 0], attention[10:, 1] = 1.0, 1.0  # entry 2 never wins
    motion = np.concatenate([np.zeros((10, 2)), np.ones((10, 2))])
    profiles = entry_motion_profiles(attention, motion, [0, 1, 2])
    assert np.allclose(profiles[0], -1.0, atol=1e-6) and np.allclose(profiles[1], 1.0, atol=1e-6)
    assert np.isnan(profiles[2]).all()
    with pytest.raises(ValueError):
        entry_motion_profiles(attention, motion[:5], [0])


def test_attention_by_state_covers_present_states():
    states = np.array([1] * 20 + [2] * 20)
    table = attention_by_state(_attention(), states, top=2)
    assert set(table) == {"self", "other"} and table["self"]["frames"] == 20
    assert len(table["other"]["top_entries"]) == 2


def test_state_helpers():
    states = np.array([0, 1, 2, 3])
    assert list(swap_roles(states)) == [0, 2, 1, 3]
    assert list(without_partner(states)) == [0, 1, 0, 1]
    assert list(swap_roles(swap_roles(states))) == list(states)


def test_stage2_plots_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infp_lab import viz
    from infp_lab.render import PARAM_NAMES

    rng = np.random.default_rng(0)
    verbal, nonverbal, states = _attention(50, 64), _attention(50, 64, seed=1), rng.integers(0, 4, 50)
    motion = rng.normal(size=(50, len(PARAM_NAMES)))
    figure = viz.attention_heatmap(verbal, nonverbal, 25, states)
    assert len(figure.data) == 3
    viz.plot_entry_profiles(entry_motion_profiles(verbal, motion, [0, 1]), [0, 1])
    viz.plot_motion_curves({"a": motion, "truth": motion}, states=states, speaking=states == 1, reference="truth")
    viz.plot_speaking_states(states, {"probe": states == 1})
    viz.plot_cfg_sweep({"1.0": {"lse_c": 1.0, "sid_pose": 2.0}, "2.0": {"lse_c": 2.0}, "ground_truth": {"lse_c": 3.0}})
    plt.close("all")
