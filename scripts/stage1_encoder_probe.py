"""How far the motion encoder alone can take the disentanglement probes: fine-tune only the
motion encoder, the landmark head and (with --param-weight) the param head of trained
stage-1 weights, leaving the renderer out (about 3x faster a step than full training), then
run the stage-1 report's controlled probes on held-out identities. It tells which encoder
input and which losses can lift the latent -> motion-parameter R^2, before paying for a full
stage-1 fine-tune (which must also move the renderer, and then stage 2, onto the new latents).

    python scripts/stage1_encoder_probe.py --stage1 weights/stage1_tiny.safetensors \
        --data data/s1train --test data/s1test --out runs/encoder_probe/regions \
        [--points contour|regions] [--param-weight 1] [--invariance-weight 1 [--invariance-per-dim]] [--identity-weight 0.1] [--steps 300]

The region-points branch learns at stage1.train.REGION_BRANCH_LR_SCALE times the rate, as in
`infp-lab train stage1`.

--identity-weight trains an identity adversary: an MLP that reads, from the latent of a
cross-identity driver, the look of the face it shows (SynConv's `Appearance` less the
placement: species, colours, styles, face proportions, lighting; standardised), while the
encoder learns, through a gradient reversal, to keep it from reading it. The look is shared
by all identities, so a regression onto it needs fewer frames of each identity than a
classifier over the 168 training identities (which learnt nothing in 300 steps: its loss
stayed at log 168). Only cross-identity drivers count: they show one identity at another clip's
placement, so the face, not where the head sits, is what the adversary can use (the latent
must keep the placement: the landmark head's target has it).

--reference rest trains the encoder to read its points moved onto the canonical face: each
driving frame's landmarks, less those of the face it shows at rest, plus the canonical face's
at rest (both at the clip's placement), so that the points hold the motion and not the face's
shape. The crops still come from the frame at its own landmarks. SynConv knows each face at
rest; a user's data does not (a portrait only approximates it: weights/README.md, "Points read
relative to the face at rest"). The report's probes read the
encoder without a reference, so with --reference the script skips them: score the encoder with
`scripts/stage1_identity_sources.py`, whose "moved onto the canonical face" rows read it as
it was trained.

Writes OUT/encoder.safetensors and OUT/probes.json and prints the probe summary.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from infp_lab.data.clip import list_clips, load_clip, train_val_clips
from infp_lab.render import NEUTRAL_PARAMS, Appearance, project_landmarks
from infp_lab.render.appearance import CHOICES
from infp_lab.stage1.config import HYBRID_POINT_SETS
from infp_lab.stage1.data import PLACEMENT, FramePairDataset, canonical_landmarks, param_statistics, placed
from infp_lab.stage1.evaluate import controlled_probes
from infp_lab.stage1.hybrid import colour_jitter
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage1.train import (Stage1TrainConfig, fit_param_head, init_from, invariance_loss, param_loss,
                                   parameter_groups)
from infp_lab.train.common import cosine_lr

ADVERSARY_LR_SCALE = 3.0  # the identity adversary learns faster than the encoder it plays against


def encoder_model(weights: str, train: list[Path], points: str) -> HeadImitator:
    """The given stage-1 model, reading `points`, with a param head fitted to its latents."""
    given = HeadImitator.from_pretrained(weights)
    names, mean, std = param_statistics(train)
    config = replace(given.config, param_names=tuple(names), motion=replace(given.config.motion, points=points))
    model = HeadImitator(config)
    init_from(model, given)
    model.param_head.mean.copy_(torch.from_numpy(mean))
    model.param_head.std.copy_(torch.from_numpy(std))
    fit_param_head(model, train[:48])
    return model


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times -weight backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.weight * grad, None


def appearance_features(dataset: FramePairDataset) -> torch.Tensor:
    """The look of each clip's face (N, F), standardised over the clips: every `Appearance`
    field but the placement and the background's seed, colours in [0, 1], styles one-hot."""
    rows = []
    for index in range(len(dataset.clip_paths)):
        look = dataset.clip(index).render_spec["appearance"]
        row = []
        for name, value in sorted(look.items()):
            if name in PLACEMENT or name == "bg_seed":
                continue
            if name in CHOICES:
                row += [float(value == choice) for choice in CHOICES[name]]
            elif isinstance(value, list):
                row += [v / 255.0 for v in value]
            else:
                row.append(float(value))
        rows.append(row)
    features = torch.tensor(rows)
    spread = features.std(dim=0)
    keep = spread > 1e-6
    return (features[:, keep] - features[:, keep].mean(dim=0)) / spread[keep]


class RestOffsets:
    """What moves a SynConv face's landmarks onto the canonical face: the canonical face at rest
    less the shown face at rest, both at a clip's placement, in [0, 1] units; (L, 2) per
    (shown identity, clip) pair of a dataset, computed once."""

    def __init__(self, dataset: FramePairDataset):
        self.dataset, self.cache = dataset, {}

    def look(self, index: int) -> Appearance:
        return Appearance.from_dict(self.dataset.clip(index).render_spec["appearance"])

    def __call__(self, shown: torch.Tensor, clip_index: torch.Tensor) -> torch.Tensor:
        rows = []
        for pair in zip(shown.tolist(), clip_index.tolist()):
            if pair not in self.cache:
                placement = self.look(pair[1])
                at_rest = project_landmarks(NEUTRAL_PARAMS[None], placed(self.look(pair[0]), placement), 256)[0] / 256
                offset = canonical_landmarks(NEUTRAL_PARAMS[None], placement)[0] - at_rest
                self.cache[pair] = torch.from_numpy(offset.astype("float32"))
            rows.append(self.cache[pair])
        return torch.stack(rows)


