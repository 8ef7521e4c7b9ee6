"""Is the identity left in the motion latents confined to a few directions, shared by faces
the model was not fitted on? If so, a fixed projection can remove it (nuisance attribute
projection, as in speaker verification) where the adversaries of
`scripts/stage1_encoder_probe.py` found nothing to push against.

Training identities, all rendered with one pool of training motions at one shared placement
(the report's controlled protocol), give the directions: latents whitened by their
covariance, each identity's mean offset from the motion's mean over identities, and the
principal directions of those offsets. The test identities' latents, with the top k
directions projected out, then go through the report's two probes (identity, fitted on half
the motions and scored on the other half; motion parameters, fitted on 24 other training
identities), for each k. Nothing is trained; the stage-1 weights are only read.

For contrast, the row "relative_to_rest" subtracts from every latent the latent of the same
face at rest (neutral motion, same placement): what a latent coded relative to a frame of
the same face would hold.

    python scripts/stage1_identity_subspace.py --stage1 weights/stage1_tiny.safetensors \
        --data data/s1train --test data/s1test --out runs/identity_subspace [--identities 96] [--ks 0 4 8 16 32]

Writes OUT/identity-subspace.json and prints one line per k.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.render import NEUTRAL_PARAMS
from infp_lab.stage1.evaluate import motion_pool, pool_features, probe_identity, probe_params
from infp_lab.stage1.model import HeadImitator


def identity_directions(latents: np.ndarray, identities: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, whitening matrix and the principal directions (columns, in whitened space, by
    decreasing variance) of the identities' offsets; `latents` are stacked identity after
    identity, each over the same motions."""
    mean = latents.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(latents - mean, rowvar=False))
    whiten = vectors @ np.diag(1.0 / np.sqrt(np.maximum(values, 1e-8))) @ vectors.T
    z = ((latents - mean) @ whiten).reshape(identities, -1, latents.shape[1])
    offsets = (z - z.mean(axis=0, keepdims=True)).mean(axis=1)  # identity x dim
    _, _, rows = np.linalg.svd(offsets - offsets.mean(axis=0), full_matrices=False)
    return mean, whiten, rows.T


def project(latents: np.ndarray, mean: np.ndarray, whiten: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """The latents with the given whitened-space directions removed, back in latent space."""
    z = (latents - mean) @ whiten
    return mean + (z - (z @ directions) @ directions.T) @ np.linalg.inv(whiten)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="training clips (directions and the motion probe's fit)")
    parser.add_argument("--test", required=True, type=Path, help="held-out clips (test split)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--identities", type=int, default=96, help="training identities that give the directions")
    parser.add_argument("--motions", type=int, default=96, help="training motions they are rendered with")
    parser.add_argument("--ks", type=int, nargs="+", default=[0, 2, 4, 8, 16, 24, 32])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = HeadImitator.from_pretrained(args.stage1).eval()
    rng = np.random.default_rng(args.seed)

    train = [load_clip(p, load_audio_tracks=False) for p in list_clips(args.data, "train")]
    fitting, directing = train[:24], train[24:24 + args.identities]  # the report's motion-probe identities, then others
    if len(directing) < 8:
        raise ValueError(f"{args.data} has too few training clips for {args.identities} identities beside 24")
    test = [load_clip(p, load_audio_tracks=False) for p in list_clips(args.test, "test")]

    # The report's controlled probes (`infp-lab eval stage1` at its default seed): 80 motions of the test clips.
    probe_pool = motion_pool(test, 80, np.random.default_rng(1))
    directing_x = pool_features(model, directing, motion_pool(directing, args.motions, rng),
                                shared_placement=True)["latents"]
    test_x = pool_features(model, test, probe_pool, shared_placement=True)["latents"]
    fit_x = pool_features(model, fitting, probe_pool, shared_placement=True)["latents"]
    mean, whiten, directions = identity_directions(directing_x, len(directing))
    identity = np.repeat([c.meta["identity"] for c in test], len(probe_pool))
    motion_id = np.tile(np.arange(len(probe_pool)), len(test))

    def probes(name: str, t: np.ndarray, f: np.ndarray) -> dict:
        """The report's two probes on test latents `t` and motion-probe fitting latents `f`."""
        motion = probe_params(f, np.tile(probe_pool, (len(fitting), 1)), t, np.tile(probe_pool, (len(test), 1)),
                              test[0].param_names)
        row = {"identity_accuracy": probe_identity(t, identity, motion_id)["accuracy"],
               "r2_mean": motion["r2_mean"], "r2_per_param": motion["r2_per_param"]}
        print(f"{name}: identity {row['identity_accuracy']:.3f}  R^2 {row['r2_mean']:.3f}", flush=True)
        return row

    rows = {str(k): probes(f"k={k}", project(test_x, mean, whiten, directions[:, :k]),
                           project(fit_x, mean, whiten, directions[:, :k])) for k in args.ks}

    def at_rest(clips: list) -> np.ndarray:  # each face's latent at rest, repeated over the pool
        rest = pool_features(model, clips, NEUTRAL_PARAMS[None].copy(), shared_placement=True)["latents"]
        return np.repeat(rest, len(probe_pool), axis=0)

    rows["relative_to_rest"] = probes("relative to rest", test_x - at_rest(test), fit_x - at_rest(fitting))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"stage1": str(args.stage1), "directing_identities": len(directing), "directing_motions": args.motions,
              "test_identities": len(test), "chance": 1.0 / len(test), "rows": rows}
    (args.out / "identity-subspace.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
