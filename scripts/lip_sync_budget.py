"""Where does lip sync get lost before stage 2? SyncNet-SynConv's LSE-C on true clips, on
controls that remove one thing from them, and on stage-1 renders of the true latents.

Rows (mean over the clips):
- truth: the clip's own frames, cropped at its true landmarks;
- truth, blurred: the same frames under a Gaussian blur of --blur pixels (is it sharpness?);
- truth, jaw held: the clip re-rendered by SynConv with jaw_open held at its clip mean
  (how much of the score the jaw carries); with --hold, one such row per motion parameter
  named (or group of them joined by "+", held together) instead;
- one row per stage-1 weights file: the clip's first frame driven by the latents of all its
  frames (what stage 2 can reach at best), cropped at the driven landmarks, with the
  correlation between the true and the rendered mouth's dark area per frame (how far the
  rendered mouth opens with the true one), the correlation between the true and the
  driven landmarks' lip gap (how well the latents and the landmark head carry the opening)
  and that of their width between the mouth's corners (the rounding of the lips),
  and the mean absolute difference between the true and the rendered mouth crops, both cut
  at the true landmarks (a judge-free measure of how close the rendered mouth is);
- with --true-landmarks, one more row per file: the same render told the clip's true
  landmarks instead of the driven ones (is it the landmarks the renderer is given, or how
  it draws them?), with its mouth's dark-area correlation and crop distance;
- with --swap-regions, rows that trade one region of the mouth between the render and the
  truth, all cropped at the true landmarks (which part of the mouth costs the score?): the
  render as it is; the render with the truth's inside of the mouth (the inner-lip polygon)
  pasted in; the render with the truth's whole mouth (the outer-lip polygon) pasted in; and
  the truth with the render's inside of the mouth pasted in; with --swap-gap PX, also the
  render with the truth's inside of the mouth pasted in only where the true lip gap is under
  PX pixels (half open or closed), and only where it is PX or more (wide open); and the
  render with the truth's inside of the mouth blurred as the blurred-truth row (--blur)
  pasted in (does the judge need the inside's fine detail, or what it shows?);
- with --also-judge, every row is scored by more lip-sync experts too (a renderer trained
  through one expert is judged by others: has it learnt lip sync, or that expert?).
The JSON report (--out) holds the rows' means over the clips and, per clip, its species and
each row's LSE-C.

    .venv/bin/python scripts/lip_sync_budget.py --stage1 weights/stage1_tiny.safetensors \
        --data data/s1test --split test --clips 4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.render.appearance import Appearance
from infp_lab.render.face_model import PARAM_NAMES, project_landmarks
from infp_lab.render.face_renderer import render_frames
from infp_lab.stage1.hybrid import INNER_LIP, MOUTH, lip_gap, lip_width
from infp_lab.stage1.inference import clip_frames, clip_landmarks, encode_clip, reenact
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.evaluate import render_first_frame, uint8_video
from infp_lab.syncnet import SyncNet, sync_scores
from infp_lab.syncnet.crops import mouth_crops

DARK = 0.25  # grey level below which a mouth-crop pixel counts as the open mouth's inside


def dark_area(crops: np.ndarray) -> np.ndarray:
    return (crops < DARK).mean(axis=(1, 2))


def polygon_mask(landmarks: np.ndarray, points: tuple[int, ...], size: int, supersample: int = 4) -> np.ndarray:
    """(T, H, W, 1) soft masks of the polygon through `points` of landmarks (T, L, 2) in
    pixels, grown by a pixel so that it takes in the polygon's edge."""
    masks = np.empty((len(landmarks), size, size, 1), np.float32)
    for t, frame in enumerate(landmarks):
        canvas = np.zeros((size * supersample, size * supersample), np.uint8)
        cv2.fillPoly(canvas, [np.round((frame[list(points)] + 0.5) * supersample - 0.5).astype(np.int32)], 255)
        mask = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
        masks[t, :, :, 0] = cv2.dilate(mask, np.ones((3, 3), np.uint8)) / 255.0
    return masks


