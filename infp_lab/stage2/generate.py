"""Long and streaming motion generation (design.md section 5).

`generate` turns the audio features of both tracks into one motion latent per frame: the
guider runs once over the whole sequence (it is frame-local apart from the audio
encoders' small receptive field), then windows are sampled one after another, each
conditioned on the last C latents of the one before. `StreamingGenerator` does the same
from audio chunks as they arrive (see infp_lab.stage2.streaming).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from infp_lab.stage2.diffusion import sample
from infp_lab.stage2.model import MotionGenerator
from infp_lab.stage2.pose import PoseLowPass


class GenerationOutput(NamedTuple):
    """Generated motion and the guider's attention, one row per frame."""

    latents: torch.Tensor  # (T, Dm) raw (de-normalised) stage-1 motion latents
    verbal_attention: torch.Tensor  # (T, K) self audio over the verbal bank
    nonverbal_attention: torch.Tensor  # (T, K) other audio over the non-verbal bank


BLEND_FRAMES = 10  # default frames over which a window's jump at its first frame is spread


class WindowChain:
    """Samples consecutive windows, each conditioned on the last C latents generated so far.

    The sampler continues the previous window only approximately (on the shipped tiny
    weights the first frame of a window jumped about twice as far as a step inside one), so
    each window after the first is blended in (inertialization, as in game animation): the
    jump d between the previous window's last latent and the new window's first one is
    subtracted with a weight falling linearly to 0 over the first `blend` frames (or the
    whole window if shorter), so the jump is spread evenly over blend + 1 steps. blend = 0
    keeps the raw samples. Then the head-pose part of the motion is low-passed
    (`pose_smoothing`, see `infp_lab.stage2.pose.PoseLowPass`), its state carried from
    window to window.
    """

    def __init__(self, model: MotionGenerator, style: torch.Tensor | None, audio_scale: float | None,
                 style_scale: float, steps: int | None, sampler: str | None, seed: int, blend: int = BLEND_FRAMES,
                 start: torch.Tensor | None = None, guidance_smoothing: float | None = None,
                 pose_gain: float | None = None, pose_smoothing: float | None = None):
        """`start`: optional raw latents (T0, Dm) on the model's device that the first window
        continues from; the last C rows are kept, fewer are padded with the earliest row.
        `audio_scale`, `guidance_smoothing`, `pose_gain`, `pose_smoothing`: None is the
        model's default (see the `resolve_*` functions)."""
        if blend < 0:
            raise ValueError(f"blend must be >= 0 frames, got {blend}")
        self.model, self.style, self.blend = model, style, int(blend)
        self.options = dict(audio_scale=resolve_audio_scale(model, audio_scale), style_scale=style_scale,
                            steps=steps, sampler=sampler, smoothing=resolve_guidance_smoothing(model, guidance_smoothing),
                            pose_gain=resolve_pose_gain(model, pose_gain))
        self.generator = torch.Generator().manual_seed(int(seed))  # CPU noise: same output on any device
        self.previous: torch.Tensor | None = None  # (1, <= C, Dm) normalised
        if start is not None:
            context = model.config.dit.context
            start = start[-context:]
            start = torch.cat([start[:1].expand(context - len(start), -1), start])
            self.previous = model.normalise(start[None])
        self.pose_filter = PoseLowPass(model.pose_projector, resolve_pose_smoothing(model, pose_smoothing))
        if self.previous is not None:
            self.pose_filter.reset(self.previous[:, -1])

    def __call__(self, feature: torch.Tensor, unstyled: torch.Tensor | None) -> torch.Tensor:
        """f_m of one window (1, W, D) -> raw latents (W, Dm)."""
        x = sample(self.model, feature, self.previous, self.style, unstyled, generator=self.generator,
                   **self.options)  # (1, W, Dm) normalised
        if self.previous is not None and self.blend > 0:
            width = x.shape[1]
            jump = x[:, :1] - self.previous[:, -1:]  # (1, 1, Dm)
            span = min(self.blend, width)
            weight = (1 - (torch.arange(width, device=x.device) + 1) / (span + 1)).clamp(min=0)  # (W,)
            x = x - jump * weight[None, :, None]
        x = self.pose_filter(x)
        context = self.model.config.dit.context
        joined = x if self.previous is None else torch.cat([self.previous, x], dim=1)
        self.previous = joined[:, -context:]
        return self.model.denormalise(x[0])


