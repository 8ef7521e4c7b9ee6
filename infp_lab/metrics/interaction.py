"""Interaction metrics none of the peers report (design.md section 8): does the generated
motion show WHO is speaking, how fast does it follow a turn change, does the mouth stay
calm while listening, and does the head nod while listening.

- `SpeakingStateClassifier`: a probe trained on ground-truth motion of training clips
  (windowed statistics -> is the avatar speaking); applied to generated motion, its
  accuracy against the true states measures whether the motion carries the role.
- `transition_lags`: delay from each true turn change to the prediction following it.
- `mouth_opening_ratio`: mouth opening while only the partner speaks / while only the
  avatar speaks (small is good: a listener's mouth is mostly closed).
- `nod_rate`: nods per minute on listening frames (scipy.signal.find_peaks on pitch).
- `nod_timing`: how many of the listener's nods come just after the partner ends a phrase
  (SynConv's listeners nod there), against the share a nod placed at random would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

SPEAKING_STATES = (1, 3)  # STATE_NAMES "self" and "both": the avatar speaks
NOD_PROMINENCE_DEG = 2.0  # a nod: pitch (+ = chin down) rises and falls back by at least this
NOD_WINDOW_S = 1.0  # ... measured within this window, so slow drift is not a nod
NOD_MIN_GAP_S = 0.3  # two nods are at least this far apart
NOD_AFTER_PHRASE_S = 1.5  # a nod "answers" the partner when it peaks this soon after a phrase ends


def is_speaking(states: np.ndarray) -> np.ndarray:
    """Per-frame speaking flag of the avatar from clip states (T,) int: (T,) bool."""
    return np.isin(np.asarray(states), SPEAKING_STATES)


def swap_roles(states: np.ndarray) -> np.ndarray:
    """Clip states (T,) seen from the partner's side: "self" and "other" exchanged."""
    states = np.asarray(states)
    swapped = states.copy()
    swapped[states == 1], swapped[states == 2] = 2, 1
    return swapped


def without_partner(states: np.ndarray) -> np.ndarray:
    """Clip states (T,) as if the partner's track were silent: "other" -> "none", "both" -> "self"."""
    states = np.asarray(states)
    silenced = states.copy()
    silenced[states == 2], silenced[states == 3] = 0, 1
    return silenced


def window_features(motion: np.ndarray, half_window: int = 12) -> np.ndarray:
    """Mean, std and mean |velocity| of each dim over a centred window: (T, D) -> (T, 3D)."""
    motion = np.asarray(motion, np.float64)
    if motion.ndim != 2 or len(motion) == 0:
        raise ValueError(f"motion must be (T, D) with T > 0, got shape {motion.shape}")
    size = 2 * half_window + 1
    mean = uniform_filter1d(motion, size, axis=0, mode="nearest")  # (T, D)
    square = uniform_filter1d(motion**2, size, axis=0, mode="nearest")
    std = np.sqrt(np.maximum(square - mean**2, 0.0))
    velocity = np.abs(np.diff(motion, axis=0, prepend=motion[:1]))  # (T, D)
    speed = uniform_filter1d(velocity, size, axis=0, mode="nearest")
    return np.concatenate([mean, std, speed], axis=1)  # (T, 3D)


