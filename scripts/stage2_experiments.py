"""Stage-2 experiments of the INFP paper on a shorter schedule, measured end to end from audio.

    # CFG sweep: the same weights at several audio guidance scales (sync and diversity vs scale)
    python scripts/stage2_experiments.py cfg-sweep --stage2 W2 --stage1 W1 --syncnet S --data data/s1test \
        --train-data data/s1train --out runs/stage2_cfg [--split test] [--scales 1 2 3 4 5 6] [--clips 4] \
        [--smoothing SIGMA] [--pose-gain G] [--sampler ddim|dpmsolver++] [--sampler-steps N]

    # Pose-gain sweep: the same weights at one audio scale, several gains along the head-pose directions
    python scripts/stage2_experiments.py pose-sweep --stage2 W2 --stage1 W1 --syncnet S --data data/s1train \
        --train-data data/s1train --split val --out runs/stage2_pose_gain_val [--scale 3] [--gains 1 2 2.5 3 3.5]

    # Pose-smoothing sweep: the same weights at one audio scale and pose gain, several time constants
    # of the low-pass on the generated head pose
    python scripts/stage2_experiments.py pose-smoothing-sweep --stage2 W2 --stage1 W1 --syncnet S \
        --data data/s1train --train-data data/s1train --split val --out runs/stage2_pose_smoothing_val \
        [--scale 3] [--pose-gain G] [--time-constants 0 1 2 3]

    # The sampling defaults' chain, on validation clips: the cfg sweep (no smoothing, pose gain 1, no
    # low-pass), the guidance smoothing at the scale it chose, the pose gain at both, the low-pass at all
    # three (the gain swept again at that low-pass until the two agree). Writes the four sweeps as
    # OUT/stage2_{cfg_sweep_val,cfg_sweep_val_smoothing,pose_gain_val,pose_smoothing_val}.json, the names
    # weights/ keeps them under; --store writes the chosen defaults into W2's metadata.
    python scripts/stage2_experiments.py choose-defaults --stage2 W2 --stage1 W1 --syncnet S \
        --data data/s1train --train-data data/s1train --out runs/defaults [--clips 4] [--pose-clips 8] [--store]

    # Ablations: the full model vs each of config.ABLATIONS (no memory banks, no style modulation,
    # epsilon prediction, full-window motion attention), same data, seed and steps
    python scripts/stage2_experiments.py ablation --stage1 W1 --syncnet S --data data/s1train --test data/s1test \
        --out runs/stage2_ablation [--steps 1500] [--clips 4] [--cache runs/stage2_tiny/latent_cache] \
        [--audio-layers 4 --audio-kernel 5]

Each writes OUT/<name>.json (rows of the report's "generated" and "ground_truth" entries).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import torch

from infp_lab.cli import add_mouth_composite_option
from infp_lab.data.clip import list_clips, load_clip
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.config import ABLATIONS, SAMPLERS, SamplingDefaults
from infp_lab.stage2.evaluate import References, evaluate_clip, evaluate_stage2, summarise
from infp_lab.stage2.generate import (
    resolve_audio_scale, resolve_guidance_smoothing, resolve_pose_gain, resolve_pose_smoothing,
)
from infp_lab.stage2.model import MotionGenerator, set_sampling_defaults
from infp_lab.stage2.train import Stage2TrainConfig, train_stage2
from infp_lab.syncnet import SyncNet

KEYS = ("psnr", "ssim", "lse_c", "lse_d", "sid_expression", "sid_pose", "var_expression", "var_pose",
        "jitter_expression", "jitter_pose", "fd_expression", "fd_pose", "rpcc", "state_accuracy",
        "mouth_listening_over_speaking", "nods_per_min_listening", "nods_after_partner_phrase", "transition_lag_s")


DIVERSITY = ("sid_expression", "sid_pose", "var_expression", "var_pose")
POSE_MEASURES = ("sid_pose", "var_pose", "nods_per_min_listening")


def row_name(value: float) -> str:
    """The name of a sweep's row for a setting's value: "3.0" whether it came as 3 or 3.0."""
    return str(float(value))


def pick(row: dict) -> dict:
    return {k: row[k] for k in KEYS if k in row}


def _worst_deviation(row: dict, truth: dict, keys: tuple[str, ...]) -> float:
    """The largest relative deviation of `row` from `truth` over `keys`."""
    return max(abs(row[k] - truth[k]) / abs(truth[k]) for k in keys)


def _keeping_states(rows: dict, min_state_accuracy: float) -> dict[float, dict]:
    """A sweep's rows (keyed by setting and "ground_truth") whose state accuracy is >=
    `min_state_accuracy`, keyed by the setting as a number."""
    return {float(setting): row for setting, row in rows.items()
            if setting != "ground_truth" and row["state_accuracy"] >= min_state_accuracy}


def _near_best_lip_sync(rows: dict[float, dict], tolerance: float) -> dict[float, dict]:
    """Those of `rows` whose LSE-C is within `tolerance` of the best one's."""
    floor = (1 - tolerance) * max(row["lse_c"] for row in rows.values())
    return {setting: row for setting, row in rows.items() if row["lse_c"] >= floor}