def fine_tune(model: HeadImitator, train: list[Path], args: argparse.Namespace) -> None:
    names = model.config.param_names
    dataset = FramePairDataset(train, model.config.image_size, cross_identity=0.5, param_names=names, seed=args.seed)
    model.requires_grad_(False)  # the renderer stays out
    for part in (model.motion_encoder, model.landmark_head, model.param_head):
        part.requires_grad_(True)
    groups = parameter_groups(model)
    if args.identity_weight > 0:
        looks = appearance_features(dataset)
        adversary = torch.nn.Sequential(torch.nn.Linear(model.config.latent_dim, 256), torch.nn.SiLU(),
                                        torch.nn.Linear(256, looks.shape[1]))
        groups.append({"params": list(adversary.parameters()), "lr_scale": ADVERSARY_LR_SCALE})
    optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=1e-2)
    loader = torch.utils.data.DataLoader(
        range(args.steps * args.batch_size), batch_size=args.batch_size, num_workers=1,
        collate_fn=lambda indices: torch.utils.data.default_collate([dataset[i] for i in indices]))
    generator = torch.Generator().manual_seed(args.seed)
    landmark_weight = Stage1TrainConfig().landmark_weight  # the train loop's losses, without the renderer's
    offsets = RestOffsets(dataset) if args.reference == "rest" else None
    running = None
    for step, batch in enumerate(tqdm(loader, total=args.steps, desc="encoder")):
        for group in optimizer.param_groups:
            group["lr"] = group["lr_scale"] * cosine_lr(step, args.lr, 0, args.steps)
        driving = colour_jitter(batch["driving"], generator)
        cross = batch["cross"].bool()
        own = None
        if offsets is None:
            latents = model.encode_motion(driving, batch["driving_landmarks"])
        else:
            moved = batch["driving_landmarks"] + offsets(batch["driving_identity"], batch["clip_index"])
            latents = model.motion_encoder(driving, batch["driving_landmarks"], points=moved)
            target_landmarks = batch["target_frame_landmarks"][cross]
            points = target_landmarks + offsets(batch["clip_index"][cross], batch["clip_index"][cross])
            own = model.motion_encoder(batch["target"][cross], target_landmarks, points=points)
        loss = landmark_weight * F.l1_loss(model.landmark_head(latents), batch["target_landmarks"])
        if args.param_weight > 0:
            loss = loss + args.param_weight * param_loss(model, latents, batch)
        if args.invariance_weight > 0 and batch["cross"].any():
            loss = loss + args.invariance_weight * invariance_loss(model, latents, batch, args.invariance_per_dim, own)
        if args.identity_weight > 0 and cross.any():
            logits = adversary(GradientReversal.apply(latents[cross], args.identity_weight))
            adversary_loss = F.mse_loss(logits, looks[batch["driving_identity"][cross]])
            loss = loss + adversary_loss
            running = adversary_loss.item() if running is None else 0.95 * running + 0.05 * adversary_loss.item()
            if step % 50 == 0 or step == args.steps - 1:  # 1 = the adversary reads nothing
                tqdm.write(f"step {step}: adversary's unexplained look variance {running:.3f}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def summary(probes: dict) -> dict:
    def one(p: dict) -> dict:
        return {"params_r2": p["params_from_motion_latent"]["r2_mean"],
                "identity_acc": p["identity_from_motion_latent"]["accuracy"],
                "identity_chance": p["identity_from_motion_latent"]["chance"],
                "r2_per_param": p["params_from_motion_latent"]["r2_per_param"]}
    return {"shared_placement": one(probes), "own_placement": one(probes["own_placement"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage1", required=True, help="stage-1 weights to start from")
    parser.add_argument("--data", required=True, help="SynConv training data")
    parser.add_argument("--test", required=True, help="SynConv data with a test split (unseen identities)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--points", choices=HYBRID_POINT_SETS, default="contour")
    parser.add_argument("--param-weight", type=float, default=0.0)
    parser.add_argument("--invariance-weight", type=float, default=0.0)
    parser.add_argument("--invariance-per-dim", action="store_true",
                        help="the invariance loss relative to each latent dimension's spread, not their mean")
    parser.add_argument("--identity-weight", type=float, default=0.0,
                        help="weight of the reversed gradient of an identity adversary on cross-identity latents")
    parser.add_argument("--reference", choices=("none", "rest"), default="none",
                        help="rest: the points read relative to the shown face at rest (see above)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    train, _ = train_val_clips(args.data)
    model = encoder_model(args.stage1, train, args.points)
    start = time.perf_counter()
    fine_tune(model, train, args)
    train_s = time.perf_counter() - start
    model.eval().save_pretrained(out / "encoder.safetensors")

    if args.reference != "none":
        result = {"settings": vars(args), "train_s": round(train_s, 1),
                  "probes": "not run: score with scripts/stage1_identity_sources.py"}
        (out / "probes.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return
    test = [load_clip(p, load_audio_tracks=False) for p in list_clips(args.test, "test")]
    fit = [load_clip(p, load_audio_tracks=False) for p in list_clips(args.data, "train")[:24]]  # as eval stage1
    with torch.no_grad():
        probes = controlled_probes(model, test, seed=1, fit_clips=fit)
    result = {"settings": vars(args), "train_s": round(train_s, 1), **summary(probes)}
    (out / "probes.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "settings"}, indent=1))


if __name__ == "__main__":
    main()
