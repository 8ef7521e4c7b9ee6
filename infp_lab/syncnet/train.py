"""Training SyncNet-SynConv, the lip-sync expert behind LSE-C / LSE-D (design.md section 8).

Mouth crops and log-mel features of every training clip are rendered once and cached in
memory. Each step samples windows of `window` frames: mostly where the avatar speaks, so
the mouth moves. The loss is InfoNCE in both directions (as in CLIP): a mouth window must
pick its aligned audio among the batch's other audio windows (other clips) and its own
clip's audio shifted by 5-15 frames (the hard negatives SyncScore is about), and an audio
window its mouth among the batch's. AdamW with warm-up and cosine decay; CSV/TensorBoard
scalars; atomic checkpoints; a resumed run sees the same batches (they depend on the step
only). Validation: the same loss and accuracy on held-out clips, plus LSE-D/LSE-C/offset.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from tqdm.auto import tqdm

from infp_lab.checkpoint import load_training_checkpoint, save_training_checkpoint
from infp_lab.data.audio import audio_features
from infp_lab.data.clip import load_clip, train_val_clips
from infp_lab.metrics.interaction import is_speaking
from infp_lab.syncnet.crops import mouth_crops
from infp_lab.syncnet.model import SyncNet, SyncNetConfig, preset
from infp_lab.syncnet.score import score_crops
from infp_lab.train.common import ScalarLogger, cosine_lr, memory_scalars, resolve_device, run_checkpoint


@dataclass(frozen=True)
class SyncNetTrainConfig:
    """Optimisation and sampling settings of SyncNet-SynConv."""

    preset: str = "tiny"
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup: int = 50
    frame_size: int = 128  # frames are rendered at this size before cropping
    max_clips: int = 0  # training clips to cache (0: all)
    speaking_share: float = 0.8  # share of windows drawn where the avatar speaks
    shifted_negatives: int = 2  # per window: its own clip's audio shifted by min_shift..max_shift frames
    min_shift: int = 5
    max_shift: int = 15
    max_blur: float = 0.0  # half the windows blurred by a Gaussian of sigma U(0, max_blur) crop pixels (0: none)
    checkpoint_every: int = 100
    val_clips: int = 4
    val_max_offset: int = 15
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_blur < 0:
            raise ValueError(f"max_blur must be >= 0 (a blur's sigma in crop pixels), got {self.max_blur}")


class CachedClip(NamedTuple):
    """One clip's inputs, cached for training."""

    crops: np.ndarray  # (T, h, w) uint8
    audio: np.ndarray  # (T, 320) float32
    speaking: np.ndarray  # (T - window + 1,) bool: the avatar speaks in most of the window


def cache_clips(paths: list[Path], config: SyncNetConfig, frame_size: int, progress: bool = True) -> list[CachedClip]:
    """Render, crop and featurise clips (SynConv renders ~400 frames/s at 128 px)."""
    cached = []
    for path in tqdm(paths, desc="caching mouth crops", disable=not progress):
        clip = load_clip(path)
        frames = clip.frames(frame_size)
        crops = mouth_crops(frames, clip.landmarks(frame_size), config.crop_size)  # (T, h, w)
        speaking = np.lib.stride_tricks.sliding_window_view(is_speaking(clip.motion["state"]), config.window)
        cached.append(CachedClip(np.round(crops * 255).astype(np.uint8),
                                 audio_features(clip.self_audio, len(frames)),
                                 speaking.mean(axis=1) > 0.5))
    return cached


def sample_batch(clips: list[CachedClip], step: int, cfg: SyncNetTrainConfig, window: int,
                 seed_offset: int = 0) -> dict[str, torch.Tensor]:
    """The batch of one step (a function of the step and seed only): crops (B, W, h, w),
    audio (B, W, F) and shifted audio (B, K, W, F)."""
    rng = np.random.default_rng([cfg.seed + seed_offset, step])
    crops, audio, shifted = [], [], []
    for _ in range(cfg.batch_size):
        clip = clips[rng.integers(len(clips))]
        count = len(clip.speaking)
        speaking = np.flatnonzero(clip.speaking)
        start = int(rng.choice(speaking)) if len(speaking) and rng.random() < cfg.speaking_share else int(rng.integers(count))
        window_crops = clip.crops[start:start + window]
        if rng.random() < 0.5:  # mirror: mouths are symmetric enough
            window_crops = window_crops[:, :, ::-1]
        if cfg.max_blur > 0 and rng.random() < 0.5:  # a renderer's soft mouth is still in sync
            sigma = rng.uniform(0, cfg.max_blur)
            window_crops = gaussian_filter(window_crops.astype(np.float32), (0, sigma, sigma), mode="nearest")
        crops.append(window_crops)
        audio.append(clip.audio[start:start + window])
        shifted.append(shifted_audio(clip.audio, start, window, rng, cfg))
    return {"crops": torch.from_numpy(np.stack(crops).astype(np.float32) / 255.0),
            "audio": torch.from_numpy(np.stack(audio)), "shifted": torch.from_numpy(np.stack(shifted))}


def shifted_audio(audio: np.ndarray, start: int, window: int, rng: np.random.Generator,
                  cfg: SyncNetTrainConfig) -> np.ndarray:
    """`cfg.shifted_negatives` windows (K, window, F) of a clip's audio features (T, F),
    each shifted from `start` by `cfg.min_shift`..`cfg.max_shift` frames either way (kept
    inside the clip): the in-clip negatives of a mouth window."""
    count = len(audio) - window + 1
    negatives = []
    for _ in range(cfg.shifted_negatives):
        shift = int(rng.integers(cfg.min_shift, cfg.max_shift + 1)) * (1 if rng.random() < 0.5 else -1)
        if not 0 <= start + shift < count:
            shift = -shift
        other = int(np.clip(start + shift, 0, count - 1))
        negatives.append(audio[other:other + window])
    return np.stack(negatives)


