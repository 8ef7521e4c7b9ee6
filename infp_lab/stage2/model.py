"""MotionGenerator: INFP stage 2, audio-guided interactive motion generation (design.md
section 5).

Two audio encoders (self, other track) feed the interactive motion guider, whose memory
banks are modulated by the style vector of a reference clip; the guider's motion feature
f_m conditions the denoising transformer, which predicts the noise in a window of stage-1
motion latents. Latents are normalised per channel with statistics of the training set
(`set_latent_stats`), so the diffusion works in a unit-variance space; optionally they are
then whitened too (`set_latent_whitening`), so that every principal direction of the training
latents above a floor has unit variance, the faint ones that hold the lips included. The projector onto
the head-pose directions of that space (`set_pose_directions`, infp_lab.stage2.pose) lets
guidance be stronger along them; it is zero, and unused, in a model without them. The
settings it generates with by default (`sampling`, config.SamplingDefaults) travel in its
weights' metadata.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from infp_lab.checkpoint import load_pretrained, save_weights, update_metadata
from infp_lab.stage2.audio_encoder import AudioEncoder
from infp_lab.stage2.config import SamplingDefaults, Stage2Config
from infp_lab.stage2.dit import MotionDiT
from infp_lab.stage2.memory_guider import GuiderOutput, InteractiveMotionGuider
from infp_lab.stage2.style import StyleEncoder

WEIGHTS_KIND = "infp-lab/stage2"


def principal_axes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The principal variances (Dm,), ascending and >= 0, and the orthonormal directions
    (Dm, Dm), one per column, of the rows of x (N, Dm); in float64."""
    x = x.double()
    centred = x - x.mean(dim=0)
    variances, directions = torch.linalg.eigh(centred.T @ centred / len(x))
    return variances.clamp(min=0), directions