class SpeakingStateClassifier:
    """Speaking-or-not probe on windowed motion statistics (StandardScaler + LogisticRegression)."""

    def __init__(self, half_window: int = 12, pipeline: Pipeline | None = None):
        self.half_window = half_window
        self.pipeline = pipeline

    def fit(self, motions: list[np.ndarray], states: list[np.ndarray]) -> "SpeakingStateClassifier":
        """Fit on ground-truth motion (T, D) and clip states (T,) of training clips."""
        if len(motions) != len(states) or not motions:
            raise ValueError("fit needs equally many (and at least one) motion and state sequences")
        features, labels = [], []
        for motion, state in zip(motions, states):
            if len(motion) != len(state):
                raise ValueError(f"motion has {len(motion)} frames but states {len(state)}")
            features.append(window_features(motion, self.half_window))
            labels.append(is_speaking(state))
        x, y = np.concatenate(features), np.concatenate(labels)
        if y.all() or not y.any():
            raise ValueError("the training states hold only one class (speaking or not)")
        self.pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        self.pipeline.fit(x, y)
        return self

    def _check(self) -> Pipeline:
        if self.pipeline is None:
            raise ValueError("the speaking-state classifier is not fitted (call fit or load)")
        return self.pipeline

    def predict(self, motion: np.ndarray) -> np.ndarray:
        """Is the avatar speaking: (T, D) -> (T,) bool."""
        return self._check().predict(window_features(motion, self.half_window)).astype(bool)

    def accuracy(self, motion: np.ndarray, states: np.ndarray, balanced: bool = False) -> float:
        """Frame accuracy of the prediction against clip states (T,) (balanced: mean per-class recall)."""
        score = balanced_accuracy_score if balanced else accuracy_score
        return float(score(is_speaking(states), self.predict(motion)))

    def save(self, path: str | Path) -> Path:
        """Write the fitted scaler and logistic coefficients as JSON (no pickle)."""
        scaler, logistic = self._check()[0], self._check()[1]
        path = Path(path)
        path.write_text(json.dumps({
            "kind": "infp-lab/speaking-state-classifier", "half_window": self.half_window,
            "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
            "coef": logistic.coef_.tolist(), "intercept": logistic.intercept_.tolist(),
        }))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SpeakingStateClassifier":
        """Rebuild a classifier written by `save`."""
        data = json.loads(Path(path).read_text())
        if data.get("kind") != "infp-lab/speaking-state-classifier":
            raise ValueError(f"{path} is not a speaking-state classifier file")
        scaler = StandardScaler()
        scaler.mean_, scaler.scale_ = np.array(data["mean"]), np.array(data["scale"])
        scaler.var_ = scaler.scale_**2
        scaler.n_features_in_, scaler.n_samples_seen_ = len(scaler.mean_), 1
        logistic = LogisticRegression()
        logistic.coef_, logistic.intercept_ = np.array(data["coef"]), np.array(data["intercept"])
        logistic.classes_, logistic.n_features_in_ = np.array([False, True]), len(scaler.mean_)
        return cls(int(data["half_window"]), Pipeline([("standardscaler", scaler), ("logisticregression", logistic)]))


class TransitionLags(NamedTuple):
    """Delays after true state changes."""

    lags: list[float]  # seconds from each matched change to the prediction taking the new value
    misses: list[float]  # times (seconds) of changes the prediction did not follow within max_lag

    @property
    def miss_rate(self) -> float:
        total = len(self.lags) + len(self.misses)
        return len(self.misses) / total if total else float("nan")


def transition_lags(true_speaking: np.ndarray, predicted_speaking: np.ndarray, fps: int = 25,
                    max_lag_s: float = 2.0, hold: int = 3) -> TransitionLags:
    """Delay from each change of the true state until the prediction takes the new value.

    Args:
        true_speaking, predicted_speaking: (T,) bool.
        fps: frames per second.
        max_lag_s: a change not followed within this many seconds is a miss.
        hold: the prediction must keep the new value this many frames to count.

    Returns:
        TransitionLags(lags, misses). Lags are >= 0 (a prediction that already holds the new
        value counts as 0). A change near the clip's end whose search window is cut short and
        that is not matched is left out (neither lag nor miss).
    """
    truth, predicted = np.asarray(true_speaking, bool), np.asarray(predicted_speaking, bool)
    if truth.shape != predicted.shape or truth.ndim != 1:
        raise ValueError(f"true and predicted must be (T,) of equal length, got {truth.shape} and {predicted.shape}")
    max_lag = int(round(max_lag_s * fps))
    lags, misses = [], []
    for change in np.flatnonzero(truth[1:] != truth[:-1]) + 1:
        value, found = truth[change], None
        for start in range(change, min(change + max_lag, len(truth) - hold) + 1):
            if np.all(predicted[start:start + hold] == value):
                found = start
                break
        if found is not None:
            lags.append((found - change) / fps)
        elif change + max_lag + hold <= len(truth):
            misses.append(change / fps)
    return TransitionLags(lags, misses)


