"""Stage-2 measurements (design.md section 8; the issue's table), end to end from audio.

For every held-out clip, motion latents are generated from the clip's two voices alone,
continuing from the motion latent of the clip's first frame (the portrait), and rendered by
the stage-1 model from that frame; the same is done with the
ground-truth latents (the stage-1 encoder on the true frames), which shows what stage 1
alone costs. Reported beside the ground truth:

- SSIM and PSNR of the rendered frames against the true frames (torchmetrics);
- SyncScore (LSE-C / LSE-D) from SyncNet-SynConv, on the whole clip, for the true frames,
  the stage-1 reconstruction and the generated video;
- the motion metrics FD, SID, Var and rPCC, and jitter (the Var of the frame-to-frame
  change), on motion read from the latents: a linear map
  (ridge) from latents to SynConv's 15 motion parameters, fitted on the ground-truth
  latents of training clips and applied alike to true and generated latents (its
  regularisation chosen by cross-validation over whole clips: `MotionReader`);
- the interaction metrics: speaking-state accuracy (a classifier fitted on ground-truth
  motion of training clips, applied to generated motion), transition lag, mouth opening
  while only the partner speaks relative to while speaking, nod rate while listening;
- a cross-check of the head's motion that fits nothing: the variance of the roll, turn and
  nod read from the landmarks the renderer is told (`metrics.landmark_head_pose` of the
  first frame's landmarks moved by the landmark head), since the ridge map can misread
  latents unlike those it was fitted on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from tqdm.auto import tqdm

from infp_lab.data.audio import frame_energy
from infp_lab.data.clip import Clip, list_clips, load_clip
from infp_lab.metrics import (
    EXPRESSION_CLUSTERS, POSE_CLUSTERS, SpeakingStateClassifier, fit_clusters, frechet_distance, is_speaking,
    landmark_head_pose, motion_variance, mouth_opening_ratio, nod_rate, nod_timing, rpcc_mean, swap_roles,
    transition_lags,
)
from infp_lab.render import PARAM_NAMES
from infp_lab.stage1.inference import clip_frames, clip_landmarks, encode_clip, reenact
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.generate import (
    generate_from_audio, resolve_audio_scale, resolve_guidance_smoothing, resolve_pose_gain, resolve_pose_smoothing,
)
from infp_lab.stage2.model import MotionGenerator

EXPRESSION = [PARAM_NAMES.index(n) for n in ("jaw_open", "smile", "lip_round", "lip_press", "blink_left",
                                             "blink_right", "brow_raise", "gaze_x", "gaze_y")]
POSE = [PARAM_NAMES.index(n) for n in ("yaw", "pitch", "roll")]
JAW, PITCH = PARAM_NAMES.index("jaw_open"), PARAM_NAMES.index("pitch")
REFERENCE_CLIPS = 24  # training clips the metrics' reader, classifier and clusters learn from

# The INFP paper's main table (DyConv, 512x512): a different dataset and resolution, shown for scale only.
PAPER = {"infp": {"ssim": 0.834, "psnr": 31.56, "lse_c": 7.188, "sid": 2.613, "var": 2.386},
         "ground_truth": {"lse_c": 7.261, "sid": 2.891, "var": 2.435}}


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x, y)


def within_clip_r2(predicted: np.ndarray, truth: np.ndarray, groups: np.ndarray, columns: list[int]) -> float:
    """R^2 of motion (N, P) about each clip's mean (`groups`: the clip of each row), averaged
    over the `columns` that move."""
    predicted, truth = predicted[:, columns].copy(), truth[:, columns].copy()
    for g in np.unique(groups):
        rows = groups == g
        predicted[rows] -= predicted[rows].mean(axis=0)
        truth[rows] -= truth[rows].mean(axis=0)
    total = (truth ** 2).sum(axis=0)
    moving = total > 1e-12
    return float(np.mean(1 - ((predicted - truth) ** 2).sum(axis=0)[moving] / total[moving]))


class MotionReader:
    """Motion latents -> SynConv motion parameters, by ridge regression fitted on true pairs.

    The ridge's strength is chosen by cross-validation over whole clips, scored by the
    within-clip R^2 of the `columns` the metrics read (Var, SID and the rest measure motion
    within clips). Leaving out single frames instead would choose almost no regularisation:
    a frame's neighbours are near-copies of it. Such a map reads large motion into latent
    directions that true motion hardly uses, and generated latents may move along them.
    """

    ALPHAS = np.logspace(-3, 4, 15)

    def __init__(self, latents: list[np.ndarray], params: list[np.ndarray], columns: list[int] | None = None,
                 folds: int = 6, alpha: float | None = None):
        """`latents` (T_i, Dm) and `params` (T_i, P): one pair per clip, at least 2 clips.
        `alpha`: a fixed ridge strength instead of the cross-validated one."""
        from sklearn.model_selection import GroupKFold

        if len(latents) != len(params) or len(latents) < 2:
            raise ValueError(f"the motion reader needs the latents and params of at least 2 clips, "
                             f"got {len(latents)} latent and {len(params)} param sequences")
        for z, p in zip(latents, params):
            if np.ndim(z) != 2 or np.ndim(p) != 2 or len(z) != len(p):
                raise ValueError(f"each clip needs latents (T, Dm) and params (T, P) of one length, "
                                 f"got {np.shape(z)} and {np.shape(p)}")
        columns = list(range(np.shape(params[0])[1])) if columns is None else list(columns)
        x = np.concatenate(latents).astype(np.float64)
        y = np.concatenate(params).astype(np.float64)
        self.cv_scores = None  # (len(ALPHAS),) when the strength is cross-validated
        if alpha is None:
            groups = np.repeat(np.arange(len(latents)), [len(z) for z in latents])
            splits = list(GroupKFold(min(folds, len(latents))).split(x, y, groups))
            self.cv_scores = np.array([
                np.mean([within_clip_r2(_ridge(x[train], y[train], a).predict(x[test]), y[test], groups[test],
                                        columns) for train, test in splits])
                for a in self.ALPHAS])
            alpha = float(self.ALPHAS[np.argmax(self.cv_scores)])
        self.alpha = float(alpha)
        self.pipeline = _ridge(x, y, self.alpha)

    def __call__(self, latents: np.ndarray) -> np.ndarray:
        """(T, Dm) -> (T, 15) in PARAM_NAMES order."""
        return self.pipeline.predict(np.asarray(latents, np.float64))


class References:
    """What the metrics learn from ground-truth training clips: the latent-to-params reader,
    the speaking-state classifier and the motion clusters for SID."""

    def __init__(self, stage1: HeadImitator, clips: list[Clip]):
        self.num_clips = len(clips)
        synthetic = [c for c in clips if c.render_spec is not None]
        if len(synthetic) < 2:
            raise ValueError("stage-2 evaluation needs at least 2 SynConv training clips for its reference models")
        latents = [encode_clip(stage1, c).numpy() for c in synthetic]
        self.reader = MotionReader(latents, [c.motion["params"][:len(z)] for c, z in zip(synthetic, latents)],
                                   columns=EXPRESSION + POSE)
        motions = [self.reader(z) for z in latents]
        self.classifier = SpeakingStateClassifier().fit(motions, [c.motion["state"] for c in synthetic])
        real = np.concatenate(motions)
        self.expression_clusters = fit_clusters(real[:, EXPRESSION], EXPRESSION_CLUSTERS)
        self.pose_clusters = fit_clusters(real[:, POSE], POSE_CLUSTERS)

    @classmethod
    def from_training_clips(cls, stage1: HeadImitator, train_data: str | Path,
                            clips: int = REFERENCE_CLIPS) -> "References":
        """References learnt from the first `clips` clips of `train_data`'s train split."""
        return cls(stage1, [load_clip(p, load_audio_tracks=False) for p in list_clips(train_data, "train")[:clips]])


