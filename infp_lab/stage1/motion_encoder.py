"""Motion encoder (design.md section 4): a driving frame and its landmarks -> a 1-D motion
latent (INFP's implicit motion code), and the landmark head that decodes it.

The hybrid representation keeps the eye and mouth regions of the frame and the face
contour. At 128x128 an eye is about ten pixels wide, so a strided CNN over the whole,
mostly black frame learns the fine motion (blinks, gaze, lip shapes) very slowly. The
encoder therefore looks at the kept regions directly: each eye and the mouth are cropped
upright (rotated with the eye line, scaled with the inter-ocular distance) and read by a
small CNN, and the contour points, in the face's own frame plus the face's placement, go
through an MLP. The paper's ablation inputs use the same latent size: the intact frame
through a strided CNN, or every landmark through the MLP (the landmark map).

With `MotionEncoderConfig.points = "regions"` (not the paper's; off by default and in older
files) a second MLP also reads the points of the brows, eyes, irises and lips, as offsets
from the canonical face at rest, and adds to the contour MLP's output. Its last layer starts
at zero, so a fine-tune of contour-only weights starts from their latents. The mask hides
the brows, and one standard deviation of SynConv's brow raise, lip press or vertical glance
moves the landmarks of a 128x128 face by half a pixel or less, so the crops carry these
movements faintly.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from infp_lab.nn.blocks import ConvBlock
from infp_lab.render import LANDMARK_GROUPS
from infp_lab.stage1.config import HYBRID_POINT_SETS, Stage1Config
from infp_lab.stage1.hybrid import CONTOUR, EYE_CORNERS, MOUTH_CORNERS, hybrid_representation

# The points of the "regions" branch: the brows (which the mask hides), the eye lids and
# irises, the lips and the mouth interior; not the nose.
REGION_POINTS = (LANDMARK_GROUPS["right_brow"] + LANDMARK_GROUPS["left_brow"] + LANDMARK_GROUPS["eyes"]
                 + LANDMARK_GROUPS["mouth"])
REGION_POINT_GAIN = 10.0  # motion moves these points by a few hundredths of the inter-ocular distance


def face_frame(landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The face's placement from landmarks (B, L, 2) in [0, 1]: eye-line centre (B, 2),
    inter-ocular distance (B,) and roll angle (B,) in radians."""
    right, left = (landmarks[:, list(corners)].mean(dim=1) for corners in EYE_CORNERS)
    line = left - right
    return (right + left) / 2, line.norm(dim=-1).clamp(min=1e-3), torch.atan2(line[:, 1], line[:, 0])