def choose_scale(rows: dict, min_state_accuracy: float = 0.9) -> float | None:
    """The scale whose SID and Var come closest to the ground truth's (smallest worst relative
    deviation) among those with a state accuracy >= `min_state_accuracy`; None if none has.
    `rows` are keyed by scale (a cfg sweep) or by pose gain (a pose sweep) and "ground_truth"."""
    fit = {scale: _worst_deviation(row, rows["ground_truth"], DIVERSITY)
           for scale, row in _keeping_states(rows, min_state_accuracy).items()}
    return min(fit, key=fit.get) if fit else None


def choose_pose_gain(rows: dict, min_state_accuracy: float = 0.9, tolerance: float = 0.05) -> float | None:
    """The gain whose head motion comes closest to the ground truth's (smallest worst relative
    deviation of SID pose, Var pose and the listener's nod rate), among those whose LSE-C is
    within `tolerance` of the best one's and whose state accuracy is >= `min_state_accuracy`;
    None if none qualifies. The gain scales only the head-pose directions, so it is judged by the
    head's motion, with lip sync as what it may cost. `rows` are a pose sweep's, keyed by gain
    and "ground_truth"."""
    kept = _keeping_states(rows, min_state_accuracy)
    if not kept:
        return None
    fit = {gain: _worst_deviation(row, rows["ground_truth"], POSE_MEASURES)
           for gain, row in _near_best_lip_sync(kept, tolerance).items()}
    return min(fit, key=fit.get)


def choose_smoothing(unsmoothed: dict, smoothed: dict[float, dict], scale: float, tolerance: float = 0.05) -> float:
    """The largest guidance smoothing whose LSE-C at `scale` stays within `tolerance` of the
    unsmoothed sweep's (smoothing lowers jitter; lip sync is what it may cost); 0 if none.
    `unsmoothed` and each of `smoothed` (keyed by sigma) are cfg-sweep rows."""
    floor = (1 - tolerance) * unsmoothed[row_name(scale)]["lse_c"]
    fit = [float(sigma) for sigma, rows in smoothed.items() if rows[row_name(scale)]["lse_c"] >= floor]
    return max(fit, default=0.0)


def choose_pose_smoothing(rows: dict, min_state_accuracy: float = 0.9, tolerance: float = 0.05) -> float | None:
    """The smallest time constant whose LSE-C is within `tolerance` of the best one's, among
    those with a state accuracy >= `min_state_accuracy` (the low-pass is there for lip sync;
    each frame more delays the head and stills more of its motion); None if none qualifies.
    `rows` are a pose-smoothing sweep's, keyed by time constant and "ground_truth"."""
    kept = _keeping_states(rows, min_state_accuracy)
    return min(_near_best_lip_sync(kept, tolerance)) if kept else None


@functools.cache
def models(stage1_path: Path, stage2_path: Path, syncnet_path: Path, train_data: Path,
           mouth_composite: bool | None = None):
    """The stage-1, stage-2 and SyncNet models and the metrics' references, loaded once for all
    the sweeps of a run; the stage-1 renderer draws the mouth by geometry or not as
    `mouth_composite` says (None: as its weights say)."""
    stage1 = HeadImitator.from_pretrained(stage1_path, mouth_composite=mouth_composite).eval()
    return (stage1, MotionGenerator.from_pretrained(stage2_path).eval(), SyncNet.from_pretrained(syncnet_path).eval(),
            References.from_training_clips(stage1, train_data))


_truths: dict[tuple, dict] = {}  # a clip's result under its stage-1 weights, mouth composite and SyncNet weights