def uint8_video(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) in [0, 1] -> (T, H, W, 3) uint8."""
    return (frames.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


@torch.no_grad()
def _image_scores(frames: torch.Tensor, truth: torch.Tensor, batch: int = 64) -> tuple[float, float]:
    psnr, ssim = [], []
    for s in range(0, len(frames), batch):
        a, b = frames[s:s + batch], truth[s:s + batch]
        psnr.append(peak_signal_noise_ratio(a, b, data_range=1.0, reduction="none", dim=(1, 2, 3)))
        ssim.append(structural_similarity_index_measure(a, b, data_range=1.0, reduction="none"))
    return float(torch.cat(psnr).mean()), float(torch.cat(ssim).mean())


def _first_frame(stage1: HeadImitator, clip: Clip) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip's first frame (3, H, W) at the model's size and its landmarks (L, 2)."""
    return clip_frames(clip, stage1.config.image_size, np.array([0]))[0], clip_landmarks(clip, np.array([0]))[0]


def _driven_landmarks(stage1: HeadImitator, source: torch.Tensor, source_lm: torch.Tensor,
                      latents: torch.Tensor) -> np.ndarray:
    """The source's landmarks moved by the landmark head to `latents`: (T, L, 2) in pixels."""
    source_latent = stage1.encode_motion(source[None], source_lm[None])
    landmarks = stage1.driven_landmarks(source_lm[None].expand(len(latents), -1, -1),
                                        source_latent.expand(len(latents), -1), latents)
    return landmarks.numpy() * stage1.config.image_size


