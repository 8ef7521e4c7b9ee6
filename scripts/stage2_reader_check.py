"""How the stage-2 report's motion reading depends on the motion reader's ridge strength.

For one stage-1 / stage-2 pair: the true latents of N held-out clips and the latents stage 2
generates for them (as `infp-lab eval stage2` does: from the clip's voices, continuing from
its first frame, seed 0, default guidance), then, for every ridge strength the reader may
choose (`MotionReader.ALPHAS`), fitted on the true latents of 24 training clips:

- cv_r2: the within-clip R^2 cross-validated over whole training clips (what the reader
  chooses its strength by);
- test_r2: the within-clip R^2 of the held-out clips' true motion read from their true latents;
- Var of the expression and of the pose, of the truth and of the generated motion, both read.

    python scripts/stage2_reader_check.py --stage1 weights/stage1_tiny.safetensors \\
        --stage2 weights/stage2_tiny.safetensors --data data/s1test --train-data data/s1train \\
        --clips 12 --latents runs/reader_check/shipped.npz --out runs/reader_check/shipped.json

The generated latents are kept in `--latents` (and read from it when it exists).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.metrics import motion_variance
from infp_lab.stage1.inference import encode_clip
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.evaluate import EXPRESSION, POSE, MotionReader, within_clip_r2
from infp_lab.stage2.generate import generate_from_audio
from infp_lab.stage2.model import MotionGenerator


@torch.no_grad()
def held_out_latents(args: argparse.Namespace, stage1: HeadImitator) -> tuple[list, list, list]:
    """(true latents, generated latents, true params) of the held-out clips, one array per clip."""
    cached = args.latents.exists()
    clips = [load_clip(p, load_audio_tracks=not cached) for p in list_clips(args.data, args.split)[:args.clips]]
    if cached:
        stored = np.load(args.latents)
        true, generated = [[stored[f"{kind}{i}"] for i in range(len(clips))] for kind in ("true", "gen")]
    else:
        stage2 = MotionGenerator.from_pretrained(args.stage2).eval()
        true, generated = [], []
        for clip in clips:
            z = encode_clip(stage1, clip)
            g = generate_from_audio(stage2, clip.self_audio, clip.other_audio, clip.sample_rate, seed=0,
                                    start=z[:1], pose_gain=args.pose_gain).latents
            frames = min(len(z), len(g))
            true.append(z[:frames].numpy())
            generated.append(g[:frames].numpy())
        args.latents.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.latents, **{f"true{i}": z for i, z in enumerate(true)},
                 **{f"gen{i}": g for i, g in enumerate(generated)})
    params = [c.motion["params"][:len(z)] for c, z in zip(clips, true)]
    return true, generated, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage1", required=True, type=Path)
    parser.add_argument("--stage2", required=True, type=Path)
    parser.add_argument("--pose-gain", type=float, default=None, help="as in generate (default: the model's)")
    parser.add_argument("--data", required=True, type=Path, help="held-out clips")
    parser.add_argument("--split", default="test")
    parser.add_argument("--train-data", required=True, type=Path, help="training clips for the reader")
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--latents", required=True, type=Path, help="npz of the generated latents (kept, reused)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    stage1 = HeadImitator.from_pretrained(args.stage1).eval()
    train = [load_clip(p, load_audio_tracks=False) for p in list_clips(args.train_data, "train")[:24]]
    with torch.no_grad():
        train_latents = [encode_clip(stage1, c).numpy() for c in train]
    train_params = [c.motion["params"][:len(z)] for c, z in zip(train, train_latents)]
    true, generated, params = held_out_latents(args, stage1)
    groups = np.repeat(np.arange(len(true)), [len(z) for z in true])

    chosen = MotionReader(train_latents, train_params, columns=EXPRESSION + POSE)
    rows = []
    for alpha, cv in zip(MotionReader.ALPHAS, chosen.cv_scores):
        reader = MotionReader(train_latents, train_params, columns=EXPRESSION + POSE, alpha=alpha)
        read_true, read_generated = [reader(z) for z in true], [reader(z) for z in generated]
        row = {"alpha": float(alpha), "cv_r2": float(cv),
               "test_r2": within_clip_r2(np.concatenate(read_true), np.concatenate(params), groups, EXPRESSION + POSE)}
        for name, columns in (("expression", EXPRESSION), ("pose", POSE)):
            row[f"var_{name}_truth"] = motion_variance([m[:, columns] for m in read_true])
            row[f"var_{name}_generated"] = motion_variance([m[:, columns] for m in read_generated])
        rows.append(row)
        print(f"alpha {alpha:9.3f}  cv R2 {cv:.3f}  test R2 {row['test_r2']:.3f}  "
              f"Var expr {row['var_expression_truth']:.4f} / {row['var_expression_generated']:.4f}  "
              f"pose {row['var_pose_truth']:.2f} / {row['var_pose_generated']:.2f}", flush=True)
    print(f"the reader chooses alpha {chosen.alpha:g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"stage1": args.stage1.name, "stage2": args.stage2.name, "pose_gain": args.pose_gain,
                                    "data": args.data.name, "split": args.split, "clips": len(true),
                                    "chosen_alpha": chosen.alpha, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