def _full_precision_matmul(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """x @ matrix in float32 even under autocast (bf16 would round the latents; with the
    identity, the unwhitened case, float32 gives x back exactly)."""
    with torch.autocast(x.device.type, enabled=False):
        return x.float() @ matrix.float()


class MotionGenerator(nn.Module):
    """Audio encoders + interactive motion guider + style encoder + motion DiT."""

    def __init__(self, config: Stage2Config):
        super().__init__()
        self.config = config
        self.self_audio_encoder = AudioEncoder(config)
        self.other_audio_encoder = AudioEncoder(config)
        self.guider = InteractiveMotionGuider(config)
        self.style_encoder = StyleEncoder(config)
        self.dit = MotionDiT(config)
        self.register_buffer("latent_mean", torch.zeros(config.latent_dim))
        self.register_buffer("latent_std", torch.ones(config.latent_dim))
        self.register_buffer("pose_projector", torch.zeros(config.latent_dim, config.latent_dim))
        # applied after the per-channel normalisation, and its inverse; the identity: no whitening
        self.register_buffer("latent_whitening", torch.eye(config.latent_dim))
        self.register_buffer("latent_colouring", torch.eye(config.latent_dim))
        self.sampling: SamplingDefaults | None = None  # chosen for this model; None: not (yet) chosen

    @property
    def defaults(self) -> SamplingDefaults:
        """The settings generation uses where a call leaves them out: this model's own
        (`sampling`), or the library's where none were chosen for it."""
        return self.sampling or SamplingDefaults()

    @property
    def lookahead(self) -> int:
        """Audio frames of future context the audio encoders need."""
        return self.self_audio_encoder.lookahead

    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-channel mean and std (latent_dim,) of the stage-1 latents of the training set."""
        dim = self.config.latent_dim
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != (dim,) or std.shape != (dim,):
            raise ValueError(f"latent stats must be ({dim},) each, got {tuple(mean.shape)} and {tuple(std.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError("latent stats must be finite, with std > 0")
        self.latent_mean.copy_(mean)
        self.latent_std.copy_(std)

    def set_latent_whitening(self, latents: torch.Tensor, floor: float) -> None:
        """Whiten the space the diffusion works in, from raw stage-1 latents (N, Dm) of the
        training frames: after the per-channel normalisation (`set_latent_stats` first), each
        principal direction of variance v is scaled by 1 / sqrt(v + floor), without rotating
        the channels (ZCA). Directions well above `floor` get unit variance, those well below
        it stay fainter than that. The per-channel normalised latents' principal variances
        run from about 45 down to 1e-5 (weights/README.md, "The lips are faint in the
        latent"), so the diffusion's noise and its loss treat the lips as they do the head."""
        dim = self.config.latent_dim
        latents = torch.as_tensor(latents, dtype=torch.float32)
        if latents.dim() != 2 or latents.shape[1] != dim or len(latents) < 2:
            raise ValueError(f"whitening needs raw latents (N, {dim}) of at least 2 frames, got {tuple(latents.shape)}")
        if not torch.isfinite(latents).all():
            raise ValueError("latents contain NaN or infinite values")
        if not floor > 0:
            raise ValueError(f"the whitening floor must be > 0, got {floor}")
        variances, directions = principal_axes((latents.to(self.latent_mean.device) - self.latent_mean) / self.latent_std)
        scale = (variances + floor).rsqrt()
        self.latent_whitening.copy_(((directions * scale) @ directions.T).float())
        self.latent_colouring.copy_(((directions / scale) @ directions.T).float())

    @property
    def is_whitened(self) -> bool:
        return not torch.equal(self.latent_whitening, torch.eye(self.config.latent_dim,
                                                                device=self.latent_whitening.device))

    def set_pose_directions(self, directions: torch.Tensor) -> None:
        """Orthonormal head-pose directions (Dm, k) of the normalised latent space (see
        `infp_lab.stage2.pose.pose_directions`); stored as the projector onto their span."""
        dim = self.config.latent_dim
        directions = torch.as_tensor(directions, dtype=torch.float32).to(self.pose_projector.device)
        if directions.dim() != 2 or directions.shape[0] != dim or not 1 <= directions.shape[1] <= dim:
            raise ValueError(f"pose directions must be ({dim}, k) with 1 <= k <= {dim}, got {tuple(directions.shape)}")
        gram = directions.T @ directions
        if not torch.allclose(gram, torch.eye(len(gram), device=gram.device), atol=1e-4):
            raise ValueError("pose directions must be orthonormal columns")
        self.pose_projector.copy_(directions @ directions.T)

    @property
    def has_pose_directions(self) -> bool:
        return bool(self.pose_projector.any())

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's; weights saved before pose directions or whitening existed load
        without them."""
        state_dict = dict(state_dict)
        for name in ("pose_projector", "latent_whitening", "latent_colouring"):
            state_dict.setdefault(name, getattr(self, name).detach().clone())
        return super().load_state_dict(state_dict, strict, assign)

    def normalise(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw stage-1 latents (..., Dm) -> the unit-variance space the diffusion works in."""
        self._check_latents(latents, "latents")
        return _full_precision_matmul((latents - self.latent_mean) / self.latent_std, self.latent_whitening)

    def denormalise(self, latents: torch.Tensor) -> torch.Tensor:
        """Inverse of `normalise`."""
        self._check_latents(latents, "latents")
        return _full_precision_matmul(latents, self.latent_colouring) * self.latent_std + self.latent_mean

    def encode_style(self, reference_latents: torch.Tensor) -> torch.Tensor:
        """Raw motion latents of a reference clip (B, T, Dm) -> style vector (B, Ds)."""
        self._check_latents(reference_latents, "style reference")
        if reference_latents.dim() != 3:
            raise ValueError(f"style reference must be (B, T, {self.config.latent_dim}), "
                             f"got {tuple(reference_latents.shape)}")
        return self.style_encoder(self.normalise(reference_latents))

    def guide(self, self_audio: torch.Tensor, other_audio: torch.Tensor, style: torch.Tensor | None = None,
              drop_style: torch.Tensor | None = None) -> GuiderOutput:
        """Audio features of both tracks (B, T, A) and a style (B, Ds) or None -> GuiderOutput.

        `drop_style` (B,) bool leaves the memory banks unmodulated for those samples.
        """
        if self_audio.shape != other_audio.shape:
            raise ValueError(f"self and other audio features must have the same shape (B, T, A); got "
                             f"{tuple(self_audio.shape)} and {tuple(other_audio.shape)} (pad the shorter "
                             f"track with silence)")
        if style is not None and style.shape != (self_audio.shape[0], self.config.style.dim):
            raise ValueError(f"style must be ({self_audio.shape[0]}, {self.config.style.dim}), "
                             f"got {tuple(style.shape)}")
        return self.guider(self.self_audio_encoder(self_audio), self.other_audio_encoder(other_audio),
                           style, drop_style)

    def forward(self, noisy: torch.Tensor, timestep: torch.Tensor, motion_feature: torch.Tensor | None,
                previous: torch.Tensor | None, style: torch.Tensor | None, drop_motion: torch.Tensor | None = None,
                drop_previous: torch.Tensor | None = None, drop_style: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise (B, W, Dm) of normalised noisy latents (B, W, Dm); see `MotionDiT.forward`.

        `previous` (B, C, Dm) is in the normalised space too.
        """
        return self.dit(noisy, timestep, motion_feature, previous, style, drop_motion, drop_previous, drop_style)

    def _check_latents(self, latents: torch.Tensor, name: str) -> None:
        if latents.shape[-1:] != (self.config.latent_dim,):
            raise ValueError(f"{name} must have {self.config.latent_dim} channels (the stage-1 latent size "
                             f"this model was built for), got shape {tuple(latents.shape)}")

    def save_pretrained(self, path: str | Path, extra: dict | None = None) -> Path:
        """Slim inference weights (safetensors, config and chosen sampling defaults in the
        metadata; latent stats included)."""
        sampling = {} if self.sampling is None else {"sampling": self.sampling.to_dict()}
        return save_weights(path, self.state_dict(), WEIGHTS_KIND, self.config.to_dict(), {**(extra or {}), **sampling})

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "MotionGenerator":
        """Rebuild the model from a file written by `save_pretrained` alone."""
        model, extra = load_pretrained(cls, Stage2Config, path, WEIGHTS_KIND, device, with_extra=True)
        if "sampling" in extra:
            try:
                model.sampling = SamplingDefaults.from_dict(extra["sampling"])
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path} holds unreadable sampling defaults: {error}") from None
        return model


def set_sampling_defaults(path: str | Path, sampling: SamplingDefaults) -> Path:
    """Store `sampling` as the defaults of the stage-2 weights at `path` (rewritten in place,
    atomically; tensors, config and other metadata unchanged)."""
    return update_metadata(path, WEIGHTS_KIND, {"sampling": sampling.to_dict()})