def _finite(name: str, value: float, unit: str = "", nonnegative: bool = True) -> float:
    """`value` as a float, or a ValueError naming `name` if it is not finite (or is negative)."""
    value = float(value)
    if not np.isfinite(value) or (nonnegative and value < 0):
        raise ValueError(f"{name} must be a finite number{unit}{' >= 0' if nonnegative else ''}, got {value}")
    return value


def _needs_pose_directions(model: MotionGenerator, name: str, neutral: float, value: float) -> float:
    """`value`, or a ValueError if it is not `neutral` on a model without head-pose directions."""
    if value != neutral and not model.has_pose_directions:
        raise ValueError(f"this model has no head-pose directions, so {name} must be {neutral:g}; set them with "
                         "model.set_pose_directions(infp_lab.stage2.pose.pose_directions(...)) or retrain")
    return value


def resolve_audio_scale(model: MotionGenerator, audio_scale: float | None) -> float:
    """The audio guidance scale: None is the model's default (`model.defaults`)."""
    return _finite("audio_scale", model.defaults.audio_scale if audio_scale is None else audio_scale,
                   nonnegative=False)


def resolve_guidance_smoothing(model: MotionGenerator, guidance_smoothing: float | None) -> float:
    """The Gaussian sigma (frames) smoothing guidance over time: None is the model's default."""
    sigma = model.defaults.guidance_smoothing if guidance_smoothing is None else guidance_smoothing
    return _finite("guidance_smoothing", sigma, " of frames")


def resolve_pose_gain(model: MotionGenerator, pose_gain: float | None) -> float:
    """The gain of guidance along the model's head-pose directions (see `guided_prediction`):
    None is the model's default for a model that has them and 1 (no separate pose guidance)
    otherwise."""
    if pose_gain is None:
        return model.defaults.pose_gain if model.has_pose_directions else 1.0
    return _needs_pose_directions(model, "pose_gain", 1.0, _finite("pose_gain", pose_gain))


def resolve_pose_smoothing(model: MotionGenerator, pose_smoothing: float | None) -> float:
    """The time constant (frames) of the low-pass on the generated head pose (see
    `infp_lab.stage2.pose.PoseLowPass`): None is the model's default for a model that has
    head-pose directions and 0 (none) otherwise."""
    if pose_smoothing is None:
        return model.defaults.pose_smoothing if model.has_pose_directions else 0.0
    return _needs_pose_directions(model, "pose_smoothing", 0.0, _finite("pose_smoothing", pose_smoothing, " of frames"))


