"""Mouth crops for SyncNet-SynConv (design.md section 8, SyncScore).

A grayscale box around the outer lip, sized by the face (the distance between the outer
eye corners), turned with the eye line (head roll) and smoothed over time so the crop does
not jitter; warped with one affine map per frame (cv2.warpAffine), or, for a loss that
trains a renderer through the expert, differentiably (`crop_images`, torch grid_sample).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter1d

from infp_lab.render.face_model import LANDMARK_GROUPS

RIGHT_EYE_OUTER = LANDMARK_GROUPS["right_eye"][0]  # 36 (image left)
LEFT_EYE_OUTER = LANDMARK_GROUPS["left_eye"][3]  # 45 (image right)
OUTER_LIP = list(LANDMARK_GROUPS["outer_lip"])  # 48-59
BOX_WIDTH = 1.5  # crop width in interocular distances; a wide-open mouth fits in width / 2 of height


def crop_boxes(landmarks: np.ndarray, smooth_frames: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed mouth centres (T, 2), box widths (T,) in px and roll angles (T,) in radians."""
    lms = np.asarray(landmarks, np.float64)
    centre = lms[:, OUTER_LIP].mean(axis=1)  # (T, 2)
    eyes = lms[:, LEFT_EYE_OUTER] - lms[:, RIGHT_EYE_OUTER]  # (T, 2), image left -> right
    width = BOX_WIDTH * np.linalg.norm(eyes, axis=1)  # (T,)
    angle = np.arctan2(eyes[:, 1], eyes[:, 0])
    if smooth_frames > 0 and len(lms) > 1:
        centre = gaussian_filter1d(centre, smooth_frames, axis=0, mode="nearest")
        width = gaussian_filter1d(width, 2 * smooth_frames, mode="nearest")
        angle = gaussian_filter1d(angle, 2 * smooth_frames, mode="nearest")
    return centre, width, angle


def mouth_crops(frames: np.ndarray, landmarks: np.ndarray, size: tuple[int, int] = (48, 96),
                smooth_frames: float = 2.0) -> np.ndarray:
    """Grayscale mouth crops of a clip.

    Args:
        frames: (T, H, W, 3) uint8 RGB frames.
        landmarks: (T, L, 2) landmarks in the frames' pixels (the 86-point layout of
            infp_lab.render.face_model; only the outer eye corners and outer lip are used).
        size: (height, width) of each crop.
        smooth_frames: Gaussian sigma (frames) of the box's centre; size and angle use twice it.

    Returns:
        (T, height, width) float32 crops in [0, 1].
    """
    frames, landmarks = np.asarray(frames), np.asarray(landmarks)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2 or landmarks.shape[1] <= max(OUTER_LIP):
        raise ValueError(f"landmarks must be (T, L >= {max(OUTER_LIP) + 1}, 2), got {landmarks.shape}")
    if len(frames) != len(landmarks):
        raise ValueError(f"{len(frames)} frames but {len(landmarks)} landmark sets")
    height, width = size
    crops = np.empty((len(frames), height, width), np.float32)
    for t, (frame, matrix) in enumerate(zip(frames, crop_matrices(landmarks, size, smooth_frames))):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        shrink = int(np.hypot(*matrix[:, 0]))  # area-downsample first when the box is much larger than the crop
        if shrink >= 2:
            gray = cv2.resize(gray, (gray.shape[1] // shrink, gray.shape[0] // shrink), interpolation=cv2.INTER_AREA)
            matrix = np.concatenate([matrix[:, :2] / shrink, (matrix[:, 2:] + 0.5) / shrink - 0.5], axis=1)
        crops[t] = cv2.warpAffine(gray, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REPLICATE)
    return crops / 255.0


def crop_matrices(landmarks: np.ndarray, size: tuple[int, int] = (48, 96), smooth_frames: float = 2.0) -> np.ndarray:
    """The affine maps (T, 2, 3) from crop pixels to frame pixels of a clip's mouth crops
    (pixel centres at integers, as cv2 has them); landmarks (T, L, 2) in the frames' pixels."""
    height, width = size
    centres, widths, angles = crop_boxes(landmarks, smooth_frames)
    scale = widths / width  # frame pixels per crop pixel
    cos, sin = scale * np.cos(angles), scale * np.sin(angles)
    matrices = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], axis=1)  # (T, 2, 2)
    offset = np.array([(width - 1) / 2, (height - 1) / 2])
    return np.concatenate([matrices, (centres - matrices @ offset)[:, :, None]], axis=2)


GRAY = (0.299, 0.587, 0.114)  # cv2.COLOR_RGB2GRAY's weights


def crop_images(images: torch.Tensor, matrices: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Differentiable grayscale mouth crops (B, h, w) of images (B, 3, H, W) in [0, 1] at the
    maps (B, 2, 3) of `crop_matrices`: `mouth_crops` without its rounding to uint8, for boxes
    under twice the crop's size (it area-downsamples larger ones first, this does not)."""
    height, width = size
    gray = torch.einsum("bchw,c->bhw", images, images.new_tensor(GRAY)).unsqueeze(1)  # (B, 1, H, W)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=images.dtype, device=images.device),
                            torch.arange(width, dtype=images.dtype, device=images.device), indexing="ij")
    crop_pixels = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)  # (h, w, 3)
    frame_pixels = torch.einsum("bij,hwj->bhwi", matrices.to(images), crop_pixels)  # (B, h, w, 2)
    frame_size = images.new_tensor([images.shape[-1], images.shape[-2]])
    grid = (frame_pixels + 0.5) / frame_size * 2 - 1  # grid_sample's coordinates (align_corners=False)
    return F.grid_sample(gray, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]