@torch.no_grad()
def first_frame_landmarks(stage1: HeadImitator, clip: Clip, latents: torch.Tensor) -> np.ndarray:
    """The clip's first-frame landmarks moved by the landmark head to `latents`: (T, L, 2) in
    pixels, what the renderer is told when it drives the first frame by them."""
    return _driven_landmarks(stage1, *_first_frame(stage1, clip), latents)


@torch.no_grad()
def render_first_frame(stage1: HeadImitator, clip: Clip, latents: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """The clip's first frame driven by `latents`: frames (T, 3, H, W) and their landmarks
    (T, L, 2) in pixels (the source's landmarks moved by the landmark head)."""
    source, source_lm = _first_frame(stage1, clip)
    return reenact(stage1, source, source_lm, latents), _driven_landmarks(stage1, source, source_lm, latents)


TRUTH_KEYS = ("true_latents", "sync_truth", "psnr_reconstruction", "ssim_reconstruction", "sync_reconstruction",
              "head_pose_reconstruction")
HEAD_POSE = {"roll": 0, "turn": 1, "nod": 3}  # columns of metrics.landmark_head_pose


def evaluate_clip(stage1: HeadImitator, stage2: MotionGenerator, syncnet, clip: Clip, audio_scale: float | None = None,
                  seed: int = 0, truth: dict | None = None, guidance_smoothing: float | None = None,
                  pose_gain: float | None = None, sampler: str | None = None, steps: int | None = None,
                  pose_smoothing: float | None = None) -> dict:
    """Ground-truth and generated latents, motion and scores of one clip.

    `truth`: an earlier result of the same clip (e.g. at another guidance scale) whose
    TRUTH_KEYS entries are reused instead of encoding, rendering and scoring the truth again.
    `audio_scale`, `guidance_smoothing`, `pose_gain`, `pose_smoothing`, `sampler`, `steps`: as in
    `generate` (None: the model's default).
    """
    from infp_lab.syncnet import sync_scores

    size = stage1.config.image_size
    true_latents = encode_clip(stage1, clip) if truth is None else torch.from_numpy(truth["true_latents"])
    generated = generate_from_audio(stage2, clip.self_audio, clip.other_audio, clip.sample_rate,
                                    audio_scale=audio_scale, seed=seed, start=true_latents[:1],
                                    guidance_smoothing=guidance_smoothing, pose_gain=pose_gain,
                                    pose_smoothing=pose_smoothing, sampler=sampler, steps=steps)
    frames = min(len(true_latents), len(generated.latents))
    truth_frames = clip_frames(clip, size, np.arange(frames))
    result = {"clip": clip.name, "frames": frames, "state": clip.motion["state"][:frames],
              "true_latents": true_latents[:frames].numpy(), "latents": generated.latents[:frames].numpy(),
              "verbal_attention": generated.verbal_attention[:frames].numpy(),
              "nonverbal_attention": generated.nonverbal_attention[:frames].numpy()}
    audio = clip.self_audio[: int(round(frames * clip.sample_rate / clip.fps))]
    renders = [("generated", generated.latents[:frames])]
    if truth is None:
        true_lm = clip_landmarks(clip, np.arange(frames)).numpy() * size
        result["sync_truth"] = sync_scores(syncnet, uint8_video(truth_frames), true_lm, audio)
        renders.insert(0, ("reconstruction", true_latents[:frames]))
    else:
        result.update({k: truth[k] for k in TRUTH_KEYS if k != "true_latents"})
    for name, latents in renders:
        video, landmarks = render_first_frame(stage1, clip, latents)
        result[f"psnr_{name}"], result[f"ssim_{name}"] = _image_scores(video, truth_frames)
        result[f"sync_{name}"] = sync_scores(syncnet, uint8_video(video), landmarks, audio)
        result[f"head_pose_{name}"] = landmark_head_pose(landmarks)  # (T, 5)
    result["partner_energy"] = frame_energy(clip.other_audio, clip.sample_rate, clip.fps, num_frames=frames)
    return result


def _summary(motions: list[np.ndarray], states: list[np.ndarray], partner: list[np.ndarray],
             real: list[np.ndarray], refs: References) -> dict:
    """Motion and interaction metrics of one set of motion sequences (T, 15)."""
    speaking = [is_speaking(s) for s in states]
    predicted = [refs.classifier.predict(m) for m in motions]
    lags = [transition_lags(t, p) for t, p in zip(speaking, predicted)]
    all_lags = [x for lag in lags for x in lag.lags]
    misses = sum(len(lag.misses) for lag in lags)
    joined = np.concatenate(motions)
    timing = np.sum([nod_timing(m[:, PITCH], ~sp, is_speaking(swap_roles(s)))
                     for m, sp, s in zip(motions, speaking, states)], axis=0)  # summed counts of all clips
    return {
        "state_accuracy": float(np.mean(np.concatenate([p == t for p, t in zip(predicted, speaking)]))),
        "transition_lag_s": float(np.mean(all_lags)) if all_lags else float("nan"),
        "transition_miss_rate": misses / max(1, misses + len(all_lags)),
        "mouth_listening_over_speaking": float(np.nanmean([mouth_opening_ratio(np.clip(m[:, JAW], 0, None), s)
                                                           for m, s in zip(motions, states)])),
        "nods_per_min_listening": float(np.nanmean([nod_rate(m[:, PITCH], ~sp) for m, sp in zip(motions, speaking)])),
        # share of the listening nods that peak just after the partner ends a phrase, and of a random one
        "nods_after_partner_phrase": float(timing[1] / timing[0]) if timing[0] else float("nan"),
        "nods_after_partner_phrase_chance": float(timing[2] / timing[3]) if timing[3] else float("nan"),
        "sid_expression": refs.expression_clusters.sid(joined[:, EXPRESSION]),
        "sid_pose": refs.pose_clusters.sid(joined[:, POSE]),
        "var_expression": motion_variance([m[:, EXPRESSION] for m in motions]),
        "var_pose": motion_variance([m[:, POSE] for m in motions]),
        # Var of the frame-to-frame change: high-frequency shake, which Var alone mixes with slow motion
        "jitter_expression": motion_variance([np.diff(m[:, EXPRESSION], axis=0) for m in motions]),
        "jitter_pose": motion_variance([np.diff(m[:, POSE], axis=0) for m in motions]),
        "fd_expression": frechet_distance(np.concatenate(real)[:, EXPRESSION], joined[:, EXPRESSION]),
        "fd_pose": frechet_distance(np.concatenate(real)[:, POSE], joined[:, POSE]),
        "rpcc": rpcc_mean(real, partner, motions),
    }


def _head_pose_summary(poses: list[np.ndarray]) -> dict:
    """Var of the roll (deg^2), turn and nod (inter-ocular distances^2) of landmark head poses (T, 5)."""
    return {f"var_head_{name}": motion_variance([p[:, column] for p in poses]) for name, column in HEAD_POSE.items()}


def motion_summary(latents: list[np.ndarray], true_latents: list[np.ndarray], states: list[np.ndarray],
                   partner_energy: list[np.ndarray], refs: References) -> dict:
    """The report's motion and interaction metrics of generated latents (each (T, D)) against
    the true ones, without rendering: {"ground_truth": ..., "generated": ...} (no lip sync,
    PSNR or landmark head pose)."""
    real = [refs.reader(z) for z in true_latents]
    return {"ground_truth": _summary(real, states, partner_energy, real, refs),
            "generated": _summary([refs.reader(z) for z in latents], states, partner_energy, real, refs)}


def summarise(results: list[dict], refs: References) -> dict:
    """The report's table from per-clip results: ground truth, stage-1 reconstruction and generated."""
    states = [r["state"] for r in results]
    partner = [r["partner_energy"] for r in results]
    true_motion = [refs.reader(r["true_latents"]) for r in results]
    generated = [refs.reader(r["latents"]) for r in results]

    def sync(key: str) -> dict:
        return {"lse_c": float(np.mean([r[key].lse_c for r in results])),
                "lse_d": float(np.mean([r[key].lse_d for r in results])),
                "offset_abs_mean": float(np.mean([abs(r[key].offset) for r in results]))}

    table = {
        "ground_truth": {**sync("sync_truth"), **_summary(true_motion, states, partner, true_motion, refs),
                         **_head_pose_summary([r["head_pose_reconstruction"] for r in results])},
        "stage1_reconstruction": {"psnr": float(np.mean([r["psnr_reconstruction"] for r in results])),
                                  "ssim": float(np.mean([r["ssim_reconstruction"] for r in results])),
                                  **sync("sync_reconstruction")},
        "generated": {"psnr": float(np.mean([r["psnr_generated"] for r in results])),
                      "ssim": float(np.mean([r["ssim_generated"] for r in results])),
                      **sync("sync_generated"), **_summary(generated, states, partner, true_motion, refs),
                      **_head_pose_summary([r["head_pose_generated"] for r in results])},
    }
    truth, gen = table["ground_truth"], table["generated"]

    def within(key: str, tolerance: float = 0.2) -> bool:
        return bool(abs(gen[key] - truth[key]) <= tolerance * abs(truth[key]))

    table["targets"] = {
        "state_accuracy>=0.9": gen["state_accuracy"] >= 0.9,
        "mouth_listening<=25%": gen["mouth_listening_over_speaking"] <= 0.25,
        "lse_c_within_20%": within("lse_c"),
        "sid_within_20%": within("sid_expression") and within("sid_pose"),
        "var_within_20%": within("var_expression") and within("var_pose"),
    }
    table["paper"] = PAPER
    return table


def evaluate_stage2(stage2_weights: str | Path, stage1_weights: str | Path, syncnet_weights: str | Path,
                    data: str | Path, train_data: str | Path, split: str | None = "test",
                    reference_clips: int = REFERENCE_CLIPS,
                    max_clips: int | None = None, audio_scale: float | None = None, seed: int = 0,
                    progress: bool = True, guidance_smoothing: float | None = None,
                    pose_gain: float | None = None, pose_smoothing: float | None = None,
                    mouth_composite: bool | None = None) -> tuple[dict, list[dict]]:
    """The full stage-2 report of one weights file on one split -> (report, per-clip results).
    The sampling settings left out (None) are the model's defaults, and the stage-1 renderer
    draws the mouth by geometry or not as its weights say unless `mouth_composite` is given;
    the report records the settings used."""
    from infp_lab.syncnet import SyncNet

    stage1 = HeadImitator.from_pretrained(stage1_weights, mouth_composite=mouth_composite)
    stage2 = MotionGenerator.from_pretrained(stage2_weights)
    if stage1.config.latent_dim != stage2.config.latent_dim:
        raise ValueError(f"stage-2 weights generate {stage2.config.latent_dim}-d latents but the stage-1 model "
                         f"uses {stage1.config.latent_dim}-d ones: pass the stage-1 weights stage 2 was trained on")
    syncnet = SyncNet.from_pretrained(syncnet_weights)
    for model in (stage1, stage2, syncnet):
        model.eval()
    paths = list_clips(data, split)[:max_clips]
    if not paths:
        raise ValueError(f"{data} has no clips in split {split!r}")
    refs = References.from_training_clips(stage1, train_data, reference_clips)
    results = [evaluate_clip(stage1, stage2, syncnet, load_clip(p), audio_scale, seed,
                             guidance_smoothing=guidance_smoothing, pose_gain=pose_gain,
                             pose_smoothing=pose_smoothing)
               for p in tqdm(paths, desc="eval stage2", disable=not progress)]
    report = {"stage2_weights": Path(stage2_weights).name, "stage1_weights": Path(stage1_weights).name,
              "syncnet_weights": Path(syncnet_weights).name, "data": Path(data).name, "split": split,
              "clips": len(results), "reference_clips": refs.num_clips,
              "audio_scale": resolve_audio_scale(stage2, audio_scale),
              "guidance_smoothing": resolve_guidance_smoothing(stage2, guidance_smoothing),
              "pose_gain": resolve_pose_gain(stage2, pose_gain),
              "pose_smoothing": resolve_pose_smoothing(stage2, pose_smoothing), "seed": seed,
              "mouth_composite": stage1.config.decoder.mouth_composite,
              "motion_reader_alpha": refs.reader.alpha, **summarise(results, refs)}
    return report, results
