"""Stage-1 measurements (design.md sections 4 and 8) on held-out clips:

- self-reenactment PSNR / SSIM (torchmetrics), beside the "copy the source frame" baseline;
- cross-identity reenactment: on SynConv, PSNR / SSIM against the true crossed frame (the
  source's face rendered with the driver's motion); the landmark head on the re-encoded
  output against the driver's landmark-head targets (canonical-face landmarks of the driver's motion for
  SynConv; normalised by the inter-ocular distance), beside the error of the source's own
  motion (what no transfer would score), and whether the output's appearance features are
  still closest to the source's;
- disentanglement, as a controlled experiment that only synthetic data allows: every
  test identity is rendered with the same pool of motion parameters at the same placement
  in the frame (base turn, position, size: see infp_lab.stage1.data.PLACEMENT), so identity
  (face shape, colours, hair) and motion are independent. One frame cannot tell a head
  turned by its motion from one turned by its placement, so with each identity's own
  placement the pose parameters are confounded with identity; that protocol is reported
  too (`own_placement`). A linear probe (scikit-learn) from motion latents to identity is
  fitted on half the motions and scored on the other half (against chance), the same
  probe on appearance features for contrast, and a linear probe from motion latents to
  the motion parameters is fitted on other identities (training clips rendered with the
  same motions, or half the test identities) and scored (R^2) on the test identities,
  beside the same probe on the frames' true landmarks.
  (Probing frames of each identity's own clip instead would confound identity with that
  clip's motion trajectory: neighbouring frames identify the clip by their motion alone.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from infp_lab.data.clip import Clip, list_clips, load_clip
from infp_lab.stage1.data import CANONICAL_FACE, head_targets, placed
from infp_lab.stage1.hybrid import interocular
from infp_lab.stage1.inference import clip_frames, clip_landmarks
from infp_lab.stage1.model import HeadImitator


def normalised_landmark_error(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean point distance divided by the target's inter-ocular distance: (B,)."""
    return (predicted - target).norm(dim=-1).mean(dim=-1) / interocular(target).clamp(min=1e-3)


def probe_params(fit_x: np.ndarray, fit_params: np.ndarray, test_x: np.ndarray, test_params: np.ndarray,
                 names: list[str]) -> dict:
    """Ridge regression features -> params fitted on one set of identities, R^2 on another."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(fit_x)
    probe = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(scaler.transform(fit_x), fit_params)
    predicted = probe.predict(scaler.transform(test_x))
    per_param = r2_score(test_params, predicted, multioutput="raw_values")
    return {"r2_mean": float(np.mean(per_param)),
            "r2_variance_weighted": float(r2_score(test_params, predicted, multioutput="variance_weighted")),
            "r2_per_param": {n: round(float(v), 4) for n, v in zip(names, per_param)}}


def probe_identity(features: np.ndarray, identity: np.ndarray, groups: np.ndarray) -> dict:
    """Logistic regression features -> identity, fitted on the even groups, accuracy on the odd ones."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = groups % 2 == 0
    scaler = StandardScaler().fit(features[train])
    probe = LogisticRegression(max_iter=2000, C=1.0).fit(scaler.transform(features[train]), identity[train])
    accuracy = float((probe.predict(scaler.transform(features[~train])) == identity[~train]).mean())
    return {"accuracy": accuracy, "chance": 1.0 / len(np.unique(identity)), "identities": int(len(np.unique(identity)))}


