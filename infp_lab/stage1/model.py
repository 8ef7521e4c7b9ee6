"""HeadImitator: INFP stage 1, motion-based head imitation (design.md section 4).

A source portrait is re-enacted by a driving frame: the motion encoder turns the driving
frame's hybrid representation into a 1-D motion latent; the flow estimator predicts, from
the source's and the driving latents, a flow that warps the source's appearance features;
the decoder renders the driven frame; the landmark head decodes the latent to landmarks,
and the displacement between the two latents' landmarks, moved onto the source's own
landmarks, gives the flow estimator its starting point.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from infp_lab.checkpoint import load_pretrained, save_weights
from infp_lab.stage1.appearance_encoder import AppearanceEncoder
from infp_lab.stage1.config import Stage1Config
from infp_lab.stage1.decoder import Decoder
from infp_lab.stage1.hybrid import INNER_LIP, MOUTH, interocular
from infp_lab.stage1.motion_encoder import LandmarkHead, MotionEncoder, ParamHead
from infp_lab.stage1.mouth_composite import composite_mouth
from infp_lab.stage1.warping import FlowEstimator, landmark_flow, sharpen_mouth, warp

WEIGHTS_KIND = "infp-lab/stage1"


class Stage1Output(NamedTuple):
    """What one re-enactment produces."""

    image: torch.Tensor  # (B, 3, H, W) in [0, 1]
    driving_latent: torch.Tensor  # (B, latent_dim)
    source_latent: torch.Tensor  # (B, latent_dim)
    landmarks: torch.Tensor  # (B, L, 2) decoded from the driving latent, in [0, 1]
    flow: torch.Tensor  # (B, 2, h, w) or (B, 3, D, h, w)
    occlusion: torch.Tensor
    blend: torch.Tensor  # (B, 1, H, W): weight of the warped source image


class HeadImitator(nn.Module):
    """Motion encoder + appearance encoder + flow estimator + decoder + landmark head
    (+ a param head when the config names motion parameters)."""

    def __init__(self, config: Stage1Config):
        super().__init__()
        self.config = config
        self.motion_encoder = MotionEncoder(config)
        self.landmark_head = LandmarkHead(config)
        self.param_head = ParamHead(config) if config.param_names else None
        self.appearance_encoder = AppearanceEncoder(config)
        depth = config.appearance.depth if config.appearance.type == "3d" else 1
        channels = self.appearance_encoder.volume_channels
        self.flow_estimator = FlowEstimator(config, channels, depth)
        self.decoder = Decoder(config, channels, depth)

    def _check(self, frames: torch.Tensor, name: str) -> None:
        size = self.config.image_size
        if frames.dim() != 4 or frames.shape[1:] != (3, size, size):
            raise ValueError(f"{name} must be (B, 3, {size}, {size}) images, got {tuple(frames.shape)}")

    def encode_motion(self, frames: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Motion latent of frames: (B, 3, H, W) in [0, 1] + landmarks (B, L, 2) in [0, 1] -> (B, Dm)."""
        self._check(frames, "frames")
        return self.motion_encoder(frames, landmarks)

    def encode_appearance(self, source: torch.Tensor) -> torch.Tensor:
        """Appearance features of the source portrait."""
        self._check(source, "source")
        return self.appearance_encoder(source)

    def driven_landmarks(self, source_landmarks: torch.Tensor, source_latent: torch.Tensor,
                         driving_latent: torch.Tensor) -> torch.Tensor:
        """Where the source's landmarks (B, L, 2) go under the driving motion: the landmark
        head's displacement between the two latents, scaled to the source's face size."""
        head_source, head_driving = self.landmark_head(source_latent), self.landmark_head(driving_latent)
        scale = interocular(source_landmarks) / interocular(head_source).clamp(min=1e-3)  # (B,)
        return source_landmarks + (head_driving - head_source) * scale[:, None, None]

    def motion_params(self, latents: torch.Tensor) -> torch.Tensor:
        """The motion parameters (`config.param_names`) the param head reads from motion
        latents (B, Dm) -> (B, P); only for models trained with it (`--param-weight`)."""
        if self.param_head is None:
            raise ValueError("this stage-1 model has no param head (train it with --param-weight on SynConv)")
        return self.param_head(latents)

    def lip_gap(self, latents: torch.Tensor) -> torch.Tensor:
        """How far the mouth is open in motion latents (B, Dm) -> (B,): the gap between the
        centres of the inner lips that the landmark head decodes, in inter-ocular units.
        Nothing is fitted, so it reads generated latents as it reads true ones."""
        landmarks = self.landmark_head(latents)
        upper, lower = INNER_LIP[2], INNER_LIP[6]  # landmarks 62 and 66
        return (landmarks[:, lower] - landmarks[:, upper]).norm(dim=-1) / interocular(landmarks).clamp(min=1e-3)

    def mouth_shape(self, latents: torch.Tensor) -> torch.Tensor:
        """The shape of the lips in motion latents (B, Dm) -> (B, 20, 2): the outer and inner
        lip points the landmark head decodes, less their centre, in inter-ocular units (so
        where the head is and how large the face is drop out)."""
        landmarks = self.landmark_head(latents)
        lips = landmarks[:, list(MOUTH) + list(INNER_LIP)]
        centred = lips - lips.mean(dim=1, keepdim=True)
        return centred / interocular(landmarks).clamp(min=1e-3)[:, None, None]

    def render(self, source: torch.Tensor, source_landmarks: torch.Tensor, appearance: torch.Tensor,
               source_latent: torch.Tensor, driving_latent: torch.Tensor, target: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Render the source with the driving motion -> (image, flow, occlusion, blend).

        This is what stage 2 calls with generated motion latents. `target`: the landmarks
        (B, L, 2) in [0, 1] to move the source's to and draw the driven maps at; by default
        the source's moved by the landmark head (`driven_landmarks`).
        """
        spatial = appearance.shape[-2:]
        if target is None:
            target = self.driven_landmarks(source_landmarks, source_latent, driving_latent)
        prior = landmark_flow(source_landmarks, target, tuple(spatial))  # (B, 2, h, w)
        flow, occlusion = self.flow_estimator(appearance, source_latent, driving_latent, prior)
        warped = warp(appearance, flow) * occlusion
        flow_2d = flow[:, :2].mean(dim=2) if flow.dim() == 5 else flow  # image warp uses the (x, y) flow
        if self.config.flow.mouth_prior_sigma > 0:  # so that the warped lips can part
            flow_2d = sharpen_mouth(flow_2d, prior, source_landmarks, target, source.shape[-1],
                                    self.config.flow.mouth_prior_sigma)
        image, blend = self.decoder(warped, driving_latent, source, flow_2d, target)
        if self.config.decoder.mouth_composite:
            image = composite_mouth(image, source, source_landmarks, target)
        return image, flow, occlusion, blend

    def forward(self, source: torch.Tensor, source_landmarks: torch.Tensor, driving: torch.Tensor,
                driving_landmarks: torch.Tensor, driving_input: torch.Tensor | None = None,
                target: torch.Tensor | None = None) -> Stage1Output:
        """Re-enact `source` with the motion of `driving` (both (B, 3, H, W), landmarks (B, L, 2)).

        `driving_input` optionally replaces the driving frame given to the motion encoder
        (training passes a colour-jittered copy); `target` optionally replaces the landmarks
        the renderer draws at (see `render`).
        """
        source_latent = self.encode_motion(source, source_landmarks)
        driving_latent = self.encode_motion(driving if driving_input is None else driving_input, driving_landmarks)
        appearance = self.encode_appearance(source)
        image, flow, occlusion, blend = self.render(source, source_landmarks, appearance, source_latent, driving_latent,
                                                    target)
        return Stage1Output(image, driving_latent, source_latent, self.landmark_head(driving_latent),
                            flow, occlusion, blend)

    def save_pretrained(self, path: str | Path, extra: dict | None = None) -> Path:
        """Slim inference weights (safetensors, config in the metadata)."""
        return save_weights(path, self.state_dict(), WEIGHTS_KIND, self.config.to_dict(), extra)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu",
                        mouth_composite: bool | None = None) -> "HeadImitator":
        """Rebuild the model from a file written by `save_pretrained` alone.

        `mouth_composite` True or False turns the mouth drawn by geometry over the render
        (`decoder.mouth_composite`, stage1/mouth_composite.py) on or off whatever the file
        says; None keeps the file's setting. It is a render-time option: no tensor depends on it."""
        model = load_pretrained(cls, Stage1Config, path, WEIGHTS_KIND, device)
        if mouth_composite is not None:
            model.config = replace(model.config, decoder=replace(model.config.decoder, mouth_composite=mouth_composite))
        return model
