"""The GPU runs that the stage-1 and stage-2 issues ask for, in one call on a GPU machine.

1. The CUDA path: the shipped `tiny` weights on the GPU against the CPU, in fp32 (TF32
   off): the motion latents and renders of a clip, and the motion generated from its audio
   with the same seed (the noise is drawn on the CPU, so it is the same on any device).
2. The paper-scale presets trained for a few hundred steps with bf16 autocast: stage 1
   from scratch on the clips of --data, then stage 2 on that stage-1 model's latents.
   Steps/s, peak GPU memory and the loss curves come from each run's `metrics.csv`.
3. Inference speed, frames per second, of both presets (the paper preset's weights are
   untrained: speed does not depend on them): stage-2 generation from audio features at
   the default sampler, and stage-1 rendering of one portrait with those latents.

    python scripts/gpu_check.py --data .gpu/data --out $OUT

Writes OUT/gpu_check.json, OUT/loss_curves.png, OUT/stage1_metrics.csv and
OUT/stage2_metrics.csv (the runs themselves go to OUT/runs, which the device tool does not
bring back: it is more than two folders down). `scripts/gpu_bundle.sh` makes the small
data set and the wheels a bare GPU machine lacks. On a machine without a GPU,
`--device cpu --preset tiny --stage1-steps 10 --stage2-steps 10 --workers 0` checks that the script runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from infp_lab.data.audio import FPS, SAMPLE_RATE
from infp_lab.data.clip import list_clips, load_clip
from infp_lab.stage1 import HeadImitator
from infp_lab.stage1.config import preset as stage1_preset
from infp_lab.stage1.inference import clip_frames, clip_landmarks, encode_clip, reenact
from infp_lab.stage1.train import Stage1TrainConfig, train_stage1
from infp_lab.stage2 import MotionGenerator
from infp_lab.stage2.audio_encoder import encoder_inputs
from infp_lab.stage2.config import preset as stage2_preset
from infp_lab.stage2.generate import generate, generate_from_audio
from infp_lab.stage2.train import Stage2TrainConfig, train_stage2
from infp_lab.train.common import read_scalars, resolve_device

CHECK_FRAMES = 100  # frames of the clip the CUDA-path check encodes, renders and generates


def environment(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}")
    return info


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    """So that each run's logged `gpu_peak_gib` is its own, not the process's so far."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def audio_inputs(clip, model: MotionGenerator, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Both tracks' audio features for `frames` frames of a clip (its audio repeated if
    shorter), computed before the timed generation."""
    samples = frames * SAMPLE_RATE // FPS
    return tuple(encoder_inputs(np.resize(audio, samples), frames, model.config)
                 for audio in (clip.self_audio, clip.other_audio))


def cuda_path(stage1_weights: Path, stage2_weights: Path, clip_path: Path, device: torch.device) -> dict:
    """The shipped weights on `device` against the CPU: largest absolute differences (TF32
    off for the comparison, then as it was)."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        return _cuda_path(stage1_weights, stage2_weights, clip_path, device)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def _cuda_path(stage1_weights: Path, stage2_weights: Path, clip_path: Path, device: torch.device) -> dict:
    clip = load_clip(clip_path)
    indices = np.arange(min(CHECK_FRAMES, clip.num_frames))
    results = {}
    for where in (torch.device("cpu"), device):
        stage1 = HeadImitator.from_pretrained(stage1_weights, where).eval()
        stage2 = MotionGenerator.from_pretrained(stage2_weights, where).eval()
        latents = encode_clip(stage1, clip, indices)
        source = clip_frames(clip, stage1.config.image_size, indices[:1]).to(where)[0]
        source_landmarks = clip_landmarks(clip, indices[:1]).to(where)[0]
        with torch.no_grad():
            renders = reenact(stage1, source, source_landmarks, latents)
        samples = len(indices) * SAMPLE_RATE // FPS
        motion = generate_from_audio(stage2, clip.self_audio[:samples], clip.other_audio[:samples], clip.sample_rate,
                                     seed=0, start=latents[:1]).latents
        results[where.type] = [t.float().cpu() for t in (latents, renders, motion)]
    cpu, other = results["cpu"], results[device.type]
    return {name: float((a - b).abs().max()) for name, a, b in
            zip(("latent_max_diff", "render_max_diff", "generated_motion_max_diff"), cpu, other)} | {
        "generated_motion_std": float(cpu[2].std()), "frames": len(indices)}


def run_summary(run: Path, result: dict, loss: str) -> dict:
    curves = read_scalars(run / "metrics.csv")
    memory = curves.get("gpu_peak_gib")
    return {"steps": result["step"], "wall_s": round(result["wall_s"], 1),
            "steps_per_s": curves["steps_per_s"][-1][1], "gpu_peak_gib": memory[-1][1] if memory else None,
            "loss_first": curves[loss][0][1], "loss_last": curves[loss][-1][1], "loss_curve": curves[loss],
            "val": {k: v for k, v in result.items() if k not in ("step", "wall_s")}}


