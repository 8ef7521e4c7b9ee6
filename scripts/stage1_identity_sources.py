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
  carry the identity.

Each row also gets the motion probe (R^2 of the motion parameters from the latents, fitted on
half the identities and scored on the others), since a row that drops the identity by
dropping the motion says little.

    python scripts/stage1_identity_sources.py --stage1 weights/stage1_tiny.safetensors \
        --test data/s1test --out runs/identity_sources.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.render import NEUTRAL_PARAMS, Appearance
from infp_lab.stage1 import HeadImitator
from infp_lab.stage1.data import CANONICAL_FACE, placed
from infp_lab.stage1.evaluate import motion_pool, probe_identity, probe_params, rendered_face

SOURCES = {"identity crops, identity points": ("identity", "identity"),
           "identity crops, canonical points": ("identity", "canonical"),
           "canonical crops, identity points": ("canonical", "identity"),
           "canonical crops, canonical points": ("canonical", "canonical"),
           "identity crops, its points moved onto the canonical face": ("identity", "transferred")}


@torch.no_grad()
def mixed_latents(model: HeadImitator, crops_from: tuple, points_from: tuple) -> torch.Tensor:
    """The motion latents of the encoder with its crops cut from one (frames, landmarks) pair
    and its points read from another pair's landmarks."""
    encoder = model.motion_encoder
    parts = encoder.crop_parts(*crops_from) + [encoder.point_part(points_from[1])]
    return encoder.to_latent(torch.cat(parts, dim=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1", type=Path, nargs="+", required=True, help="stage-1 or encoder weights")
    parser.add_argument("--test", type=Path, required=True, help="SynConv data with a test split")
    parser.add_argument("--motions", type=int, default=80)
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    args = parser.parse_args()

    clips = [load_clip(p, load_audio_tracks=False) for p in list_clips(args.test, "test")]
    pool = motion_pool(clips, args.motions, np.random.default_rng(1))  # the report's pool (its seed 1)
    identity = np.repeat([c.meta["identity"] for c in clips], len(pool))
    motion_id = np.tile(np.arange(len(pool)), len(clips))
    results = {}
    for weights in args.stage1:
        model = HeadImitator.from_pretrained(weights).eval()
        if model.config.motion.input != "hybrid":
            raise ValueError(f"{weights}: the encoder reads {model.config.motion.input!r}, not the hybrid input")
        size = model.config.image_size
        canonical = rendered_face(pool, CANONICAL_FACE, size)
        canonical_rest = rendered_face(NEUTRAL_PARAMS[None], CANONICAL_FACE, size)[1]
        latents = {name: [] for name in SOURCES}
        for clip in clips:
            face = placed(Appearance.from_dict(clip.render_spec["appearance"]), CANONICAL_FACE)
            own = rendered_face(pool, face, size)
            moved = own[1] - rendered_face(NEUTRAL_PARAMS[None], face, size)[1] + canonical_rest
            inputs = {"identity": own, "canonical": canonical, "transferred": (None, moved)}
            for name, (crops, points) in SOURCES.items():
                latents[name].append(mixed_latents(model, inputs[crops], inputs[points]).numpy())
            with torch.no_grad():  # the unmixed inputs must give the encoder's own latents
                np.testing.assert_allclose(latents["identity crops, identity points"][-1],
                                           model.encode_motion(*own).numpy(), atol=1e-5)
        half = np.repeat(np.arange(len(clips)) % 2 == 1, len(pool))
        params = np.tile(pool, (len(clips), 1))
        results[str(weights)] = {}
        for name, rows in latents.items():
            x = np.concatenate(rows)
            motion = probe_params(x[~half], params[~half], x[half], params[half], clips[0].param_names)
            results[str(weights)][name] = {"identity_acc": probe_identity(x, identity, motion_id)["accuracy"],
                                           "params_r2": motion["r2_mean"]}
        print(weights, json.dumps(results[str(weights)], indent=1), flush=True)
    report = {"test": str(args.test), "identities": len(clips), "motions": len(pool),
              "chance": 1.0 / len(clips), "identity_from_motion": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
