"""infp-lab: a research workbench for INFP, audio-driven interactive head generation in
dyadic conversations (arXiv 2412.04037).

The public API is re-exported here and imported on first use, so `import infp_lab` stays
fast and torch is only loaded by the parts that need it.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    # data
    "load_audio": "infp_lab.data.audio",
    "audio_features": "infp_lab.data.audio",
    "AudioFeatureConfig": "infp_lab.data.audio",
    "AudioError": "infp_lab.data.audio",
    "Clip": "infp_lab.data.clip",
    "ClipFormatError": "infp_lab.data.clip",
    "load_clip": "infp_lab.data.clip",
    "write_clip": "infp_lab.data.clip",
    "list_clips": "infp_lab.data.clip",
    "STATE_NAMES": "infp_lab.data.clip",
    "DyadicClipDataset": "infp_lab.data.dataset",
    "generate_dataset": "infp_lab.data.synconv",
    # stage 1
    "HeadImitator": "infp_lab.stage1",
    "Stage1Config": "infp_lab.stage1",
    # stage 2
    "MotionGenerator": "infp_lab.stage2",
    "Stage2Config": "infp_lab.stage2",
    "generate": "infp_lab.stage2",
    "generate_from_audio": "infp_lab.stage2",
    "StreamingGenerator": "infp_lab.stage2",
    # metrics
    "frechet_distance": "infp_lab.metrics",
    "fit_clusters": "infp_lab.metrics",
    "MotionClusters": "infp_lab.metrics",
    "motion_variance": "infp_lab.metrics",
    "rpcc": "infp_lab.metrics",
    "rpcc_mean": "infp_lab.metrics",
    "SpeakingStateClassifier": "infp_lab.metrics",
    "transition_lags": "infp_lab.metrics",
    "mouth_opening_ratio": "infp_lab.metrics",
    "nod_rate": "infp_lab.metrics",
    "nod_timing": "infp_lab.metrics",
    # SyncNet-SynConv (LSE-C / LSE-D)
    "SyncNet": "infp_lab.syncnet",
    "SyncNetConfig": "infp_lab.syncnet",
    "mouth_crops": "infp_lab.syncnet",
    "sync_scores": "infp_lab.syncnet",
    "train_syncnet": "infp_lab.syncnet",
    # rendering
    "PARAM_NAMES": "infp_lab.render",
    "Appearance": "infp_lab.render",
    "sample_appearance": "infp_lab.render",
    "render_frame": "infp_lab.render",
    "render_frames": "infp_lab.render",
    "project_landmarks": "infp_lab.render",
    "write_video": "infp_lab.render.video",
    "read_video": "infp_lab.render.video",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'infp_lab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
