"""Stage-2 configuration: one frozen dataclass per component and named presets
(design.md section 5; style.md "Config")."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

AUDIO_TYPES = ("logmel", "wav2vec2")
SAMPLERS = ("ddim", "dpmsolver++")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTIONS = ("epsilon", "sample", "v_prediction")
# The library's sampling defaults (SamplingDefaults, below): what a model whose weights carry no
# defaults of their own generates with. They are the shipped fifth model's, which its weights also
# carry; each was chosen on that model's validation clips, as told here.
# The default audio guidance scale: the one at which the shipped tiny weights came closest to
# the ground truth's motion diversity (SID, Var) on validation clips while keeping the state
# accuracy >= 0.9 (`choose_scale` in scripts/stage2_experiments.py on its cfg-sweep --split val,
# weights/stage2_cfg_sweep_val.json; a test keeps the two in step).
AUDIO_SCALE = 3.0
# The default smoothing of the guidance over time (Gaussian sigma in frames; 0 = none): what
# guidance adds beyond the conditional prediction is low-passed along each window, so a high
# scale strengthens the audio's effect with less frame-to-frame shake. The largest sigma
# (of 0.5, 1, 2) whose validation LSE-C at AUDIO_SCALE stays within 5 % of the unsmoothed one
# (weights/stage2_cfg_sweep_val_smoothing.json against weights/stage2_cfg_sweep_val.json).
GUIDANCE_SMOOTHING = 0.5
# How much stronger guidance is along the head-pose directions (infp_lab.stage2.pose) than
# elsewhere, for models that have them: what guidance adds to the head's motion within a
# window is multiplied by it (1 = as elsewhere). The gain (of 1, 2, 2.5, 3, 3.5) whose validation
# SID and Var come closest to the ground truth's at AUDIO_SCALE with state accuracy >= 0.9
# (`choose_scale` in scripts/stage2_experiments.py on its pose-sweep --split val,
# weights/stage2_pose_gain_val.json; a test keeps the two in step). It is 1 for the shipped
# fifth model, whose audio encoders hear 320 ms; it was 2 for the fourth
# (weights/stage2_fourth/).
POSE_GAIN = 1.0
# The time constant (frames) of the causal low-pass on the generated head pose
# (infp_lab.stage2.pose.PoseLowPass; 0 = none), for models that have head-pose directions:
# the smallest of 0, 1, 2, 3 whose validation LSE-C at AUDIO_SCALE and POSE_GAIN is within 5 %
# of the best one's (`choose_pose_smoothing` in scripts/stage2_experiments.py on its
# pose-smoothing-sweep --split val, weights/stage2_pose_smoothing_val.json; a test keeps the
# two in step).
POSE_SMOOTHING = 1.0


@dataclass(frozen=True)
class SamplingDefaults:
    """The settings a model generates with where a call leaves them out (None).

    Each model's are chosen on its own validation clips by the rules of
    scripts/stage2_experiments.py and kept in its weights' metadata (as a generation config
    is kept with a language model), so every weights file generates at its own defaults. A
    file without them (a model just trained) gets the constants above, which are the
    shipped model's. `pose_gain` and `pose_smoothing` act only on a model with head-pose
    directions (infp_lab.stage2.pose).
    """

    audio_scale: float = AUDIO_SCALE
    guidance_smoothing: float = GUIDANCE_SMOOTHING
    pose_gain: float = POSE_GAIN
    pose_smoothing: float = POSE_SMOOTHING

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"sampling default {item.name} must be a finite number >= 0, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SamplingDefaults":
        """Inverse of `to_dict`; ValueError on unknown keys (missing ones keep the library's)."""
        if not isinstance(d, dict):
            raise ValueError(f"sampling defaults must be a dict, got {d!r}")
        unknown = set(d) - {item.name for item in fields(cls)}
        if unknown:
            raise ValueError(f"unknown sampling defaults: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class AudioEncoderConfig:
    """Per-frame audio features -> per-frame audio embedding; one encoder per track.

    "logmel": a per-frame MLP and `layers` 1-D convolutions of size `kernel` (lookahead of
    layers * (kernel // 2) frames). "wav2vec2": a local transformers model at `path`, fed
    raw audio framed per video frame (`input_dim` = samples per frame, 640 at 16 kHz, 25 fps).
    """

    type: str = "logmel"
    input_dim: int = 320
    layers: int = 3
    kernel: int = 3
    path: str = ""


@dataclass(frozen=True)
class GuiderConfig:
    """Interactive motion guider: verbal and non-verbal memory banks of `bank_size` entries.

    The paper's ablations switch off `memory_banks` (each track's audio goes straight to the
    fusion MLP) or `style_modulation` (the banks ignore the style vector).
    """

    bank_size: int = 64
    heads: int = 4
    memory_banks: bool = True
    style_modulation: bool = True


@dataclass(frozen=True)
class StyleConfig:
    """Motion style encoder: reference motion latents -> a `dim`-d style vector."""

    dim: int = 128
    layers: int = 2


@dataclass(frozen=True)
class DiTConfig:
    """Denoising transformer over windows of `window` frames, with `context` previous frames.

    Motion attention lets frame t read f_m only at frames t - motion_band .. t + motion_band,
    so what is said at a frame drives the motion at that frame (with full attention over the
    window the network has to discover the frame alignment itself, and does not within a
    CPU-sized training run: it averaged f_m over the window and ignored the audio).
    """

    layers: int = 4
    heads: int = 4
    window: int = 75
    context: int = 10
    mlp_ratio: int = 4
    motion_band: int = 2


@dataclass(frozen=True)
class DiffusionConfig:
    """Noise schedule (diffusers) and the default sampler."""

    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    sampler: str = "ddim"  # one of SAMPLERS
    steps: int = 20
    prediction: str = "epsilon"  # what the network predicts, one of PREDICTIONS (diffusers' prediction_type)


@dataclass(frozen=True)
class Stage2Config:
    """The whole audio-to-motion generator; `latent_dim` must equal the stage-1 model's."""

    latent_dim: int = 64
    dim: int = 128
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    guider: GuiderConfig = field(default_factory=GuiderConfig)
    style: StyleConfig = field(default_factory=StyleConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)

    def __post_init__(self) -> None:
        problems = []
        if min(self.latent_dim, self.dim, self.style.dim) < 1:
            problems.append("latent_dim, dim and style.dim must be positive")
        if self.audio.type not in AUDIO_TYPES:
            problems.append(f"audio.type must be one of {AUDIO_TYPES}, got {self.audio.type!r}")
        if self.audio.kernel < 1 or self.audio.kernel % 2 == 0 or self.audio.layers < 0:
            problems.append(f"audio.kernel must be odd and positive, audio.layers >= 0 "
                            f"(got kernel {self.audio.kernel}, layers {self.audio.layers})")
        for name, heads in (("guider", self.guider.heads), ("dit", self.dit.heads)):
            if heads < 1 or self.dim % heads:
                problems.append(f"dim {self.dim} must be divisible by {name}.heads {heads}")
        if self.guider.bank_size < 1:
            problems.append("guider.bank_size must be positive")
        if min(self.dit.window, self.dit.context, self.dit.layers, self.dit.mlp_ratio) < 1:
            problems.append("dit.window, dit.context, dit.layers and dit.mlp_ratio must be positive")
        if self.dit.motion_band < 0:
            problems.append(f"dit.motion_band must be >= 0, got {self.dit.motion_band}")
        if self.diffusion.sampler not in SAMPLERS:
            problems.append(f"diffusion.sampler must be one of {SAMPLERS}, got {self.diffusion.sampler!r}")
        if self.diffusion.beta_schedule not in BETA_SCHEDULES:
            problems.append(f"diffusion.beta_schedule must be one of {BETA_SCHEDULES}")
        if self.diffusion.prediction not in PREDICTIONS:
            problems.append(f"diffusion.prediction must be one of {PREDICTIONS}, got {self.diffusion.prediction!r}")
        if not 1 <= self.diffusion.steps <= self.diffusion.train_timesteps:
            problems.append("diffusion.steps must be in [1, train_timesteps]")
        if problems:
            raise ValueError("invalid stage-2 config: " + "; ".join(problems))

    @property
    def lookahead(self) -> int:
        """Future audio frames the audio encoder needs (0 beyond the current frame for wav2vec2)."""
        return self.audio.layers * (self.audio.kernel // 2) if self.audio.type == "logmel" else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Stage2Config":
        """Inverse of `to_dict` (lists become tuples); ValueError on unknown or missing keys."""
        parts = {"audio": AudioEncoderConfig, "guider": GuiderConfig, "style": StyleConfig,
                 "dit": DiTConfig, "diffusion": DiffusionConfig}

        def build(kind, sub):
            if not isinstance(sub, dict):
                raise ValueError(f"stage-2 config entry for {kind.__name__} must be a dict, got {sub!r}")
            known = {f.name for f in fields(kind)}
            if set(sub) - known:
                raise ValueError(f"unknown {kind.__name__} keys: {sorted(set(sub) - known)}")
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in sub.items()})

        d = dict(d)
        top = {k: d.pop(k) for k in ("latent_dim", "dim") if k in d}
        try:
            subs = {k: build(kind, d.pop(k)) for k, kind in parts.items() if k in d}
        except TypeError as error:
            raise ValueError(f"bad stage-2 config: {error}") from None
        if d:
            raise ValueError(f"unknown stage-2 config keys: {sorted(d)}")
        return cls(**top, **subs)


PRESETS: dict[str, Stage2Config] = {
    # CPU-trainable (about 2 M parameters), matches the tiny stage-1 latent (64-d). It predicts
    # the clean latents, not the paper's epsilon: after 600 steps on SynConv the epsilon model's
    # motion jittered 17x more than the truth frame to frame and its jaw followed the truth's
    # with r = 0.45; the clean-latent model's 1.1x and r = 0.88 (v-prediction: 7x, 0.68).
    "tiny": Stage2Config(
        latent_dim=64, dim=128, style=StyleConfig(dim=64, layers=2),
        dit=DiTConfig(layers=3, heads=4, window=50, context=10, mlp_ratio=2),
        diffusion=DiffusionConfig(prediction="sample"),
    ),
    # Paper scale (arXiv 2412.04037 and reproductions): 512-d latents, banks of 64 512-d
    # entries, 4 DiT blocks, windows of 75 frames + 10 context frames.
    "paper": Stage2Config(
        latent_dim=512, dim=512, guider=GuiderConfig(bank_size=64, heads=8),
        style=StyleConfig(dim=512, layers=3),
        dit=DiTConfig(layers=4, heads=8, window=75, context=10, mlp_ratio=4),
    ),
}


def preset(name: str, latent_dim: int | None = None) -> Stage2Config:
    """A named preset, optionally with the latent size of the stage-1 model it drives."""
    if name not in PRESETS:
        raise ValueError(f"unknown stage-2 preset {name!r}; choose from {', '.join(PRESETS)}")
    config = PRESETS[name]
    return config if latent_dim is None else replace(config, latent_dim=int(latent_dim))


ABLATIONS = {  # name -> {config section: field changes}
    # the paper's stage-2 ablations
    "no_memory_banks": {"guider": {"memory_banks": False}},
    "no_style_modulation": {"guider": {"style_modulation": False}},
    # this project's two departures from the paper's tiny-scale recipe, undone one at a time
    "epsilon_prediction": {"diffusion": {"prediction": "epsilon"}},
    "full_motion_attention": {"dit": {"motion_band": 1_000_000}},
}


def with_audio_encoder(config: Stage2Config, layers: int | None = None, kernel: int | None = None) -> Stage2Config:
    """The config with its log-mel audio encoders' convolutions changed: `layers` of size
    `kernel` (None keeps the preset's). They see `layers * (kernel // 2)` frames each side, which
    is also the streaming generator's lookahead; a bad value fails the config's checks."""
    changes = {name: value for name, value in (("layers", layers), ("kernel", kernel)) if value is not None}
    return replace(config, audio=replace(config.audio, **changes)) if changes else config


def ablated(config: Stage2Config, name: str | None) -> Stage2Config:
    """The config with one of ABLATIONS applied (None: unchanged)."""
    if name is None:
        return config
    if name not in ABLATIONS:
        raise ValueError(f"unknown stage-2 ablation {name!r}; choose from {', '.join(ABLATIONS)}")
    return replace(config, **{section: replace(getattr(config, section), **changes)
                              for section, changes in ABLATIONS[name].items()})