@torch.no_grad()
def inference_speed(stage1: HeadImitator, stage2: MotionGenerator, clip, device: torch.device, frames: int) -> dict:
    """Frames per second of stage-2 generation and of stage-1 rendering, after a warm-up."""
    stage1, stage2 = stage1.to(device).eval(), stage2.to(device).eval()
    self_features, other_features = audio_inputs(clip, stage2, frames)
    size = stage1.config.image_size
    source = clip_frames(clip, size, np.arange(1)).to(device)[0]
    source_landmarks = clip_landmarks(clip, np.arange(1)).to(device)[0]
    generate(stage2, self_features[:stage2.config.dit.window], other_features[:stage2.config.dit.window])  # warm-up
    synchronize(device)
    started = time.perf_counter()
    latents = generate(stage2, self_features, other_features, seed=0).latents
    synchronize(device)
    generation = time.perf_counter() - started
    reenact(stage1, source, source_landmarks, latents[:32])  # warm-up
    synchronize(device)
    started = time.perf_counter()
    reenact(stage1, source, source_landmarks, latents)
    synchronize(device)
    rendering = time.perf_counter() - started
    return {"frames": frames, "image_size": size, "generation_fps": round(frames / generation, 1),
            "render_fps": round(frames / rendering, 1), "end_to_end_fps": round(frames / (generation + rendering), 1)}


def plot_losses(summaries: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(5 * len(summaries), 3.5))
    for ax, (name, summary) in zip(np.atleast_1d(axes), summaries.items()):
        steps, values = zip(*summary["loss_curve"])
        ax.plot(steps, values)
        ax.set(title=f"{name}: {summary['steps_per_s']:.2f} steps/s", xlabel="step", ylabel="training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="SynConv clips with train/val splits")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--device", default="cuda", help="cuda (the point of the script) or cpu (a dry run)")
    parser.add_argument("--preset", default="paper", help="the presets trained and timed: paper, or tiny for a dry run")
    parser.add_argument("--stage1-steps", type=int, default=200)
    parser.add_argument("--stage2-steps", type=int, default=300)
    parser.add_argument("--stage1-batch", type=int, default=16)
    parser.add_argument("--stage2-batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=12, help="data loader workers of the stage-1 run")
    parser.add_argument("--speed-frames", type=int, default=500, help="frames generated and rendered to time inference")
    parser.add_argument("--stage1-weights", type=Path, default=Path("weights/stage1_tiny.safetensors"))
    parser.add_argument("--stage2-weights", type=Path, default=Path("weights/stage2_tiny.safetensors"))
    args = parser.parse_args()
    if min(args.stage1_steps, args.stage2_steps) < 10:
        parser.error("train at least 10 steps: the runs log their losses and speed every 10 steps")

    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.out / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    clip_path = list_clips(args.data, "val")[0]
    report: dict = {"environment": environment(device), "preset": args.preset}

    def save() -> None:  # after every part, so a run stopped at its time limit keeps what it measured
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))

    started = time.perf_counter()
    report["cuda_path"] = cuda_path(args.stage1_weights, args.stage2_weights, clip_path, device)
    print("CUDA path against the CPU:", report["cuda_path"], flush=True)
    save()

    stage1_run = runs / "stage1"
    reset_peak_memory(device)
    result = train_stage1(args.data, stage1_run, args.preset,
                          Stage1TrainConfig(steps=args.stage1_steps, batch_size=args.stage1_batch,
                                            checkpoint_every=args.stage1_steps, workers=args.workers),
                          device=args.device, progress=False)
    report["stage1_training"] = run_summary(stage1_run, result, "train/total")
    shutil.copy(stage1_run / "metrics.csv", args.out / "stage1_metrics.csv")
    print("stage 1:", {k: v for k, v in report["stage1_training"].items() if k != "loss_curve"}, flush=True)
    save()

    stage2_run = runs / "stage2"
    reset_peak_memory(device)
    result = train_stage2(args.data, stage1_run / "stage1.safetensors", stage2_run, args.preset,
                          Stage2TrainConfig(steps=args.stage2_steps, batch_size=args.stage2_batch,
                                            one_sided_steps=args.stage2_steps // 3,
                                            checkpoint_every=args.stage2_steps),
                          device=args.device, progress=False)
    report["stage2_training"] = run_summary(stage2_run, result, "train/loss")
    shutil.copy(stage2_run / "metrics.csv", args.out / "stage2_metrics.csv")
    print("stage 2:", {k: v for k, v in report["stage2_training"].items() if k != "loss_curve"}, flush=True)
    plot_losses({"stage 1": report["stage1_training"], "stage 2": report["stage2_training"]},
                args.out / "loss_curves.png")
    save()

    clip = load_clip(clip_path)
    shipped = HeadImitator.from_pretrained(args.stage1_weights), MotionGenerator.from_pretrained(args.stage2_weights)
    report["inference_speed"] = {"tiny (shipped)": inference_speed(*shipped, clip, device, args.speed_frames)}
    if args.preset != "tiny":
        config1 = stage1_preset(args.preset)
        built = HeadImitator(config1), MotionGenerator(stage2_preset(args.preset, config1.latent_dim))
        report["inference_speed"][args.preset] = inference_speed(*built, clip, device, args.speed_frames)
    print("inference speed:", report["inference_speed"], flush=True)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    save()


if __name__ == "__main__":
    main()