def rendered_face(params: np.ndarray, face, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A SynConv face (an `Appearance`) rendered with motion parameters (N, P): frames
    (N, 3, size, size) in [0, 1] and their landmarks (N, L, 2) in [0, 1]."""
    from infp_lab.render import project_landmarks, render_frames

    images = torch.from_numpy(render_frames(params, face, size)).permute(0, 3, 1, 2).float() / 255.0
    return images, torch.from_numpy((project_landmarks(params, face, size) / size).astype(np.float32))


def crossed_truth(clip: Clip, driver: Clip, frames: np.ndarray, size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """SynConv only: `clip`'s face rendered with the driver's motion at those frames, at the
    driver's placement (the motion latent carries the pose the driving frame shows), and its
    landmarks in [0, 1] -> ((N, 3, size, size), (N, L, 2)); None for real clips."""
    from infp_lab.render import Appearance

    if clip.render_spec is None or driver.render_spec is None or clip.param_names != driver.param_names:
        return None
    face = placed(Appearance.from_dict(clip.render_spec["appearance"]),
                  Appearance.from_dict(driver.render_spec["appearance"]))
    return rendered_face(driver.motion["params"][frames], face, size)


@torch.no_grad()
def reenactment(model: HeadImitator, clips: list[Clip], pairs_per_clip: int, seed: int) -> dict:
    """Self- and cross-identity reenactment metrics over the clips."""
    size = model.config.image_size
    rng = np.random.default_rng(seed)
    psnr, ssim, copy_psnr, copy_ssim, cross_err, cross_base, keeps_source = [], [], [], [], [], [], []
    cross_psnr, cross_ssim, cross_copy_psnr = [], [], []
    for k, clip in enumerate(clips):
        src_idx = rng.integers(clip.num_frames, size=pairs_per_clip)
        drv_idx = rng.integers(clip.num_frames, size=pairs_per_clip)
        source, driving = clip_frames(clip, size, src_idx), clip_frames(clip, size, drv_idx)
        src_lm, drv_lm = clip_landmarks(clip, src_idx), clip_landmarks(clip, drv_idx)
        image = model(source, src_lm, driving, drv_lm).image.clamp(0, 1)
        psnr.append(peak_signal_noise_ratio(image, driving, data_range=1.0, reduction="none", dim=(1, 2, 3)))
        ssim.append(structural_similarity_index_measure(image, driving, data_range=1.0, reduction="none"))
        copy_psnr.append(peak_signal_noise_ratio(source, driving, data_range=1.0, reduction="none", dim=(1, 2, 3)))
        copy_ssim.append(structural_similarity_index_measure(source, driving, data_range=1.0, reduction="none"))

        # Cross-identity: drive this clip's source with the next clip's motion. On SynConv the
        # truth exists: this clip's face rendered with the driver's motion parameters.
        other = clips[(k + 1) % len(clips)]
        other_idx = rng.integers(other.num_frames, size=pairs_per_clip)
        other_frames, other_lm = clip_frames(other, size, other_idx), clip_landmarks(other, other_idx)
        driver_latent = model.encode_motion(other_frames, other_lm)
        appearance = model.encode_appearance(source)
        crossed, *_ = model.render(source, src_lm, appearance, model.encode_motion(source, src_lm), driver_latent)
        crossed = crossed.clamp(0, 1)
        truth = crossed_truth(clip, other, other_idx, size)
        if truth is not None:
            truth_frames, truth_lm = truth
            cross_psnr.append(peak_signal_noise_ratio(crossed, truth_frames, data_range=1.0, reduction="none",
                                                      dim=(1, 2, 3)))
            cross_ssim.append(structural_similarity_index_measure(crossed, truth_frames, data_range=1.0,
                                                                  reduction="none"))
            cross_copy_psnr.append(peak_signal_noise_ratio(source, truth_frames, data_range=1.0, reduction="none",
                                                           dim=(1, 2, 3)))
        else:  # real clips: the landmarks the model itself moves the source's landmarks to
            truth_lm = model.driven_landmarks(src_lm, model.encode_motion(source, src_lm), driver_latent)
        reencoded = model.landmark_head(model.encode_motion(crossed, truth_lm))
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
                              "appearance_closer_to_source": mean(keeps_source),
                              **({"psnr": mean(cross_psnr), "ssim": mean(cross_ssim),
                                  "copy_source_psnr": mean(cross_copy_psnr)} if cross_psnr else {})},
    }


@torch.no_grad()
def pool_features(model: HeadImitator, clips: list[Clip], pool: np.ndarray, shared_placement: bool
                  ) -> dict[str, np.ndarray]:
    """Every clip's face rendered with every motion of the pool, at one shared placement or
    at each identity's own: motion latents, pooled appearance features and true landmarks,
    stacked clip after clip."""
    from infp_lab.render import Appearance

    out = {"latents": [], "appearance": [], "landmarks": []}
    for clip in clips:
        face = Appearance.from_dict(clip.render_spec["appearance"])
        if shared_placement:
            face = placed(face, CANONICAL_FACE)
        frames, landmarks = rendered_face(pool, face, model.config.image_size)
        out["latents"].append(model.encode_motion(frames, landmarks).numpy())
        out["appearance"].append(model.encode_appearance(frames).flatten(2).mean(dim=-1).numpy())
        out["landmarks"].append(landmarks.flatten(1).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _probes(model: HeadImitator, synthetic: list[Clip], fitting: list[Clip], pool: np.ndarray,
            shared_placement: bool) -> dict:
    """The identity and motion probes of one placement protocol."""
    test = pool_features(model, synthetic, pool, shared_placement)
    identity = np.repeat([c.meta["identity"] for c in synthetic], len(pool))
    motion_id = np.tile(np.arange(len(pool)), len(synthetic))
    params = np.tile(pool, (len(synthetic), 1))
    names = synthetic[0].param_names
    if fitting:
        fit = pool_features(model, fitting, pool, shared_placement)
        fit_params = np.tile(pool, (len(fitting), 1))

        def param_probe(key: str) -> dict:
            return probe_params(fit[key], fit_params, test[key], params, names)
    else:
        held_out = np.repeat(np.arange(len(synthetic)) % 2 == 1, len(pool))

        def param_probe(key: str) -> dict:
            return probe_params(test[key][~held_out], params[~held_out], test[key][held_out], params[held_out], names)
    return {"identity_from_motion_latent": probe_identity(test["latents"], identity, motion_id),
            "identity_from_appearance": probe_identity(test["appearance"], identity, motion_id),
            "params_from_motion_latent": param_probe("latents"),
            # The same probe on the frames' true landmarks: how much of the motion one frame's
            # geometry shows linearly when the face (its shape, and its placement in the
            # own-placement protocol) is unknown.
            "params_from_frame_landmarks": param_probe("landmarks")}


def motion_pool(clips: list[Clip], motions: int, rng: np.random.Generator) -> np.ndarray:
    """About `motions` motion-parameter rows, the same number drawn from each clip's frames."""
    per_clip = max(1, motions // len(clips))
    return np.concatenate([c.motion["params"][rng.choice(c.num_frames, per_clip, replace=False)] for c in clips])


@torch.no_grad()
def controlled_probes(model: HeadImitator, clips: list[Clip], motions: int = 80, seed: int = 0,
                      fit_clips: list[Clip] | None = None) -> dict:
    """Identity and motion probes on SynConv identities all rendered with one motion pool,
    at one shared placement (the top-level keys) and at each identity's own (`own_placement`).

    The motion probe is fitted on the identities of `fit_clips` (e.g. training clips) and
    scored on those of `clips`; without `fit_clips`, on half of `clips`' identities and
    scored on the other half.
    """
    synthetic = [c for c in clips if c.render_spec is not None]
    if len(synthetic) < 4:
        raise ValueError("controlled probes need at least 4 SynConv clips")
    pool = motion_pool(synthetic, motions, np.random.default_rng(seed))
    fitting = [c for c in (fit_clips or []) if c.render_spec is not None]
    protocol = (f"fitted on {len(fitting)} other identities" if fitting
                else "fitted on half the identities, scored on the other half")
    return {"motions": len(pool), "identities": len(synthetic), "param_probe_protocol": protocol,
            "placement": "shared", **_probes(model, synthetic, fitting, pool, shared_placement=True),
            "own_placement": _probes(model, synthetic, fitting, pool, shared_placement=False)}


@torch.no_grad()
def evaluate_stage1(weights: str | Path, data: str | Path, split: str | None = "test", pairs_per_clip: int = 8,
                    seed: int = 0, probe_data: str | Path | None = None, probe_clips: int = 24,
                    mouth_composite: bool | None = None) -> dict:
    """The full stage-1 report for a weights file on one split of a data folder; the motion
    probe is fitted on the first `probe_clips` training clips of `probe_data` when given.
    `mouth_composite` True / False renders with / without the mouth drawn by geometry
    (None: as the weights say); the report records which."""
    model = HeadImitator.from_pretrained(weights, mouth_composite=mouth_composite)
    paths = list_clips(data, split)
    if len(paths) < 2:
        raise ValueError(f"stage-1 evaluation needs at least 2 clips, {data} split {split!r} has {len(paths)}")
    clips = [load_clip(p, load_audio_tracks=False) for p in paths]
    report = {"weights": Path(weights).name, "data": Path(data).name, "split": split, "clips": len(clips),
              "image_size": model.config.image_size, "motion_input": model.config.motion.input,
              "mouth_composite": model.config.decoder.mouth_composite}
    report.update(reenactment(model, clips, pairs_per_clip, seed))
    fit_clips = None
    if probe_data is not None:
        fit_clips = [load_clip(p, load_audio_tracks=False) for p in list_clips(probe_data, "train")[:probe_clips]]
        report["probe_data"] = Path(probe_data).name
    probes = controlled_probes(model, clips, seed=seed + 1, fit_clips=fit_clips)
    report["probes"] = probes
    return report