def paste(base: np.ndarray, other: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.round(base * (1 - mask) + other * mask).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1", type=Path, nargs="+", required=True, help="stage-1 weights to compare")
    parser.add_argument("--syncnet", type=Path, default=Path("weights/syncnet_synconv.safetensors"))
    parser.add_argument("--also-judge", type=Path, nargs="+", default=[],
                        help="more lip-sync experts that score every row too (key 'lse_c FILE')")
    parser.add_argument("--data", type=Path, default=Path("data/s1test"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--blur", type=float, default=1.2, help="sigma in pixels of the blurred-truth control")
    parser.add_argument("--true-landmarks", action="store_true",
                        help="also render each file's true latents drawn at the clip's true landmarks")
    parser.add_argument("--swap-regions", action="store_true",
                        help="also score the render and the truth with parts of the mouth traded between them")
    parser.add_argument("--swap-gap", type=float, default=None,
                        help="with --swap-regions: also paste the truth's inner mouth only below / above this lip gap (px)")
    parser.add_argument("--hold", nargs="+", default=["jaw_open"], metavar="PARAM[+PARAM...]",
                        help="a 'truth, ... held' row per entry: the truth re-rendered with these motion "
                             "parameters held at their clip means (default: jaw_open, the 'truth, jaw held' row)")
    parser.add_argument("--out", type=Path, default=None, help="optional JSON report")
    args = parser.parse_args()
    unknown = sorted({name for entry in args.hold for name in entry.split("+")} - set(PARAM_NAMES))
    if unknown:
        parser.error(f"--hold: unknown motion parameters {', '.join(unknown)}; choose from {', '.join(PARAM_NAMES)}")
    if args.swap_gap is not None and not args.swap_regions:
        parser.error("--swap-gap splits the --swap-regions rows: give --swap-regions too")

    judges = {"lse_c": SyncNet.from_pretrained(args.syncnet).eval()}
    judges.update({f"lse_c {path}": SyncNet.from_pretrained(path).eval() for path in args.also_judge})

    def lse_c(video: np.ndarray, landmarks: np.ndarray, audio: np.ndarray) -> dict[str, float]:
        return {key: sync_scores(judge, video, landmarks, audio).lse_c for key, judge in judges.items()}
    models = {str(path): HeadImitator.from_pretrained(path).eval() for path in args.stage1}
    size = next(iter(models.values())).config.image_size
    rows: dict[str, dict[str, list[float]]] = {}
    per_clip: list[dict] = []  # each clip's species and LSE-C (the --syncnet judge), row by row

    def add(name: str, **values: float) -> None:
        for key, value in values.items():
            rows.setdefault(name, {}).setdefault(key, []).append(float(value))

    for path in list_clips(args.data, args.split)[:args.clips]:
        clip = load_clip(path)
        params = clip.motion["params"]
        frames = min(len(params), clip.num_frames)
        audio = clip.self_audio[: int(round(frames * clip.sample_rate / clip.fps))]
        truth_frames, true_landmarks = clip_frames(clip, size, np.arange(frames)), clip_landmarks(clip, np.arange(frames))
        truth, true_lm = uint8_video(truth_frames), true_landmarks.numpy() * size
        add("truth", **lse_c(truth, true_lm, audio))
        blurred = np.stack([np.clip(gaussian_filter(f.astype(np.float32), (args.blur, args.blur, 0)), 0, 255)
                            for f in truth]).astype(np.uint8)
        add("truth, blurred", **lse_c(blurred, true_lm, audio))
        appearance = Appearance.from_dict(clip.render_spec["appearance"])
        for entry in args.hold:
            held = params[:frames].astype(np.float64)
            for name in entry.split("+"):
                held[:, PARAM_NAMES.index(name)] = held[:, PARAM_NAMES.index(name)].mean()
            label = "truth, jaw held" if entry == "jaw_open" else f"truth, {entry} held"
            add(label, **lse_c(render_frames(held, appearance, size), project_landmarks(held, appearance, size), audio))
        true_crops = mouth_crops(truth, true_lm)
        true_dark = dark_area(true_crops)

        def mouth_match(rendered: np.ndarray) -> dict[str, float]:
            """How close a render's mouth is to the truth's, both cut at the true landmarks."""
            crops = mouth_crops(rendered, true_lm)
            dark = dark_area(crops)
            return {"mouth_dark_corr": np.corrcoef(true_dark, dark)[0, 1] if dark.std() > 0 else 0.0,
                    "mouth_l1": np.abs(crops - true_crops).mean()}

        if args.swap_regions:
            inner, lips = polygon_mask(true_lm, INNER_LIP, size), polygon_mask(true_lm, MOUTH, size)
        for name, model in models.items():
            with torch.no_grad():
                latents = encode_clip(model, clip, np.arange(frames))
                video, landmarks = render_first_frame(model, clip, latents)
            rendered = uint8_video(video)
            add(name, **lse_c(rendered, landmarks, audio), **mouth_match(rendered),
                lip_gap_corr=np.corrcoef(lip_gap(true_lm), lip_gap(landmarks))[0, 1],
                lip_width_corr=np.corrcoef(lip_width(true_lm), lip_width(landmarks))[0, 1])
            if args.true_landmarks:
                video = uint8_video(reenact(model, truth_frames[0], true_landmarks[0], latents, targets=true_landmarks))
                add(f"{name}, true landmarks", **lse_c(video, true_lm, audio), **mouth_match(video))
            if args.swap_regions:
                for label, video in ((f"{name}, cropped at the true landmarks", rendered),
                                     (f"{name} + the truth's inner mouth", paste(rendered, truth, inner)),
                                     (f"{name} + the truth's inner mouth, blurred", paste(rendered, blurred, inner)),
                                     (f"{name} + the truth's whole mouth", paste(rendered, truth, lips)),
                                     (f"truth + {name}'s inner mouth", paste(truth, rendered, inner))):
                    add(label, **lse_c(video, true_lm, audio))
                if args.swap_gap is not None:
                    wide = (lip_gap(true_lm) >= args.swap_gap)[:, None, None, None]
                    for label, where in ((f"gap < {args.swap_gap:g} px", ~wide), (f"gap >= {args.swap_gap:g} px", wide)):
                        video = paste(rendered, truth, inner * where)
                        add(f"{name} + the truth's inner mouth where the {label}", **lse_c(video, true_lm, audio))
        per_clip.append({"clip": clip.name, "species": appearance.species,
                         **{name: values["lse_c"][-1] for name, values in rows.items()}})
        print(f"{clip.name} ({appearance.species}): " + ", ".join(f"{k} {v['lse_c'][-1]:.3f}" for k, v in rows.items()),
              flush=True)

    report = {"data": str(args.data), "split": args.split, "clips": args.clips, "per_clip": per_clip,
              "rows": {name: {k: float(np.mean(v)) for k, v in values.items()} for name, values in rows.items()}}
    for name, values in report["rows"].items():
        print(f"{name:40s} " + "  ".join(f"{k} {v:.3f}" for k, v in values.items()))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