@torch.no_grad()
def sweep(args: argparse.Namespace, settings: dict[str, dict]) -> tuple[dict, int, MotionGenerator]:
    """Rows of the report's metrics, one per named setting (keyword arguments of evaluate_clip
    beyond those in `args`), on the same clips and seed, plus the ground truth's; the number
    of clips; and the stage-2 model."""
    stage1, stage2, syncnet, refs = models(args.stage1, args.stage2, args.syncnet, args.train_data,
                                           args.mouth_composite)
    paths = list_clips(args.data, args.split)[:args.clips]
    clips = [load_clip(p) for p in paths]
    keys = [(args.stage1, args.mouth_composite, args.syncnet, path) for path in paths]
    rows = {}
    for name, setting in settings.items():  # the truth of each clip is measured once per run, at its first setting
        results = [evaluate_clip(stage1, stage2, syncnet, clip, seed=args.seed, truth=_truths.get(key),
                                 guidance_smoothing=args.smoothing, sampler=args.sampler, steps=args.sampler_steps,
                                 **{"pose_smoothing": args.pose_smoothing, **setting})
                   for clip, key in zip(clips, keys)]
        _truths.update(zip(keys, results))
        table = summarise(results, refs)
        rows[name] = pick(table["generated"])
        rows.setdefault("ground_truth", pick(table["ground_truth"]))
        print(f"{name}: {rows[name]}", flush=True)
    return rows, len(clips), stage2


def sampling(args: argparse.Namespace, stage2: MotionGenerator) -> dict:
    """The sampler and steps the sweep ran with, and whether the renderer drew the mouth by geometry."""
    stage1 = models(args.stage1, args.stage2, args.syncnet, args.train_data, args.mouth_composite)[0]
    return {"sampler": args.sampler or stage2.config.diffusion.sampler,
            "sampler_steps": args.sampler_steps or stage2.config.diffusion.steps,
            "mouth_composite": stage1.config.decoder.mouth_composite}


def cfg_sweep(args: argparse.Namespace) -> dict:
    settings = {row_name(scale): dict(audio_scale=scale, pose_gain=args.pose_gain) for scale in args.scales}
    rows, clips, stage2 = sweep(args, settings)
    return {"clips": clips, "split": args.split, "seed": args.seed,
            "guidance_smoothing": resolve_guidance_smoothing(stage2, args.smoothing),
            **sampling(args, stage2), "pose_gain": resolve_pose_gain(stage2, args.pose_gain),
            "pose_smoothing": resolve_pose_smoothing(stage2, args.pose_smoothing), "rows": rows,
            "chosen_scale": choose_scale(rows)}


def pose_sweep(args: argparse.Namespace) -> dict:
    settings = {row_name(gain): dict(audio_scale=args.scale, pose_gain=gain) for gain in args.gains}
    rows, clips, stage2 = sweep(args, settings)
    return {"clips": clips, "split": args.split, "seed": args.seed,
            "guidance_smoothing": resolve_guidance_smoothing(stage2, args.smoothing),
            **sampling(args, stage2), "audio_scale": resolve_audio_scale(stage2, args.scale),
            "pose_smoothing": resolve_pose_smoothing(stage2, args.pose_smoothing), "rows": rows,
            "chosen_pose_gain": choose_scale(rows), "chosen_pose_gain_by_head": choose_pose_gain(rows)}


def pose_smoothing_sweep(args: argparse.Namespace) -> dict:
    settings = {row_name(frames): dict(audio_scale=args.scale, pose_gain=args.pose_gain, pose_smoothing=frames)
                for frames in args.time_constants}
    rows, clips, stage2 = sweep(args, settings)
    return {"clips": clips, "split": args.split, "seed": args.seed,
            "guidance_smoothing": resolve_guidance_smoothing(stage2, args.smoothing),
            **sampling(args, stage2), "audio_scale": resolve_audio_scale(stage2, args.scale),
            "pose_gain": resolve_pose_gain(stage2, args.pose_gain),
            "rows": rows, "chosen_pose_smoothing": choose_pose_smoothing(rows)}


SMOOTHING_SIGMAS = (0.5, 1.0, 2.0)