def upright_crop(images: torch.Tensor, centre: torch.Tensor, side: torch.Tensor, angle: torch.Tensor,
                 size: int) -> torch.Tensor:
    """Square crops (B, C, size, size) of side `side` (B,) around `centre` (B, 2), both in
    [0, 1] image units, rotated by `angle` (B,) so that the face is upright."""
    cos, sin = torch.cos(angle) * side, torch.sin(angle) * side  # half-side in [-1, 1] units is `side`
    theta = torch.stack([torch.stack([cos, -sin, 2 * centre[:, 0] - 1], dim=1),
                         torch.stack([sin, cos, 2 * centre[:, 1] - 1], dim=1)], dim=1)  # (B, 2, 3)
    grid = F.affine_grid(theta, [images.shape[0], images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def region_crops(images: torch.Tensor, landmarks: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Upright crops of the right eye, the left eye and the mouth: three (B, C, size, size)."""
    centre, iod, angle = face_frame(landmarks)
    down = torch.stack([-torch.sin(angle), torch.cos(angle)], dim=1)  # the face's downward direction
    eyes = [upright_crop(images, landmarks[:, list(corners)].mean(dim=1), 0.5 * iod, angle, size)
            for corners in EYE_CORNERS]
    mouth_centre = landmarks[:, list(MOUTH_CORNERS)].mean(dim=1) + 0.1 * iod[:, None] * down
    return [*eyes, upright_crop(images, mouth_centre, 0.8 * iod, angle, size)]


def point_features(landmarks: torch.Tensor, points: tuple[int, ...]) -> torch.Tensor:
    """Points in the face's own frame (relative to the eye-line centre, in inter-ocular
    units) and the face's placement, all of order 1: (B, 2 * len(points) + 4)."""
    centre, iod, angle = face_frame(landmarks)
    local = (landmarks[:, list(points)] - centre[:, None]) / iod[:, None, None]
    placement = torch.stack([10 * (iod - 0.25), 10 * torch.sin(angle), 10 * (centre[:, 0] - 0.5),
                             10 * (centre[:, 1] - 0.5)], dim=1)
    return torch.cat([local.flatten(1), placement], dim=1)


def neutral_region_points() -> torch.Tensor:
    """The region points of the canonical face at rest, in its own frame: (len(REGION_POINTS) * 2,)."""
    from infp_lab.render import NEUTRAL_PARAMS
    from infp_lab.stage1.data import canonical_landmarks

    landmarks = torch.from_numpy(canonical_landmarks(NEUTRAL_PARAMS[None]).astype(np.float32))
    return point_features(landmarks, REGION_POINTS)[0, :-4]


def strided_cnn(channels: tuple[int, ...], cin: int = 3) -> nn.Sequential:
    layers = []
    for cout in channels:
        layers.append(ConvBlock(cin, cout, stride=2))
        cin = cout
    return nn.Sequential(*layers, nn.Flatten())


class MotionEncoder(nn.Module):
    """Frame (B, 3, H, W) + landmarks (B, L, 2) -> motion latent (B, latent_dim), by input kind."""

    def __init__(self, config: Stage1Config):
        super().__init__()
        motion = config.motion
        self.kind, self.region_size = motion.input, motion.region_size
        self.region_points = None  # the "regions" branch, when the hybrid input reads those points
        hidden = motion.hidden
        if self.kind == "hybrid":
            side = motion.region_size // 2 ** len(motion.region_channels)
            features = motion.region_channels[-1] * side * side
            self.eye = nn.Sequential(strided_cnn(motion.region_channels), nn.Linear(features, hidden))
            self.mouth = nn.Sequential(strided_cnn(motion.region_channels), nn.Linear(features, hidden))
            self.points = tuple(CONTOUR)
            if motion.points not in HYBRID_POINT_SETS:
                raise ValueError(f"hybrid points must be one of {HYBRID_POINT_SETS}, got {motion.points!r}")
            if motion.points == "regions":  # a residual branch on the contour's, silent at the start
                self.region_points = nn.Sequential(nn.Linear(2 * len(REGION_POINTS), hidden), nn.SiLU(),
                                                   nn.Linear(hidden, hidden))
                nn.init.zeros_(self.region_points[-1].weight)
                nn.init.zeros_(self.region_points[-1].bias)
                self.register_buffer("neutral_points", neutral_region_points(), persistent=False)
            parts = 4
        elif self.kind == "landmark_map":
            self.points = tuple(range(config.num_landmarks))
            parts = 1
        elif self.kind == "image":
            side = config.image_size // 2 ** len(motion.channels)
            self.image = nn.Sequential(strided_cnn(motion.channels), nn.Linear(motion.channels[-1] * side * side, hidden))
            parts = 1
        else:
            raise ValueError(f"unknown motion input {self.kind!r}")
        if self.kind != "image":
            self.geometry = nn.Sequential(nn.Linear(2 * len(self.points) + 4, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.to_latent = nn.Sequential(nn.SiLU(), nn.Linear(parts * hidden, hidden), nn.SiLU(),
                                       nn.Linear(hidden, config.latent_dim))

    def forward(self, frames: torch.Tensor, landmarks: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        """`points` (B, L, 2), when given, are the landmarks the point MLPs read instead of
        `landmarks` (which still place the crops): the same frame's points moved elsewhere,
        for example onto the canonical face."""
        if self.kind == "image":
            return self.to_latent(self.image(frames))
        parts = [self.point_part(landmarks if points is None else points)]
        if self.kind == "hybrid":
            parts = self.crop_parts(frames, landmarks) + parts
        return self.to_latent(torch.cat(parts, dim=1))

    def point_part(self, landmarks: torch.Tensor) -> torch.Tensor:
        """What the encoder reads from the landmark points (B, L, 2): (B, hidden)."""
        part = self.geometry(point_features(landmarks, self.points))
        if self.region_points is not None:
            offsets = point_features(landmarks, REGION_POINTS)[:, :-4] - self.neutral_points
            part = part + self.region_points(REGION_POINT_GAIN * offsets)
        return part

    def crop_parts(self, frames: torch.Tensor, landmarks: torch.Tensor) -> list[torch.Tensor]:
        """What the hybrid encoder reads from the crops of the eyes and the mouth, cut from
        the hybrid representation at the landmarks: three (B, hidden)."""
        right, left, mouth = region_crops(hybrid_representation(frames, landmarks), landmarks, self.region_size)
        return [self.eye(right), self.eye(left), self.mouth(mouth)]


class LandmarkHead(nn.Module):
    """Motion latent -> the project's landmarks, normalised to [0, 1] of the frame.

    Linear, so that the latent holds the landmarks (and so the motion) linearly.
    """

    def __init__(self, config: Stage1Config):
        super().__init__()
        self.num_landmarks = config.num_landmarks
        self.linear = nn.Linear(config.latent_dim, 2 * config.num_landmarks)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, L, 2)."""
        return 0.5 + self.linear(latent).view(-1, self.num_landmarks, 2)


class ParamHead(nn.Module):
    """Motion latent -> the motion parameters of `Stage1Config.param_names` (SynConv's
    jaw_open, smile, ..., yaw), linear, in the parameters' own units.

    Trained (with `infp-lab train stage1 --param-weight`) on clips that have the parameters,
    so that every parameter, also those that move the landmarks by less than a pixel (lip
    press, brows, gaze), has a linear direction in the latent. `mean` and `std` are the
    training parameters' statistics; the linear layer predicts the standardised parameters.
    """

    def __init__(self, config: Stage1Config):
        super().__init__()
        count = len(config.param_names)
        self.linear = nn.Linear(config.latent_dim, count)
        self.register_buffer("mean", torch.zeros(count))
        self.register_buffer("std", torch.ones(count))

    def standardised(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, P), in units of the training parameters' std."""
        return self.linear(latent)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, P) parameters."""
        return self.mean + self.std * self.linear(latent)
