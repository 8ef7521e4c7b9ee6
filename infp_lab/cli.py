"""The `infp-lab` command line: one sub-command per job (design.md section 7).

Library errors (bad input, missing files) are printed as one clear line, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="make, prepare and render data").add_subparsers(dest="data_command", required=True)

    synth = data.add_parser("synth", help="generate SynConv conversations (two clips each) and a split file")
    synth.add_argument("--out", required=True, type=Path, help="output folder")
    synth.add_argument("--conversations", type=int, default=10, help="number of conversations")
    synth.add_argument("--seconds", type=float, default=20.0, help="length of each conversation")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    synth.add_argument("--languages", default=None,
                       help="comma-separated language codes (default: all supported)")
    synth.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    synth.set_defaults(func=_data_synth)

    render = data.add_parser("render", help="write a clip's ground-truth video with both voices mixed in")
    render.add_argument("--clip", required=True, type=Path, help="clip folder")
    render.add_argument("--out", required=True, type=Path, help="output .mp4")
    render.add_argument("--size", type=int, default=256, help="frame size in pixels")
    render.set_defaults(func=_data_render)

    prepare = data.add_parser("prepare", help="turn a folder of talking-face videos into clips (MediaPipe)")
    prepare.add_argument("--videos", required=True, type=Path, help="folder of videos (NAME.mp4, optional NAME.partner.wav)")
    prepare.add_argument("--out", required=True, type=Path, help="output folder of clips")
    prepare.add_argument("--size", type=int, default=256, help="side of the square face crop in pixels")
    prepare.set_defaults(func=_data_prepare)


def _data_synth(args: argparse.Namespace) -> None:
    from infp_lab.data.synconv import generate_dataset

    languages = args.languages.split(",") if args.languages else None
    summary = generate_dataset(args.out, conversations=args.conversations, seconds=args.seconds,
                               seed=args.seed, languages=languages, workers=args.workers, progress=True)
    print(f"wrote {summary['clips']} clips ({summary['conversations']} conversations) to {args.out} "
          f"in {summary['wall_seconds']:.1f} s; splits: "
          + ", ".join(f"{k} {len(v)}" for k, v in summary["splits"].items()))


def _data_render(args: argparse.Namespace) -> None:
    from infp_lab.data.synconv.preview import render_clip_video

    path = render_clip_video(args.clip, args.out, size=args.size)
    print(f"wrote {path}")


def _data_prepare(args: argparse.Namespace) -> None:
    from infp_lab.data.prepare import prepare_videos

    report = prepare_videos(args.videos, args.out, size=args.size, progress=True)
    for name, problem in report["failed"].items():
        print(f"skipped {name}: {problem}", file=sys.stderr)
    print(f"wrote {len(report['clips'])} clips to {args.out}")
    if not report["clips"]:
        raise ValueError(f"no video in {args.videos} could be prepared")


def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model").add_subparsers(dest="train_command", required=True)
    stage1 = train.add_parser("stage1", help="stage 1: motion latent space + renderer, by self-reenactment")
    stage1.add_argument("--data", required=True, type=Path, help="folder of clips (uses its train/val splits)")
    stage1.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, samples, metrics, weights)")
    stage1.add_argument("--preset", default="tiny", help="model preset: tiny (CPU) or paper (GPU)")
    stage1.add_argument("--steps", type=int, default=3000)
    stage1.add_argument("--batch-size", type=int, default=16)
    stage1.add_argument("--lr", type=float, default=3e-4)
    stage1.add_argument("--resume", action="store_true", help="continue the run in --out")
    stage1.add_argument("--device", default="auto", help="cpu, cuda or auto")
    stage1.add_argument("--motion-input", default="hybrid", choices=("hybrid", "image", "landmark_map"),
                        help="motion encoder input (the paper's ablation)")
    stage1.add_argument("--gan-weight", type=float, default=0.0, help="> 0 adds the patch-GAN loss")
    stage1.add_argument("--open-mouth", type=float, default=0.0,
                        help="share of training pairs whose driving frame is drawn in proportion to how far its "
                             "mouth is open, instead of uniformly (few frames show a wide-open mouth)")
    stage1.add_argument("--cross-identity", type=float, default=0.5,
                        help="share of SynConv pairs driven by another identity with the same motion (0: paper's self-reenactment only)")
    stage1.add_argument("--invariance-weight", type=float, default=0.0,
                        help="> 0: a cross-identity driver's motion latent must equal its target frame's")
    stage1.add_argument("--param-weight", type=float, default=0.0,
                        help="> 0: a linear param head must read the motion parameters from the latent (SynConv)")
    stage1.add_argument("--hybrid-points", choices=("contour", "regions"), default="contour",
                        help="landmarks the hybrid motion input reads: the contour (paper), or also brows, eyes, irises and lips")
    stage1.add_argument("--region-weight", type=float, default=0.0,
                        help="> 0 adds an L1 loss averaged over the target's eye and mouth regions only")
    stage1.add_argument("--mouth-weight", type=float, default=0.0,
                        help="> 0 adds an L1 loss on crops around the target's mouth")
    stage1.add_argument("--sync-weight", type=float, default=0.0,
                        help="> 0 adds a lip-sync expert's loss on rendered windows (needs --sync-expert)")
    stage1.add_argument("--sync-expert", type=Path, default=None,
                        help="SyncNet-SynConv weights for --sync-weight; train one other than the judge's")
    stage1.add_argument("--sync-windows", type=int, default=4, help="windows rendered per step for the sync loss")
    stage1.add_argument("--sync-region", choices=("mouth", "crop"), default="mouth",
                        help="pixels the sync loss may move: the lips and a margin, or the whole crop the expert sees")
    stage1.add_argument("--sync-loss", choices=("contrastive", "features"), default="contrastive",
                        help="contrastive: rendered windows must be told their own audio among shifted ones; "
                             "features: they must look to the expert's visual encoder as the true windows do")
    stage1.add_argument("--mouth-map", choices=("lips", "gap"), default="lips",
                        help="what the decoder's driven maps draw of the mouth: over the inner lips, or the gap between them alone")
    stage1.add_argument("--mouth-interior", action="store_true",
                        help="the decoder also sees masks of the driven mouth's opening, teeth and tongue, "
                             "drawn from the landmarks (needs the preset's driven maps)")
    stage1.add_argument("--mouth-prior-sigma", type=float, default=0.0,
                        help="> 0: the warp of the source image takes a sharper landmark prior around the mouth "
                             "(this Gaussian sigma, in image widths; the prior's is 0.05), so that the lips can part")
    stage1.add_argument("--mouth-from-decoder", action="store_true",
                        help="the decoder draws the inside of the driven mouth opening (needs the preset's driven maps)")
    stage1.add_argument("--mouth-residual", action="store_true",
                        help="the decoder adds an RGB residual inside the driven mouth opening (teeth)")
    stage1.add_argument("--mouth-residual-only", action="store_true",
                        help="with --mouth-residual and --init: train the mouth residual (and the --mouth-detail branch) "
                             "alone, the rest as given")
    stage1.add_argument("--mouth-detail", type=int, choices=(0, 2, 4), default=0,
                        help="> 0: the decoder redraws a square around the driven mouth at this many times the "
                             "image's resolution and averages it down (fine detail: the teeth's edges)")
    stage1.add_argument("--mouth-gan-weight", type=float, default=0.0,
                        help="> 0 adds a patch GAN on mouth crops that also sees where the mouth opens")
    stage1.add_argument("--freeze-motion", action="store_true",
                        help="with --init: train the renderer only; the motion encoder and landmark head (so the "
                             "motion latents a stage 2 learnt) stay as they are")
    stage1.add_argument("--true-landmarks", action="store_true",
                        help="draw each training frame at its true landmarks instead of the landmark head's "
                             "(what the renderer draws when told exactly where the lips are; weights/README.md)")
    stage1.add_argument("--init", type=Path, default=None,
                        help="stage-1 weights (.safetensors) to start from (fine-tuning); --resume takes precedence")
    stage1.add_argument("--checkpoint-every", type=int, default=250, help="steps between validation + checkpoint")
    stage1.add_argument("--stop-at", type=int, default=None,
                        help="stop with a checkpoint after this step of the --steps schedule (--resume goes on)")
    stage1.add_argument("--seed", type=int, default=0)
    stage1.add_argument("--workers", type=int, default=1, help="data loader workers")
    stage1.set_defaults(func=_train_stage1)

    syncnet = train.add_parser("syncnet", help="SyncNet-SynConv: the lip-sync expert for LSE-C / LSE-D")
    syncnet.add_argument("--data", required=True, type=Path, help="folder of clips (uses its train/val splits)")
    syncnet.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, metrics, weights)")
    syncnet.add_argument("--preset", default="tiny", help="model preset: tiny (CPU) or base")
    syncnet.add_argument("--steps", type=int, default=1000)
    syncnet.add_argument("--batch-size", type=int, default=32)
    syncnet.add_argument("--lr", type=float, default=1e-3)
    syncnet.add_argument("--max-clips", type=int, default=0, help="training clips to cache (0: all)")
    syncnet.add_argument("--frame-size", type=int, default=128, help="frame size the clips are rendered at")
    syncnet.add_argument("--max-blur", type=float, default=0.0,
                         help="blur half the training windows by a Gaussian of up to this sigma (crop pixels; 0: none)")
    syncnet.add_argument("--checkpoint-every", type=int, default=100, help="steps between validation + checkpoint")
    syncnet.add_argument("--seed", type=int, default=0)
    syncnet.add_argument("--resume", action="store_true", help="continue the run in --out")
    syncnet.add_argument("--device", default="auto", help="cpu, cuda or auto")
    syncnet.set_defaults(func=_train_syncnet)

    stage2 = train.add_parser("stage2", help="stage 2: audio-driven motion generator on stage-1 motion latents")
    stage2.add_argument("--data", required=True, type=Path, help="folder of clips (uses its train/val splits)")
    stage2.add_argument("--stage1", required=True, type=Path, help="stage-1 weights (.safetensors) whose latents to learn")
    stage2.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, metrics, latent cache, weights)")
    stage2.add_argument("--preset", default="tiny", help="model preset: tiny (CPU) or paper (GPU)")
    stage2.add_argument("--steps", type=int, default=4000)
    stage2.add_argument("--batch-size", type=int, default=32)
    stage2.add_argument("--lr", type=float, default=1e-4)
    stage2.add_argument("--one-sided-steps", type=int, default=1000,
                        help="first steps on windows where only one side speaks (the paper's warm-up)")
    stage2.add_argument("--velocity-weight", type=float, default=0.0,
                        help="weight of the velocity (smoothness and window-border) loss of clean-latent models")
    stage2.add_argument("--mouth-weight", type=float, default=0.0,
                        help="weight of the lip-shape loss (through the stage-1 landmark head) of clean-latent models")
    stage2.add_argument("--head-weight", type=float, default=0.0,
                        help="weight of the head-motion loss (roll, turn and nod through the stage-1 landmark head) "
                             "of clean-latent models")
    stage2.add_argument("--guide-mouth-weight", type=float, default=0.0,
                        help="weight of the lips' shape read linearly out of the guider's motion feature f_m")
    stage2.add_argument("--whitened-weight", type=float, default=0.0,
                        help="weight of the error along every principal direction of the latents alike, each "
                             "relative to its variance (clean-latent models)")
    stage2.add_argument("--whitened-floor", type=float, default=1e-3,
                        help="variance floor of that term, in the normalised latents' units")
    stage2.add_argument("--whiten-latents", type=float, default=0.0, metavar="FLOOR",
                        help="whiten the space the diffusion works in: each principal direction of the training "
                             "latents scaled to unit variance, those fainter than FLOOR (in the normalised "
                             "latents' units, e.g. 1e-3) less; 0 (the default): per-channel normalisation only")
    stage2.add_argument("--head-features", nargs="+", default=["roll", "turn", "nod"], choices=("roll", "turn", "nod"),
                        help="which of the head's roll, turn and nod the head-motion loss compares")
    stage2.add_argument("--resume", action="store_true", help="continue the run in --out")
    stage2.add_argument("--device", default="auto", help="cpu, cuda or auto")
    stage2.add_argument("--checkpoint-every", type=int, default=250, help="steps between validation + checkpoint")
    stage2.add_argument("--seed", type=int, default=0)
    stage2.add_argument("--workers", type=int, default=0, help="data loader workers")
    stage2.add_argument("--cache", type=Path, default=None, help="latent cache folder (default: OUT/latent_cache)")
    stage2.add_argument("--ablation", default=None,  # stage2.config.ABLATIONS
                        choices=("no_memory_banks", "no_style_modulation", "epsilon_prediction",
                                 "full_motion_attention"),
                        help="train an ablation instead of the full model (the paper's two, and undoing this "
                             "project's clean-latent target or frame-banded motion attention)")
    stage2.add_argument("--audio-layers", type=int, default=None,
                        help="convolutions of the log-mel audio encoders (default: the preset's)")
    stage2.add_argument("--audio-kernel", type=int, default=None,
                        help="their size, odd (default: the preset's); they see layers * (kernel // 2) frames "
                             "each side, which is also the streaming lookahead")
    stage2.set_defaults(func=_train_stage2)


def _print_result(name: str, result: dict) -> None:
    print(f"{name}: step {result['step']}, {result['wall_s']:.0f} s; "
          + ", ".join(f"val {k} {v:.4g}" for k, v in result.items() if k not in ("step", "wall_s")))


def _train_stage1(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from infp_lab.stage1.config import preset
    from infp_lab.stage1.train import Stage1TrainConfig, train_stage1

    cfg = Stage1TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, gan_weight=args.gan_weight,
                            mouth_gan_weight=args.mouth_gan_weight,
                            cross_identity=args.cross_identity, open_mouth=args.open_mouth,
                            invariance_weight=args.invariance_weight,
                            region_weight=args.region_weight, mouth_weight=args.mouth_weight, param_weight=args.param_weight,
                            sync_weight=args.sync_weight, sync_windows=args.sync_windows, sync_region=args.sync_region,
                            sync_loss=args.sync_loss,
                            sync_expert=str(args.sync_expert) if args.sync_expert else None,
                            freeze_motion=args.freeze_motion, mouth_residual_only=args.mouth_residual_only,
                            true_landmarks=args.true_landmarks,
                            stop_at=args.stop_at,
                            checkpoint_every=args.checkpoint_every, seed=args.seed, workers=args.workers)
    config = preset(args.preset).with_motion_input(args.motion_input)
    config = replace(config, motion=replace(config.motion, points=args.hybrid_points),
                     flow=replace(config.flow, mouth_prior_sigma=args.mouth_prior_sigma),
                     decoder=replace(config.decoder, mouth_from_decoder=args.mouth_from_decoder,
                                     mouth_residual=args.mouth_residual, mouth_map=args.mouth_map,
                                     mouth_interior=args.mouth_interior, mouth_detail=args.mouth_detail))
    result = train_stage1(args.data, args.out, config, cfg, resume=args.resume, device=args.device, init=args.init)
    if result:
        _print_result("stage 1", result)


def _train_syncnet(args: argparse.Namespace) -> None:
    from infp_lab.syncnet.train import SyncNetTrainConfig, train_syncnet

    cfg = SyncNetTrainConfig(preset=args.preset, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             max_clips=args.max_clips, frame_size=args.frame_size, max_blur=args.max_blur,
                             checkpoint_every=args.checkpoint_every, seed=args.seed)
    result = train_syncnet(args.data, args.out, cfg, resume=args.resume, device=args.device)
    _print_result("SyncNet-SynConv", result)


def _train_stage2(args: argparse.Namespace) -> None:
    from infp_lab.stage2.train import Stage2TrainConfig, train_stage2

    cfg = Stage2TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            one_sided_steps=args.one_sided_steps, checkpoint_every=args.checkpoint_every,
                            velocity_weight=args.velocity_weight, mouth_weight=args.mouth_weight,
                            head_weight=args.head_weight, guide_mouth_weight=args.guide_mouth_weight,
                            whitened_weight=args.whitened_weight, whitened_floor=args.whitened_floor,
                            whiten_floor=args.whiten_latents,
                            head_features=tuple(args.head_features), seed=args.seed, workers=args.workers)
    result = train_stage2(args.data, args.stage1, args.out, args.preset, cfg, resume=args.resume,
                          device=args.device, cache_dir=args.cache, ablation=args.ablation,
                          audio_layers=args.audio_layers, audio_kernel=args.audio_kernel)
    if result:
        _print_result("stage 2", result)


def _add_export_command(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="write slim inference weights (safetensors) from a training checkpoint")
    export.add_argument("--checkpoint", required=True, type=Path, help="a run's checkpoint.pt (stage 1 or stage 2)")
    export.add_argument("--out", required=True, type=Path, help="output .safetensors")
    export.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA weights")
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> None:
    from infp_lab.export import export_checkpoint

    print(f"wrote {export_checkpoint(args.checkpoint, args.out, ema=not args.raw)}")


SAMPLING_OPTIONS = {  # option -> (SamplingDefaults field, help)
    "--audio-scale": ("audio_scale", "classifier-free audio guidance scale"),
    "--guidance-smoothing": ("guidance_smoothing", "Gaussian sigma (frames) smoothing the guidance over time, 0 = none"),
    "--pose-gain": ("pose_gain", "how much stronger guidance is along the head-pose directions (1 = as elsewhere)"),
    "--pose-smoothing": ("pose_smoothing", "time constant (frames) of the low-pass on the generated head pose (0 = none)"),
}


def _add_defaults_command(sub: argparse._SubParsersAction) -> None:
    defaults = sub.add_parser("defaults", help="show or set the sampling defaults kept in stage-2 weights")
    defaults.add_argument("--weights", required=True, type=Path, help="stage-2 weights (.safetensors), rewritten in place")
    for option, (_, text) in SAMPLING_OPTIONS.items():
        defaults.add_argument(option, type=float, default=None, help=f"{text} (default: unchanged)")
    defaults.set_defaults(func=_defaults)


def _defaults(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from infp_lab.stage2.model import MotionGenerator, set_sampling_defaults

    model = MotionGenerator.from_pretrained(args.weights)
    defaults, chosen = model.defaults, model.sampling is not None
    changes = {name: getattr(args, name) for name, _ in SAMPLING_OPTIONS.values() if getattr(args, name) is not None}
    if changes:
        defaults, chosen = replace(defaults, **changes), True
        set_sampling_defaults(args.weights, defaults)
        print(f"wrote {args.weights}")
    source = "chosen for these weights" if chosen else "none chosen for these weights: the library's"
    print(f"sampling defaults ({source}):")
    for name, value in defaults.to_dict().items():
        print(f"  {name}: {value:g}")


def _add_eval_commands(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("eval", help="measure a trained model").add_subparsers(dest="eval_command", required=True)
    stage1 = evaluate.add_parser("stage1", help="reenactment quality, cross-identity transfer, disentanglement probes")
    stage1.add_argument("--ckpt", required=True, type=Path, help="stage-1 weights (.safetensors)")
    stage1.add_argument("--data", required=True, type=Path, help="folder of clips (not the training data)")
    stage1.add_argument("--split", default="test", help="split of --data to use ('all' for every clip)")
    stage1.add_argument("--out", required=True, type=Path, help="report .json")
    stage1.add_argument("--pairs", type=int, default=8, help="reenactment pairs per clip")
    stage1.add_argument("--probe-data", type=Path, default=None,
                        help="training clips whose identities the motion probe is fitted on (default: half the test ones)")
    stage1.add_argument("--seed", type=int, default=0)
    add_mouth_composite_option(stage1)
    stage1.set_defaults(func=_eval_stage1)

    stage2 = evaluate.add_parser("stage2", help="end to end from audio: image, sync, motion and interaction metrics")
    stage2.add_argument("--ckpt", required=True, type=Path, help="stage-2 weights (.safetensors)")
    stage2.add_argument("--stage1", required=True, type=Path, help="the stage-1 weights stage 2 was trained on")
    stage2.add_argument("--syncnet", required=True, type=Path, help="SyncNet-SynConv weights (.safetensors)")
    stage2.add_argument("--data", required=True, type=Path, help="folder of clips (not the training data)")
    stage2.add_argument("--train-data", required=True, type=Path,
                        help="training clips, for the metrics' reference models (state classifier, clusters)")
    stage2.add_argument("--split", default="test", help="split of --data to use ('all' for every clip)")
    stage2.add_argument("--out", required=True, type=Path, help="report .json")
    stage2.add_argument("--clips", type=int, default=None, help="evaluate only the first N clips")
    for option, (_, text) in SAMPLING_OPTIONS.items():
        stage2.add_argument(option, type=float, default=None,
                            help=f"{text} (default: the weights' own, see `infp-lab defaults`)")
    stage2.add_argument("--seed", type=int, default=0)
    add_mouth_composite_option(stage2)
    stage2.set_defaults(func=_eval_stage2)


def add_mouth_composite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mouth-composite", action=argparse.BooleanOptionalAction, default=None,
                        help="render with (or, --no-mouth-composite, without) the mouth drawn by geometry over the "
                             "render: the portrait's own lips moved onto the driven landmarks and the opening drawn "
                             "dark (decoder.mouth_composite; default: as the stage-1 weights say)")


def _write_report(report: dict, out: Path) -> None:
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def _eval_stage2(args: argparse.Namespace) -> None:
    from infp_lab.stage2.evaluate import evaluate_stage2

    report, _ = evaluate_stage2(args.ckpt, args.stage1, args.syncnet, args.data, args.train_data,
                                None if args.split == "all" else args.split, max_clips=args.clips,
                                audio_scale=args.audio_scale, seed=args.seed,
                                guidance_smoothing=args.guidance_smoothing, pose_gain=args.pose_gain,
                                pose_smoothing=args.pose_smoothing, mouth_composite=args.mouth_composite)
    _write_report(report, args.out)


def _eval_stage1(args: argparse.Namespace) -> None:
    from infp_lab.stage1.evaluate import evaluate_stage1

    report = evaluate_stage1(args.ckpt, args.data, None if args.split == "all" else args.split,
                             pairs_per_clip=args.pairs, seed=args.seed, probe_data=args.probe_data,
                             mouth_composite=args.mouth_composite)
    _write_report(report, args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="infp-lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    _add_train_commands(sub)
    _add_export_command(sub)
    _add_defaults_command(sub)
    _add_eval_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        print(f"infp-lab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("infp-lab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
