"""Motion metrics of the listening-head literature (design.md section 8; reference.md
"Motion metrics"): FD, SID, Var and rPCC, computed on motion features (T, D) such as the
SynConv parameters or stage-2 motion latents, and a rough head pose from landmarks (the
project's layout, `render.face_model.LANDMARK_GROUPS`). numpy / scipy / scikit-learn.

- FD: Frechet distance between Gaussians fitted to real and generated features.
- SID: Shannon diversity index (entropy, natural log) of the histogram of k-means cluster
  assignments, the clusters fitted on REAL motion (k = 15 for expression, 9 for pose).
- Var: temporal variance of motion, averaged over sequences and dimensions.
- rPCC: |PCC(real, partner) - PCC(generated, partner)|: how well the coupling to the
  partner's signal is reproduced.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.stats import entropy
from sklearn.cluster import KMeans
import torch

from infp_lab.render.face_model import LANDMARK_GROUPS

EXPRESSION_CLUSTERS = 15  # the literature's k for expression features
POSE_CLUSTERS = 9  # and for head pose


def _as_2d(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim == 1:
        features = features[:, None]  # (N,) -> (N, 1)
    if features.ndim != 2:
        raise ValueError(f"{name} must be (N, D) features, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return features


def frechet_distance(real: np.ndarray, generated: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to two feature sets.

    Args:
        real: (N, D) features of real motion (N >= 2).
        generated: (M, D) features of generated motion (M >= 2).
        eps: diagonal offset added to both covariances when their product's square root
            is not finite (singular covariances, e.g. a constant dimension).

    Returns:
        ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)), never negative.
    """
    real, generated = _as_2d(real, "real"), _as_2d(generated, "generated")
    if real.shape[1] != generated.shape[1]:
        raise ValueError(f"feature sizes differ: real has {real.shape[1]}, generated {generated.shape[1]}")
    if len(real) < 2 or len(generated) < 2:
        raise ValueError("frechet_distance needs at least 2 samples in each set")
    mu_r, mu_g = real.mean(0), generated.mean(0)
    cov_r = np.atleast_2d(np.cov(real, rowvar=False))  # (D, D)
    cov_g = np.atleast_2d(np.cov(generated, rowvar=False))
    with warnings.catch_warnings():  # a singular product is expected (constant dims) and handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_r @ cov_g)
        if not np.all(np.isfinite(covmean)):  # regularise both covariances
            offset = np.eye(len(cov_r)) * eps
            covmean = linalg.sqrtm((cov_r + offset) @ (cov_g + offset))
    covmean = np.real(covmean)  # numerical error leaves tiny imaginary parts
    distance = np.sum((mu_r - mu_g) ** 2) + np.trace(cov_r) + np.trace(cov_g) - 2.0 * np.trace(covmean)
    return float(max(distance, 0.0))


@dataclass(frozen=True)
class MotionClusters:
    """k-means clusters of real motion features, for the Shannon diversity index."""

    kmeans: KMeans

    @property
    def k(self) -> int:
        return int(self.kmeans.n_clusters)

    def assign(self, features: np.ndarray) -> np.ndarray:
        """Cluster index per row: (N, D) -> (N,) int."""
        return self.kmeans.predict(_as_2d(features, "features"))

    def histogram(self, features: np.ndarray) -> np.ndarray:
        """Share of rows per cluster: (N, D) -> (k,) summing to 1."""
        counts = np.bincount(self.assign(features), minlength=self.k)
        return counts / max(counts.sum(), 1)

    def sid(self, features: np.ndarray) -> float:
        """Shannon diversity index (natural log) of the cluster usage: 0 (one cluster) .. ln(k)."""
        return float(entropy(self.histogram(features)))


def fit_clusters(real: np.ndarray, k: int, seed: int = 0) -> MotionClusters:
    """Fit k-means (k = 15 for expression, 9 for pose) on real motion features (N, D)."""
    real = _as_2d(real, "real")
    if len(real) < k:
        raise ValueError(f"cannot fit {k} clusters on {len(real)} samples")
    return MotionClusters(KMeans(n_clusters=k, n_init=10, random_state=seed).fit(real))


def motion_variance(sequences: list[np.ndarray]) -> float:
    """Var: temporal variance of each (T, D) or (T,) sequence, averaged over sequences and dims."""
    if len(sequences) == 0:
        raise ValueError("motion_variance needs at least one sequence")
    return float(np.mean([_as_2d(seq, "sequence").var(axis=0).mean() for seq in sequences]))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two (T,) signals; 0 when either is constant (no coupling)."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"signals differ in length: {x.shape} vs {y.shape}")
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator > 1e-12 else 0.0


