"""Stage-1 training by self-reenactment (design.md section 4), plus, on SynConv,
cross-identity pairs with ground truth (see infp_lab.stage1.data).

Pairs of frames from one clip; L1 + SSIM (+ optional patch GAN) on the image and L1 on the
landmark head's output; AdamW with a cosine schedule; EMA weights; periodic validation on
held-out clips with a sample grid PNG; CSV/TensorBoard scalars; atomic, resumable
checkpoints; bf16 autocast on CUDA; DDP under torchrun.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from tqdm.auto import tqdm

from infp_lab.checkpoint import load_training_checkpoint, save_training_checkpoint
from infp_lab.data.clip import train_val_clips
from infp_lab.stage1.config import DECODER_PARTS, FINE_TUNABLE_DECODER_OPTIONS, Stage1Config, preset
from infp_lab.stage1.data import FramePairDataset, SyncWindowDataset, param_statistics
from infp_lab.stage1.discriminator import MouthDiscriminator, PatchDiscriminator, mouth_crops
from infp_lab.stage1.decoder import MAP_READERS
from infp_lab.stage1.hybrid import colour_jitter, mouth_region, region_mask
from infp_lab.stage1.model import HeadImitator
from infp_lab.syncnet.crops import crop_images
from infp_lab.syncnet.model import SyncNet
from infp_lab.train.common import (
    EMA, ScalarLogger, StepBatchSampler, autocast, cleanup_distributed, cosine_lr, distribute, distributed_device,
    memory_scalars, run_checkpoint, unwrap,
)


# What the sync loss may move. Left the whole crop, a renderer found stains beside the mouth
# that every expert read as sync (weights/README.md, "Training through a lip-sync expert").
SYNC_REGIONS = ("mouth", "crop")
# What the sync loss asks of the rendered windows: to be told their own audio among shifted
# ones (Wav2Lip's expert loss), or to look to the expert's visual encoder as the true windows
# do (a perceptual loss whose network knows mouths; its target is the truth, not the audio).
SYNC_LOSSES = ("contrastive", "features")


@dataclass(frozen=True)
class Stage1TrainConfig:
    """Optimisation settings (the model's own settings live in Stage1Config)."""

    steps: int = 3000
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-2
    warmup: int = 100
    ema_decay: float = 0.999
    ssim_weight: float = 0.5
    landmark_weight: float = 10.0
    gan_weight: float = 0.0  # > 0 turns the patch GAN on
    mouth_gan_weight: float = 0.0  # > 0 turns the mouth-crop patch GAN on (conditioned on the mouth's opening)
    invariance_weight: float = 0.0  # > 0: cross-identity drivers must encode like the target frame
    param_weight: float = 0.0  # > 0: a linear param head reads the motion parameters from the latent (SynConv)
    region_weight: float = 0.0  # > 0: extra L1 on the target's eye and mouth regions (mean over their pixels)
    mouth_weight: float = 0.0  # > 0: extra L1 on mouth crops (the mouth discriminator's), which hold all of lip sync
    sync_weight: float = 0.0  # > 0: rendered windows must match their audio for a lip-sync expert (`sync_expert`)
    sync_expert: str | None = None  # SyncNet-SynConv weights the sync loss reads (train another than the judge's)
    sync_windows: int = 4  # windows of the expert's length rendered per step for the sync loss
    sync_region: str = "mouth"  # pixels the sync loss may move: "mouth" (lips and a margin) or "crop" (all it sees)
    sync_loss: str = "contrastive"  # one of SYNC_LOSSES
    freeze_motion: bool = False  # train the renderer only: the motion encoder and landmark head keep their weights
    mouth_residual_only: bool = False  # train the decoder's mouth residual (and mouth detail) alone: the rest renders as given
    # Draw at the target frame's true landmarks instead of the landmark head's: what the renderer
    # can draw when told exactly where the lips are (weights/README.md, "Told the true landmarks").
    true_landmarks: bool = False
    colour_jitter: bool = True
    cross_identity: float = 0.5  # share of SynConv items driven by another identity wearing the same motion
    open_mouth: float = 0.0  # share of items whose driving frame is drawn in proportion to its lip gap (FramePairDataset)
    checkpoint_every: int = 250
    stop_at: int | None = None  # stop (with a checkpoint) after this step of the `steps` schedule; --resume goes on
    val_pairs: int = 32
    seed: int = 0
    workers: int = 1

    def __post_init__(self) -> None:
        weights = {name: getattr(self, name) for name in ("ssim_weight", "landmark_weight", "gan_weight",
                                                          "mouth_gan_weight", "invariance_weight", "param_weight",
                                                          "region_weight", "mouth_weight", "sync_weight")}
        negative = {name: value for name, value in weights.items() if value < 0}
        if negative:
            raise ValueError(f"loss weights must be >= 0, got {negative}")
        if self.sync_weight > 0 and not self.sync_expert:
            raise ValueError("the sync loss (sync_weight > 0) needs a lip-sync expert's weights (sync_expert)")
        if self.sync_region not in SYNC_REGIONS:
            raise ValueError(f"sync_region must be one of {SYNC_REGIONS}, got {self.sync_region!r}")
        if self.sync_loss not in SYNC_LOSSES:
            raise ValueError(f"sync_loss must be one of {SYNC_LOSSES}, got {self.sync_loss!r}")
        if not 0 <= self.open_mouth <= 1:
            raise ValueError(f"open_mouth is a probability in [0, 1], got {self.open_mouth}")
        if self.sync_windows < 1:
            raise ValueError(f"sync_windows must be >= 1, got {self.sync_windows}")


def init_from(model: HeadImitator, weights: str | Path | HeadImitator) -> None:
    """Load stage-1 weights (a file, or a loaded model) of the same config into `model` to fine-tune them.

    Weights of a model whose decoder did not see the driven maps, did not correct the flow
    at full resolution, or had no mouth residual, are accepted too: the stem's extra input
    channels start at zero, and the residual refine branch, the flow correction and the
    mouth residual start as no-ops, so the model renders exactly as the given one until
    training moves them. So are weights whose
    decoder blended the warped source into the mouth opening (`mouth_from_decoder` off):
    they have the same parameters, and weights whose decoder drew another mouth map
    (`DecoderConfig.mouth_map`): the maps change, not the parameters that read them, and
    weights whose image warp took another landmark prior around the mouth
    (`FlowConfig.mouth_prior_sigma`), and weights whose decoder did not see the mouth's
    interior (`DecoderConfig.mouth_interior`): the input channels of the added maps start at zero.
    Weights without a param head are accepted by a model with
    one: its head keeps its own start. So are hybrid weights that read the contour points only
    by a model that reads the region points too (`MotionEncoderConfig.points`): its region
    branch starts silent, so the latents stay the given model's until training moves them.
    """
    given = weights if isinstance(weights, HeadImitator) else HeadImitator.from_pretrained(weights)
    decoder, given_decoder = model.config.decoder, given.config.decoder
    widened = given.config.motion.points == "contour" and model.config.motion.points == "regions"
    comparable = replace(given.config, param_names=given.config.param_names or model.config.param_names,
                         flow=replace(given.config.flow, mouth_prior_sigma=model.config.flow.mouth_prior_sigma),
                         motion=model.config.motion if widened else given.config.motion,
                         decoder=replace(given_decoder, **{name: getattr(decoder, name)
                                                           for name in FINE_TUNABLE_DECODER_OPTIONS}))
    dropped = any(getattr(given_decoder, name) and not getattr(decoder, name) for name in DECODER_PARTS)
    if comparable != model.config or dropped:
        raise ValueError(f"{weights} has another model config than the one trained here (preset, motion input); "
                         f"fine-tune from weights of the same config")
    state = model.state_dict()
    for key, value in given.state_dict().items():
        added = state[key].shape[1] - value.shape[1] if key in MAP_READERS else 0
        if added:  # zero weights for the maps the given decoder did not read, before the inputs that follow them
            at = value.shape[1] - MAP_READERS[key]
            zeros = value.new_zeros(value.shape[0], added, *value.shape[2:])
            value = torch.cat([value[:, :at], zeros, value[:, at:]], dim=1)
        state[key] = value
    model.load_state_dict(state)


@torch.no_grad()
def fit_param_head(model: HeadImitator, clips: list[Path], frames_per_clip: int = 16, seed: int = 0) -> float:
    """Start the param head at the ridge least-squares readout of the motion parameters from
    the model's current latents (frames of `clips`), so that fine-tuning a trained model does
    not wait for a random head to grow to the latents' scale. Returns the fit's R^2 (mean
    over parameters) on those frames."""
    from infp_lab.data.clip import load_clip
    from infp_lab.stage1.data import shown_params
    from infp_lab.stage1.inference import clip_frames, clip_landmarks

    rng = np.random.default_rng(seed)
    head, latents, params = model.param_head, [], []
    for path in clips:
        clip = load_clip(path, load_audio_tracks=False)
        targets = shown_params(clip)
        if targets is None or clip.param_names != list(model.config.param_names):
            continue
        frames = np.sort(rng.choice(clip.num_frames, min(frames_per_clip, clip.num_frames), replace=False))
        latents.append(model.encode_motion(clip_frames(clip, model.config.image_size, frames),
                                           clip_landmarks(clip, frames)))
        params.append(torch.from_numpy(targets[frames]))
    x = torch.cat(latents).double()
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)  # (N, D + 1), with the bias
    y = ((torch.cat(params) - head.mean) / head.std).double()  # (N, P), standardised
    gram = x.T @ x
    ridge = 1e-4 * gram.diagonal()[:-1].mean() * torch.eye(len(gram), dtype=x.dtype)
    ridge[-1, -1] = 0  # the bias is not shrunk
    solution = torch.linalg.solve(gram + ridge, x.T @ y)  # (D + 1, P)
    head.linear.weight.copy_(solution[:-1].T)
    head.linear.bias.copy_(solution[-1])
    residual = ((x @ solution - y) ** 2).mean(dim=0) / y.var(dim=0).clamp(min=1e-12)
    return float((1 - residual).mean())


