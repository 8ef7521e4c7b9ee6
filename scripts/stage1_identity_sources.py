"""Which of the motion encoder's inputs carries the identity that the identity probe reads?

The hybrid encoder reads two things from a driving frame: crops of the eyes and the mouth
(pixels) and landmark points (the contour, and with `--hybrid-points regions` the brows, eyes
and lips). The report's controlled probe renders every test identity with one pool of motions
at one shared placement, so the canonical face (`stage1.data.CANONICAL_FACE`) rendered with the
same motion at the same placement shows the same motion without anyone's face. This script
feeds the encoder each frame's crops and points from either the identity's frame or that
canonical frame, and runs the report's identity probe on the latents:

- crops and points of the identity: the report's probe (its shared-placement figure);
- the identity's crops, the canonical points: what the crops carry;
- the canonical crops, the identity's points: what the points carry;
- both canonical: no identity at all, the floor (the probe's chance level);
- the identity's crops, and its points moved onto the canonical face: the canonical face at
  rest plus how far the identity's points are from its own face at rest (neutral motion, same
  placement). A reference frame of the same face is what an encoder could be given (the
  source portrait); this row asks, without training, whether points read that way still
  carry the identity;
- the same, relative to a portrait instead of the face exactly at rest: the identity's frame
  of its own clip that is closest to rest (in units of the motion pool's spread), rendered at
  the shared placement. What an encoder given the source portrait would read;
- the same, relative to the mean of the landmarks over the identity's whole clip (at the
  shared placement): a reference that averages the clip's motion away, which a clip (a
  stage-2 training conversation) has and a single portrait does not;
- with --rest-estimator W: the portrait again, with the face at rest estimated from it: the
  portrait's points, less the canonical face with the portrait's motion as W's landmark head
  reads it from the portrait, plus the canonical face at rest. An encoder that needs the face
  at rest could be given this on real data, where no one knows it; and the same estimate
  averaged over 40 frames of the identity's clip (at the shared placement);
- with --rest-noise EPS...: the face at rest off by a random offset of its points, fixed per
  identity, EPS inter-ocular distances on average: how good an estimate of the face at rest has to be.

Each row also gets the motion probe (R^2 of the motion parameters from the latents, fitted on
half the identities and scored on the others), since a row that drops the identity by
dropping the motion says little. For scale, both probes also read the landmarks themselves
(`probes_on_landmarks`): the frame's, and the frame's moved relative to its face at rest.

    python scripts/stage1_identity_sources.py --stage1 weights/stage1_tiny.safetensors \
        [--rest-estimator W] --test data/s1test --out runs/identity_sources.json

An encoder fine-tuned with `scripts/stage1_encoder_probe.py --reference rest` reads its points
moved onto the canonical face; the "moved" rows score it as it reads.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.render import NEUTRAL_PARAMS, Appearance, project_landmarks
from infp_lab.stage1 import HeadImitator
from infp_lab.stage1.data import CANONICAL_FACE, canonical_landmarks, placed
from infp_lab.stage1.hybrid import interocular
from infp_lab.stage1.evaluate import (motion_pool, normalised_landmark_error, probe_identity, probe_params,
                                      rendered_face)

SOURCES = {"identity crops, identity points": ("identity", "identity"),
           "identity crops, canonical points": ("identity", "canonical"),
           "canonical crops, identity points": ("canonical", "identity"),
           "canonical crops, canonical points": ("canonical", "canonical"),
           "identity crops, its points moved onto the canonical face": ("identity", "transferred"),
           "identity crops, its points moved onto the canonical face from a portrait": ("identity", "portrait"),
           "identity crops, its points moved onto the canonical face from its clip's mean": ("identity", "mean")}
ESTIMATED = "identity crops, its points moved onto the canonical face from a portrait, its rest estimated"
ESTIMATED_CLIP = "identity crops, its points moved onto the canonical face, its rest estimated from 40 clip frames"


def most_neutral_frame(clip, spread: np.ndarray) -> np.ndarray:
    """The motion parameters (P,) of the clip's frame closest to rest, in units of `spread` (P,):
    what a user's portrait of that face would approximate."""
    params = clip.motion["params"]
    return params[np.argmin((((params - NEUTRAL_PARAMS) / spread) ** 2).sum(axis=1))]


