"""Stage-1 measurements (design.md sections 4 and 8) on held-out clips:

- self-reenactment PSNR / SSIM (torchmetrics), beside the "copy the source frame" baseline;
- cross-identity reenactment: the landmark head on the re-encoded output against the
  driver's landmark-head targets (canonical-face landmarks of the driver's motion for
  SynConv; normalised by the inter-ocular distance), beside the error of the source's own
  motion (what no transfer would score), and whether the output's appearance features are
  still closest to the source's;
- disentanglement: linear probes (scikit-learn) from motion latents to the ground-truth
  motion parameters (R^2 on held-out clips) and to identity (accuracy on held-out frames,
  against chance), and the same identity probe on appearance features for contrast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from infp_lab.data.clip import Clip, list_clips, load_clip
from infp_lab.render import LANDMARK_GROUPS
from infp_lab.stage1.data import head_targets
from infp_lab.stage1.model import HeadImitator


def _frames(clip: Clip, size: int, indices: np.ndarray) -> torch.Tensor:
    """Selected frames (N, 3, size, size) in [0, 1]."""
    if clip.render_spec is not None:
        from infp_lab.render import Appearance, render_frames

        images = render_frames(clip.motion["params"][indices], Appearance.from_dict(clip.render_spec["appearance"]), size)
    else:
        images = clip.frames(size)[indices]
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def _landmarks(clip: Clip, indices: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((clip.landmarks()[indices] / clip.base_size).astype(np.float32))


def interocular(landmarks: torch.Tensor) -> torch.Tensor:
    """Distance between the outer eye corners (B,) of landmarks (B, L, 2)."""
    right, left = LANDMARK_GROUPS["right_eye"][0], LANDMARK_GROUPS["left_eye"][3]
    return (landmarks[:, right] - landmarks[:, left]).norm(dim=-1)


def normalised_landmark_error(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean point distance divided by the target's inter-ocular distance: (B,)."""
    return (predicted - target).norm(dim=-1).mean(dim=-1) / interocular(target).clamp(min=1e-3)


@torch.no_grad()
def collect(model: HeadImitator, clips: list[Clip], frames_per_clip: int, seed: int) -> dict:
    """Motion latents, pooled appearance features, params and identities of sampled frames."""
    size = model.config.image_size
    rng = np.random.default_rng(seed)
    latents, appearance, params, identity, clip_ids = [], [], [], [], []
    for k, clip in enumerate(clips):
        idx = np.sort(rng.choice(clip.num_frames, size=min(frames_per_clip, clip.num_frames), replace=False))
        images, lms = _frames(clip, size, idx), _landmarks(clip, idx)
        latents.append(model.encode_motion(images, lms))
        feat = model.encode_appearance(images)
        appearance.append(feat.flatten(2).mean(dim=-1))  # (N, C): pooled over space (and depth)
        if clip.motion["params"].shape[1]:
            params.append(torch.from_numpy(clip.motion["params"][idx]))
        identity += [clip.meta["identity"]] * len(idx)
        clip_ids += [k] * len(idx)
    return {"latents": torch.cat(latents).numpy(), "appearance": torch.cat(appearance).numpy(),
            "params": torch.cat(params).numpy() if params else None,
            "identity": np.array(identity), "clip": np.array(clip_ids)}


def probe_params(latents: np.ndarray, params: np.ndarray, clip_ids: np.ndarray, names: list[str]) -> dict:
    """Ridge regression latents -> params, fitted on half the clips, R^2 on the other half."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    held_out = clip_ids % 2 == 1
    scaler = StandardScaler().fit(latents[~held_out])
    probe = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(scaler.transform(latents[~held_out]), params[~held_out])
    predicted = probe.predict(scaler.transform(latents[held_out]))
    per_param = r2_score(params[held_out], predicted, multioutput="raw_values")
    return {"r2_mean": float(np.mean(per_param)),
            "r2_variance_weighted": float(r2_score(params[held_out], predicted, multioutput="variance_weighted")),
            "r2_per_param": {n: round(float(v), 4) for n, v in zip(names, per_param)}}


def probe_identity(features: np.ndarray, identity: np.ndarray) -> dict:
    """Logistic regression features -> identity, fitted on even frames, accuracy on odd ones."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    order = np.arange(len(identity))
    train = order % 2 == 0
    scaler = StandardScaler().fit(features[train])
    probe = LogisticRegression(max_iter=2000, C=1.0).fit(scaler.transform(features[train]), identity[train])
    accuracy = float((probe.predict(scaler.transform(features[~train])) == identity[~train]).mean())
    return {"accuracy": accuracy, "chance": 1.0 / len(np.unique(identity)), "identities": int(len(np.unique(identity)))}


