"""Does a long stage-2 generation keep the avatar's head where its portrait has it?

    python scripts/stage2_drift.py --stage2 W2 --stage1 W1 --data data/s1test --split test --clips 12 \
        --out runs/stage2_drift.json [--scale 3] [--seed 0]

For each clip, motion is generated from its two voices alone, continuing from the latent of
its first frame (the portrait), with the portrait as the style reference (the default) and
without a style; the stage-1 landmark head moves the first frame's landmarks by the true and
by the generated latents, and `landmark_head_pose` reads roll, turn (yaw proxy) and where
the head sits from them. Drift: how far the generated pose is from the true one, averaged
over the clip's last 5 s; Var: the temporal variance of each over the clip.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.metrics import landmark_head_pose
from infp_lab.stage1.inference import encode_clip
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.evaluate import first_frame_landmarks
from infp_lab.stage2.generate import generate_from_audio, resolve_audio_scale, resolve_pose_gain, resolve_pose_smoothing
from infp_lab.stage2.model import MotionGenerator

POSE_NAMES = ("roll_deg", "turn", "centre_x_px")
TAIL_S = 5.0


def summary(poses: list[np.ndarray], truths: list[np.ndarray], tail: int) -> dict:
    drift = np.array([np.abs(p[-tail:].mean(0) - t[-tail:].mean(0)) for p, t in zip(poses, truths)])  # (N, 5)
    var = np.array([p.var(0) for p in poses])
    return {**{f"drift_{n}": float(drift[:, i].mean()) for i, n in enumerate(POSE_NAMES)},
            **{f"drift_{n}_max": float(drift[:, i].max()) for i, n in enumerate(POSE_NAMES)},
            **{f"var_{n}": float(var[:, i].mean()) for i, n in enumerate(POSE_NAMES)}}


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage2", required=True)
    parser.add_argument("--stage1", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--scale", type=float, default=None, help="audio guidance scale (default: the model's)")
    parser.add_argument("--pose-gain", type=float, default=None, help="default: the model's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    stage1, stage2 = HeadImitator.from_pretrained(args.stage1).eval(), MotionGenerator.from_pretrained(args.stage2).eval()
    clips = [load_clip(p) for p in list_clips(args.data, args.split)[:args.clips]]
    truths, poses = [], {"portrait_style": [], "no_style": []}
    for clip in tqdm(clips, desc="clips"):
        true_latents = encode_clip(stage1, clip)
        truths.append(landmark_head_pose(first_frame_landmarks(stage1, clip, true_latents)))
        for mode in poses:
            latents = generate_from_audio(stage2, clip.self_audio, clip.other_audio, clip.sample_rate,
                                          audio_scale=args.scale, seed=args.seed, start=true_latents[:1],
                                          portrait_style=mode == "portrait_style", pose_gain=args.pose_gain).latents
            poses[mode].append(landmark_head_pose(first_frame_landmarks(stage1, clip, latents)))
    tail = int(round(TAIL_S * clips[0].fps))
    report = {"clips": len(clips), "split": args.split, "scale": resolve_audio_scale(stage2, args.scale),
              "seed": args.seed, "tail_s": TAIL_S,
              "pose_gain": resolve_pose_gain(stage2, args.pose_gain),
              "pose_smoothing": resolve_pose_smoothing(stage2, None),
              "truth": {f"var_{n}": float(np.mean([t[:, i].var() for t in truths])) for i, n in enumerate(POSE_NAMES)},
              **{mode: summary(p, truths, tail) for mode, p in poses.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
