"""Why stage 2 generates the lips' shape poorly: where the lips live in the stage-1 latent, what
the audio tells of them, and how well a stage-2 model's generated latents carry them.

On SynConv clips, whose true mouth parameters (jaw_open, smile, lip_round, lip_press) are known:

1. The latent's principal directions: stage-1 latents of training frames, normalised per
   channel as stage 2 sees them; each direction's variance, and how well the top k directions
   carry each mouth parameter (r of a least-squares fit on those frames).
2. The landmark head's mouth: the same for the 40 coordinates of the lips' shape that the
   stage-1 landmark head decodes (`HeadImitator.mouth_shape`, what MouthShapeLoss compares).
3. The audio (optional, `--audio-probe-steps`): an audio encoder of the stage-2 model's
   architecture and a linear head, trained to regress the parameters from both tracks on the
   training clips; r on the validation clips is what the audio tells of them.
4. The generated latents (optional, `--stage2`): how the parameters that the stage-2 report's
   motion reader reads from generated latents follow the truth (r per clip, averaged), on
   validation clips and on as many training clips, beside the reading of the true latents.

Usage:
    python scripts/lips_in_the_latent.py --stage1 weights/stage1_tiny.safetensors \
        --stage2 weights/stage2_tiny.safetensors --data data/s1train --clips 8 \
        --audio-probe-steps 1500 --out runs/lips_in_the_latent.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from infp_lab.data.clip import ClipFormatError, list_clips, load_clip
from infp_lab.render.face_model import PARAM_NAMES
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.audio_encoder import AudioEncoder, encoder_inputs
from infp_lab.stage2.config import preset
from infp_lab.stage2.evaluate import References, encode_clip
from infp_lab.stage2.generate import generate_from_audio
from infp_lab.stage2.model import MotionGenerator

MOUTH = ("jaw_open", "smile", "lip_round", "lip_press")
COLUMNS = [PARAM_NAMES.index(name) for name in MOUTH]
TOP_K = (1, 5, 10, 20, 40, 64)


def fit_r(features: np.ndarray, targets: np.ndarray) -> list[float]:
    """r between each target column and its least-squares fit from `features` (with a constant)."""
    x = np.c_[features, np.ones(len(features))]
    fitted = x @ np.linalg.lstsq(x, targets, rcond=None)[0]
    return [float(np.corrcoef(fitted[:, j], targets[:, j])[0, 1]) for j in range(targets.shape[1])]


def clip_r(truth: np.ndarray, read: np.ndarray) -> list[float]:
    """r of each mouth parameter over one clip (T, P) -> (4,)."""
    return [float(np.corrcoef(truth[:, c], read[:, c])[0, 1]) for c in COLUMNS]


def encoder(stage1: HeadImitator):
    """`encode_clip` of `stage1`, each clip encoded once however often it is asked for."""
    cache: dict[str, torch.Tensor] = {}

    def encode(clip) -> torch.Tensor:
        if clip.name not in cache:
            cache[clip.name] = encode_clip(stage1, clip)
        return cache[clip.name]

    return encode


def principal_directions(stage1: HeadImitator, clips: list, encode) -> dict:
    encoded = [encode(clip) for clip in tqdm(clips, desc="encoding")]
    latents = torch.cat(encoded)
    params = np.concatenate([clip.motion["params"][:len(z), COLUMNS] for clip, z in zip(clips, encoded)])
    normalised = ((latents - latents.mean(0)) / latents.std(0)).double().numpy()
    _, singular, vt = np.linalg.svd(normalised - normalised.mean(0), full_matrices=False)
    variances = singular ** 2 / len(normalised)
    components = (normalised - normalised.mean(0)) @ vt.T
    with torch.no_grad():
        shapes = stage1.mouth_shape(latents).flatten(1).double().numpy()
    shapes = shapes - shapes.mean(0)
    _, shape_singular, shape_vt = np.linalg.svd(shapes, full_matrices=False)
    shape_components = shapes @ shape_vt.T
    return {
        "frames": len(latents),
        "latent_direction_variances": [float(v) for v in variances],
        "latent_top_k_r": {str(k): dict(zip(MOUTH, fit_r(components[:, :k], params))) for k in TOP_K},
        "mouth_shape_variance_shares": [float(v) for v in shape_singular ** 2 / (shape_singular ** 2).sum()],
        "mouth_shape_top_k_r": {str(k): dict(zip(MOUTH, fit_r(shape_components[:, :k], params)))
                                for k in (1, 4, 8, 40)},
    }


def audio_probe(config, train: list, val: list, steps: int, seed: int = 0) -> dict:
    """Train audio encoders of `config`'s architecture + a linear head on `train`; r on `val`."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def tensors(clips):
        out = []
        for clip in clips:
            frames = len(clip.motion["params"])
            tracks = [torch.from_numpy(encoder_inputs(a, frames, config)) for a in (clip.self_audio, clip.other_audio)]
            out.append((*tracks, torch.from_numpy(clip.motion["params"][:, COLUMNS].astype(np.float32))))
        return out

    train, val = tensors(train), tensors(val)
    targets = torch.cat([y for *_, y in train])
    mean, std = targets.mean(0), targets.std(0)
    encoders = nn.ModuleList([AudioEncoder(config), AudioEncoder(config)])
    head = nn.Linear(2 * config.dim, len(MOUTH))
    optimizer = torch.optim.AdamW([*encoders.parameters(), *head.parameters()], 1e-3, weight_decay=1e-2)

    def predict(s, o):
        return head(torch.cat([encoders[0](s), encoders[1](o)], dim=-1))

    window = 100
    for _ in tqdm(range(steps), desc="audio probe"):
        picks = [train[i] for i in rng.integers(len(train), size=32)]
        starts = [int(rng.integers(len(y) - window)) for *_, y in picks]
        s, o, y = (torch.stack([item[k][a:a + window] for item, a in zip(picks, starts)]) for k in range(3))
        loss = (predict(s, o) - (y - mean) / std).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        rs = [[float(np.corrcoef(y[:, j], predict(s[None], o[None])[0, :, j])[0, 1]) for j in range(len(MOUTH))]
              for s, o, y in val]
    return {"steps": steps, "val_clips": len(val), "r": dict(zip(MOUTH, np.nanmean(rs, axis=0).tolist()))}


