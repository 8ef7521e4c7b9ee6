"""Diffusion around the motion DiT (design.md section 5): diffusers schedulers for the
training noise (DDPM) and for sampling (DDIM by default, DPM-Solver++ as an option), the
training loss with per-sample condition dropout, and classifier-free guidance as a thin
wrapper that batches its branches.

The network, the noise schedule and the sampler are kept apart (style.md): nothing here
knows the network's insides, and nothing in the network knows the schedule.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from infp_lab.stage2.config import AUDIO_SCALE, GUIDANCE_SMOOTHING, SAMPLERS, DiffusionConfig
from infp_lab.stage2.memory_guider import GuiderOutput


@lru_cache(maxsize=8)
def make_train_scheduler(cfg: DiffusionConfig):
    """The DDPM scheduler that adds training noise (the config's parameterisation)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                         prediction_type=cfg.prediction, clip_sample=False)


def make_sampler(cfg: DiffusionConfig, sampler: str | None = None, steps: int | None = None):
    """A fresh sampling scheduler ("ddim" or "dpmsolver++") with its timesteps set."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    sampler = cfg.sampler if sampler is None else sampler
    steps = cfg.steps if steps is None else int(steps)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if not 1 <= steps <= cfg.train_timesteps:
        raise ValueError(f"steps must be in [1, {cfg.train_timesteps}], got {steps}")
    # "leading" spacing (as Stable Diffusion): the cosine schedule's last timestep has a signal
    # level of ~1e-9, where an epsilon prediction says nothing about the clean latents and
    # the first step's x0 estimate would amplify the network's error ~2e4 times.
    common = dict(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                  prediction_type=cfg.prediction, timestep_spacing="leading", steps_offset=1)
    if sampler == "ddim":
        scheduler = DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True)
    else:
        scheduler = DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)
    scheduler.set_timesteps(steps)
    return scheduler


def crop_frames(guide: GuiderOutput, offset: torch.Tensor | int, width: int) -> GuiderOutput:
    """Frames [offset, offset + width) of every guider output; `offset` is an int or (B,) ints."""
    feature = guide.feature  # (B, T', D)
    batch, length = feature.shape[:2]
    offset = torch.as_tensor(offset, device=feature.device).long().expand(batch)
    if (offset < 0).any() or (offset + width > length).any():
        raise ValueError(f"audio offsets {offset.tolist()} + window {width} do not fit in {length} audio frames")
    index = offset[:, None] + torch.arange(width, device=feature.device)  # (B, W)
    return GuiderOutput(*(x.gather(1, index[..., None].expand(-1, -1, x.shape[-1])) for x in guide))


def diffusion_loss(model: nn.Module, latents: torch.Tensor, self_audio: torch.Tensor, other_audio: torch.Tensor,
                   previous: torch.Tensor | None, has_previous: torch.Tensor | None,
                   style_reference: torch.Tensor | None, generator: torch.Generator | None = None,
                   p_motion: float = 0.5, p_previous: float = 0.5, p_style: float = 0.3,
                   audio_offset: torch.Tensor | int | None = None, velocity_weight: float = 0.0) -> dict:
    """Diffusion loss on one batch of windows, with classifier-free dropout: the MSE of the
    network's output against the noise, the clean latents or v (`config.diffusion.prediction`).

    Args:
        model: a MotionGenerator (or a DDP wrapper of one).
        latents: (B, W, Dm) normalised motion latents of the windows.
        self_audio, other_audio: (B, W, A) audio features of the same frames, or with
            `audio_offset`, (B, W', A) features of a longer stretch holding the window at
            frames [offset, offset + W): the extra frames are the context the audio encoders
            see around a window when `generate` runs them over a whole sequence.
        previous: (B, C, Dm) normalised latents before each window, or None.
        has_previous: (B,) bool, False where a window has no real previous frames.
        style_reference: (B, T', Dm) raw latents of a reference clip, or None.
        generator: drives timesteps, noise and dropout (reproducible batches).
        p_motion, p_previous, p_style: per-sample probabilities of dropping f_m, the
            previous motion and the style (style: in the memory banks and the DiT alike).
        audio_offset: int or (B,) ints, where each window starts in the audio (None: 0, W' = W).
        velocity_weight: weight of a velocity term, for models that predict the clean latents:
            the MSE of the predicted frame-to-frame steps against the true ones, and of the
            step from the last previous frame into the window where the previous motion is
            kept (continuity at window borders).

    Returns:
        dict with "loss" (scalar, with grad), "predicted" (the network's output, with grad),
        "timesteps" (B,), the three drop masks, the guider's motion feature f_m of the window
        ("motion_feature", (B, W, D), with grad, before any drop) and its attention weights (detached).
    """
    core = getattr(model, "module", model)  # DDP wrapper or not
    batch, device = latents.shape[0], latents.device
    gen_device = generator.device if generator is not None else device
    scheduler = make_train_scheduler(core.config.diffusion)

    def uniform() -> torch.Tensor:
        return torch.rand(batch, generator=generator, device=gen_device).to(device)

    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator,
                              device=gen_device).to(device)
    noise = torch.randn(latents.shape, generator=generator, device=gen_device).to(device, latents.dtype)
    drop_motion, drop_previous, drop_style = uniform() < p_motion, uniform() < p_previous, uniform() < p_style
    if previous is None:
        drop_previous = torch.ones_like(drop_previous)
    elif has_previous is not None:
        drop_previous = drop_previous | ~torch.as_tensor(has_previous, device=device).bool()
    style = None
    if style_reference is None:
        drop_style = torch.ones_like(drop_style)
    else:
        style = core.encode_style(style_reference)  # (B, Ds)

    guide = core.guide(self_audio, other_audio, style, drop_style)
    if audio_offset is not None:
        guide = crop_frames(guide, audio_offset, latents.shape[1])
    noisy = scheduler.add_noise(latents, noise, timesteps)  # (B, W, Dm)
    predicted = model(noisy, timesteps, guide.feature, previous, style, drop_motion, drop_previous, drop_style)
    prediction = core.config.diffusion.prediction
    if prediction == "epsilon":
        target = noise
    elif prediction == "sample":
        target = latents
    else:  # v-prediction
        target = scheduler.get_velocity(latents, noise, timesteps)
    loss = nn.functional.mse_loss(predicted.float(), target.float())
    if velocity_weight > 0:
        if prediction != "sample":
            raise ValueError("the velocity loss needs a model that predicts the clean latents (prediction 'sample')")
        loss = loss + velocity_weight * _velocity_loss(predicted.float(), latents.float(), drop_previous)
    return dict(loss=loss, predicted=predicted, motion_feature=guide.feature, timesteps=timesteps, drop_motion=drop_motion,
                drop_previous=drop_previous, drop_style=drop_style, verbal_attention=guide.verbal_attention.detach(),
                nonverbal_attention=guide.nonverbal_attention.detach())


def _velocity_loss(predicted: torch.Tensor, latents: torch.Tensor, drop_previous: torch.Tensor) -> torch.Tensor:
    """Velocity term of clean-latent predictions (B, W, Dm) -> scalar: the MSE of the
    frame-to-frame steps, plus, for the samples whose previous motion is kept, the squared
    error of the step from the last previous frame into the window (which is the error of
    the window's first frame: that frame is where a seam would show)."""
    inside = nn.functional.mse_loss(predicted.diff(dim=1), latents.diff(dim=1))
    keep = (~drop_previous).float()  # (B,)
    if keep.sum() == 0:
        return inside
    border = (predicted[:, 0] - latents[:, 0]).pow(2).mean(dim=-1)  # (B,)
    return inside + (border * keep).sum() / keep.sum()


def guided_prediction(model: nn.Module, x: torch.Tensor, t: torch.Tensor, motion_feature: torch.Tensor,
                      previous: torch.Tensor | None, style: torch.Tensor | None, audio_scale: float = AUDIO_SCALE,
                      style_scale: float = 1.0, unstyled_feature: torch.Tensor | None = None,
                      smoothing: float = GUIDANCE_SMOOTHING, pose_gain: float = 1.0) -> torch.Tensor:
    """Classifier-free guided prediction (B, W, Dm), all branches in one batch; it is noise,
    clean latents or v, as `config.diffusion.prediction` says (guidance is linear in any).

    With a style: p_u + audio_scale * (p_a - p_u) + style_scale * (p_s - p_a), where
    p_u has neither f_m nor style, p_a has f_m without style and p_s has both. The
    previous-motion context is kept in every branch so that windows stay continuous.
    `unstyled_feature` is f_m computed with unmodulated memory banks (used by p_a; f_m
    itself when not given). Without a style: p_u + audio_scale * (p_c - p_u).
    Scales of 1 give the fully conditional prediction.

    `pose_gain` != 1: what the audio guidance adds along the model's head-pose directions
    (`pose_projector`), less its mean over the window's frames, is multiplied by it: the
    head's motion within the window is guided at scale 1 + pose_gain * (audio_scale - 1),
    where it sits (and everything else) at audio_scale. (Without the centring, the stronger
    guidance also shifted the head's mean roll, and the pose's Frechet distance to the truth
    doubled; see weights/README.md.)

    `smoothing` > 0: what guidance adds to the fully conditional prediction is smoothed over
    the window's frames by a Gaussian of that sigma (frames) before it is added.
    """
    batch = x.shape[0]
    t = torch.as_tensor(t, device=x.device)
    t = t.expand(batch) if t.dim() == 0 else t
    branches = 2 if style is None else 3
    features = [motion_feature, motion_feature] if style is None else \
        [motion_feature, motion_feature if unstyled_feature is None else unstyled_feature, motion_feature]

    def repeat(v: torch.Tensor | None) -> torch.Tensor | None:
        return None if v is None else torch.cat([v] * branches)

    def flags(*values: bool) -> torch.Tensor:
        return torch.tensor(values, device=x.device).repeat_interleave(batch)  # (branches * B,)

    drop_motion = flags(True, *([False] * (branches - 1)))
    drop_style = flags(*([True] * (branches - 1)), False) if style is not None else None
    pred = model(repeat(x), repeat(t), torch.cat(features), repeat(previous), repeat(style),
                 drop_motion=drop_motion, drop_style=drop_style).chunk(branches)
    if style is None:
        guided = pred[0] + audio_scale * (pred[1] - pred[0])
    else:
        guided = pred[0] + audio_scale * (pred[1] - pred[0]) + style_scale * (pred[2] - pred[1])
    if pose_gain != 1:
        projector = getattr(model, "module", model).pose_projector  # (Dm, Dm), symmetric
        pose_part = (pred[1] - pred[0]) @ projector  # (B, W, Dm)
        pose_part = pose_part - pose_part.mean(dim=1, keepdim=True)  # how the head moves, not where it sits
        guided = guided + (pose_gain - 1) * (audio_scale - 1) * pose_part
    if smoothing:
        conditional = pred[-1]
        guided = conditional + smooth_over_time(guided - conditional, smoothing)
    return guided


def smooth_over_time(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of (B, W, C) along W (sigma in frames; edges repeat the end frames)."""
    if sigma < 0:
        raise ValueError(f"smoothing sigma must be >= 0 frames, got {sigma}")
    if sigma == 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    batch, width, channels = x.shape
    rows = x.transpose(1, 2).reshape(batch * channels, 1, width)
    rows = F.pad(rows, (radius, radius), mode="replicate")
    return F.conv1d(rows, (kernel / kernel.sum()).view(1, 1, -1)).view(batch, channels, width).transpose(1, 2)


@torch.no_grad()
def sample(model: nn.Module, motion_feature: torch.Tensor, previous: torch.Tensor | None = None,
           style: torch.Tensor | None = None, unstyled_feature: torch.Tensor | None = None,
           audio_scale: float = AUDIO_SCALE, style_scale: float = 1.0, sampler: str | None = None,
           steps: int | None = None, generator: torch.Generator | None = None,
           smoothing: float = GUIDANCE_SMOOTHING, pose_gain: float = 1.0) -> torch.Tensor:
    """Sample one window of normalised latents (B, W, Dm) for f_m (B, W, D) with guidance.

    The initial noise is drawn from `generator` on its own device (CPU by default), so a
    seed gives the same window on any device.
    """
    config = model.config
    scheduler = make_sampler(config.diffusion, sampler, steps)
    batch, width = motion_feature.shape[:2]
    shape = (batch, width, config.latent_dim)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    x = torch.randn(shape, generator=generator, device=gen_device).to(motion_feature.device)
    x = x * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        prediction = guided_prediction(model, scheduler.scale_model_input(x, t), t, motion_feature, previous,
                                       style, audio_scale, style_scale, unstyled_feature, smoothing, pose_gain)
        x = scheduler.step(prediction, t, x).prev_sample
    return x