def checked_frames(values, name: str, dim: int, device: torch.device) -> torch.Tensor:
    """(T, dim) array or tensor -> float32 tensor on `device`, checked."""
    x = torch.as_tensor(np.asarray(values, dtype=np.float32) if not torch.is_tensor(values) else values)
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} must be (T, {dim}), got {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError(f"{name} holds no frames")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x.to(device=device, dtype=torch.float32)


def prepare_style(model: MotionGenerator, style_reference, device: torch.device,
                  start: torch.Tensor | None = None, portrait_style: bool = True) -> torch.Tensor | None:
    """Raw reference latents (T', Dm) -> style vector (1, Ds), or None.

    Without a reference, and with `portrait_style`, the last row of `start` (raw latents on
    `device`, e.g. the portrait's own latent) held still for one window is the reference.
    The style encoder was trained on other windows of the same clip, so it carries the
    avatar's resting head pose; without it the windows chained over a long generation drift
    toward the training data's average pose, and a portrait seen from the side is turned
    toward the camera, which the renderer cannot draw (scripts/stage2_drift.py measures it).
    """
    if style_reference is None:
        if start is None or not portrait_style:
            return None
        style_reference = start[-1:].expand(model.config.dit.window, -1)
    reference = checked_frames(style_reference, "style_reference", model.config.latent_dim, device)
    return model.encode_style(reference[None])


@torch.no_grad()
def generate(model: MotionGenerator, self_features, other_features, style_reference=None,
             audio_scale: float | None = None, style_scale: float = 1.0, steps: int | None = None,
             sampler: str | None = None, seed: int = 0, window: int | None = None,
             progress: bool = False, blend: int = BLEND_FRAMES, start=None,
             guidance_smoothing: float | None = None, portrait_style: bool = True,
             pose_gain: float | None = None, pose_smoothing: float | None = None) -> GenerationOutput:
    """Generate one motion latent per frame from the audio features of both tracks.

    Args:
        model: a trained MotionGenerator.
        self_features, other_features: (T, A) audio features (array or tensor), T >= 1.
        style_reference: optional (T', Dm) raw motion latents of a reference clip.
        audio_scale, style_scale: classifier-free guidance scales (1 = no guidance; audio_scale
            None: the model's default, `model.defaults`).
        guidance_smoothing: Gaussian sigma (frames) by which what guidance adds beyond the
            conditional prediction is smoothed over time (0 = not smoothed; None: the model's default).
        steps, sampler: override the config's sampler ("ddim" or "dpmsolver++") and steps.
        seed: the same seed gives the same output.
        window: frames per generated window (default: the config's window).
        progress: show a progress bar over windows.
        blend: frames over which each window's jump at its first frame is spread (see WindowChain).
        start: optional (T0, Dm) raw motion latents the motion continues from, e.g. the
            portrait's own latent (T0 = 1): the first window's previous motion, the earliest
            row repeated to fill the model's context (an avatar that was still). Without it
            the first window starts from nothing, at the training data's average pose.
        portrait_style: without a `style_reference`, use the last row of `start` (the
            portrait) held still as the style reference (see `prepare_style`), so that the
            head stays around the portrait's pose; False: no style.
        pose_gain: how much stronger guidance is along the model's head-pose directions than
            elsewhere (1 = as elsewhere; None: the model's default where it has them, see
            infp_lab.stage2.pose).
        pose_smoothing: time constant (frames) of the causal low-pass on the head-pose part
            of the motion (0 = none; None: the model's default where it has head-pose
            directions, see infp_lab.stage2.pose.PoseLowPass).

    Returns:
        GenerationOutput with latents (T, Dm) and attention (T, K), on the model's device.
    """
    config = model.config
    window = config.dit.window if window is None else int(window)
    if not 1 <= window <= config.dit.window:
        raise ValueError(f"window must be in [1, {config.dit.window}] frames, got {window}")
    device = next(model.parameters()).device
    self_audio = checked_frames(self_features, "self_features", config.audio.input_dim, device)
    other_audio = checked_frames(other_features, "other_features", config.audio.input_dim, device)
    if self_audio.shape != other_audio.shape:
        raise ValueError(f"self and other features must have the same number of frames, got "
                         f"{self_audio.shape[0]} and {other_audio.shape[0]} (pad the shorter track with silence)")
    was_training = model.training
    model.eval()
    try:
        start = None if start is None else checked_frames(start, "start", config.latent_dim, device)
        style = prepare_style(model, style_reference, device, start, portrait_style)
        guide = model.guide(self_audio[None], other_audio[None], style)  # (1, T, D), (1, T, K) x 2
        unstyled = model.guide(self_audio[None], other_audio[None], None).feature if style is not None else None
        chain = WindowChain(model, style, audio_scale, style_scale, steps, sampler, seed, blend, start,
                            guidance_smoothing, pose_gain, pose_smoothing)
        starts = range(0, self_audio.shape[0], window)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="windows", unit="window")
        latents = [chain(guide.feature[:, s:s + window], None if unstyled is None else unstyled[:, s:s + window])
                   for s in starts]
    finally:
        model.train(was_training)
    return GenerationOutput(torch.cat(latents), guide.verbal_attention[0], guide.nonverbal_attention[0])


def generate_from_audio(model: MotionGenerator, self_audio: np.ndarray, other_audio: np.ndarray,
                        sample_rate: int = 16000, **kwargs) -> GenerationOutput:
    """Generate from raw audio of both tracks ((N,) arrays at `sample_rate`).

    The shorter track is padded with silence; there is one latent per whole 25 fps frame.
    Other keyword arguments go to `generate`.
    """
    from infp_lab.data.audio import SAMPLE_RATE, num_video_frames, prepare_audio
    from infp_lab.stage2.audio_encoder import encoder_inputs

    tracks = [prepare_audio(a, sample_rate, SAMPLE_RATE, name=name)
              for a, name in ((self_audio, "self audio"), (other_audio, "other audio"))]
    length = max(len(a) for a in tracks)
    frames = num_video_frames(length)
    if frames < 1:
        raise ValueError(f"audio is shorter than one video frame ({length} samples at {SAMPLE_RATE} Hz)")
    tracks = [np.pad(a, (0, length - len(a))) for a in tracks]
    features = [encoder_inputs(a, frames, model.config) for a in tracks]
    return generate(model, features[0], features[1], **kwargs)


def __getattr__(name: str):
    """`StreamingGenerator` lives in infp_lab.stage2.streaming (which imports this module)."""
    if name == "StreamingGenerator":
        from infp_lab.stage2.streaming import StreamingGenerator

        return StreamingGenerator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