def choose_defaults(args: argparse.Namespace, max_rounds: int = 3) -> dict:
    """The four sampling defaults of `args.stage2`, chosen on `args.split` by the rules above in
    their order, each sweep at the settings chosen before it; the sweeps are written to
    `args.out` and, with `args.store`, the defaults to the weights."""
    def run(experiment, name: str | None = None, **settings) -> dict:
        result = experiment(argparse.Namespace(**{**vars(args), **settings}))
        if name:
            (args.out / f"stage2_{name}.json").write_text(json.dumps(result, indent=1))
        return result

    def chosen(value, what: str):
        if value is None:
            raise SystemExit(f"choose-defaults: no {what} keeps the speaking-state accuracy >= 0.9 on these clips; "
                             f"the sweeps so far are in {args.out}")
        return value

    cfg = run(cfg_sweep, "cfg_sweep_val", smoothing=0.0, pose_gain=1.0, pose_smoothing=0.0)
    scale = chosen(cfg["chosen_scale"], "audio guidance scale")
    smoothed = {str(sigma): run(cfg_sweep, scales=[scale], smoothing=sigma, pose_gain=1.0, pose_smoothing=0.0)
                for sigma in SMOOTHING_SIGMAS}
    (args.out / "stage2_cfg_sweep_val_smoothing.json").write_text(json.dumps(smoothed, indent=1))
    sigma = choose_smoothing(cfg["rows"], {k: v["rows"] for k, v in smoothed.items()}, scale)
    # the gain is swept at a low-pass, and the low-pass at a gain: from the model's low-pass, alternate until
    # the low-pass chosen is the one the gain was swept at
    frames = resolve_pose_smoothing(models(args.stage1, args.stage2, args.syncnet, args.train_data,
                                           args.mouth_composite)[1], None)
    for _ in range(max_rounds):
        pose = run(pose_sweep, "pose_gain_val", clips=args.pose_clips, scale=scale, smoothing=sigma,
                   pose_smoothing=frames)
        gain = chosen(pose["chosen_pose_gain"], "pose gain")
        low_pass = run(pose_smoothing_sweep, "pose_smoothing_val", clips=args.pose_clips, scale=scale,
                       smoothing=sigma, pose_gain=gain, pose_smoothing=None)  # each row sets its own
        if chosen(low_pass["chosen_pose_smoothing"], "head-pose low-pass") == frames:
            break
        frames = low_pass["chosen_pose_smoothing"]
    else:
        raise SystemExit(f"choose-defaults: the pose gain and its low-pass did not settle in {max_rounds} rounds; "
                         f"the last sweeps are in {args.out}")
    defaults = SamplingDefaults(audio_scale=scale, guidance_smoothing=sigma, pose_gain=gain, pose_smoothing=frames)
    if args.store:
        set_sampling_defaults(args.stage2, defaults)
    print(f"chosen on {args.split}: {defaults}" + (f"; stored in {args.stage2}" if args.store else ""))
    return {"split": args.split, "sampling": defaults.to_dict(), "stored": args.store}


