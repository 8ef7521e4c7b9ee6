"""Where does generated motion lose lip sync: the mouth, or the head around it?

    python scripts/stage2_pose_swap.py --stage2 W2 --stage1 W1 --syncnet S --data data/s1train --split val \
        --clips 4 --out runs/stage2_pose_swap.json [--pose-smoothing 0] [--seed 0]

For each clip, motion is generated from its two voices (as `infp-lab eval stage2` does) and
split, in the generator's normalised latent space, into its head-pose part (the projection
on the model's head-pose directions, infp_lab.stage2.pose) and the rest (the mouth, eyes,
brows). Four motions are rendered from the clip's first frame and scored by SyncNet-SynConv
(LSE-C): the true latents, the generated ones, the true motion with the generated head pose,
and the generated motion with the true head pose. If lip sync follows the head pose rather
than the mouth, the generated head is what costs it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.stage1.inference import encode_clip
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.evaluate import render_first_frame, uint8_video
from infp_lab.stage2.generate import generate_from_audio, resolve_pose_gain, resolve_pose_smoothing
from infp_lab.stage2.model import MotionGenerator
from infp_lab.syncnet import SyncNet, sync_scores

MOTIONS = ("true", "generated", "true_with_generated_pose", "generated_with_true_pose")


@torch.no_grad()
def swapped(stage2: MotionGenerator, true: torch.Tensor, generated: torch.Tensor) -> dict[str, torch.Tensor]:
    """Raw latents (T, Dm) of the four MOTIONS."""
    true_n, generated_n = stage2.normalise(true), stage2.normalise(generated)
    pose_difference = (generated_n - true_n) @ stage2.pose_projector  # (T, Dm)
    return {"true": true, "generated": generated,
            "true_with_generated_pose": stage2.denormalise(true_n + pose_difference),
            "generated_with_true_pose": stage2.denormalise(generated_n - pose_difference)}


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage2", required=True)
    parser.add_argument("--stage1", required=True)
    parser.add_argument("--syncnet", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--pose-gain", type=float, default=None, help="default: the model's")
    parser.add_argument("--pose-smoothing", type=float, default=None,
                        help="the generator's low-pass on the head pose (default: the model's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    stage1, stage2 = HeadImitator.from_pretrained(args.stage1).eval(), MotionGenerator.from_pretrained(args.stage2).eval()
    if not stage2.has_pose_directions:
        raise SystemExit(f"{args.stage2} has no head-pose directions to swap")
    syncnet = SyncNet.from_pretrained(args.syncnet).eval()
    scores = {name: [] for name in MOTIONS}
    for path in tqdm(list_clips(args.data, args.split)[:args.clips], desc="clips"):
        clip = load_clip(path)
        true = encode_clip(stage1, clip)
        generated = generate_from_audio(stage2, clip.self_audio, clip.other_audio, clip.sample_rate, seed=args.seed,
                                        start=true[:1], pose_gain=args.pose_gain,
                                        pose_smoothing=args.pose_smoothing).latents
        frames = min(len(true), len(generated))
        audio = clip.self_audio[: int(round(frames * clip.sample_rate / clip.fps))]
        for name, latents in swapped(stage2, true[:frames], generated[:frames]).items():
            video, landmarks = render_first_frame(stage1, clip, latents)
            scores[name].append(sync_scores(syncnet, uint8_video(video), landmarks, audio).lse_c)
    report = {"clips": len(scores["true"]), "split": args.split, "seed": args.seed,
              "pose_gain": resolve_pose_gain(stage2, args.pose_gain),
              "pose_smoothing": resolve_pose_smoothing(stage2, args.pose_smoothing),
              "lse_c": {name: float(np.mean(values)) for name, values in scores.items()},
              "lse_c_per_clip": scores}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report["lse_c"], indent=1))


if __name__ == "__main__":
    main()
