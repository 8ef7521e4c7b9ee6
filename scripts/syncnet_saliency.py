"""What does SyncNet-SynConv read in a mouth crop? The gradient of the aligned windows'
similarity with respect to the true mouth crops, averaged in absolute value over the windows
of some clips, split by how far the mouth is open in the window's middle frame.

Writes a PNG: for each group (closed, half open, wide open), the mean crop above the mean
saliency (each map scaled to its own maximum), and prints the share of each group's
saliency that falls inside the inner-lip polygon.

    .venv/bin/python scripts/syncnet_saliency.py --data data/s1train --split val --clips 8 \
        --out runs/syncnet_saliency.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import torch

from infp_lab.data.audio import audio_features
from infp_lab.data.clip import list_clips, load_clip
from infp_lab.stage1.hybrid import INNER_LIP, lip_gap
from infp_lab.syncnet import SyncNet
from infp_lab.syncnet.crops import mouth_crops
from infp_lab.syncnet.score import windows

GROUPS = {"closed (gap < 1 px)": (0.0, 1.0), "half open (1-5 px)": (1.0, 5.0), "wide open (>= 5 px)": (5.0, np.inf)}


def inner_mouth_in_crop(frame_shape: tuple[int, ...], landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, h, w) masks in [0, 1] of the inner-lip polygon, drawn on frames of `frame_shape`
    (H, W, 3) and cut out by `mouth_crops` itself, so they sit where the crops do."""
    masks = np.zeros((len(landmarks), *frame_shape), np.uint8)
    for mask, points in zip(masks, landmarks):
        cv2.fillPoly(mask, [np.round(points[list(INNER_LIP)]).astype(np.int32)], (255, 255, 255))
    return mouth_crops(masks, landmarks, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syncnet", type=Path, default=Path("weights/syncnet_synconv.safetensors"))
    parser.add_argument("--data", type=Path, default=Path("data/s1train"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="frame size the clips are rendered at")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args()

    model = SyncNet.from_pretrained(args.syncnet).eval()
    window, crop_size = model.config.window, model.config.crop_size
    sums = {name: {"crop": 0.0, "saliency": 0.0, "inside": 0.0, "total": 0.0, "area": 0.0, "count": 0} for name in GROUPS}
    for path in list_clips(args.data, args.split)[:args.clips]:
        clip = load_clip(path)
        frames, landmarks = clip.frames(args.size), clip.landmarks(args.size)
        crops = mouth_crops(frames, landmarks, crop_size)
        inner = inner_mouth_in_crop(frames.shape[1:], landmarks, crop_size)
        features = audio_features(clip.self_audio, len(frames))
        x = torch.from_numpy(np.ascontiguousarray(windows(crops, window))).requires_grad_(True)  # (N, window, h, w)
        audio = torch.from_numpy(np.ascontiguousarray(windows(features, window)))
        (model.embed_visual(x) * model.embed_audio(audio)).sum().backward()
        saliency = x.grad.abs().mean(dim=1).numpy()  # (N, h, w)
        middle = np.arange(len(x)) + window // 2
        gap = lip_gap(landmarks[middle])
        for name, (low, high) in GROUPS.items():
            chosen = (gap >= low) & (gap < high)
            group = sums[name]
            group["crop"] += crops[middle[chosen]].sum(0)
            group["saliency"] += saliency[chosen].sum(0)
            group["inside"] += float((saliency[chosen] * inner[middle[chosen]]).sum())
            group["total"] += float(saliency[chosen].sum())
            group["area"] += float(inner[middle[chosen]].mean(axis=(1, 2)).sum())
            group["count"] += int(chosen.sum())
    tiles = []
    for name, group in sums.items():
        count = group["count"]
        if count == 0:
            continue
        print(f"{name:22s} windows {count:5d}  saliency inside the inner lips {group['inside'] / group['total']:.2f}"
              f" (their share of the crop's area {group['area'] / count:.2f})")
        tiles.append(np.concatenate([group["crop"] / count, group["saliency"] / group["saliency"].max()], axis=0))
    image = (np.concatenate(tiles, axis=1) * 255).astype(np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(args.out, np.kron(image, np.ones((3, 3), np.uint8)))


if __name__ == "__main__":
    main()