def ablation(args: argparse.Namespace) -> dict:
    rows = {}
    for name in (None, *ABLATIONS):
        run = args.out / (name or "full")
        # the mouth loss needs predicted clean latents (the tiny preset's target); other variants train without it
        prediction = ABLATIONS.get(name, {}).get("diffusion", {}).get("prediction", "sample")
        cfg = Stage2TrainConfig(steps=args.steps, batch_size=args.batch_size, one_sided_steps=args.steps // 4,
                                mouth_weight=args.mouth_weight if prediction == "sample" else 0.0,
                                checkpoint_every=args.steps, seed=args.seed)
        start = time.perf_counter()
        train_stage2(args.data, args.stage1, run, "tiny", cfg, resume=(run / "checkpoint.pt").exists(),
                     cache_dir=args.cache or args.out / "latent_cache", ablation=name,
                     audio_layers=args.audio_layers, audio_kernel=args.audio_kernel)
        seconds = time.perf_counter() - start
        report, _ = evaluate_stage2(run / "stage2.safetensors", args.stage1, args.syncnet, args.test, args.data,
                                    max_clips=args.clips, seed=args.seed)
        (run / "report.json").write_text(json.dumps(report, indent=1))
        rows[name or "full"] = {**pick(report["generated"]), "train_s": seconds}
        rows.setdefault("ground_truth", pick(report["ground_truth"]))
        print(f"{name or 'full'}: {rows[name or 'full']}", flush=True)
    return {"steps": args.steps, "batch_size": args.batch_size, "mouth_weight": args.mouth_weight, "clips": args.clips,
            "audio_layers": args.audio_layers, "audio_kernel": args.audio_kernel, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="experiment", required=True)
    cfg = sub.add_parser("cfg-sweep")
    cfg.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    cfg.add_argument("--pose-gain", type=float, default=None,
                     help="guidance gain along the head-pose directions (default: the model's default)")
    pose = sub.add_parser("pose-sweep")
    pose.add_argument("--scale", type=float, default=None, help="audio guidance scale (default: the model's)")
    pose.add_argument("--gains", type=float, nargs="+", default=[1.0, 2.0, 2.5, 3.0, 3.5])
    smooth = sub.add_parser("pose-smoothing-sweep")
    smooth.add_argument("--scale", type=float, default=None, help="audio guidance scale (default: the model's)")
    smooth.add_argument("--pose-gain", type=float, default=None,
                        help="guidance gain along the head-pose directions (default: the model's default)")
    smooth.add_argument("--time-constants", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0],
                        help="time constants (frames) of the low-pass on the generated head pose")
    chain = sub.add_parser("choose-defaults")
    chain.add_argument("--scales", type=float, nargs="+", default=[2.0, 3.0, 4.0, 5.0, 6.0])
    chain.add_argument("--gains", type=float, nargs="+", default=[1.0, 2.0, 2.5, 3.0, 3.5])
    chain.add_argument("--time-constants", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0],
                       help="time constants (frames) of the low-pass on the generated head pose")
    chain.add_argument("--pose-clips", type=int, default=8,
                       help="clips of the pose-gain and low-pass sweeps (--clips: those of the guidance sweeps)")
    chain.add_argument("--store", action="store_true", help="write the chosen defaults into the --stage2 weights")
    for p in (cfg, pose, smooth, chain):
        p.add_argument("--stage2", required=True, type=Path)
        p.add_argument("--data", required=True, type=Path, help="held-out clips")
        p.add_argument("--split", default="val" if p is chain else "test",
                       help="which split of --data (choose a setting on 'val', report on 'test')")
        p.add_argument("--train-data", required=True, type=Path, help="training clips for the metrics' references")
        if p is not chain:  # the chain sets these itself, sweep by sweep
            p.add_argument("--smoothing", type=float, default=None,
                           help="Gaussian sigma (frames) smoothing the guidance over time (0 = none; default: the "
                                "model's)")
            p.add_argument("--pose-smoothing", type=float, default=None,
                           help="time constant (frames) of the low-pass on the generated head pose (default: the "
                                "model's default; a pose-smoothing sweep sets its own)")
        p.add_argument("--sampler", choices=SAMPLERS, default=None, help="the diffusion sampler (default: the model's)")
        p.add_argument("--sampler-steps", type=int, default=None, help="its denoising steps (default: the model's)")
        add_mouth_composite_option(p)
    ablate = sub.add_parser("ablation")
    ablate.add_argument("--data", required=True, type=Path, help="training clips")
    ablate.add_argument("--test", required=True, type=Path, help="held-out clips (test split)")
    ablate.add_argument("--steps", type=int, default=1500)
    ablate.add_argument("--batch-size", type=int, default=32)
    ablate.add_argument("--mouth-weight", type=float, default=0.0, help="the mouth loss of every variant")
    ablate.add_argument("--cache", type=Path, default=None, help="a latent cache of the same stage-1 weights to reuse")
    ablate.add_argument("--audio-layers", type=int, default=None,
                        help="every variant's audio encoders: convolution layers (default: the preset's)")
    ablate.add_argument("--audio-kernel", type=int, default=None,
                        help="every variant's audio encoders: convolution size (default: the preset's)")
    for p in (cfg, pose, smooth, chain, ablate):
        p.add_argument("--stage1", required=True, type=Path)
        p.add_argument("--syncnet", required=True, type=Path)
        p.add_argument("--out", required=True, type=Path)
        p.add_argument("--clips", type=int, default=4)
        p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    experiments = {"cfg-sweep": cfg_sweep, "pose-sweep": pose_sweep, "pose-smoothing-sweep": pose_smoothing_sweep,
                   "choose-defaults": choose_defaults, "ablation": ablation}
    result = experiments[args.experiment](args)
    path = args.out / f"{args.experiment}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