def mouth_opening_ratio(mouth_open: np.ndarray, states: np.ndarray) -> float:
    """Mean mouth opening where only the partner speaks / where only the avatar speaks.

    NaN when either set of frames is empty or the avatar's mouth never opens while speaking.
    """
    mouth_open, states = np.asarray(mouth_open, np.float64), np.asarray(states)
    if mouth_open.shape != states.shape:
        raise ValueError(f"mouth_open {mouth_open.shape} and states {states.shape} differ in shape")
    listening, speaking = mouth_open[states == 2], mouth_open[states == 1]  # "other", "self"
    if len(listening) == 0 or len(speaking) == 0 or speaking.mean() <= 0:
        return float("nan")
    return float(listening.mean() / speaking.mean())


def _nod_peaks(pitch: np.ndarray, listening: np.ndarray, fps: int, prominence: float) -> np.ndarray:
    """Frames of the nods (see `nod_rate`) whose peak is a listening frame."""
    if pitch.shape != listening.shape or pitch.ndim != 1:
        raise ValueError(f"pitch and listening must be (T,) of equal length, got {pitch.shape} and {listening.shape}")
    window = int(round(NOD_WINDOW_S * fps)) | 1  # odd
    peaks, _ = find_peaks(pitch, prominence=prominence, wlen=window,
                          distance=max(1, int(round(NOD_MIN_GAP_S * fps))))
    return peaks[listening[peaks]]


def nod_rate(pitch: np.ndarray, listening: np.ndarray, fps: int = 25,
             prominence: float = NOD_PROMINENCE_DEG) -> float:
    """Nods per minute of listening frames.

    A nod is a peak of pitch (degrees, + = chin down: down, then back up) with a prominence
    of at least `prominence` degrees measured within a NOD_WINDOW_S window (slow drift is
    not a nod), peaks at least NOD_MIN_GAP_S apart; a nod counts when its peak frame is a
    listening frame. SynConv's listener nods are 3-10 degrees, its idle drift ~1.5 degrees
    spread at 0.12 Hz. NaN when there is no listening frame.

    The caller picks the mask: SynConv places listener nods just after the partner's phrase
    ends (state "none" more often than "other"), so `~is_speaking(states)` counts them,
    `states == 2` mostly does not.
    """
    pitch, listening = np.asarray(pitch, np.float64), np.asarray(listening, bool)
    peaks = _nod_peaks(pitch, listening, fps, prominence)
    if not listening.any():
        return float("nan")
    return len(peaks) / (listening.sum() / fps / 60.0)


class NodTiming(NamedTuple):
    """Listening nods, those of them that peak within NOD_AFTER_PHRASE_S after the partner
    ends a phrase, and the listening frames in those windows out of all listening frames
    (`after / nods` is what to compare with `window_frames / listening_frames`: the share a
    nod at a random listening frame would have). Counts, so clips can be pooled by summing."""

    nods: int
    after: int
    window_frames: int
    listening_frames: int


def nod_timing(pitch: np.ndarray, listening: np.ndarray, partner_speaking: np.ndarray, fps: int = 25,
               after_s: float = NOD_AFTER_PHRASE_S, prominence: float = NOD_PROMINENCE_DEG) -> NodTiming:
    """Whether the listener's nods (see `nod_rate`) answer the partner: how many peak within
    `after_s` seconds after the partner stops speaking. All inputs (T,); `partner_speaking`
    bool, e.g. `is_speaking(swap_roles(states))`."""
    pitch, listening = np.asarray(pitch, np.float64), np.asarray(listening, bool)
    partner = np.asarray(partner_speaking, bool)
    if partner.shape != listening.shape:
        raise ValueError(f"partner_speaking {partner.shape} and listening {listening.shape} differ in shape")
    peaks = _nod_peaks(pitch, listening, fps, prominence)
    window = np.zeros_like(partner)
    for end in np.flatnonzero(partner[:-1] & ~partner[1:]) + 1:  # first silent frame after a phrase
        window[end:end + int(round(after_s * fps))] = True
    return NodTiming(len(peaks), int(window[peaks].sum()), int((window & listening).sum()), int(listening.sum()))
