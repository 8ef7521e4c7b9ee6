"""Give stage-2 weights trained before pose directions existed their head-pose directions.

`infp-lab train stage2` finds them itself (infp_lab.stage2.pose) from the training clips'
latents; this does the same for a weights file that lacks them, in place, keeping its
metadata, so that `pose_gain` can be used with it:

    python scripts/stage2_pose_directions.py --stage2 weights/stage2_tiny.safetensors \
        --stage1 weights/stage1_tiny.safetensors --data data/s1train [--cache runs/stage2_tiny/latent_cache]

Nothing else in the file changes. The training clips (the train split of --data, as in
training) must be those the weights were trained on, so that the latent statistics match;
the script checks that they do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from infp_lab.checkpoint import load_weights, save_weights
from infp_lab.data.clip import train_val_clips
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.data import cache_latents, cached_latents, latent_stats
from infp_lab.stage2.model import WEIGHTS_KIND, MotionGenerator
from infp_lab.stage2.pose import pose_directions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage2", required=True, type=Path, help="stage-2 weights to update in place")
    parser.add_argument("--stage1", required=True, type=Path, help="the stage-1 weights stage 2 was trained on")
    parser.add_argument("--data", required=True, type=Path, help="the data stage 2 was trained on")
    parser.add_argument("--cache", type=Path, default=Path("runs/latent_cache"), help="stage-1 latent cache")
    args = parser.parse_args()

    stage1 = HeadImitator.from_pretrained(args.stage1)
    model = MotionGenerator.from_pretrained(args.stage2)
    _, _, extra = load_weights(args.stage2, WEIGHTS_KIND)
    train_clips, _ = train_val_clips(args.data)
    paths = cache_latents(args.stage1, train_clips, args.cache)
    mean, std = latent_stats(paths)
    if not (np.allclose(mean, model.latent_mean.numpy(), atol=1e-4) and np.allclose(std, model.latent_std.numpy(), rtol=1e-4)):
        raise SystemExit(f"the latent statistics of {args.data}'s training clips differ from those stored in "
                         f"{args.stage2}: pass the data and stage-1 weights it was trained on")
    directions = pose_directions(stage1, cached_latents(paths), model.normalise)
    model.set_pose_directions(directions)
    save_weights(args.stage2, model.state_dict(), WEIGHTS_KIND, model.config.to_dict(), extra)
    print(f"{args.stage2}: {directions.shape[1]} pose directions from {len(paths)} training clips")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
