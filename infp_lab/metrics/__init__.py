"""Evaluation metrics (design.md section 8): the listening-head motion metrics (FD, SID,
Var, rPCC) and the interaction metrics (speaking-state accuracy, transition lag, mouth
opening while listening, nod rate and timing). Lip sync (LSE-C/LSE-D) lives in infp_lab.syncnet."""

from infp_lab.metrics.interaction import (
    NodTiming, SpeakingStateClassifier, TransitionLags, is_speaking, mouth_opening_ratio, nod_rate, nod_timing,
    swap_roles, transition_lags, window_features, without_partner,
)
from infp_lab.metrics.motion import (
    EXPRESSION_CLUSTERS, POSE_CLUSTERS, MotionClusters, fit_clusters, frechet_distance, landmark_head_pose,
    motion_variance, pearson, rpcc, rpcc_mean,
)

__all__ = [
    "EXPRESSION_CLUSTERS", "POSE_CLUSTERS", "MotionClusters", "fit_clusters", "frechet_distance",
    "landmark_head_pose", "motion_variance", "pearson", "rpcc", "rpcc_mean", "SpeakingStateClassifier",
    "TransitionLags", "is_speaking", "mouth_opening_ratio", "NodTiming", "nod_rate", "nod_timing", "swap_roles",
    "transition_lags",
    "window_features", "without_partner",
]
