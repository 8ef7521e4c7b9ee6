"""The mouth drawn by geometry on top of the render (off by default; weights/README.md,
"The lips moved by a mesh"): the source portrait's own lips moved by a piecewise-affine
warp so that its lip landmarks land on the driven ones, and the opening between the driven
inner lips filled with the source's lip colour, darkened, except where the render drew
something brighter than the lips there (the decoder's teeth).

The tiny decoder draws the lips' shape poorly: it keeps a half-open mouth closed, opens a
wide one half as far and draws pursed lips wide, whatever landmarks it is given. A mesh
warp puts every lip landmark exactly where the landmark head says, so the lips' opening,
width and rounding are those of the motion latent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from infp_lab.stage1.hybrid import INNER_LIP, MOUTH

RING_SCALE = 1.6  # anchors this far out from the lips' centre, where the warp fades into the render
CAVITY_SHADE = 0.5  # the inside of the mouth: the source's mean lip colour times this
SUPERSAMPLE = 2  # sub-pixel samples per side for the masks' soft edges

# Points of the mesh: the 12 outer-lip landmarks, the 8 inner-lip ones, then 12 ring anchors
# (one per outer-lip landmark) and the inner lips' centre.
_OUTER = list(range(12))
_INNER = list(range(12, 20))
_RING = list(range(20, 32))
_CENTRE = 32


def _strip(a: list[int], b: list[int]) -> list[tuple[int, int, int]]:
    """Triangles between two polylines that run the same way (by index, evenly spaced)."""
    triangles, i, j = [], 0, 0
    while i < len(a) - 1 or j < len(b) - 1:
        advance_a = j == len(b) - 1 or (i < len(a) - 1 and (i + 1) / (len(a) - 1) <= (j + 1) / (len(b) - 1))
        if advance_a:
            triangles.append((a[i], a[i + 1], b[j]))
            i += 1
        else:
            triangles.append((a[i], b[j + 1], b[j]))
            j += 1
    return triangles


def _triangles() -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """(outer band, lips, opening) triangles of the mesh, as point indices.

    The outer lip runs 48 (a corner), 49-53 over the top, 54 (the other corner), 55-59 under
    it; the inner lip 60 (corner), 61-63, 64 (corner), 65-67 (render.face_model's layout)."""
    ring = [(_RING[k], _RING[(k + 1) % 12], _OUTER[k]) for k in range(12)]
    ring += [(_OUTER[k], _RING[(k + 1) % 12], _OUTER[(k + 1) % 12]) for k in range(12)]
    upper = _strip(_OUTER[0:7], _INNER[0:5])
    lower = _strip(_OUTER[6:12] + [_OUTER[0]], _INNER[4:8] + [_INNER[0]])
    opening = [(_CENTRE, _INNER[k], _INNER[(k + 1) % 8]) for k in range(8)]
    return ring, upper + lower, opening


RING_TRIANGLES, LIP_TRIANGLES, OPENING_TRIANGLES = _triangles()
_WARP = torch.tensor(RING_TRIANGLES + LIP_TRIANGLES)  # (T, 3): the triangles the source's lips are warped by
_LIPS, _OPENING = torch.tensor(LIP_TRIANGLES), torch.tensor(OPENING_TRIANGLES)
_RING_VERTEX = (_WARP >= _RING[0]) & (_WARP <= _RING[-1])  # (T, 3): which corners are ring anchors
_ON_LIPS = torch.arange(len(_WARP)) >= len(RING_TRIANGLES)  # (T,): the lip triangles (the rest: the ring's)


def _mesh_points(landmarks: torch.Tensor) -> torch.Tensor:
    """(B, L, 2) landmarks -> (B, 33, 2) mesh points (see the module's constants)."""
    outer, inner = landmarks[:, list(MOUTH)], landmarks[:, list(INNER_LIP)]
    centre = torch.cat([outer, inner], dim=1).mean(dim=1, keepdim=True)
    ring = centre + RING_SCALE * (outer - centre)
    return torch.cat([outer, inner, ring, inner.mean(dim=1, keepdim=True)], dim=1)


def _barycentric(points: torch.Tensor, triangles: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Barycentric coordinates (P, T, 3) of pixels (P, 2) in triangles (T, 3) of points (N, 2);
    NaN for degenerate triangles."""
    a, b, c = (points[triangles[:, k]] for k in range(3))  # (T, 2) each
    v0, v1 = b - a, c - a
    det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]  # (T,)
    det = torch.where(det.abs() < 1e-9, torch.full_like(det, float("nan")), det)
    d = pixels[:, None, :] - a[None]  # (P, T, 2)
    u = (d[..., 0] * v1[:, 1] - d[..., 1] * v1[:, 0]) / det
    v = (v0[:, 0] * d[..., 1] - v0[:, 1] * d[..., 0]) / det
    return torch.stack([1 - u - v, u, v], dim=-1)


def _locate(points: torch.Tensor, triangles: torch.Tensor, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each pixel (P, 2): the triangle (P,) it lies in (-1: none) and its barycentric
    coordinates there (P, 3)."""
    bary = _barycentric(points, triangles, pixels)  # (P, T, 3)
    inside = (bary >= -1e-6).all(dim=-1)  # NaN compares False: degenerate triangles hold nothing
    index = torch.where(inside.any(dim=1), inside.float().argmax(dim=1), torch.full_like(inside[:, 0], -1, dtype=torch.long))
    picked = bary.gather(1, index.clamp(min=0)[:, None, None].expand(-1, 1, 3))[:, 0]  # (P, 3)
    return index, torch.nan_to_num(picked)


def _box(points: torch.Tensor, fine_h: int, fine_w: int) -> tuple[int, int, int, int, torch.Tensor]:
    """The sub-pixel grid's rows y0:y1 and columns x0:x1 around points (N, 2) in [0, 1], and
    those sub-pixels' centres (P, 2) as (x, y) in [0, 1]."""
    low, high = points.amin(dim=0), points.amax(dim=0)
    x0, y0 = max(int(low[0] * fine_w) - 1, 0), max(int(low[1] * fine_h) - 1, 0)
    x1, y1 = min(int(high[0] * fine_w) + 2, fine_w), min(int(high[1] * fine_h) + 2, fine_h)
    x0, y0 = min(x0, x1), min(y0, y1)
    xs = (torch.arange(x0, x1, device=points.device, dtype=points.dtype) + 0.5) / fine_w
    ys = (torch.arange(y0, y1, device=points.device, dtype=points.dtype) + 0.5) / fine_h
    return y0, y1, x0, x1, torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)


def _sample(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (3, P) of one image (1, 3, H, W) at points (P, 2) as (x, y) in [0, 1]."""
    grid = (points * 2 - 1).view(1, -1, 1, 2)
    return F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, :, 0]


def composite_mouth(image: torch.Tensor, source: torch.Tensor, source_landmarks: torch.Tensor,
                    driven_landmarks: torch.Tensor) -> torch.Tensor:
    """The render (B, 3, H, W) in [0, 1] with the source's (B, 3, H, W) lips warped from its
    landmarks to the driven ones (both (B, L, 2) in [0, 1]) and the opening between the
    driven inner lips drawn dark where the render is not brighter than the source's lips."""
    b, _, h, w = image.shape
    device = image.device
    fine_h, fine_w = h * SUPERSAMPLE, w * SUPERSAMPLE
    # A landmark at u (pixels / size) lies at the centre of pixel u * size, as SynConv draws them;
    # below, positions are in units of the image's extent (a pixel's centre at (i + 0.5) / size).
    half_pixel = torch.tensor([0.5 / w, 0.5 / h], device=device)
    src_points = _mesh_points(source_landmarks.float() + half_pixel)
    dst_points = _mesh_points(driven_landmarks.float() + half_pixel)
    warp_tris, lip_tris, opening_tris = _WARP.to(device), _LIPS.to(device), _OPENING.to(device)
    ring_vertex, on_lip_triangle = _RING_VERTEX.to(device), _ON_LIPS.to(device)
    out = []
    for k in range(b):
        # the cavity's colour: the source's lips (the lip triangles at its own landmarks), darkened
        src_pixels = _box(src_points[k, :20], fine_h, fine_w)[-1]
        on_lips = _locate(src_points[k], lip_tris, src_pixels)[0] >= 0
        lip_colour = (_sample(source[k:k + 1], src_pixels[on_lips]).mean(dim=1) if on_lips.any()
                      else source[k].float().mean(dim=(1, 2)))

        y0, y1, x0, x1, pixels = _box(dst_points[k], fine_h, fine_w)
        index, bary = _locate(dst_points[k], warp_tris, pixels)
        found, index = index >= 0, index.clamp(min=0)
        corners = src_points[k][warp_tris[index]]  # (P, 3, 2)
        sample_at = (bary[..., None] * corners).sum(dim=1)  # (P, 2) in [0, 1]
        fade = 1 - (bary * ring_vertex[index].float()).sum(dim=1)  # 1 on the lips, 0 at the ring anchors
        weight = torch.where(on_lip_triangle[index], torch.ones_like(fade), fade) * found.float()
        warped = _sample(source[k:k + 1], sample_at).view(3, y1 - y0, x1 - x0)
        opening = (_locate(dst_points[k], opening_tris, pixels)[0] >= 0).float()
        weight, opening = weight.view(1, y1 - y0, x1 - x0), opening.view(1, y1 - y0, x1 - x0)
        cavity = (CAVITY_SHADE * lip_colour).view(3, 1, 1).expand(3, y1 - y0, x1 - x0)
        rows = torch.arange(y0, y1, device=device) // SUPERSAMPLE  # the render's pixels under the sub-pixels
        columns = torch.arange(x0, x1, device=device) // SUPERSAMPLE
        rendered = image[k].float()[:, rows[:, None], columns[None, :]]  # (3, y1 - y0, x1 - x0)
        bright = rendered.mean(dim=0, keepdim=True) > lip_colour.mean()  # (1, h, w): the decoder's teeth
        cavity = torch.where(bright, rendered, cavity)
        layer = warped * (1 - opening) + cavity * opening
        alpha = torch.zeros(1, 1, fine_h, fine_w, device=device)
        painted = torch.zeros(1, 3, fine_h, fine_w, device=device)
        alpha[0, :, y0:y1, x0:x1] = torch.maximum(weight, opening)
        painted[0, :, y0:y1, x0:x1] = layer * alpha[0, :, y0:y1, x0:x1]
        # averaging the sub-pixel samples gives soft edges at the image's resolution
        alpha, painted = F.avg_pool2d(alpha, SUPERSAMPLE), F.avg_pool2d(painted, SUPERSAMPLE)
        out.append(image[k:k + 1] * (1 - alpha.to(image.dtype)) + painted.to(image.dtype))
    return torch.cat(out).clamp(0, 1)
