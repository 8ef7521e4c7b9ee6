"""Where does the generated video lose lip sync: in the generated mouth motion, or in how the
renderer draws it?

For each clip, stage 2 generates latents from the two voices as `infp-lab eval stage2` does
(the model's sampling defaults, seed 0, started from the clip's first true latent). The
metrics' motion reader (the ridge map from latents to SynConv motion parameters that the
stage-2 report fits on training clips) reads the mouth's parameters (jaw_open, smile,
lip_round, lip_press) from the true and from the generated latents. SynConv's own renderer,
which draws any parameters exactly, then re-renders the clip's true motion with its mouth
replaced by each reading. Rows, all scored by SyncNet-SynConv's LSE-C:

- truth: the clip's frames;
- truth, mouth read from the true latents: what the reader alone loses;
- truth, mouth read from the generated latents: the generated mouth drawn by a perfect renderer;
- the same two with the jaw alone, or the lips alone (smile, lip_round, lip_press), read;
- render of the true latents / of the generated latents: the stage-1 renderer driving the
  clip's first frame, as in the stage-2 report.

Usage:
    python scripts/generated_mouth_budget.py --stage2 weights/stage2_tiny.safetensors \
        --stage1 weights/stage1_tiny.safetensors --data data/s1test --train-data data/s1train \
        --clips 6 --out runs/generated_mouth_budget.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from infp_lab.data.clip import ClipFormatError, list_clips, load_clip
from infp_lab.render.appearance import Appearance
from infp_lab.render.face_model import PARAM_NAMES, project_landmarks
from infp_lab.render.face_renderer import render_frames
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.evaluate import References, evaluate_clip
from infp_lab.stage2.model import MotionGenerator
from infp_lab.syncnet import SyncNet, sync_scores

MOUTH_RANGES = {"jaw_open": (0.0, 1.0), "smile": (-0.5, 1.0), "lip_round": (0.0, 1.0), "lip_press": (0.0, 1.0)}
# The parts of the mouth whose reading replaces the truth's, row by row.
PARTS = {"mouth": tuple(MOUTH_RANGES), "jaw": ("jaw_open",), "lips": ("smile", "lip_round", "lip_press")}
MAX_LAG = 6  # frames (240 ms) either way


def follows(truth: np.ndarray, read: np.ndarray) -> dict[str, float]:
    """How a read parameter (T,) follows the true one: correlation, the ratio of their
    standard deviations, and the lag in frames (positive: the reading comes late) at which
    they correlate best, with that correlation."""
    def corr(lag: int) -> float:
        a, b = (truth[:len(truth) - lag], read[lag:]) if lag >= 0 else (truth[-lag:], read[:lag])
        return float(np.corrcoef(a, b)[0, 1])

    lags = {lag: corr(lag) for lag in range(-MAX_LAG, MAX_LAG + 1)}
    best = max(lags, key=lags.get)
    return {"correlation": lags[0], "std ratio": float(read.std() / truth.std()), "best lag (frames)": float(best),
            "correlation at the best lag": lags[best]}


def with_part(params: np.ndarray, read: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The clip's true parameters (T, P) with the columns `names` taken from `read` (T, P),
    kept inside the ranges SynConv draws."""
    out = params.astype(np.float64).copy()
    for name in names:
        column = PARAM_NAMES.index(name)
        out[:, column] = np.clip(read[:, column], *MOUTH_RANGES[name])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage2", type=Path, default=Path("weights/stage2_tiny.safetensors"))
    parser.add_argument("--stage1", type=Path, default=Path("weights/stage1_tiny.safetensors"))
    parser.add_argument("--syncnet", type=Path, default=Path("weights/syncnet_synconv.safetensors"))
    parser.add_argument("--data", type=Path, default=Path("data/s1test"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--train-data", type=Path, default=Path("data/s1train"),
                        help="training clips the motion reader is fitted on")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="optional JSON report")
    args = parser.parse_args()

    stage1, stage2 = HeadImitator.from_pretrained(args.stage1).eval(), MotionGenerator.from_pretrained(args.stage2).eval()
    if stage1.config.latent_dim != stage2.config.latent_dim:
        parser.error(f"{args.stage2} generates {stage2.config.latent_dim}-d latents but {args.stage1} uses "
                     f"{stage1.config.latent_dim}-d ones: give the stage-1 weights stage 2 was trained on")
    try:
        paths = list_clips(args.data, args.split)[:args.clips]
    except ClipFormatError as error:
        parser.error(str(error))
    clips = [load_clip(path) for path in paths]
    synthetic = [clip for clip in clips if clip.render_spec is not None]
    if not clips or len(synthetic) < len(clips):
        parser.error(f"{args.data} ({args.split} split) must hold SynConv clips, whose motion parameters SynConv "
                     f"can draw again; found {len(synthetic)} among {len(clips)} clips")
    judge = SyncNet.from_pretrained(args.syncnet).eval()
    reader = References.from_training_clips(stage1, args.train_data).reader
    size = stage1.config.image_size
    rows: dict[str, list[float]] = {}
    per_clip: list[dict] = []
    param_stats: dict[str, list[float]] = {}
    for clip in tqdm(clips, desc="clips"):
        # The truth and the stage-1 renderer on the true and the generated latents, as the stage-2 report has them.
        result = evaluate_clip(stage1, stage2, judge, clip, seed=args.seed)
        frames = min(result["frames"], len(clip.motion["params"]))
        audio = clip.self_audio[: int(round(frames * clip.sample_rate / clip.fps))]
        params = clip.motion["params"][:frames]
        appearance = Appearance.from_dict(clip.render_spec["appearance"])
        scores = {"truth": result["sync_truth"].lse_c}
        readings = {"true": reader(result["true_latents"][:frames]), "generated": reader(result["latents"][:frames])}
        for name, read in readings.items():
            for part, names in PARTS.items():
                drawn = with_part(params, read, names)
                scores[f"truth, {part} read from the {name} latents"] = sync_scores(
                    judge, render_frames(drawn, appearance, size), project_landmarks(drawn, appearance, size),
                    audio).lse_c
            for param in MOUTH_RANGES:
                column = PARAM_NAMES.index(param)
                for key, value in follows(params[:, column], read[:, column]).items():
                    param_stats.setdefault(f"{param} read from the {name} latents: {key}", []).append(value)
        scores["render of the true latents"] = result["sync_reconstruction"].lse_c
        scores["render of the generated latents"] = result["sync_generated"].lse_c
        for key, value in scores.items():
            rows.setdefault(key, []).append(float(value))
        per_clip.append({"clip": clip.name, "species": appearance.species,
                         **{k: float(v) for k, v in scores.items()}})
        print(clip.name, ", ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)

    means = {key: float(np.mean(values)) for key, values in rows.items()}
    for key, value in means.items():
        print(f"{key:50s} LSE-C {value:.3f} ({value / means['truth']:.0%} of the truth)")
    following = {key: float(np.nanmean(values)) for key, values in param_stats.items()}
    for key, value in following.items():
        print(f"{key:70s} {value:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"stage2": str(args.stage2), "stage1": str(args.stage1), "data": str(args.data),
                                        "split": args.split, "clips": len(per_clip), "seed": args.seed,
                                        "reader_alpha": reader.alpha, "lse_c": means,
                                        "mouth_parameters": following, "per_clip": per_clip}, indent=1))


if __name__ == "__main__":
    main()
