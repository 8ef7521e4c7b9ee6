"""Does a stage-1 motion latent hold the shape of the lips, and can it be read out?

For frames of SynConv clips, the motion latents of each stage-1 file are probed for the
mouth's motion parameters (jaw_open, lip_round, smile, lip_press), fitted on frames of
training clips and scored (R^2) on frames of held-out clips: by a linear probe (ridge, as
`infp-lab eval stage1`) and by a small MLP (scikit-learn; the mean over --seeds fits, with
their range), so that what the latent holds but not linearly shows too. Beside them, the width of the lips between the mouth's corners
(in inter-ocular units) of the landmark head's target (the canonical face with the frame's
motion, so that who the face is drops out: `stage1.data.head_targets`), as the file's own
landmark head decodes it (Pearson r), as the same linear head re-fitted to the targets of
the fitting frames by least squares decodes it (r: could a head trained on the frozen latents
do better?), and as the MLP reads it from the latent (R^2).

    .venv/bin/python scripts/latent_mouth_probe.py --stage1 weights/stage1_tiny.safetensors \
        --data data/s1train --fit-clips 60 --test-clips 16 --out runs/latent_mouth_probe.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from infp_lab.data.clip import list_clips, load_clip
from infp_lab.render.face_model import PARAM_NAMES
from infp_lab.stage1.data import head_targets
from infp_lab.stage1.evaluate import probe_params
from infp_lab.stage1.hybrid import interocular, lip_width
from infp_lab.stage1.inference import encode_clip
from infp_lab.stage1.model import HeadImitator

MOUTH_PARAMS = ("jaw_open", "lip_round", "smile", "lip_press")


def normalised_width(landmarks: np.ndarray) -> np.ndarray:
    """Width between the mouth's corners over the outer eye corners' distance, (N,)."""
    return lip_width(landmarks) / interocular(torch.from_numpy(landmarks)).numpy()


def frames_of(model: HeadImitator, paths: list[Path], stride: int) -> dict[str, np.ndarray]:
    """Latents, the mouth's parameters, the lip width of the head's target and of its output,
    for every `stride`-th frame of the clips."""
    latents, params, width, head_width, targets = [], [], [], [], []
    for path in paths:
        clip = load_clip(path, load_audio_tracks=False)
        frames = np.arange(0, min(clip.num_frames, len(clip.motion["params"])), stride)
        z = encode_clip(model, clip, frames)
        with torch.no_grad():
            head = model.landmark_head(z).cpu().numpy()
        latents.append(z.cpu().numpy())
        params.append(clip.motion["params"][frames][:, [PARAM_NAMES.index(n) for n in MOUTH_PARAMS]])
        targets.append(head_targets(clip)[frames])
        width.append(normalised_width(targets[-1]))
        head_width.append(normalised_width(head))
    return {"latents": np.concatenate(latents), "params": np.concatenate(params).astype(np.float64),
            "width": np.concatenate(width), "head_width": np.concatenate(head_width), "targets": np.concatenate(targets)}


def refitted_head_width(fit: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> np.ndarray:
    """The lip width (N,) of the test frames as a linear landmark head fitted by least squares
    to the fitting frames' head targets decodes it from their latents."""
    from sklearn.linear_model import Ridge

    head = Ridge(alpha=1e-3).fit(fit["latents"], fit["targets"].reshape(len(fit["targets"]), -1))
    return normalised_width(head.predict(test["latents"]).reshape(test["targets"].shape).astype(np.float32))


def mouth_targets(frames: dict[str, np.ndarray]) -> np.ndarray:
    """The mouth's parameters and the lip width, (N, 5)."""
    return np.column_stack([frames["params"], frames["width"]])


def mlp_probe(fit_x: np.ndarray, fit_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, seed: int) -> np.ndarray:
    """R^2 per target column of a small MLP fitted on one set of clips, scored on another."""
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler

    scaler_x, scaler_y = StandardScaler().fit(fit_x), StandardScaler().fit(fit_y)
    mlp = MLPRegressor(hidden_layer_sizes=(256, 256), alpha=1e-3, early_stopping=True, max_iter=500, random_state=seed)
    mlp.fit(scaler_x.transform(fit_x), scaler_y.transform(fit_y))
    predicted = scaler_y.inverse_transform(mlp.predict(scaler_x.transform(test_x)))
    return r2_score(test_y, predicted, multioutput="raw_values")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1", type=Path, nargs="+", required=True, help="stage-1 weights to probe")
    parser.add_argument("--data", type=Path, default=Path("data/s1train"))
    parser.add_argument("--fit-clips", type=int, default=60, help="training clips the probes are fitted on")
    parser.add_argument("--test-clips", type=int, default=16, help="validation clips they are scored on")
    parser.add_argument("--stride", type=int, default=4, help="every how many frames of a clip")
    parser.add_argument("--seeds", type=int, default=3, help="MLPs fitted (their R^2 varies with the seed by up to 0.1)")
    parser.add_argument("--out", type=Path, default=None, help="optional JSON report")
    args = parser.parse_args()

    fit_paths = list_clips(args.data, "train")[:args.fit_clips]
    test_paths = list_clips(args.data, "val")[:args.test_clips]
    report = {"data": str(args.data), "fit_clips": len(fit_paths), "test_clips": len(test_paths),
              "stride": args.stride, "models": {}}
    for path in args.stage1:
        model = HeadImitator.from_pretrained(path).eval()
        fit, test = frames_of(model, fit_paths, args.stride), frames_of(model, test_paths, args.stride)
        linear = probe_params(fit["latents"], fit["params"], test["latents"], test["params"], list(MOUTH_PARAMS))
        mlp = np.stack([mlp_probe(fit["latents"], mouth_targets(fit), test["latents"], mouth_targets(test), seed)
                        for seed in range(args.seeds)])  # (seeds, 5)
        names = (*MOUTH_PARAMS, "lip_width")
        row = {"frames": {"fit": len(fit["latents"]), "test": len(test["latents"])},
               "linear_r2": linear["r2_per_param"],
               "mlp_r2": {name: round(float(v), 4) for name, v in zip(names, mlp.mean(0))},
               "mlp_r2_min": {name: round(float(v), 4) for name, v in zip(names, mlp.min(0))},
               "mlp_r2_max": {name: round(float(v), 4) for name, v in zip(names, mlp.max(0))},
               "head_lip_width_r": float(np.corrcoef(test["width"], test["head_width"])[0, 1]),
               "refitted_head_lip_width_r": float(np.corrcoef(test["width"], refitted_head_width(fit, test))[0, 1])}
        report["models"][str(path)] = row
        print(f"{path}: linear R^2 " + ", ".join(f"{k} {v:.3f}" for k, v in row["linear_r2"].items()))
        print(f"{' ' * len(str(path))}  MLP R^2    " + ", ".join(
            f"{k} {v:.3f} ({row['mlp_r2_min'][k]:.3f}-{row['mlp_r2_max'][k]:.3f})" for k, v in row["mlp_r2"].items()))
        print(f"{' ' * len(str(path))}  landmark head's lip width against its target's: r = {row['head_lip_width_r']:.3f}"
              f" (re-fitted: {row['refitted_head_lip_width_r']:.3f})",
              flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