# Branches that join trained parts with their output at zero learn at a multiple of the rate.
# The region-points branch must add small movements: at the common rate it grew too slowly to
# matter in 300 steps of an encoder fine-tune (scripts/stage1_encoder_probe.py), at 10x it lifted
# the probe's R^2. The mouth detail (decoder.MouthDetail) joins a renderer fine-tuned at 1e-4
# beside a mouth GAN; it takes 3x, the rate at which the mouth residual was trained alone.
REGION_BRANCH_LR_SCALE = 10.0
MOUTH_DETAIL_LR_SCALE = 3.0


def parameter_groups(model: HeadImitator) -> list[dict]:
    """The trainable parameters as optimizer groups, each with its `lr_scale`."""
    branches = [(model.motion_encoder.region_points, REGION_BRANCH_LR_SCALE),
                (model.decoder.mouth_detail, MOUTH_DETAIL_LR_SCALE)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups, placed = [], set()
    for branch, scale in branches:
        params = [p for p in branch.parameters() if p.requires_grad] if branch is not None else []
        if params:
            groups.append({"params": params, "lr_scale": scale})
            placed.update(id(p) for p in params)
    return [{"params": [p for p in trainable if id(p) not in placed], "lr_scale": 1.0}, *groups]


def _lr(step: int, cfg: Stage1TrainConfig) -> float:
    return cosine_lr(step, cfg.lr, cfg.warmup, cfg.steps)


def param_loss(model: HeadImitator, latents: torch.Tensor, batch: dict) -> torch.Tensor:
    """The param head's MSE on the batch items that have parameters, in standardised units."""
    head, known = model.param_head, batch["has_params"].bool()
    truth = (batch["params"][known] - head.mean) / head.std  # (N, P)
    return F.mse_loss(head.standardised(latents[known].float()), truth)


def invariance_loss(model: HeadImitator, latents: torch.Tensor, batch: dict, per_dim: bool = False,
                    own: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-identity drivers' latents against their target frames' own (the same motion on
    another face), relative to the targets' spread: averaged over the latent's dimensions,
    or, with `per_dim`, each dimension's own (as a probe that standardises them reads them).
    `own`, the target frames' latents of the cross items, is encoded here when not given."""
    cross = batch["cross"].bool()
    if own is None:
        own = model.encode_motion(batch["target"][cross], batch["target_frame_landmarks"][cross])
    if len(own) < 2:
        return F.mse_loss(latents[cross].float(), own.float())
    spread = own.detach().float().var(dim=0)
    spread = spread + 1e-4 * spread.mean() + 1e-6 if per_dim else spread.mean() + 1e-6
    return ((latents[cross].float() - own.float()) ** 2 / spread).mean()


def expert_feature_loss(expert: SyncNet, crops: torch.Tensor, true_crops: torch.Tensor) -> torch.Tensor:
    """A perceptual loss read by the lip-sync expert's visual encoder: each block's
    activations of the rendered mouth-crop windows against the true windows', L1 relative to
    the true activations' mean magnitude, averaged over the blocks. Windows (B, window, h, w)."""
    with torch.no_grad():
        targets = expert.visual_encoder.features(true_crops)
    rendered = expert.visual_encoder.features(crops)
    return torch.stack([(r - t).abs().mean() / (t.abs().mean() + 1e-6) for r, t in zip(rendered, targets)]).mean()


def sync_expert_loss(model, expert: SyncNet, batch: dict, region: str = "mouth",
                     true_landmarks: bool = False, kind: str = "contrastive") -> torch.Tensor:
    """Wav2Lip's expert loss with in-clip negatives: each window of frames (a batch of
    `SyncWindowDataset` items) is rendered from its source frame, cut into the expert's
    mouth crops, and must be told its own audio among its shifted audio windows (cross
    entropy over the expert's scaled cosine similarities; the expert stays frozen). With
    `kind` "features" the windows must instead look to the expert's visual encoder as the
    true frames do (`expert_feature_loss`). With `region` "mouth" its gradient reaches only
    the pixels of the lips and a margin (`mouth_region` at the true landmarks); with "crop",
    all that the expert sees. With `true_landmarks`, the windows are drawn at their true
    landmarks (`Stage1TrainConfig`)."""
    b, window = batch["driving"].shape[:2]
    driving_landmarks = batch["driving_landmarks"].flatten(0, 1)
    out = model(batch["source"].repeat_interleave(window, 0), batch["source_landmarks"].repeat_interleave(window, 0),
                batch["driving"].flatten(0, 1), driving_landmarks, target=driving_landmarks if true_landmarks else None)
    image = out.image.float()
    if region == "mouth":
        mask = mouth_region(driving_landmarks, image.shape[-1]).unsqueeze(1)  # (B * window, 1, H, W)
        image = image * mask + image.detach() * (1 - mask)
    crops = crop_images(image, batch["crop_matrices"].flatten(0, 1), expert.config.crop_size)
    crops = crops.view(b, window, *expert.config.crop_size)
    if kind == "features":
        true_crops = crop_images(batch["driving"].flatten(0, 1).float(), batch["crop_matrices"].flatten(0, 1),
                                 expert.config.crop_size)
        return expert_feature_loss(expert, crops, true_crops.view_as(crops))
    visual = expert.embed_visual(crops)  # (B, E)
    with torch.no_grad():
        audio = expert.embed_audio(torch.cat([batch["audio"], batch["shifted"].flatten(0, 1)]))
    aligned, shifted = audio[:b], audio[b:].view(b, batch["shifted"].shape[1], -1)  # (B, E), (B, K, E)
    similarity = torch.cat([(visual * aligned).sum(-1, keepdim=True), torch.einsum("be,bke->bk", visual, shifted)], 1)
    scale = expert.logit_scale.clamp(max=math.log(100.0)).exp()
    return F.cross_entropy(similarity * scale, torch.zeros(b, dtype=torch.long, device=similarity.device))


def _losses(model, batch, cfg: Stage1TrainConfig, generator: torch.Generator, discriminator=None,
            mouth_discriminator=None, expert: SyncNet | None = None, sync_batch: dict | None = None) -> dict:
    driving_input = colour_jitter(batch["driving"], generator) if cfg.colour_jitter else None
    drawn_at = batch["target_frame_landmarks"] if cfg.true_landmarks else None
    out = model(batch["source"], batch["source_landmarks"], batch["driving"], batch["driving_landmarks"], driving_input,
                drawn_at)
    target = batch["target"]
    image = out.image.float()
    losses = {
        "l1": F.l1_loss(image, target),
        "ssim": 1 - structural_similarity_index_measure(image, target, data_range=1.0),
        "landmark": F.l1_loss(out.landmarks.float(), batch["target_landmarks"]),
    }
    total = losses["l1"] + cfg.ssim_weight * losses["ssim"] + cfg.landmark_weight * losses["landmark"]
    if cfg.param_weight > 0 and bool(batch["has_params"].any()):  # each parameter counts, however small its pixels
        losses["params"] = param_loss(unwrap(model), out.driving_latent, batch)
        total = total + cfg.param_weight * losses["params"]
    if cfg.region_weight > 0:  # the mouth and eyes are a few % of the frame, but all of lip sync and blinks
        mask = region_mask(batch["target_frame_landmarks"], image.shape[-1])  # (B, 1, H, W)
        losses["region"] = ((image - target).abs() * mask).sum() / (mask.sum() * image.shape[1] + 1e-6)
        total = total + cfg.region_weight * losses["region"]
    if cfg.mouth_weight > 0:  # a half-open mouth is a few dark pixels: too few for the frame's or the region's mean
        landmarks = batch["target_frame_landmarks"]
        losses["mouth"] = F.l1_loss(mouth_crops(image, landmarks), mouth_crops(target, landmarks))
        total = total + cfg.mouth_weight * losses["mouth"]
    if expert is not None:  # lip sync as an expert reads it, which no pixel loss weighs
        losses["sync"] = sync_expert_loss(model, expert, sync_batch, cfg.sync_region, cfg.true_landmarks, cfg.sync_loss)
        total = total + cfg.sync_weight * losses["sync"]
    if cfg.invariance_weight > 0 and bool(batch["cross"].any()):
        losses["invariance"] = invariance_loss(unwrap(model), out.driving_latent, batch)
        total = total + cfg.invariance_weight * losses["invariance"]
    if discriminator is not None:
        losses["gan_g"] = -discriminator(image).mean()
        total = total + cfg.gan_weight * losses["gan_g"]
    if mouth_discriminator is not None:
        losses["mouth_gan_g"] = -mouth_discriminator(image, batch["target_frame_landmarks"]).mean()
        total = total + cfg.mouth_gan_weight * losses["mouth_gan_g"]
    losses["total"] = total
    return {**losses, "_image": image}


def _discriminator_step(score, optimizer: torch.optim.Optimizer, real: torch.Tensor, fake: torch.Tensor,
                        device: torch.device) -> torch.Tensor:
    """One hinge-loss step of a discriminator; `score` maps images to logits."""
    with autocast(device):
        d_loss = F.relu(1 - score(real)).mean() + F.relu(1 + score(fake.detach())).mean()
    optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    optimizer.step()
    return d_loss


@torch.no_grad()
def evaluate_pairs(model: HeadImitator, batches: list[dict], device: torch.device, true_landmarks: bool = False
                   ) -> dict:
    """Mean PSNR/SSIM (torchmetrics) and landmark error of a model on fixed pairs, drawn at the
    landmark head's landmarks or, with `true_landmarks`, at the target frames' own."""
    model.eval()
    psnr, ssim, lm, images = [], [], [], []
    for batch in batches:
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        with autocast(device):
            out = model(batch["source"], batch["source_landmarks"], batch["driving"], batch["driving_landmarks"],
                        target=batch["target_frame_landmarks"] if true_landmarks else None)
        image = out.image.float().clamp(0, 1)
        psnr.append(peak_signal_noise_ratio(image, batch["target"], data_range=1.0, reduction="none",
                                            dim=(1, 2, 3)))
        ssim.append(structural_similarity_index_measure(image, batch["target"], data_range=1.0, reduction="none"))
        lm.append((out.landmarks.float() - batch["target_landmarks"]).norm(dim=-1).mean(dim=-1))
        images.append(image.cpu())
    return {"psnr": torch.cat(psnr).mean().item(), "ssim": torch.cat(ssim).mean().item(),
            "landmark_error": torch.cat(lm).mean().item(), "images": torch.cat(images)}


def sample_grid(batch: dict, images: torch.Tensor, count: int = 8) -> np.ndarray:
    """Rows of (source | driving | re-enacted) as one uint8 image (validation pairs are self-reenactment)."""
    from infp_lab.viz import image_grid

    def to_np(x):
        return (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)

    tiles, labels = [], []
    for i in range(min(count, len(images))):
        tiles += [to_np(batch["source"][i]), to_np(batch["driving"][i]), to_np(images[i])]
        labels += ["source", "driving", "re-enacted"]
    return image_grid(tiles, columns=6, labels=labels)


def train_stage1(data: str | Path, out: str | Path, config: Stage1Config | str = "tiny",
                 train_cfg: Stage1TrainConfig = Stage1TrainConfig(), resume: bool = False, device: str = "auto",
                 progress: bool = True, init: str | Path | None = None) -> dict:
    """Train (or resume) a stage-1 model; writes checkpoint.pt, samples/, metrics.csv and
    stage1.safetensors (EMA weights) into `out`. Returns the final validation metrics.

    `config`: the model's config, or the name of a preset. `init`: stage-1 weights
    (.safetensors) of a comparable config to start from (fine-tuning, `init_from`); a
    resumed checkpoint takes precedence over it."""
    data, out = Path(data), Path(out)
    torch_device, info = distributed_device(device)
    config = preset(config) if isinstance(config, str) else config
    if train_cfg.freeze_motion and init is None and not resume:
        raise ValueError("--freeze-motion fine-tunes the renderer of trained weights: give them with --init")
    if train_cfg.mouth_residual_only and (not config.decoder.mouth_residual or (init is None and not resume)):
        raise ValueError("--mouth-residual-only trains a mouth residual on trained weights: "
                         "give --mouth-residual and the weights with --init")
    train_clips, val_clips = train_val_clips(data)  # bad data fails here, before anything is written
    given = HeadImitator.from_pretrained(init) if init is not None else None
    expert = None
    if train_cfg.sync_weight > 0:
        if info.world_size > 1:
            raise ValueError("the sync loss is not supported under torchrun yet: train it in one process")
        expert = SyncNet.from_pretrained(train_cfg.sync_expert, torch_device).eval().requires_grad_(False)
    if train_cfg.param_weight > 0:
        param_names, param_mean, param_std = param_statistics(train_clips)
        config = replace(config, param_names=tuple(param_names))
    elif given is not None:  # a fine-tune keeps the given model's param head
        config = replace(config, param_names=given.config.param_names)
    checkpoint_path = run_checkpoint(out, resume)
    (out / "samples").mkdir(exist_ok=True)

    torch.manual_seed(train_cfg.seed)
    model = HeadImitator(config)
    if train_cfg.param_weight > 0:
        model.param_head.mean.copy_(torch.from_numpy(param_mean))
        model.param_head.std.copy_(torch.from_numpy(param_std))
    if given is not None:
        init_from(model, given)
        if train_cfg.param_weight > 0 and given.param_head is None and not (resume and checkpoint_path.exists()):
            fit_param_head(model, train_clips[:48], seed=train_cfg.seed)
    model = model.to(torch_device)
    if train_cfg.freeze_motion:  # the motion latents stay what they were, so a stage 2 trained on them still fits
        for part in (model.motion_encoder, model.landmark_head, model.param_head):
            if part is not None:
                part.requires_grad_(False)
    if train_cfg.mouth_residual_only:  # outside the driven mouth opening the image stays the given model's
        model.requires_grad_(False)
        model.decoder.mouth_residual.requires_grad_(True)
        if model.decoder.mouth_detail is not None:
            model.decoder.mouth_detail.requires_grad_(True)
    ema = EMA(model, train_cfg.ema_decay)
    optimizer = torch.optim.AdamW(parameter_groups(model), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    discriminator = disc_optimizer = None
    if train_cfg.gan_weight > 0:
        discriminator = PatchDiscriminator().to(torch_device)
        disc_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=train_cfg.lr, betas=(0.5, 0.999))
    mouth_discriminator = mouth_disc_optimizer = None
    if train_cfg.mouth_gan_weight > 0:
        mouth_discriminator = MouthDiscriminator().to(torch_device)
        mouth_disc_optimizer = torch.optim.AdamW(mouth_discriminator.parameters(), lr=train_cfg.lr, betas=(0.5, 0.999))
    start = 0
    if resume and checkpoint_path.exists():
        state = load_training_checkpoint(checkpoint_path)
        if state["config"] != config.to_dict():
            raise ValueError(f"{checkpoint_path} was trained with another model config; use another --out")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        if discriminator is not None and "discriminator" in state:
            discriminator.load_state_dict(state["discriminator"])
            disc_optimizer.load_state_dict(state["disc_optimizer"])
        if mouth_discriminator is not None and "mouth_discriminator" in state:
            mouth_discriminator.load_state_dict(state["mouth_discriminator"])
            mouth_disc_optimizer.load_state_dict(state["mouth_disc_optimizer"])
        start = int(state["step"])
    if train_cfg.stop_at is not None and train_cfg.stop_at <= start:
        raise ValueError(f"--stop-at {train_cfg.stop_at}: {checkpoint_path} is already at step {start}")
    model = distribute(model, torch_device, info)

    dataset = FramePairDataset(train_clips, size=config.image_size, seed=train_cfg.seed,
                               cross_identity=train_cfg.cross_identity, open_mouth=train_cfg.open_mouth,
                               param_names=config.param_names if train_cfg.param_weight > 0 else ())
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=StepBatchSampler(start, train_cfg.steps, train_cfg.batch_size, info.rank, info.world_size),
        num_workers=train_cfg.workers, persistent_workers=False)
    sync_batches = [None] * (train_cfg.steps - start)
    if expert is not None:
        sync_set = SyncWindowDataset(train_clips, config.image_size, expert.config.window, expert.config.crop_size,
                                     seed=20_000 + train_cfg.seed)
        sync_batches = torch.utils.data.DataLoader(
            sync_set, batch_sampler=StepBatchSampler(start, train_cfg.steps, train_cfg.sync_windows),
            num_workers=train_cfg.workers, persistent_workers=False)
    val_set = FramePairDataset(val_clips, size=config.image_size, seed=10_000 + train_cfg.seed)
    val_batches = [torch.utils.data.default_collate([val_set[i + j] for j in range(min(8, train_cfg.val_pairs - i))])
                   for i in range(0, train_cfg.val_pairs, 8)] if info.is_main else []
    logger = ScalarLogger(out, enabled=info.is_main)
    generator = torch.Generator().manual_seed(train_cfg.seed * 1000 + info.rank)
    if resume and checkpoint_path.exists() and f"generator_{info.rank}" in state:
        generator.set_state(state[f"generator_{info.rank}"])
    eval_model = HeadImitator(config).to(torch_device)

    def validate_and_save(step: int) -> dict:
        metrics = {}
        if info.is_main:
            ema.copy_to(eval_model)
            result = evaluate_pairs(eval_model, val_batches, torch_device, train_cfg.true_landmarks)
            metrics = {k: v for k, v in result.items() if k != "images"}
            logger.log(step, **{f"val/{k}": v for k, v in metrics.items()})
            import imageio.v3 as iio

            iio.imwrite(out / "samples" / f"step_{step:06d}.png", sample_grid(val_batches[0], result["images"]))
            state = {"model": unwrap(model).state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                     "step": step, "config": config.to_dict(), "train_config": vars(train_cfg),
                     f"generator_{info.rank}": generator.get_state()}
            if discriminator is not None:
                state.update(discriminator=discriminator.state_dict(), disc_optimizer=disc_optimizer.state_dict())
            if mouth_discriminator is not None:
                state.update(mouth_discriminator=mouth_discriminator.state_dict(),
                             mouth_disc_optimizer=mouth_disc_optimizer.state_dict())
            save_training_checkpoint(checkpoint_path, state)
            eval_model.save_pretrained(out / "stage1.safetensors", extra={"step": step, "val": metrics,
                                                                            "motion_input": config.motion.input})
        return metrics

    bar = tqdm(total=train_cfg.steps, initial=start, desc="stage1", disable=not (progress and info.is_main))
    step, started, metrics = start, time.perf_counter(), {}
    for batch, sync_batch in zip(loader, sync_batches):
        model.train()
        batch = {k: v.to(torch_device) if torch.is_tensor(v) else v for k, v in batch.items()}
        if sync_batch is not None:
            sync_batch = {k: v.to(torch_device) for k, v in sync_batch.items()}
        for group in optimizer.param_groups:
            group["lr"] = group.get("lr_scale", 1.0) * _lr(step, train_cfg)  # older checkpoints: no scale
        with autocast(torch_device):
            losses = _losses(model, batch, train_cfg, generator, discriminator, mouth_discriminator, expert, sync_batch)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if discriminator is not None:
            losses["gan_d"] = _discriminator_step(discriminator, disc_optimizer, batch["driving"], losses["_image"],
                                                  torch_device)
        if mouth_discriminator is not None:  # real and rendered mouths, each judged given the true opening
            losses["mouth_gan_d"] = _discriminator_step(
                lambda images: mouth_discriminator(images, batch["target_frame_landmarks"]), mouth_disc_optimizer,
                batch["target"], losses["_image"], torch_device)
        ema.update(unwrap(model), step)
        step += 1
        bar.update()
        if step % 10 == 0:
            scalars = {f"train/{k}": v.item() for k, v in losses.items() if not k.startswith("_")}
            logger.log(step, **scalars, lr=_lr(step, train_cfg), steps_per_s=(step - start) / (time.perf_counter() - started),
                       **memory_scalars(torch_device))
            bar.set_postfix(loss=f"{losses['total'].item():.3f}")
        stopping = train_cfg.stop_at is not None and step >= train_cfg.stop_at
        if step % train_cfg.checkpoint_every == 0 or step == train_cfg.steps or stopping:
            metrics = validate_and_save(step)
        if stopping:
            break
    bar.close()
    if step == start and info.is_main:  # nothing left to train: still export
        metrics = validate_and_save(step)
    logger.close()
    cleanup_distributed()
    return {"step": step, "wall_s": time.perf_counter() - started, **metrics}