@torch.no_grad()
def reenactment(model: HeadImitator, clips: list[Clip], pairs_per_clip: int, seed: int) -> dict:
    """Self- and cross-identity reenactment metrics over the clips."""
    size = model.config.image_size
    rng = np.random.default_rng(seed)
    psnr, ssim, copy_psnr, copy_ssim, cross_err, cross_base, keeps_source = [], [], [], [], [], [], []
    for k, clip in enumerate(clips):
        src_idx = rng.integers(clip.num_frames, size=pairs_per_clip)
        drv_idx = rng.integers(clip.num_frames, size=pairs_per_clip)
        source, driving = _frames(clip, size, src_idx), _frames(clip, size, drv_idx)
        src_lm, drv_lm = _landmarks(clip, src_idx), _landmarks(clip, drv_idx)
        image = model(source, src_lm, driving, drv_lm).image.clamp(0, 1)
        psnr.append(peak_signal_noise_ratio(image, driving, data_range=1.0, reduction="none", dim=(1, 2, 3)))
        ssim.append(structural_similarity_index_measure(image, driving, data_range=1.0, reduction="none"))
        copy_psnr.append(peak_signal_noise_ratio(source, driving, data_range=1.0, reduction="none", dim=(1, 2, 3)))
        copy_ssim.append(structural_similarity_index_measure(source, driving, data_range=1.0, reduction="none"))

        # Cross-identity: drive this clip's source with the next clip's motion.
        other = clips[(k + 1) % len(clips)]
        other_idx = rng.integers(other.num_frames, size=pairs_per_clip)
        other_frames, other_lm = _frames(other, size, other_idx), _landmarks(other, other_idx)
        driver_latent = model.encode_motion(other_frames, other_lm)
        appearance = model.encode_appearance(source)
        crossed, *_ = model.render(source, appearance, model.encode_motion(source, src_lm), driver_latent)
        crossed = crossed.clamp(0, 1)
        predicted_lm = model.landmark_head(driver_latent)
        reencoded = model.landmark_head(model.encode_motion(crossed, predicted_lm))
        driver_truth = torch.from_numpy(head_targets(other)[other_idx])  # landmark-head targets of the driver
        own_truth = torch.from_numpy(head_targets(clip)[src_idx])
        cross_err.append(normalised_landmark_error(reencoded, driver_truth))
        cross_base.append(normalised_landmark_error(own_truth, driver_truth))
        pooled = [model.encode_appearance(x).flatten(2).mean(-1) for x in (crossed, source, other_frames)]
        to_source = torch.nn.functional.cosine_similarity(pooled[0], pooled[1])
        to_driver = torch.nn.functional.cosine_similarity(pooled[0], pooled[2])
        keeps_source.append((to_source > to_driver).float())
    mean = lambda xs: float(torch.cat(xs).mean())  # noqa: E731
    return {
        "self_reenactment": {"psnr": mean(psnr), "ssim": mean(ssim), "pairs": int(sum(len(x) for x in psnr)),
                             "copy_source_psnr": mean(copy_psnr), "copy_source_ssim": mean(copy_ssim)},
        "cross_reenactment": {"landmark_error": mean(cross_err), "source_vs_driver_landmark_error": mean(cross_base),
                              "appearance_closer_to_source": mean(keeps_source)},
    }


def evaluate_stage1(weights: str | Path, data: str | Path, split: str | None = "test", pairs_per_clip: int = 8,
                    frames_per_clip: int = 40, seed: int = 0) -> dict:
    """The full stage-1 report for a weights file on one split of a data folder."""
    model = HeadImitator.from_pretrained(weights)
    torch.set_grad_enabled(False)
    paths = list_clips(data, split)
    if len(paths) < 2:
        raise ValueError(f"stage-1 evaluation needs at least 2 clips, {data} split {split!r} has {len(paths)}")
    clips = [load_clip(p, load_audio_tracks=False) for p in paths]
    report = {"weights": Path(weights).name, "data": Path(data).name, "split": split, "clips": len(clips),
              "image_size": model.config.image_size, "motion_input": model.config.motion.input}
    report.update(reenactment(model, clips, pairs_per_clip, seed))
    collected = collect(model, clips, frames_per_clip, seed + 1)
    probes = {"identity_from_motion_latent": probe_identity(collected["latents"], collected["identity"]),
              "identity_from_appearance": probe_identity(collected["appearance"], collected["identity"])}
    if collected["params"] is not None:
        probes["params_from_motion_latent"] = probe_params(collected["latents"], collected["params"],
                                                           collected["clip"], clips[0].param_names)
    report["probes"] = probes
    return report