def sync_loss(model: SyncNet, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Two-way InfoNCE with in-clip shifted audio as extra negatives for the mouth windows."""
    b, k = batch["shifted"].shape[:2]
    visual = model.embed_visual(batch["crops"])  # (B, E)
    audio = model.embed_audio(torch.cat([batch["audio"], batch["shifted"].flatten(0, 1)]))  # (B + B*K, E)
    aligned, shifted = audio[:b], audio[b:].view(b, k, -1)  # (B, E), (B, K, E)
    scale = model.logit_scale.clamp(max=math.log(100.0)).exp()
    v2a = torch.cat([visual @ aligned.T, torch.einsum("be,bke->bk", visual, shifted)], dim=1) * scale  # (B, B + K)
    a2v = aligned @ visual.T * scale  # (B, B)
    target = torch.arange(b, device=visual.device)
    loss = 0.5 * (F.cross_entropy(v2a, target) + F.cross_entropy(a2v, target))
    own = (visual * aligned).sum(-1, keepdim=True)  # (B, 1)
    accuracy = ((own > torch.einsum("be,bke->bk", visual, shifted)).all(dim=1)).float().mean()
    return {"loss": loss, "shift_accuracy": accuracy, "v2a_accuracy": (v2a.argmax(1) == target).float().mean()}


def _lr(step: int, cfg: SyncNetTrainConfig) -> float:
    return cosine_lr(step, cfg.lr, cfg.warmup, cfg.steps)


@torch.no_grad()
def validate(model: SyncNet, val: list[CachedClip], batches: list[dict], max_offset: int) -> dict[str, float]:
    """Held-out loss/accuracies and the mean LSE-D, LSE-C and |offset| <= 1 rate of validation clips."""
    model.eval()
    losses = [{k: v.item() for k, v in sync_loss(model, batch).items()} for batch in batches]
    metrics = {k: float(np.mean([x[k] for x in losses])) for k in losses[0]}
    scores = [score_crops(model, clip.crops.astype(np.float32) / 255.0, clip.audio, max_offset)
              for clip in val if len(clip.crops) >= model.config.window + 2 * max_offset]
    if scores:
        metrics.update(lse_d=float(np.mean([s.lse_d for s in scores])), lse_c=float(np.mean([s.lse_c for s in scores])),
                       offset_ok=float(np.mean([abs(s.offset) <= 1 for s in scores])))
    model.train()
    return metrics


def train_syncnet(data: str | Path, out: str | Path, cfg: SyncNetTrainConfig = SyncNetTrainConfig(),
                  resume: bool = False, device: str = "auto", progress: bool = True) -> dict:
    """Train (or resume) SyncNet-SynConv on a folder of clips; writes checkpoint.pt,
    metrics.csv and syncnet.safetensors into `out`. Returns the final validation metrics."""
    data, out = Path(data), Path(out)
    torch_device = resolve_device(device)
    config = preset(cfg.preset)
    train_paths, val_paths = train_val_clips(data)  # bad data fails here, before anything is written
    if cfg.max_clips > 0:
        train_paths = [train_paths[i] for i in np.linspace(0, len(train_paths) - 1, min(cfg.max_clips, len(train_paths))).astype(int)]
    checkpoint_path = run_checkpoint(out, resume)

    torch.manual_seed(cfg.seed)
    model = SyncNet(config).to(torch_device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    if resume and checkpoint_path.exists():
        state = load_training_checkpoint(checkpoint_path)
        if state["config"] != config.to_dict():
            raise ValueError(f"{checkpoint_path} was trained with another SyncNet-SynConv config; use another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])

    train = cache_clips(train_paths, config, cfg.frame_size, progress)
    val = cache_clips(val_paths[: max(1, cfg.val_clips)], config, cfg.frame_size, progress)
    val_batches = [sample_batch(val, i, cfg, config.window, seed_offset=10_000) for i in range(4)]
    logger = ScalarLogger(out)

    def to_device(batch: dict) -> dict:
        return {k: v.to(torch_device) for k, v in batch.items()}

    def validate_and_save(step: int) -> dict:
        metrics = validate(model, val, [to_device(b) for b in val_batches], cfg.val_max_offset)
        logger.log(step, **{f"val/{k}": v for k, v in metrics.items()})
        save_training_checkpoint(checkpoint_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                                   "step": step, "config": config.to_dict(), "train_config": asdict(cfg)})
        model.save_pretrained(out / "syncnet.safetensors", extra={"step": step, "val": metrics, "name": "SyncNet-SynConv"})
        return metrics

    bar = tqdm(total=cfg.steps, initial=start, desc="SyncNet-SynConv", disable=not progress)
    step, started, metrics = start, time.perf_counter(), {}
    model.train()
    while step < cfg.steps:
        batch = to_device(sample_batch(train, step, cfg, config.window))
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, cfg)
        losses = sync_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update()
        if step % 10 == 0:
            logger.log(step, **{f"train/{k}": v.item() for k, v in losses.items()}, lr=_lr(step, cfg),
                       steps_per_s=(step - start) / (time.perf_counter() - started), **memory_scalars(torch_device))
            bar.set_postfix(loss=f"{losses['loss'].item():.3f}", shift_acc=f"{losses['shift_accuracy'].item():.2f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            metrics = validate_and_save(step)
    bar.close()
    if step == start:  # nothing left to train: still export
        metrics = validate_and_save(step)
    logger.close()
    return {"step": step, "wall_s": time.perf_counter() - started, **metrics}
