"""Stage-2 training (design.md section 5): the motion generator learns to denoise windows of
stage-1 motion latents, conditioned on both voices, the previous motion and a style reference.

The stage-1 latents of every ground-truth frame are cached once (infp_lab.stage2.data) and
normalised with the training set's per-channel statistics; the epsilon loss drops f_m,
the previous motion and the style at random (classifier-free guidance). As in the paper,
the first `one_sided_steps` steps see only windows where one side speaks (talking only or
listening only), which initialises the memory banks; whole conversations follow. Optional
terms compare what the frozen stage-1 landmark head decodes from the predicted and the true
clean latents: the lips (MouthShapeLoss) and the head's motion (HeadMotionLoss); another asks
a linear read-out of the guider's motion feature f_m for the true lips (GuideMouthLoss), and
another weighs the error along every principal direction of the latents alike
(WhitenedLatentLoss), where the plain MSE hardly sees the faint ones that hold the lips; or the
whole space the diffusion works in can be whitened (`whiten_floor`), so that its noise and its
loss treat those directions as they do the rest. AdamW
with warm-up and cosine decay, gradient clipping, EMA weights, a validation loss on fixed
held-out windows, CSV/TensorBoard scalars, atomic resumable checkpoints, bf16 autocast on
CUDA, DDP under torchrun.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, default_collate
from tqdm.auto import tqdm

from infp_lab.checkpoint import file_sha256, load_training_checkpoint, save_training_checkpoint
from infp_lab.data.clip import STATE_NAMES, train_val_clips
from infp_lab.metrics import landmark_head_pose
from infp_lab.stage1.model import HeadImitator
from infp_lab.stage2.config import ablated, preset, with_audio_encoder
from infp_lab.stage2.data import WindowDataset, cache_latents, cached_latents, latent_stats
from infp_lab.stage2.diffusion import diffusion_loss
from infp_lab.stage2.model import MotionGenerator, principal_axes
from infp_lab.stage2.pose import pose_directions
from infp_lab.train.common import (
    EMA, DistInfo, ScalarLogger, StepBatchSampler, autocast, cleanup_distributed, cosine_lr, distribute,
    distributed_device, memory_scalars, run_checkpoint, unwrap,
)


@dataclass(frozen=True)
class Stage2TrainConfig:
    """Optimisation settings (the model's own settings live in Stage2Config)."""

    steps: int = 4000
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-2
    warmup: int = 100  # lr warm-up steps
    one_sided_steps: int = 1000  # the paper's warm-up on one-sided windows, then whole conversations
    ema_decay: float = 0.999
    p_motion: float = 0.5  # classifier-free dropout of f_m, the previous motion and the style
    p_previous: float = 0.5
    p_style: float = 0.3
    velocity_weight: float = 0.0  # a velocity term of the loss (clean-latent models only; see diffusion_loss)
    mouth_weight: float = 0.0  # a lip-shape term of the loss (clean-latent models only; see MouthShapeLoss)
    head_weight: float = 0.0  # a head-motion term of the loss (clean-latent models only; see HeadMotionLoss)
    head_features: tuple[str, ...] = ("roll", "turn", "nod")  # what that term compares (HeadMotionLoss.FEATURES)
    guide_mouth_weight: float = 0.0  # the lips read out of the guider's f_m (any model; see GuideMouthLoss)
    whitened_weight: float = 0.0  # the error along each principal direction alike (clean-latent models; WhitenedLatentLoss)
    whitened_floor: float = 1e-3  # that term's variance floor, in the normalised latents' units
    whiten_floor: float = 0.0  # > 0: the diffusion's space whitened too, with this floor (MotionGenerator.set_latent_whitening)
    checkpoint_every: int = 250
    val_batches: int = 4
    seed: int = 0
    workers: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 0 or self.batch_size < 1 or self.checkpoint_every < 1 or self.val_batches < 1:
            problems.append("steps must be >= 0, batch_size, checkpoint_every and val_batches >= 1")
        if self.warmup < 0 or self.one_sided_steps < 0 or self.workers < 0:
            problems.append("warmup, one_sided_steps and workers must be >= 0")
        weights = (self.velocity_weight, self.mouth_weight, self.head_weight, self.guide_mouth_weight,
                   self.whitened_weight)
        if min(weights) < 0:
            problems.append(f"velocity_weight, mouth_weight, head_weight, guide_mouth_weight and whitened_weight "
                            f"must be >= 0, got {', '.join(map(str, weights))}")
        if not self.whiten_floor >= 0:
            problems.append(f"whiten_floor must be >= 0 (0: no whitening), got {self.whiten_floor}")
        if not self.whitened_floor > 0:
            problems.append(f"whitened_floor must be > 0, got {self.whitened_floor}")
        unknown = set(self.head_features) - set(HeadMotionLoss.FEATURES)
        if unknown or not self.head_features:
            problems.append(f"head_features must be some of {', '.join(HeadMotionLoss.FEATURES)}, "
                            f"got {list(self.head_features)}")
        if not all(0.0 <= p <= 1.0 for p in (self.p_motion, self.p_previous, self.p_style, self.ema_decay)):
            problems.append("p_motion, p_previous, p_style and ema_decay must be in [0, 1]")
        if problems:
            raise ValueError("invalid stage-2 training config: " + "; ".join(problems))


class MouthShapeLoss:
    """The lip-shape term of the loss, for models that predict the clean latents.

    Most of a stage-1 latent channel's variance is where the clip's head sits, so in the
    normalised latents the jaw is a small part of the MSE. This term compares the lips that
    the frozen stage-1 landmark head decodes from the predicted and from the true latents
    (`HeadImitator.mouth_shape`: centred, in inter-ocular units), as an MSE divided by the
    mouth shape's variance over training frames: weight 1 gives the lips as much say as
    the whole normalised latent.
    """

    def __init__(self, stage1: HeadImitator, training_latents: torch.Tensor):
        """`training_latents`: raw latents (N, Dm) of training frames, for the variance."""
        self.stage1 = stage1.eval().requires_grad_(False)
        with torch.no_grad():
            self.variance = stage1.mouth_shape(training_latents).var(dim=0).mean().item()

    def __call__(self, predicted: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Raw predicted and true latents (B, W, Dm) -> scalar loss."""
        shapes = self.stage1.mouth_shape(torch.cat([predicted, latents]).flatten(0, 1).float())
        mine, truth = shapes.chunk(2)
        return nn.functional.mse_loss(mine, truth) / self.variance


class HeadMotionLoss:
    """The head-motion term of the loss, for models that predict the clean latents.

    The listener's nods are a small part of the normalised latents' MSE: a nod moves the
    head a few degrees, while most of a latent channel's variance is where the head is held.
    This term compares the head's roll, turn and nod, or some of them
    (`metrics.landmark_head_pose` of the landmarks the frozen stage-1 landmark head
    decodes), of the predicted and the true latents, each centred on its window's mean (the
    motion within the window, not the pose it is held at), as an MSE divided by that
    centred feature's variance over windows of the training clips, averaged over the
    features: weight 1 gives the head's motion as much say as the whole normalised latent.
    It reads neither the metrics' motion reader nor SynConv's labels.
    """

    FEATURES = {"roll": 0, "turn": 1, "nod": 3}  # columns of metrics.landmark_head_pose

    def __init__(self, stage1: HeadImitator, training_clips: list[torch.Tensor], window: int,
                 features: tuple[str, ...] = ("roll", "turn", "nod")):
        """`training_clips`: raw latents (T_i, Dm) of each training clip; `window`: frames
        of the model's windows (the clips are cut into windows of that length); `features`:
        which of FEATURES to compare."""
        if not features or set(features) - set(self.FEATURES):
            raise ValueError(f"features must be some of {', '.join(self.FEATURES)}, got {list(features)}")
        self.columns = [self.FEATURES[name] for name in features]
        self.stage1 = stage1.eval().requires_grad_(False)
        with torch.no_grad():
            windows = [z[:len(z) // window * window].unflatten(0, (-1, window)) for z in training_clips
                       if len(z) >= window]
            if not windows:
                raise ValueError(f"the head-motion loss needs a training clip of at least {window} frames")
            windows = torch.cat(windows)
            self.variance = self.motion(windows).pow(2).mean(dim=(0, 1))  # (features,)

    def motion(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw latents (B, W, Dm) -> the compared features (B, W, F), less each window's mean."""
        landmarks = self.stage1.landmark_head(latents.flatten(0, 1).float())
        pose = landmark_head_pose(landmarks)[:, self.columns].unflatten(0, latents.shape[:2])
        return pose - pose.mean(dim=1, keepdim=True)

    def __call__(self, predicted: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Raw predicted and true latents (B, W, Dm) -> scalar loss."""
        error = (self.motion(predicted) - self.motion(latents)).pow(2).mean(dim=(0, 1))
        return (error / self.variance).mean()


class WhitenedLatentLoss:
    """The clean-latent error along each principal direction of the training latents, each
    relative to its own variance: for models that predict the clean latents.

    The normalised latents' variance is nearly all in a few directions (where the head is
    held and turned); the lips' rounding and pressing live in directions with a thousandth of
    it or less (weights/README.md, "The lips are faint in the latent"), so the plain MSE
    hardly asks for them. Here the error along direction i is divided by its variance v_i
    plus `floor` (which keeps directions fainter than it from counting as much as the rest),
    then averaged: weight 1 gives the directions with v_i >> floor equal say.
    """

    def __init__(self, normalised_latents: torch.Tensor, floor: float = 1e-3):
        """`normalised_latents`: (N, Dm) training frames in the space the diffusion works in."""
        if not floor > 0:
            raise ValueError(f"floor must be > 0, got {floor}")
        variances, directions = principal_axes(normalised_latents)
        self.directions, self.weights = directions.float(), (1.0 / (variances + floor)).float()

    def __call__(self, predicted: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Normalised predicted and true latents (B, W, Dm) -> scalar loss."""
        error = (predicted.float() - latents.float()) @ self.directions  # on the training latents' device
        return (error.pow(2) * self.weights).mean()


class GuideMouthLoss(nn.Module):
    """The lips read out of the guider's motion feature f_m, an auxiliary term for any model.

    The audio tells the lips' shape well, but little of it reached f_m when stage 2 learnt
    from the diffusion loss alone (weights/README.md, "Where the generated video loses its lip
    sync"). Here a linear read-out of f_m (its only parameters, used in training only and
    kept in the checkpoint, not in the weights) must give the lips' shape that the frozen
    stage-1 landmark head decodes from the true latents (`HeadImitator.mouth_shape`), each
    coordinate standardised over training frames: an MSE, so weight 1 gives the lips' shape
    as much say as the whole normalised latent. It reads no dataset labels.
    """

    def __init__(self, stage1: HeadImitator, training_latents: torch.Tensor, feature_dim: int):
        """`training_latents`: raw latents (N, Dm) of training frames, for the standardisation;
        `feature_dim`: the size of f_m."""
        super().__init__()
        self.mouth_shape = stage1.eval().requires_grad_(False).mouth_shape  # a frozen function, not a submodule
        with torch.no_grad():
            shapes = self.mouth_shape(training_latents).flatten(1)  # (N, 2 * points)
        self.register_buffer("mean", shapes.mean(dim=0))
        self.register_buffer("std", shapes.std(dim=0).clamp(min=1e-6))
        self.readout = nn.Linear(feature_dim, shapes.shape[1])

    def forward(self, feature: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """f_m (B, W, D) and the true raw latents (B, W, Dm) -> scalar loss."""
        with torch.no_grad():
            target = (self.mouth_shape(latents.flatten(0, 1).float()).flatten(1) - self.mean) / self.std
        return nn.functional.mse_loss(self.readout(feature.flatten(0, 1).float()), target)


def window_loss(model, batch: dict, generator: torch.Generator | None, p_motion: float = 0.0,
                p_previous: float = 0.0, p_style: float = 0.0, velocity_weight: float = 0.0,
                mouth: MouthShapeLoss | None = None, mouth_weight: float = 0.0,
                head: HeadMotionLoss | None = None, head_weight: float = 0.0,
                guide_mouth: GuideMouthLoss | None = None, guide_mouth_weight: float = 0.0,
                whitened: WhitenedLatentLoss | None = None, whitened_weight: float = 0.0) -> dict:
    """`diffusion_loss` on a batch of WindowDataset items (raw latents are normalised here;
    the style reference stays raw), plus `mouth_weight` times the `mouth` term,
    `head_weight` times the `head` term, `guide_mouth_weight` times the `guide_mouth` one and
    `whitened_weight` times the `whitened` one."""
    core = unwrap(model)
    losses = diffusion_loss(model, core.normalise(batch["latents"]), batch["self_audio"], batch["other_audio"],
                            core.normalise(batch["previous"]), batch["has_previous"], batch["style_reference"],
                            generator, p_motion, p_previous, p_style, audio_offset=batch["audio_offset"],
                            velocity_weight=velocity_weight)
    for name, term, weight in (("mouth", mouth, mouth_weight), ("head", head, head_weight)):
        if term is None or weight <= 0:
            continue
        if core.config.diffusion.prediction != "sample":
            raise ValueError(f"the {name} loss needs a model that predicts the clean latents (prediction 'sample')")
        losses[name] = term(core.denormalise(losses["predicted"]), batch["latents"])
        losses["loss"] = losses["loss"] + weight * losses[name]
    if whitened is not None and whitened_weight > 0:
        if core.config.diffusion.prediction != "sample":
            raise ValueError("the whitened loss needs a model that predicts the clean latents (prediction 'sample')")
        losses["whitened"] = whitened(losses["predicted"], core.normalise(batch["latents"]))
        losses["loss"] = losses["loss"] + whitened_weight * losses["whitened"]
    if guide_mouth is not None and guide_mouth_weight > 0:
        losses["guide_mouth"] = guide_mouth(losses["motion_feature"], batch["latents"])
        losses["loss"] = losses["loss"] + guide_mouth_weight * losses["guide_mouth"]
    return losses


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


@torch.no_grad()
def validation_loss(model: MotionGenerator, batches: list[dict], device: torch.device, seed: int = 0) -> float:
    """Mean loss of the fully conditional model on fixed windows; timesteps and noise come
    from a fresh generator seeded with `seed`, so values are comparable across steps."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for batch in batches:
        with autocast(device):
            losses.append(window_loss(model, _to(batch, device), generator)["loss"].item())
    return float(np.mean(losses))


def attention_peaks(out: dict, state: torch.Tensor) -> dict[str, float]:
    """Mean largest attention weight per frame on each memory bank, by speaking state: how
    sharply each bank is read while self speaks, listens, and so on."""
    scalars = {}
    for bank in ("verbal", "nonverbal"):
        peak = out[f"{bank}_attention"].float().amax(dim=-1)  # (B, W)
        for code, name in enumerate(STATE_NAMES):
            mask = state == code
            if mask.any():
                scalars[f"attention/{bank}_peak_{name}"] = peak[mask].mean().item()
    return scalars


def _cached(stage1_weights: Path, clips: list[Path], cache_dir: Path, device: torch.device, info: DistInfo,
            progress: bool) -> list[Path]:
    """Every process encodes its share of the clips, then all read the whole cache."""
    cache_latents(stage1_weights, clips[info.rank::info.world_size], cache_dir, device,
                  progress=progress and info.is_main)
    if info.world_size > 1:
        dist.barrier()
    return cache_latents(stage1_weights, clips, cache_dir, device, progress=False)


def train_stage2(data: str | Path, stage1_weights: str | Path, out: str | Path, preset_name: str = "tiny",
                 train_cfg: Stage2TrainConfig = Stage2TrainConfig(), resume: bool = False, device: str = "auto",
                 progress: bool = True, cache_dir: str | Path | None = None, ablation: str | None = None,
                 audio_layers: int | None = None, audio_kernel: int | None = None) -> dict:
    """Train (or resume) a stage-2 motion generator on the latents of a stage-1 model.

    Args:
        data: folder of clips (its train/val splits, or a 90/10 cut).
        stage1_weights: the stage-1 weights (.safetensors) whose motion latents are learnt.
        out: run folder: checkpoint.pt, metrics.csv, tensorboard/ and stage2.safetensors
            (EMA weights with the step, validation loss and stage-1 file name and sha256).
        preset_name: stage-2 preset, built with the stage-1 model's latent size.
        train_cfg: optimisation settings.
        resume: continue the run in `out` (refused if it used another model or stage-1 model).
        device: "cpu", "cuda" or "auto".
        progress: show progress bars.
        cache_dir: where the latent cache lives (default: `out/latent_cache`).
        ablation: one of the paper's ablations (config.ABLATIONS), or None for the full model.
        audio_layers, audio_kernel: the audio encoders' convolutions, if not the preset's
            (config.with_audio_encoder).

    Returns:
        {"step", "wall_s", "loss"}: the final step, the wall time and the validation loss.
    """
    data, out, stage1_weights = Path(data), Path(out), Path(stage1_weights)
    torch_device, info = distributed_device(device)
    if not stage1_weights.is_file():
        raise FileNotFoundError(f"stage-1 weights not found: {stage1_weights}")
    stage1 = HeadImitator.from_pretrained(stage1_weights)  # a wrong file fails here
    config = with_audio_encoder(ablated(preset(preset_name, stage1.config.latent_dim), ablation),
                                audio_layers, audio_kernel)
    if config.audio.type != "logmel":
        raise ValueError(f"stage-2 training reads cached log-mel features; preset {preset_name!r} has the "
                         f"{config.audio.type!r} audio encoder")
    for name, weight in (("--velocity-weight", train_cfg.velocity_weight), ("--mouth-weight", train_cfg.mouth_weight),
                         ("--head-weight", train_cfg.head_weight), ("--whitened-weight", train_cfg.whitened_weight)):
        if weight > 0 and config.diffusion.prediction != "sample":
            raise ValueError(f"{name} needs a model that predicts the clean latents; this one predicts "
                             f"{config.diffusion.prediction!r}")
    train_clips, val_clips = train_val_clips(data)  # bad data fails here, before anything is written
    checkpoint_path = run_checkpoint(out, resume)
    stage1_sha256 = file_sha256(stage1_weights)
    provenance = {"stage1_weights": stage1_weights.name, "stage1_sha256": stage1_sha256}
    state = load_training_checkpoint(checkpoint_path) if resume and checkpoint_path.exists() else None
    if state is not None and state["config"] != config.to_dict():
        raise ValueError(f"{checkpoint_path} was trained with another model config; use another --out")
    if state is not None and state.get("stage1_sha256") != stage1_sha256:
        raise ValueError(f"{checkpoint_path} was trained on the latents of another stage-1 model "
                         f"({state.get('stage1_weights')}); use the same --stage1 or another --out")
    cached = _cached(stage1_weights, train_clips + val_clips, out / "latent_cache" if cache_dir is None
                     else Path(cache_dir), torch_device, info, progress)
    train_paths, val_paths = cached[:len(train_clips)], cached[len(train_clips):]

    torch.manual_seed(train_cfg.seed)
    model = MotionGenerator(config).to(torch_device)
    model.set_latent_stats(*(torch.from_numpy(x) for x in latent_stats(train_paths)))
    train_clips = [cached_latents([path]) for path in train_paths]  # (T_i, Dm) per clip, read once
    train_latents = np.concatenate(train_clips)  # (N, Dm), every training frame
    if train_cfg.whiten_floor > 0:
        model.set_latent_whitening(torch.from_numpy(train_latents), train_cfg.whiten_floor)
    model.set_pose_directions(pose_directions(stage1, train_latents,
                                              lambda raw: model.normalise(raw.to(torch_device))))
    ema = EMA(model, train_cfg.ema_decay)  # after the stats and pose directions: the EMA copy holds them too
    mouth = None
    if train_cfg.mouth_weight > 0:
        mouth = MouthShapeLoss(stage1.to(torch_device), torch.from_numpy(train_latents).to(torch_device))
    head = None
    if train_cfg.head_weight > 0:
        head = HeadMotionLoss(stage1.to(torch_device), [torch.from_numpy(z).to(torch_device) for z in train_clips],
                              config.dit.window, train_cfg.head_features)
    whitened = None
    if train_cfg.whitened_weight > 0:
        whitened = WhitenedLatentLoss(model.normalise(torch.from_numpy(train_latents).to(torch_device)),
                                      train_cfg.whitened_floor)
    guide_mouth = None
    trained = list(model.parameters())
    if train_cfg.guide_mouth_weight > 0:
        guide_mouth = GuideMouthLoss(stage1.to(torch_device), torch.from_numpy(train_latents).to(torch_device),
                                     config.dim).to(torch_device)
        trained += list(guide_mouth.parameters())
    optimizer = torch.optim.AdamW(trained, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    start = 0
    if state is not None:
        if guide_mouth is not None:
            if "guide_mouth" not in state:
                raise ValueError(f"{checkpoint_path} was trained without --guide-mouth-weight; use another --out")
            guide_mouth.load_state_dict(state["guide_mouth"])
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
    # dropped conditions (f_m, previous motion, style) leave parameters unused in some steps
    model = distribute(model, torch_device, info, find_unused_parameters=True)

    def windows(paths: list[Path], seed: int, one_sided: bool = False) -> WindowDataset:
        return WindowDataset(paths, config.dit.window, config.dit.context, config.lookahead, seed, one_sided)

    def loader(dataset: WindowDataset, first: int, last: int) -> DataLoader:
        sampler = StepBatchSampler(first, last, train_cfg.batch_size, info.rank, info.world_size)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=train_cfg.workers, persistent_workers=False)

    switch = min(train_cfg.one_sided_steps, train_cfg.steps)  # one-sided windows before, whole conversations after
    phases = [loader(windows(train_paths, train_cfg.seed, one_sided=True), start, switch)] if start < switch else []
    phases.append(loader(windows(train_paths, train_cfg.seed), max(start, switch), train_cfg.steps))
    val_set = windows(val_paths, 10_000 + train_cfg.seed)
    val_batches = [default_collate([val_set[i * train_cfg.batch_size + j] for j in range(train_cfg.batch_size)])
                   for i in range(train_cfg.val_batches)] if info.is_main else []
    logger = ScalarLogger(out, enabled=info.is_main)
    generator = torch.Generator().manual_seed(train_cfg.seed * 1000 + info.rank)
    if state is not None and f"generator_{info.rank}" in state:
        generator.set_state(state[f"generator_{info.rank}"])
    eval_model = MotionGenerator(config).to(torch_device)

    def validate_and_save(step: int) -> dict:
        metrics = {}
        if info.is_main:
            ema.copy_to(eval_model)
            metrics = {"loss": validation_loss(eval_model, val_batches, torch_device, train_cfg.seed)}
            logger.log(step, **{f"val/{k}": v for k, v in metrics.items()})
            save_training_checkpoint(checkpoint_path, {
                "model": unwrap(model).state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                "step": step, "config": config.to_dict(), "train_config": asdict(train_cfg), "val": metrics,
                f"generator_{info.rank}": generator.get_state(), **provenance,
                **({} if guide_mouth is None else {"guide_mouth": guide_mouth.state_dict()})})
            eval_model.save_pretrained(out / "stage2.safetensors", extra={"step": step, "val": metrics, **provenance})
        return metrics

    bar = tqdm(total=train_cfg.steps, initial=start, desc="stage2", disable=not (progress and info.is_main))
    step, started, metrics = start, time.perf_counter(), {}
    for batch in itertools.chain(*phases):
        model.train()
        batch = _to(batch, torch_device)
        lr = cosine_lr(step, train_cfg.lr, train_cfg.warmup, train_cfg.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(torch_device):
            losses = window_loss(model, batch, generator, train_cfg.p_motion, train_cfg.p_previous, train_cfg.p_style,
                                 train_cfg.velocity_weight, mouth, train_cfg.mouth_weight, head,
                                 train_cfg.head_weight, guide_mouth, train_cfg.guide_mouth_weight, whitened,
                                 train_cfg.whitened_weight)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if guide_mouth is not None and info.world_size > 1:  # the read-out is outside DDP: average its gradients
            for parameter in guide_mouth.parameters():
                dist.all_reduce(parameter.grad, op=dist.ReduceOp.AVG)
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        ema.update(unwrap(model), step)
        step += 1
        bar.update()
        if step % 10 == 0 or step == train_cfg.steps:
            terms = {f"train/{name}": losses[name].item() for name in ("mouth", "head", "guide_mouth", "whitened")
                     if name in losses}
            logger.log(step, **{"train/loss": losses["loss"].item(), "train/one_sided": float(step <= switch)},
                       **terms,
                       **attention_peaks(losses, batch["state"]), lr=lr,
                       steps_per_s=(step - start) / (time.perf_counter() - started), **memory_scalars(torch_device))
            bar.set_postfix(loss=f"{losses['loss'].item():.3f}")
        if step % train_cfg.checkpoint_every == 0 or step == train_cfg.steps:
            metrics = validate_and_save(step)
    bar.close()
    if step == start and info.is_main:  # nothing left to train: still export
        metrics = validate_and_save(step)
    logger.close()
    cleanup_distributed()
    return {"step": step, "wall_s": time.perf_counter() - started, **metrics}
