"""Reading the interactive motion guider's attention (design.md section 5).

Each memory bank's attention is a distribution over its K entries for every frame
(`GenerationOutput.verbal_attention`, `.nonverbal_attention`, (T, K), rows sum to 1). These
helpers summarise it per frame (entropy, peak weight, winning entry) and relate entries to
the motion generated where they win. The relation is an association, not a cause: the
denoiser sees both banks' read-outs mixed together, plus the previous motion.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class AttentionSummary(NamedTuple):
    """Per-frame summary of one bank's attention (T, K)."""

    entropy: np.ndarray  # (T,) nats; log(K) for uniform attention, 0 when one entry takes all
    peak: np.ndarray  # (T,) largest weight; 1/K for uniform attention
    argmax: np.ndarray  # (T,) int, the entry with the largest weight


def _attention(attention) -> np.ndarray:
    weights = np.asarray(attention.detach().cpu() if hasattr(attention, "detach") else attention, np.float64)
    if weights.ndim != 2 or weights.shape[1] < 1:
        raise ValueError(f"attention must be (T, K), got shape {weights.shape}")
    return weights


def summarise_attention(attention) -> AttentionSummary:
    """Entropy, peak weight and winning entry of each frame of one bank's attention (T, K)."""
    weights = _attention(attention)
    logs = np.log(np.clip(weights, 1e-12, None))
    return AttentionSummary(-(weights * logs).sum(axis=1), weights.max(axis=1), weights.argmax(axis=1))


def dominant_entries(attention, count: int = 3) -> list[int]:
    """The `count` entries that win (hold the largest weight on) the most frames, most first.

    Ties are broken by the total weight an entry receives over the clip.
    """
    weights = _attention(attention)
    wins = np.bincount(weights.argmax(axis=1), minlength=weights.shape[1])
    order = np.lexsort((-weights.sum(axis=0), -wins))  # wins first, then total weight
    return [int(k) for k in order[:count]]


def peak_frames(attention, entry: int, count: int = 4, min_gap: int = 5) -> np.ndarray:
    """Frames where `entry` has its largest weights, at least `min_gap` frames apart, in time order."""
    weights = _attention(attention)
    if not 0 <= entry < weights.shape[1]:
        raise ValueError(f"entry must be in [0, {weights.shape[1]}), got {entry}")
    chosen: list[int] = []
    for frame in np.argsort(-weights[:, entry], kind="stable"):
        if all(abs(int(frame) - c) >= min_gap for c in chosen):
            chosen.append(int(frame))
        if len(chosen) == count:
            break
    return np.array(sorted(chosen), dtype=int)


def entry_motion_profiles(attention, motion: np.ndarray, entries: list[int]) -> np.ndarray:
    """How the motion differs where each entry wins: (len(entries), D) in standard deviations.

    For each entry, the mean motion (T, D) over the frames it wins, minus the mean over all
    frames, divided by the per-dimension std over all frames. NaN for an entry that wins no
    frame.
    """
    weights, motion = _attention(attention), np.asarray(motion, np.float64)
    if motion.ndim != 2 or len(motion) != len(weights):
        raise ValueError(f"motion must be (T, D) with T = {len(weights)}, got shape {motion.shape}")
    winners = weights.argmax(axis=1)
    mean, std = motion.mean(axis=0), motion.std(axis=0) + 1e-8
    rows = [((motion[winners == k].mean(axis=0) - mean) / std) if np.any(winners == k)
            else np.full(motion.shape[1], np.nan) for k in entries]
    return np.stack(rows)


def attention_by_state(attention, states: np.ndarray, top: int = 3) -> dict[str, dict]:
    """Per speaking state (STATE_NAMES), the bank's frames, mean peak weight, mean entropy and
    the `top` entries that win the most of those frames: {state: {...}}; states with no frame
    are left out."""
    from infp_lab.data.clip import STATE_NAMES

    weights, states = _attention(attention), np.asarray(states)
    if states.shape != (len(weights),):
        raise ValueError(f"states must be ({len(weights)},), got shape {states.shape}")
    summary = summarise_attention(weights)
    table = {}
    for code, name in enumerate(STATE_NAMES):
        keep = states == code
        if keep.any():
            table[name] = {"frames": int(keep.sum()), "peak": float(summary.peak[keep].mean()),
                           "entropy": float(summary.entropy[keep].mean()),
                           "top_entries": dominant_entries(weights[keep], top)}
    return table
