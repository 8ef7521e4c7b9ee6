"""The head's motion at several pose gains and pose low-passes, on many clips, without rendering.

    python scripts/stage2_head_sweep.py --stage2 W2 --stage1 W1 --data data/s1train --split val \
        --train-data data/s1train --settings 2:1 3.5:2 --out runs/stage2_head_sweep.json [--clips N]

Each setting is "pose gain:pose smoothing (frames)". Motion is generated from each clip's two
voices at the default audio scale and guidance smoothing, continuing from its first frame's
latent, and read as the stage-2 report reads it (`evaluate.motion_summary`: SID, Var, nods
while listening, state accuracy, ...). Lip sync needs rendering and is left to
`stage2_experiments.py`; this script is cheap enough to use every clip of a split, where
those sweeps use 8.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from infp_lab.data.audio import frame_energy
from infp_lab.data.clip import list_clips, load_clip
from infp_lab.stage1.inference import encode_clip
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.evaluate import References, motion_summary
from infp_lab.stage2.generate import generate_from_audio
from infp_lab.stage2.model import MotionGenerator

KEYS = ("sid_expression", "sid_pose", "var_expression", "var_pose", "jitter_pose", "state_accuracy",
        "mouth_listening_over_speaking", "nods_per_min_listening", "nods_after_partner_phrase",
        "nods_after_partner_phrase_chance", "transition_lag_s")


def setting(text: str) -> tuple[float, float]:
    gain, frames = text.split(":")
    return float(gain), float(frames)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage2", required=True, type=Path)
    parser.add_argument("--stage1", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--split", default="val", help="which split of --data (choose a setting on 'val')")
    parser.add_argument("--train-data", required=True, type=Path, help="training clips for the metrics' references")
    parser.add_argument("--settings", required=True, type=setting, nargs="+", help="GAIN:FRAMES ...")
    parser.add_argument("--clips", type=int, default=None, help="the first N clips of the split (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    start_time = time.perf_counter()
    stage1, stage2 = HeadImitator.from_pretrained(args.stage1).eval(), MotionGenerator.from_pretrained(args.stage2).eval()
    refs = References.from_training_clips(stage1, args.train_data)
    clips = [load_clip(p) for p in list_clips(args.data, args.split)[:args.clips]]
    truths, states, partner = [], [], []
    generated = {s: [] for s in args.settings}
    for clip in tqdm(clips, desc="clips"):
        true_latents = encode_clip(stage1, clip)
        for gain, frames in args.settings:
            latents = generate_from_audio(stage2, clip.self_audio, clip.other_audio, clip.sample_rate, seed=args.seed,
                                          start=true_latents[:1], pose_gain=gain, pose_smoothing=frames).latents
            generated[(gain, frames)].append(latents.numpy())
        length = min(len(true_latents), *(len(g[-1]) for g in generated.values()))
        for g in generated.values():
            g[-1] = g[-1][:length]
        truths.append(true_latents[:length].numpy())
        states.append(clip.motion["state"][:length])
        partner.append(frame_energy(clip.other_audio, clip.sample_rate, clip.fps, num_frames=length))
    rows = {}
    for (gain, frames), latents in generated.items():
        table = motion_summary(latents, truths, states, partner, refs)
        rows.setdefault("ground_truth", {k: table["ground_truth"][k] for k in KEYS})
        rows[f"{gain:g}:{frames:g}"] = {k: table["generated"][k] for k in KEYS}
        print(f"{gain:g}:{frames:g}", {k: round(v, 4) for k, v in rows[f'{gain:g}:{frames:g}'].items()}, flush=True)
    print("ground truth", {k: round(v, 4) for k, v in rows["ground_truth"].items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": str(args.data), "split": args.split, "clips": len(clips), "seed": args.seed,
                                    "seconds": round(time.perf_counter() - start_time), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
