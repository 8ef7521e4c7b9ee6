"""The hybrid facial representation (design.md section 4; INFP section 3.1): the driving
frame with everything masked except the eye and mouth regions, plus the face-contour
landmarks drawn onto it (they carry the head's orientation). Also the two inputs of the
paper's ablation: the intact image and a landmark map.
"""

from __future__ import annotations

import numpy as np
import torch

from infp_lab.render import LANDMARK_GROUPS

EYES = (LANDMARK_GROUPS["right_eye"], LANDMARK_GROUPS["left_eye"])
MOUTH = LANDMARK_GROUPS["outer_lip"]
INNER_LIP = LANDMARK_GROUPS["inner_lip"]
CONTOUR = LANDMARK_GROUPS["contour"]
EYE_CORNERS = ((36, 39), (42, 45))  # outer and inner corner of the right, then the left eye
MOUTH_CORNERS = (48, 54)


def _grid(size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    return coords.view(1, 1, size), coords.view(1, size, 1)  # x (1, 1, W), y (1, H, 1)


def _ellipse(points: torch.Tensor, size: int, scale_x: float, scale_y: float, min_y: float) -> torch.Tensor:
    """Soft elliptic mask (B, H, W) around a landmark group (B, K, 2) in [0, 1] coordinates."""
    x, y = _grid(size, points.device)
    centre = points.mean(dim=1)  # (B, 2)
    extent = points.amax(dim=1) - points.amin(dim=1)  # (B, 2)
    rx = (extent[:, 0] * scale_x).clamp(min=2.0 / size)
    ry = torch.maximum(extent[:, 1] * scale_y, extent[:, 0] * min_y).clamp(min=2.0 / size)
    dist = ((x - centre[:, 0, None, None]) / rx[:, None, None]) ** 2 + ((y - centre[:, 1, None, None]) / ry[:, None, None]) ** 2
    edge = 4.0 / size / rx[:, None, None]  # about two pixels of soft edge
    return torch.clamp((1.0 - dist) / (2 * edge) + 0.5, 0.0, 1.0)


def mouth_region(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """Soft elliptic mask (B, H, W) over the lips and a margin around them."""
    return _ellipse(landmarks[:, list(MOUTH)], size, 0.75, 0.85, 0.45)


def region_mask(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """Mask (B, 1, H, W) that keeps the two eyes (with brows' lower edge) and the mouth."""
    eyes = [_ellipse(landmarks[:, list(group)], size, 0.85, 1.6, 0.45) for group in EYES]
    return torch.maximum(torch.maximum(eyes[0], eyes[1]), mouth_region(landmarks, size)).unsqueeze(1)


def draw_points(landmarks: torch.Tensor, size: int, sigma_px: float = 1.0) -> torch.Tensor:
    """Gaussian dots (B, 1, H, W) in [0, 1] at the given landmarks (B, K, 2) in [0, 1] coordinates."""
    x, y = _grid(size, landmarks.device)
    sigma = sigma_px / size
    dx = x.unsqueeze(1) - landmarks[:, :, 0, None, None]  # (B, K, 1, W)
    dy = y.unsqueeze(1) - landmarks[:, :, 1, None, None]  # (B, K, H, 1)
    dots = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))  # (B, K, H, W)
    return dots.amax(dim=1, keepdim=True)


def hybrid_representation(frames: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Masked frame with contour points: (B, 3, H, W) in [0, 1], landmarks (B, L, 2) in [0, 1]."""
    size = frames.shape[-1]
    masked = frames * region_mask(landmarks, size)
    dots = draw_points(landmarks[:, list(CONTOUR)], size, sigma_px=max(1.0, size / 128))
    return masked * (1 - dots) + dots


DRIVEN_MAPS = 3  # channels of `driven_maps`
MOUTH_MAPS = ("lips", "gap")  # what the first of them draws: `mouth_opening` or `mouth_gap`


def mouth_opening(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """Soft elliptic mask (B, H, W) over the opening between the inner lips, twice the inner
    lips' extent (so it takes in the lips; a flat ellipse when closed); landmarks (B, L, 2)
    in [0, 1]."""
    return _ellipse(landmarks[:, list(INNER_LIP)], size, 1.0, 1.0, 0.0)


def mouth_gap(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """Mask (B, H, W) of the gap between the inner lips alone: an ellipse as wide as the
    inner lips and as tall as the distance between their middles, each pixel covered as far
    as it lies inside (so nothing when the mouth is closed, and a band a pixel or two tall
    when it is half open, which `mouth_opening` hardly tells from closed); landmarks
    (B, L, 2) in [0, 1]."""
    lips = landmarks[:, list(INNER_LIP)] * size  # in pixels
    upper, lower = lips[:, 2], lips[:, 6]  # the middles of the upper and the lower inner lip
    centre = (upper + lower) / 2  # (B, 2)
    half_width = ((lips[:, :, 0].amax(dim=1) - lips[:, :, 0].amin(dim=1)) / 2).clamp(min=1.0)
    half_gap = (lower - upper).norm(dim=-1) / 2
    x, y = (coords * size for coords in _grid(size, landmarks.device))
    across = (1 - ((x - centre[:, 0, None, None]) / half_width[:, None, None]) ** 2).clamp(min=0)
    inside = half_gap[:, None, None] * across.sqrt() - (y - centre[:, 1, None, None]).abs()  # pixels inside the edge
    return inside.clamp(0.0, 1.0)


UPPER_INNER_LIP = (60, 61, 62, 63, 64)  # corner to corner over the top of the opening
LOWER_INNER_LIP = (60, 67, 66, 65, 64)  # and under it
UPPER_TEETH_EDGE, LOWER_TEETH_EDGE = (78, 79, 80), (81, 82, 83)
TONGUE = (84, 85)  # its top (back) and its tip
INTERIOR_MAPS = 3  # channels of `mouth_interior`


def _polyline_y(points: torch.Tensor, x: torch.Tensor, extend: bool) -> torch.Tensor:
    """Height (B, W) of the polyline through points (B, K, 2) at the columns x (W,), both in
    pixels. Points are taken in order of x; beyond the end points the line stays level
    (`extend`) or is NaN."""
    order = points[..., 0].argsort(dim=1)
    points = torch.gather(points, 1, order[..., None].expand_as(points))
    px, py = points[..., 0], points[..., 1]  # (B, K)
    segment = torch.searchsorted(px.contiguous(), x.expand(len(px), -1).contiguous()).clamp(1, px.shape[1] - 1) - 1
    x0, x1 = px.gather(1, segment), px.gather(1, segment + 1)  # (B, W)
    y0, y1 = py.gather(1, segment), py.gather(1, segment + 1)
    t = (x - x0) / (x1 - x0).clamp(min=1e-6)
    y = y0 + t.clamp(0, 1) * (y1 - y0)
    if not extend:
        y = torch.where((x < px[:, :1]) | (x > px[:, -1:]), torch.full_like(y, float("nan")), y)
    return y


def mouth_interior(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """What shows between the driven inner lips, for the decoder to draw it there: (B, 3, H, W)
    masks of the opening (the polygon of the inner lips), of the teeth in it (above the
    upper-teeth edge, landmarks 78-80, and below the lower one, 81-83) and of the tongue in it
    (an ellipse from its top, 84, to below its tip, 85, 0.6 of the opening wide); each pixel
    covered as far as it lies inside, so that a band a pixel tall shows; landmarks (B, L, 2)
    in [0, 1].

    At 128 pixels the upper teeth show as a band 0-2 pixels tall under the upper lip, which the
    lip dots do not place. On real faces (face_mesh.py) the teeth and tongue points are set
    between the inner lips, so there these masks only follow the opening."""
    points = landmarks * size  # in pixels
    x = torch.arange(size, device=landmarks.device, dtype=points.dtype) + 0.5  # (W,) pixel centres
    y = x.view(1, size, 1)  # (1, H, 1)
    top = _polyline_y(points[:, list(UPPER_INNER_LIP)], x, extend=False)[:, None]  # (B, 1, W)
    bottom = _polyline_y(points[:, list(LOWER_INNER_LIP)], x, extend=False)[:, None]
    opening = torch.minimum(y - top, bottom - y).add(0.5).clamp(0, 1).nan_to_num(0.0)  # (B, H, W)
    upper = _polyline_y(points[:, list(UPPER_TEETH_EDGE)], x, extend=True)[:, None]
    lower = _polyline_y(points[:, list(LOWER_TEETH_EDGE)], x, extend=True)[:, None]
    teeth = torch.maximum(upper - y, y - lower).add(0.5).clamp(0, 1) * opening
    back, tip = points[:, TONGUE[0]], points[:, TONGUE[1]]  # (B, 2)
    face = interocular(points)  # (B,) pixels
    corners = points[:, [UPPER_INNER_LIP[0], UPPER_INNER_LIP[-1]]]
    rx = (0.31 * (corners[:, 1] - corners[:, 0]).norm(dim=-1)).clamp(min=0.5)
    ry = 0.1 * face + (tip[:, 1] - back[:, 1]).abs()
    centre = (back + tip) / 2 + torch.stack([torch.zeros_like(face), 0.035 * face], dim=-1)
    dx = (x.view(1, 1, size) - centre[:, 0, None, None]) / rx[:, None, None]
    dy = (y - centre[:, 1, None, None]) / ry[:, None, None]
    inside = (1 - (dx ** 2 + dy ** 2).sqrt()) * torch.minimum(rx, ry)[:, None, None]  # about pixels inside the edge
    tongue = inside.add(0.5).clamp(0, 1) * opening * (1 - teeth)
    return torch.stack([opening, teeth, tongue], dim=1)


def driven_maps(landmarks: torch.Tensor, size: int, mouth: str = "lips") -> torch.Tensor:
    """Where the driven face opens its mouth and eyes, for the decoder to draw them there:
    (B, 3, H, W) soft masks of the mouth (`mouth`: "lips", the opening between the inner
    lips with the lips, `mouth_opening`; or "gap", the opening alone, `mouth_gap`), of the
    two eye openings (both shrink to a thin line when closed) and dots on the lip and eye
    landmarks; landmarks (B, L, 2) in [0, 1]."""
    if mouth not in MOUTH_MAPS:
        raise ValueError(f"mouth must be one of {MOUTH_MAPS}, got {mouth!r}")
    mouth = mouth_opening(landmarks, size) if mouth == "lips" else mouth_gap(landmarks, size)
    eyes = torch.maximum(*(_ellipse(landmarks[:, list(group)], size, 1.0, 1.0, 0.0) for group in EYES))
    dots = draw_points(landmarks[:, list(MOUTH + INNER_LIP + EYES[0] + EYES[1])], size, sigma_px=max(1.0, size / 128))
    return torch.cat([mouth.unsqueeze(1), eyes.unsqueeze(1), dots], dim=1)


def landmark_map(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """All landmarks as white dots on black, (B, 3, H, W): the ablation's landmark-map input."""
    return draw_points(landmarks, size, sigma_px=max(1.0, size / 128)).expand(-1, 3, -1, -1)


def motion_input(kind: str, frames: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """The motion encoder's input of the given kind ("hybrid", "image" or "landmark_map")."""
    if kind == "hybrid":
        return hybrid_representation(frames, landmarks)
    if kind == "image":
        return frames
    if kind == "landmark_map":
        return landmark_map(landmarks, frames.shape[-1])
    raise ValueError(f"unknown motion input {kind!r}")


def colour_jitter(frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random per-sample channel shuffle, grey-scaling, brightness and contrast: (B, 3, H, W).

    Applied to the driving frame before the motion encoder in training, so that colours
    (skin, fur, lips) do not identify the person: the latent should carry motion, not who.
    """
    b = frames.shape[0]
    device = frames.device
    perm = torch.stack([torch.randperm(3, generator=generator) for _ in range(b)]).to(device)  # (B, 3)
    out = torch.gather(frames, 1, perm[:, :, None, None].expand_as(frames))
    grey = (torch.rand(b, 1, 1, 1, generator=generator) < 0.5).to(device, frames.dtype)
    out = grey * out.mean(dim=1, keepdim=True).expand_as(out) + (1 - grey) * out
    contrast = (0.7 + 0.6 * torch.rand(b, 1, 1, 1, generator=generator)).to(device)
    bright = (0.2 * torch.rand(b, 1, 1, 1, generator=generator) - 0.1).to(device)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * contrast + mean + bright).clamp(0, 1)


def lip_gap(landmarks: np.ndarray) -> np.ndarray:
    """How far the mouth is open: the distance (...,) between the middles of the inner lips
    of landmarks (..., L, 2), in their units."""
    return np.linalg.norm(landmarks[..., INNER_LIP[6], :] - landmarks[..., INNER_LIP[2], :], axis=-1)


def lip_width(landmarks: np.ndarray) -> np.ndarray:
    """How wide the mouth is: the distance (...,) between its corners in landmarks (..., L, 2),
    in their units."""
    return np.linalg.norm(landmarks[..., MOUTH_CORNERS[1], :] - landmarks[..., MOUTH_CORNERS[0], :], axis=-1)


def interocular(landmarks: torch.Tensor) -> torch.Tensor:
    """Distance between the outer eye corners (B,) of landmarks (B, L, 2)."""
    right, left = LANDMARK_GROUPS["right_eye"][0], LANDMARK_GROUPS["left_eye"][3]
    return (landmarks[:, right] - landmarks[:, left]).norm(dim=-1)