def generated(encode, stage2: MotionGenerator, reader, clips: list, seed: int) -> dict:
    """Mean r of the mouth parameters read from the true and from the generated latents."""
    true_rs, generated_rs = [], []
    for clip in tqdm(clips, desc="generating"):
        true = encode(clip)
        latents = generate_from_audio(stage2, clip.self_audio, clip.other_audio, clip.sample_rate, seed=seed,
                                      start=true[:1]).latents
        frames = min(len(true), len(latents))
        truth = clip.motion["params"][:frames]
        true_rs.append(clip_r(truth, reader(true[:frames].numpy())))
        generated_rs.append(clip_r(truth, reader(latents[:frames].numpy())))
    return {"clips": len(clips), "true_latents": dict(zip(MOUTH, np.nanmean(true_rs, axis=0).tolist())),
            "generated_latents": dict(zip(MOUTH, np.nanmean(generated_rs, axis=0).tolist()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1", type=Path, default=Path("weights/stage1_tiny.safetensors"))
    parser.add_argument("--stage2", type=Path, default=None, help="stage-2 weights whose generated lips to read")
    parser.add_argument("--data", type=Path, default=Path("data/s1train"), help="SynConv clips with train/val splits")
    parser.add_argument("--clips", type=int, default=8, help="validation (and training) clips to generate")
    parser.add_argument("--pca-clips", type=int, default=40,
                        help="training clips for the principal directions (0: skip parts 1 and 2)")
    parser.add_argument("--audio-probe-steps", type=int, default=0, help="0: no audio probe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="optional JSON report")
    args = parser.parse_args()

    stage1 = HeadImitator.from_pretrained(args.stage1).eval()
    encode = encoder(stage1)
    try:
        train_paths, val_paths = list_clips(args.data, "train"), list_clips(args.data, "val")
    except ClipFormatError as error:
        parser.error(str(error))
    if not train_paths or not val_paths:
        parser.error(f"{args.data} needs a train and a val split")
    train = [load_clip(p) for p in train_paths]
    if any(clip.render_spec is None for clip in train):
        parser.error(f"{args.data} must hold SynConv clips, whose true mouth parameters are known")
    val = [load_clip(p) for p in val_paths]
    report = {"stage1": str(args.stage1), "data": str(args.data), "parameters": list(MOUTH)}
    if args.pca_clips > 0:
        report.update(principal_directions(stage1, train[:args.pca_clips], encode))
    if args.audio_probe_steps > 0:
        config = (MotionGenerator.from_pretrained(args.stage2).config if args.stage2
                  else preset("tiny", stage1.config.latent_dim))
        report["audio_probe"] = audio_probe(config, train, val, args.audio_probe_steps, args.seed)
    if args.stage2 is not None:
        stage2 = MotionGenerator.from_pretrained(args.stage2).eval()
        if stage2.config.latent_dim != stage1.config.latent_dim:
            parser.error(f"{args.stage2} does not fit {args.stage1}: give the stage-1 weights it was trained on")
        reader = References.from_training_clips(stage1, args.data).reader
        report["stage2"] = str(args.stage2)
        report["generated"] = {split: generated(encode, stage2, reader, clips[:args.clips], args.seed)
                               for split, clips in (("val", val), ("train", train))}
    print(json.dumps({k: v for k, v in report.items() if k not in ("latent_direction_variances",
                                                                     "mouth_shape_variance_shares")}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