@torch.no_grad()
def probe_inputs(clip, pool: np.ndarray, size: int, spread: np.ndarray, canonical: tuple[torch.Tensor, torch.Tensor],
                 estimator: HeadImitator | None, rest_noise: tuple[float, ...] = (), seed: int = 0
                 ) -> tuple[dict[str, tuple], float | None]:
    """The encoder inputs of one test identity for every row: (frames, landmarks) pairs of the
    identity and of the canonical face (`canonical`, the pool's motions on the canonical face),
    both at the shared placement, and the identity's landmarks moved onto the canonical face
    from each reference (frames None: these only give points). Also the estimator's landmark
    error on the portrait, if any. `rest_noise`: also the face at rest off by each of these
    errors, keys "noise EPS": a random offset of every point (drawn with `seed`), the same in
    every frame, its mean length that many inter-ocular distances, as `rest_estimate_error`
    measures the estimator's."""
    canonical_rest = rendered_face(NEUTRAL_PARAMS[None], CANONICAL_FACE, size)[1]
    face = placed(Appearance.from_dict(clip.render_spec["appearance"]), CANONICAL_FACE)
    own = rendered_face(pool, face, size)
    at_rest = rendered_face(NEUTRAL_PARAMS[None], face, size)[1]

    def moved(reference: torch.Tensor) -> tuple[None, torch.Tensor]:
        """The identity's points less `reference` (its face at rest, or what stands for it), on the canonical face."""
        return None, own[1] - reference + canonical_rest

    portrait_params = most_neutral_frame(clip, spread)[None]
    portrait_frame, portrait = rendered_face(portrait_params, face, size)
    mean = torch.from_numpy(project_landmarks(clip.motion["params"], face, size).mean(axis=0) / size).float()
    inputs = {"identity": own, "canonical": canonical, "transferred": moved(at_rest),
              "portrait": moved(portrait), "mean": moved(mean)}
    offsets = torch.from_numpy(np.random.default_rng(seed).standard_normal(at_rest.shape))
    for noise in rest_noise:  # a 2-D normal offset of std s per axis has mean length s * sqrt(pi / 2)
        scale = noise * interocular(at_rest)[:, None, None] / np.sqrt(np.pi / 2)
        inputs[f"noise {noise:g}"] = moved(at_rest + scale * offsets.float())
    if estimator is None:
        return inputs, None

    def motion(frames: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """The canonical face with each frame's motion, as the estimator's landmark head reads it."""
        return estimator.landmark_head(estimator.encode_motion(frames, landmarks))

    portrait_motion = motion(portrait_frame, portrait)  # a frame's face at rest: its points less its motion
    inputs["estimated"] = moved(portrait - portrait_motion + canonical_rest)
    frames, landmarks = rendered_face(clip.motion["params"][np.linspace(0, clip.num_frames - 1, 40).astype(int)],
                                      face, size)
    inputs["estimated_clip"] = moved((landmarks - motion(frames, landmarks) + canonical_rest).mean(dim=0))
    truth = torch.from_numpy(canonical_landmarks(portrait_params, CANONICAL_FACE).astype(np.float32))
    return inputs, normalised_landmark_error(portrait_motion, truth).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1", type=Path, nargs="+", required=True, help="stage-1 or encoder weights")
    parser.add_argument("--test", type=Path, required=True, help="SynConv data with a test split")
    parser.add_argument("--motions", type=int, default=80)
    parser.add_argument("--rest-estimator", type=Path, default=None,
                        help="stage-1 weights whose landmark head estimates each portrait's motion: adds a row "
                             "from the portrait with the face at rest estimated from it (see above)")
    parser.add_argument("--rest-noise", type=float, nargs="*", default=[],
                        help="also rows relative to the face at rest off by these errors (mean point offset in "
                             "inter-ocular distances; random, fixed per identity)")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    args = parser.parse_args()

    clips = [load_clip(p, load_audio_tracks=False) for p in list_clips(args.test, "test")]
    unrendered = [clip.name for clip in clips if clip.render_spec is None]
    if unrendered:
        parser.error(f"--test must be SynConv data (each face re-rendered with other motions); "
                     f"{len(unrendered)} clips are not, e.g. {unrendered[0]}")
    pool = motion_pool(clips, args.motions, np.random.default_rng(1))  # the report's pool (its seed 1)
    identity = np.repeat([c.meta["identity"] for c in clips], len(pool))
    motion_id = np.tile(np.arange(len(pool)), len(clips))
    spread = pool.std(axis=0) + 1e-6
    sources = dict(SOURCES)
    estimator = None
    if args.rest_estimator is not None:
        estimator = HeadImitator.from_pretrained(args.rest_estimator).eval()
        sources[ESTIMATED] = ("identity", "estimated")
        sources[ESTIMATED_CLIP] = ("identity", "estimated_clip")
    for noise in args.rest_noise:
        sources[f"identity crops, its points moved onto the canonical face, its rest off by {noise:g}"] = (
            "identity", f"noise {noise:g}")
    size = HeadImitator.from_pretrained(args.stage1[0]).config.image_size
    canonical = rendered_face(pool, CANONICAL_FACE, size)  # the same motions on no one's face
    per_clip = [probe_inputs(clip, pool, size, spread, canonical, estimator, tuple(args.rest_noise), seed=index)
                for index, clip in enumerate(clips)]
    half = np.repeat(np.arange(len(clips)) % 2 == 1, len(pool))  # the motion probe: fit on even identities
    params = np.tile(pool, (len(clips), 1))

    def probes(x: np.ndarray) -> dict[str, float]:
        motion = probe_params(x[~half], params[~half], x[half], params[half], clips[0].param_names)
        return {"identity_acc": probe_identity(x, identity, motion_id)["accuracy"], "params_r2": motion["r2_mean"]}

    # the same probes on the landmarks themselves, no encoder: the frame's, and moved relative to the face at rest
    landmarks = {"frame landmarks": "identity", "frame landmarks moved onto the canonical face": "transferred"}
    from_landmarks = {name: probes(np.concatenate([inputs[key][1].flatten(1).numpy() for inputs, _ in per_clip]))
                      for name, key in landmarks.items()}
    results = {}
    for weights in args.stage1:
        model = HeadImitator.from_pretrained(weights).eval()
        if model.config.motion.input != "hybrid":
            raise ValueError(f"{weights}: the encoder reads {model.config.motion.input!r}, not the hybrid input")
        if model.config.image_size != size:
            raise ValueError(f"{weights}: {model.config.image_size} pixels, the first file {size}")
        latents = {name: [] for name in sources}
        for inputs, _ in per_clip:
            with torch.no_grad():
                for name, (crops, points) in sources.items():  # crops cut from one pair, points read from another's
                    latents[name].append(model.motion_encoder(*inputs[crops], points=inputs[points][1]).numpy())
                # the unmixed inputs must give the encoder's own latents
                np.testing.assert_allclose(latents["identity crops, identity points"][-1],
                                           model.encode_motion(*inputs["identity"]).numpy(), atol=1e-5)
        results[str(weights)] = {name: probes(np.concatenate(rows)) for name, rows in latents.items()}
        print(weights, json.dumps(results[str(weights)], indent=1), flush=True)
    names = clips[0].param_names
    away = np.stack([(most_neutral_frame(clip, spread) - NEUTRAL_PARAMS) / spread for clip in clips])
    clip_means = np.stack([(clip.motion["params"].mean(axis=0) - NEUTRAL_PARAMS) / spread for clip in clips])
    report = {"test": str(args.test), "identities": len(clips), "motions": len(pool),
              "chance": 1.0 / len(clips), "identity_from_motion": results, "probes_on_landmarks": from_landmarks,
              # the estimator's landmarks of the portraits' motion against the truth, in inter-ocular units
              "rest_estimate_error": float(np.mean([error for _, error in per_clip])) if estimator is not None else None,
              # how far each reference is from rest, in units of the pool's spread (RMS over the identities)
              "portrait_from_rest": dict(zip(names, np.sqrt((away ** 2).mean(axis=0)).round(3).tolist())),
              "clip_mean_from_rest": dict(zip(names, np.sqrt((clip_means ** 2).mean(axis=0)).round(3).tolist()))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
