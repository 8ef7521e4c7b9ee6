"""Close-ups of the mouth, truth beside stage-1 renders, at frames ordered by one motion
parameter: does the render draw the mouth the truth shows (open, rounded, smiling)?

One column per chosen frame (spread over the parameter's range, lowest left), one row for
the truth and one per stage-1 weights file: the clip's first frame driven by the latents
of the chosen frames (as `lip_sync_budget.py` renders them), and with --true-landmarks one
more row per file, the same render drawn at the true landmarks. Every tile is the same box
around the true mouth, enlarged without smoothing, so the rows line up pixel for pixel.

    .venv/bin/python scripts/mouth_closeups.py --stage1 weights/stage1_tiny.safetensors \
        --clip data/s1train/conv0000_b --order lip_round --out runs/closeups.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from infp_lab.data.clip import load_clip
from infp_lab.render.face_model import PARAM_NAMES
from infp_lab.stage1.hybrid import MOUTH
from infp_lab.stage1.inference import clip_frames, clip_landmarks, encode_clip, reenact
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.evaluate import uint8_video
from infp_lab.viz import image_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1", type=Path, nargs="+", required=True, help="stage-1 weights to compare")
    parser.add_argument("--clip", type=Path, required=True, help="a SynConv clip folder")
    parser.add_argument("--order", default="lip_round", choices=PARAM_NAMES, help="the motion parameter to order by")
    parser.add_argument("--frames", type=int, default=8, help="columns")
    parser.add_argument("--box", type=int, default=32, help="side of the box around the mouth, in pixels of the render")
    parser.add_argument("--zoom", type=int, default=4)
    parser.add_argument("--true-landmarks", action="store_true", help="also draw each render at the true landmarks")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args()

    models = {path.stem if path.stem != "stage1" else path.parent.name: HeadImitator.from_pretrained(path).eval()
              for path in args.stage1}
    size = next(iter(models.values())).config.image_size
    clip = load_clip(args.clip)
    params = clip.motion["params"]
    count = min(len(params), clip.num_frames)
    values = params[:count, PARAM_NAMES.index(args.order)]
    ranked = np.argsort(values, kind="stable")
    chosen = ranked[np.linspace(0, count - 1, args.frames).round().astype(int)]
    source, source_landmarks = clip_frames(clip, size, np.array([0]))[0], clip_landmarks(clip, np.array([0]))[0]
    true_frames, true_landmarks = clip_frames(clip, size, chosen), clip_landmarks(clip, chosen)  # the chosen frames only
    centres = (true_landmarks[:, list(MOUTH)].mean(1).numpy() * size).round().astype(int)  # (N, 2) x, y

    def tiles(video: torch.Tensor) -> list[np.ndarray]:
        half = args.box // 2
        padded = np.pad(uint8_video(video), ((0, 0), (half, half), (half, half), (0, 0)), mode="edge")
        out = []
        for frame, (x, y) in zip(padded, centres + half):
            box = frame[y - half:y + half, x - half:x + half]
            out.append(np.kron(box, np.ones((args.zoom, args.zoom, 1), np.uint8)))
        return out

    cells = tiles(true_frames)
    labels = [f"truth {args.order}={values[i]:.2f}" for i in chosen]
    for name, model in models.items():
        with torch.no_grad():
            latents = encode_clip(model, clip, chosen)
            cells += tiles(reenact(model, source, source_landmarks, latents))  # as stage 2's evaluation renders
            labels += [name] * len(chosen)
            if args.true_landmarks:
                cells += tiles(reenact(model, source, source_landmarks, latents, targets=true_landmarks))
                labels += [f"{name}, true lm"] * len(chosen)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(cells, columns=len(chosen), labels=labels)).save(args.out)
    print(f"wrote {args.out}: {clip.name}, frames {', '.join(map(str, chosen))} by {args.order}")


if __name__ == "__main__":
    main()