def rpcc(real_self: np.ndarray, real_partner: np.ndarray, generated_self: np.ndarray) -> float:
    """rPCC of one dimension: |PCC(real, partner) - PCC(generated, partner)|, all (T,)."""
    return abs(pearson(real_self, real_partner) - pearson(generated_self, real_partner))


def rpcc_mean(real_self: list[np.ndarray], real_partner: list[np.ndarray],
              generated_self: list[np.ndarray]) -> float:
    """rPCC averaged over sequences and dimensions.

    Args:
        real_self: per sequence, (T, D) real motion of the avatar.
        real_partner: per sequence, the partner's signal, (T, D) paired dimension by
            dimension, or (T,) (e.g. the partner's audio energy) used for every dimension.
        generated_self: per sequence, (T, D) generated motion.
    """
    if not (len(real_self) == len(real_partner) == len(generated_self)) or not real_self:
        raise ValueError("rpcc_mean needs equally many (and at least one) real, partner and generated sequences")
    values = []
    for real, partner, generated in zip(real_self, real_partner, generated_self):
        real, generated = _as_2d(real, "real_self"), _as_2d(generated, "generated_self")
        partner = _as_2d(partner, "real_partner")
        if real.shape != generated.shape or len(partner) != len(real):
            raise ValueError(f"shapes differ: real {real.shape}, generated {generated.shape}, partner {partner.shape}")
        if partner.shape[1] not in (1, real.shape[1]):
            raise ValueError(f"partner has {partner.shape[1]} dims, expected 1 or {real.shape[1]}")
        for d in range(real.shape[1]):
            values.append(rpcc(real[:, d], partner[:, min(d, partner.shape[1] - 1)], generated[:, d]))
    return float(np.mean(values))


RIGHT_EYE_OUTER = LANDMARK_GROUPS["right_eye"][0]  # 36 (image left)
LEFT_EYE_OUTER = LANDMARK_GROUPS["left_eye"][3]  # 45 (image right)
NOSE_TIP = LANDMARK_GROUPS["nose"][3]  # 30


def landmark_head_pose(landmarks):
    """A rough head pose read from landmarks of the project's layout (T, L, 2) -> (T, 5):

    - roll: the angle of the line through the outer eye corners, in degrees;
    - turn: the nose tip's horizontal offset from the eyes' midpoint, in inter-ocular
      distances (a yaw proxy: 0 facing the camera);
    - the eyes' midpoint x, in the landmarks' units (where the head sits);
    - nod: the nose tip's offset from the eyes' midpoint across the eye line (downward when
      upright), in inter-ocular distances (a pitch proxy: it shrinks as the head tips back);
    - the eyes' midpoint y, in the landmarks' units.

    It needs no fitted model, so it reads generated and true motion alike, as the renderer
    is told it through the landmark head. A numpy array gives a float64 array; a torch
    tensor gives a tensor of its dtype, differentiable (stage 2's head-motion loss uses it).
    """
    is_tensor = torch.is_tensor(landmarks)
    points = landmarks if is_tensor else torch.as_tensor(np.asarray(landmarks, dtype=np.float64))
    if points.dim() != 3 or points.shape[1] <= LEFT_EYE_OUTER or points.shape[2] != 2:
        raise ValueError(f"landmarks must be (T, L > {LEFT_EYE_OUTER}, 2), got shape {tuple(points.shape)}")
    right, left, nose = points[:, RIGHT_EYE_OUTER], points[:, LEFT_EYE_OUTER], points[:, NOSE_TIP]
    middle = (right + left) / 2
    eye_line = left - right
    roll = torch.rad2deg(torch.atan2(eye_line[:, 1], eye_line[:, 0]))
    distance = eye_line.norm(dim=1).clamp(min=1e-6)
    turn = (nose[:, 0] - middle[:, 0]) / distance
    across = torch.stack([-eye_line[:, 1], eye_line[:, 0]], dim=1) / distance[:, None]  # eye line turned 90 deg
    nod = ((nose - middle) * across).sum(dim=1) / distance
    pose = torch.stack([roll, turn, middle[:, 0], nod, middle[:, 1]], dim=1)
    return pose if is_tensor else pose.numpy()
