"""Fast anti-aliased rasteriser of the SynConv face model (design.md section 3.1, "Faces").

Painter's algorithm with OpenCV primitives (``LINE_AA`` and 4 bits of sub-pixel ``shift``):
background, shoulders, hair behind the head, neck, far ears, head silhouette (convex hull
of the posed cranium and jaw), hair cap, face, near ears, brows, eyes, nose, mouth, glasses
and a soft shading pass. Features whose content must be clipped (iris by the lids, teeth and
tongue by the lips) are painted into a small region of interest and blended through an
anti-aliased polygon mask. Per-appearance assets (background, palette) are cached, so a
frame costs about a hundred small drawing calls.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from infp_lab.render import face_model as fm
from infp_lab.render.appearance import Appearance

_SHIFT = 4
_AA = cv2.LINE_AA
_NEAR_EAR_YAW = 28.0  # degrees past which the ear on the turned-to side is drawn in front


def _fx(pts: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> int32 fixed point for the ``shift`` argument."""
    return np.round(np.asarray(pts) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 2)


def _chaikin(poly: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Corner-cutting smoothing of a closed polygon: (N, 2) -> (N * 2**iterations, 2)."""
    for _ in range(iterations):
        nxt = np.roll(poly, -1, axis=0)
        poly = np.stack([0.75 * poly + 0.25 * nxt, 0.25 * poly + 0.75 * nxt], 1).reshape(-1, 2)
    return poly


def _mix(a, b, t: float) -> tuple[int, int, int]:
    """Linear blend of two RGB colours."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _mul(a, f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(round(x * f), 0, 255)) for x in a)


class _Canvas:
    """An image plus drawing helpers taking float pixel coordinates (minus an offset)."""

    def __init__(self, img: np.ndarray, k: float, off=(0.0, 0.0)):
        self.img, self.k, self.off = img, k, np.asarray(off, float)

    def w(self, units: float) -> int:
        """Line thickness in whole pixels for a width given in face units."""
        return max(1, int(round(units * self.k)))

    def poly(self, pts, colour) -> None:
        cv2.fillPoly(self.img, [_fx(pts - self.off)], colour, _AA, _SHIFT)

    def hull(self, pts, colour, smooth: bool = True, tufts: float = 0.0) -> np.ndarray:
        """Fill the (smoothed) convex hull of points; ``tufts`` scallops the outline by
        that many pixels (hair). Returns the filled outline (N, 2)."""
        hull = cv2.convexHull(np.asarray(pts, np.float32)).reshape(-1, 2).astype(np.float64)
        if smooth:
            hull = _chaikin(hull)
        if tufts > 0:
            d = hull - hull.mean(0)
            r = np.hypot(d[:, 0], d[:, 1])[:, None] + 1e-9
            ang = np.arctan2(d[:, 1], d[:, 0])[:, None]
            hull = hull + d / r * tufts * np.abs(np.sin(ang * 9.0))
            cv2.fillPoly(self.img, [_fx(hull - self.off)], colour, _AA, _SHIFT)
            return hull
        cv2.fillConvexPoly(self.img, _fx(hull - self.off), colour, _AA, _SHIFT)
        return hull

    def line(self, pts, colour, width: float, closed: bool = False) -> None:
        cv2.polylines(self.img, [_fx(pts - self.off)], closed, colour, self.w(width), _AA, _SHIFT)

    def lines(self, pts_list, colour, width: float) -> None:
        cv2.polylines(self.img, [_fx(p - self.off) for p in pts_list], False, colour,
                      self.w(width), _AA, _SHIFT)

    def ellipse(self, centre, axes, angle: float, colour, thickness: int = -1) -> None:
        c = _fx(np.asarray(centre) - self.off)[0]
        ax = np.maximum(np.round(np.asarray(axes) * (1 << _SHIFT)), 1).astype(int)
        cv2.ellipse(self.img, (int(c[0]), int(c[1])), (int(ax[0]), int(ax[1])), float(angle),
                    0, 360, colour, thickness, _AA, _SHIFT)

    def circle(self, centre, radius: float, colour, thickness: int = -1) -> None:
        self.ellipse(centre, (radius, radius), 0.0, colour, thickness)


def _roi(img: np.ndarray, pts: np.ndarray, pad: float):
    """Integer bounding box of points (clamped to the image) or None when empty."""
    h, w = img.shape[:2]
    x0, y0 = np.floor(pts.min(0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return None if x1 - x0 < 1 or y1 - y0 < 1 else (x0, y0, x1, y1)


def _clip_paint(img: np.ndarray, k: float, clip: np.ndarray, draw) -> None:
    """Paint ``draw(canvas)`` into ``img`` only inside the anti-aliased polygon ``clip``."""
    box = _roi(img, clip, 1.0)
    if box is None or cv2.contourArea(clip.astype(np.float32)) < 0.3:
        return
    x0, y0, x1, y1 = box
    roi = img[y0:y1, x0:x1]
    layer = roi.copy()
    draw(_Canvas(layer, k, (x0, y0)))
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_fx(clip - (x0, y0))], 255, _AA, _SHIFT)
    a = mask[..., None].astype(np.uint16)                               # (h, w, 1)
    roi[:] = ((layer * a + roi * (255 - a) + 127) // 255).astype(np.uint8)


def _soft_blend(img: np.ndarray, box_pts: np.ndarray, pad: float, draw_mask, colour,
                alpha: float, sigma: float, clip=None) -> None:
    """Blend ``colour`` through a blurred mask painted by ``draw_mask(canvas)``."""
    box = _roi(img, box_pts, pad)
    if box is None or alpha <= 0:
        return
    x0, y0, x1, y1 = box
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    draw_mask(_Canvas(mask, 1.0, (x0, y0)))
    if sigma > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    if clip is not None:
        hard = np.zeros_like(mask)
        for poly in (clip if isinstance(clip, list) else [clip]):
            cv2.fillConvexPoly(hard, _fx(poly - (x0, y0)), 255, _AA, _SHIFT)
        mask = ((mask.astype(np.uint16) * hard) >> 8).astype(np.uint8)
    a = (mask.astype(np.int32) * int(alpha * 256)) >> 8                 # (h, w) 0..255
    roi = img[y0:y1, x0:x1]
    r32 = roi.astype(np.int32)
    roi[:] = r32 + (((np.array(colour, np.int32) - r32) * a[..., None]) >> 8)


@lru_cache(maxsize=64)
def _palette(app: Appearance) -> dict[str, tuple[int, int, int]]:
    """All derived colours of an identity (cached)."""
    skin, hair, eye, lip = app.skin, app.hair, app.eye, app.lip
    lum = 0.3 * hair[0] + 0.59 * hair[1] + 0.11 * hair[2]
    return dict(
        skin=skin, skin_dark=_mix(_mul(skin, 0.72), (120, 40, 40), 0.08),
        skin_light=_mix(skin, (255, 255, 255), 0.14), lid=_mix(_mul(skin, 0.9), lip, 0.08),
        neck=_mul(skin, 0.8), ear_inner=_mul(skin, 0.78), blush=_mix(skin, (230, 70, 90), 0.6),
        hair=hair, hair_dark=_mul(hair, 0.68), hair_light=_mix(hair, (255, 255, 255), 0.22),
        brow=_mul(hair, 0.85) if lum < 170 else _mul(hair, 0.7),
        lash=_mix(_mul(hair, 0.4), (30, 22, 20), 0.6),
        sclera=_mix((242, 240, 234), skin, 0.08), sclera_shadow=_mix((200, 192, 186), skin, 0.2),
        iris=eye, iris_dark=_mul(eye, 0.55), iris_light=_mix(eye, (255, 255, 255), 0.25),
        pupil=(14, 12, 12), teeth=(242, 238, 226), teeth_gap=(196, 186, 170),
        cavity=(66, 20, 26), tongue=(200, 92, 104), lip=lip, lip_dark=_mul(lip, 0.62),
        lip_light=_mix(lip, (255, 255, 255), 0.1), shirt=app.shirt, shirt_dark=_mul(app.shirt, 0.7),
        accent=app.accent, accent_dark=_mul(app.accent, 0.7), glasses=app.glasses_colour,
        led=eye, led_dim=_mul(eye, 0.45), led_core=_mix(eye, (255, 255, 255), 0.7),
        muzzle=(236, 234, 228) if app.pattern == "tuxedo" else _mix(skin, (255, 255, 255), 0.35),
        nose_dark=_mul(skin, 0.42))


@lru_cache(maxsize=32)
def _background(app: Appearance, size: int) -> np.ndarray:
    """The identity's background image (cached, read-only): (size, size, 3) uint8."""
    a, b = np.array(app.bg_a, np.float32), np.array(app.bg_b, np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    r = np.hypot(xx - 0.5, yy - 0.45) / 0.75
    if app.background == "vertical":
        t = yy
    elif app.background == "radial":
        t = np.clip(r, 0, 1)
    elif app.background == "stripes":
        t = 0.3 + 0.2 * np.sin((xx + yy) * 2 * np.pi * 5.0)
    else:
        t = 0.15 * yy
    img = a * (1 - t[..., None]) + b * t[..., None]                    # (size, size, 3)
    if app.background == "bokeh":
        rng = np.random.default_rng(app.bg_seed)
        for _ in range(10):
            cx, cy, rad = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.04, 0.14)
            blob = np.clip(1 - np.hypot(xx - cx, yy - cy) / rad, 0, 1) ** 0.6
            img += blob[..., None] * (rng.uniform(0.2, 0.45) * (255 - img))
    img *= (1 - 0.18 * np.clip(r - 0.55, 0, 1))[..., None]              # soft vignette
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def render_frame(params: np.ndarray, appearance: Appearance, size: int) -> np.ndarray:
    """Render one frame of the face model.

    Args:
        params: (P,) motion parameters ordered as ``PARAM_NAMES``.
        appearance: the identity.
        size: output side in pixels (>= 16).

    Returns:
        (size, size, 3) uint8 RGB image.
    """
    params2d, squeeze = fm.check_params(params)
    if not squeeze:
        raise ValueError(f"render_frame takes one (P,) parameter vector, got shape "
                         f"{np.shape(params)}; use render_frames for sequences")
    size = fm.check_size(size)
    geom = fm.face_geometry(appearance)
    verts = fm.expression_vertices(params2d, geom)                       # (1, V, 3)
    pts = fm.project_points(verts, params2d, appearance, size)[0]        # (V, 2)
    body = fm.project_points(geom.body[None], params2d, appearance, size, body=True)[0]
    pose = fm.frame_pose(params2d[0], appearance, size)
    img = _background(appearance, size).copy()
    _Painter(img, pts, body, geom, appearance, pose, params2d[0]).paint()
    return img


def render_frames(params: np.ndarray, appearance: Appearance, size: int) -> np.ndarray:
    """Render a sequence: (T, P) parameters -> (T, size, size, 3) uint8 RGB."""
    params2d, squeeze = fm.check_params(params)
    if squeeze:
        raise ValueError(f"render_frames takes (T, {fm.NUM_PARAMS}) parameters, got shape "
                         f"{np.shape(params)}; use render_frame for one frame")
    size = fm.check_size(size)
    out = np.empty((len(params2d), size, size, 3), np.uint8)
    for t, p in enumerate(params2d):
        out[t] = render_frame(p, appearance, size)
    return out


class _Painter:
    """Draws one posed face onto a frame in back-to-front order."""

    def __init__(self, img, pts, body, geom: fm.FaceGeometry, app: Appearance,
                 pose: fm.FramePose, params: np.ndarray):
        self.img, self.pts, self.body_pts, self.geom, self.app = img, pts, body, geom, app
        self.k, self.yaw, self.params = pose.px_per_unit, pose.yaw, params
        self.c = _Canvas(img, self.k)
        self.col = _palette(app)
        self.species = app.species
        self.nose_hull: np.ndarray | None = None

    def part(self, name: str) -> np.ndarray:
        return self.pts[self.geom.parts[name]]

    def has(self, name: str) -> bool:
        return name in self.geom.parts

    def body_part(self, name: str) -> np.ndarray:
        return self.body_pts[self.geom.body_parts[name]]

    def lm(self, *idx: int) -> np.ndarray:
        return self.pts[list(idx)]

    def paint(self) -> None:
        self.behind_head()
        self.neck()
        self.body()
        self.ears(front=False)
        hull = self.head()
        self.hair_cap()
        self.face()
        self.locks(front=True)
        self.ears(front=True)
        self.cheeks()
        self.beard()
        self.brows()
        for tag in (("l", "r") if self.yaw > 0 else ("r", "l")):   # far eye first
            self.eye(tag)
        self.nose()
        self.mouth()
        self.details()
        self.glasses()
        self.shade(hull)

    # ---- body, hair, head silhouette -------------------------------------------------
    def body(self) -> None:
        c, col = self.c, self.col
        shoulders = self.body_part("shoulders")
        if self.species == "human":
            collar = self.body_part("collar_v" if self.app.bg_seed % 2 else "collar_round")
            half = len(shoulders) // 2
            c.poly(np.concatenate([shoulders[:half], collar[1:-1], shoulders[half:]]), col["shirt"])
            c.line(collar, col["shirt_dark"], 0.035)
        elif self.species == "cat":
            c.poly(shoulders, _mul(col["skin"], 0.9))
            if self.app.pattern == "tuxedo":
                bib = self.body_part("collar_round")[2]
                c.ellipse(bib - (0, 0.1 * self.k), (0.42 * self.k, 0.5 * self.k), 0, col["muzzle"])
        else:
            c.poly(shoulders, col["hair"])
            c.line(shoulders, col["hair_dark"], 0.03, closed=True)
            centre = self.body_part("collar_round")[2]
            c.circle(centre + (0, 0.35 * self.k), 0.09 * self.k, col["led"])
            c.circle(centre + (0, 0.35 * self.k), 0.09 * self.k, col["hair_dark"], 1)

    def behind_head(self) -> None:
        """Hair behind the head, a bun, far hair locks, cat ears, the robot antenna."""
        c, col = self.c, self.col
        if self.has("hair_back"):
            c.hull(self.part("hair_back"), col["hair_dark"], tufts=0.03 * self.k)
        if self.has("bun"):
            centre, edge = self.part("bun")
            r = float(np.hypot(*(edge - centre)))
            c.circle(centre, r, col["hair"])
            c.ellipse(centre, (0.6 * r, 0.35 * r), 20.0, col["hair_dark"], 1)
        self.locks(front=False)
        if self.species == "cat":
            for tag in ("r", "l"):
                c.poly(self.part(f"ear_{tag}"), col["skin"])
                c.poly(self.part(f"ear_inner_{tag}"), col["accent"])
        if self.species == "robot":
            base, tip = self.part("antenna")
            c.line(np.stack([base, tip]), col["hair_dark"], 0.035)
            c.circle(tip, 0.06 * self.k, col["led"])

    def locks(self, front: bool) -> None:
        for side, tag in ((-1, "r"), (1, "l")):
            if self.has(f"lock_{tag}") and (side * self.yaw <= _NEAR_EAR_YAW) == front:
                self.c.poly(self.part(f"lock_{tag}"), self.col["hair" if front else "hair_dark"])

    def neck(self) -> None:
        c, col = self.c, self.col
        pts = np.concatenate([self.part("neck_top"), self.body_part("neck_base")])
        colour = {"human": col["neck"], "cat": _mul(col["skin"], 0.9),
                  "robot": col["hair_dark"]}[self.species]
        hull = c.hull(pts, colour)
        if self.species == "robot":
            top, base = self.part("neck_top")[:2], self.body_part("neck_base")
            rings = [np.stack([top[0] + (base[0] - top[0]) * f, top[1] + (base[1] - top[1]) * f])
                     for f in (0.45, 0.6, 0.75, 0.9)]
            c.lines(rings, _mul(col["hair_dark"], 0.6), 0.02)
        elif self.species == "human":
            jaw = self.pts[4:13]
            under_chin = jaw + (0, 0.06 * self.k)
            _soft_blend(self.img, jaw, 0.1 * self.k, lambda m: m.poly(under_chin, 255),
                        (0, 0, 0), 0.35, 0.05 * self.k, clip=hull)

    def ears(self, front: bool) -> None:
        c, col = self.c, self.col
        if self.species == "cat":
            return
        for side, tag in ((-1, "r"), (1, "l")):
            if (side * self.yaw < -_NEAR_EAR_YAW) != front:
                continue
            outline, inner = self.part(f"ear_{tag}"), self.part(f"ear_inner_{tag}")
            if self.species == "robot":
                c.hull(outline, col["hair_dark"])
                c.poly(outline[:12], col["accent"])
                c.poly(inner, col["accent_dark"])
                continue
            c.poly(outline, col["skin"])
            c.line(outline, col["skin_dark"], 0.012, closed=True)
            c.line(inner, col["ear_inner"], 0.025)

    def head(self) -> np.ndarray:
        pts = np.concatenate([self.part("cranium"), self.pts[:17], self.part("head_extra")])
        hull = self.c.hull(pts, self.col["hair" if self.species == "robot" else "skin"])
        if self.species == "cat":                       # fluffy cheek tufts
            centre = hull.mean(0)
            tufts = []
            for i in (2, 3, 4, 5, 11, 12, 13, 14):
                a, b = self.pts[i], self.pts[i + 1]
                out = (a + b) / 2 - centre
                tip = (a + b) / 2 + out / (np.linalg.norm(out) + 1e-9) * 0.09 * self.k
                tufts.append(np.stack([a, b, tip]))
            for tri in tufts:
                self.c.poly(tri, self.col["skin"])
        return hull

    def hair_cap(self) -> None:
        if not self.has("hair_cap"):
            return
        c, col, k = self.c, self.col, self.k
        tufts = (0.06 if self.app.hair_style == "afro" else 0.025) * k
        cap = c.hull(self.part("hair_cap"), col["hair"], tufts=tufts)
        crown, line = self.part("crown")[0], self.part("hairline")
        light = np.sign(self.app.light_side)
        centre = crown + (light * 0.22 * k, -0.05 * k)
        _soft_blend(self.img, cap, 0, lambda m: m.ellipse(centre, (0.32 * k, 0.13 * k),
                                                           light * 15, 255),
                    col["hair_light"], 0.55, 0.07 * k, clip=cap)
        n = len(line)
        part = int(np.clip(round((self.app.hair_part + 1) / 2 * (n - 1)), 1, n - 2))
        start = line[part]
        t = np.linspace(0, 1, 6)[:, None]
        strokes = [start + (crown - start) * t]                      # the parting
        for j in range(0, n, 2):
            if abs(j - part) < 2:
                continue
            s0 = start + (crown - start) * (0.15 + 0.6 * abs(j - part) / n)
            end = line[j] + (line[j] - crown) * 0.02
            ctrl = (s0 + end) / 2 + (crown - start) * 0.2
            strokes.append((1 - t) ** 2 * s0 + 2 * t * (1 - t) * ctrl + t ** 2 * end)
        c.lines(strokes, _mix(col["hair"], col["hair_dark"], 0.7), 0.012)

    def face(self) -> None:
        """Face skin below the hairline, robot face plate, cat markings and muzzle."""
        c, col = self.c, self.col
        line = self.part("hairline")
        plate = np.concatenate([self.pts[:17], line[::-1]])       # jaw + hairline
        if self.has("hair_cap") or self.species == "robot":
            c.poly(plate, col["skin"])
        if self.species == "robot":
            c.line(plate, col["hair_dark"], 0.018, closed=True)
            if self.app.pattern == "panels":
                c.line(line + (0, 0.13 * self.k), col["hair_dark"], 0.01)
                c.line(np.stack([self.part("crown")[0], line[5]]), col["hair_dark"], 0.012)
            for p in (line[1], line[-2], self.pts[3], self.pts[13]):
                c.circle(p + (self.pts[30] - p) * 0.08, 0.025 * self.k, col["hair_dark"])
        if self.species == "cat":
            if self.app.pattern == "tabby":
                stripes = self.part("stripes").reshape(-1, 2, 2)
                c.lines(list(stripes), col["hair"], 0.035)
            for centre in self.part("muzzle"):
                c.ellipse(centre, (0.11 * self.k, 0.085 * self.k), 0, col["muzzle"])
            chin = self.pts[57] + (self.pts[8] - self.pts[57]) * 0.3
            c.ellipse(chin, (0.1 * self.k, 0.07 * self.k), 0, col["muzzle"])

    # ---- facial features ---------------------------------------------------------------
    def cheeks(self) -> None:
        if self.species != "human" or self.app.blush < 0.02:
            return
        centres, r = self.part("blush"), 0.12 * self.k
        _soft_blend(self.img, centres, 2 * r,
                    lambda m: [m.ellipse(p, (r, 0.7 * r), 0, 255) for p in centres],
                    self.col["blush"], 0.45 * self.app.blush, 0.45 * r)

    def beard(self) -> None:
        style = self.app.beard
        if style == "none":
            return
        full = np.concatenate([self.pts[:17], self.part("beard")[::-1]])
        moustache = np.concatenate([self.part("moustache"), self.pts[54:47:-1]])
        goatee = np.concatenate([self.pts[5:12], self.pts[55:60]])
        if style == "stubble":
            _soft_blend(self.img, full, 0.1 * self.k, lambda m: m.poly(full, 255),
                        self.col["hair_dark"], 0.25, 0.035 * self.k)
            return
        shapes = {"full": [full, moustache], "goatee": [goatee, moustache],
                  "moustache": [moustache]}[style]
        for shape in shapes:
            self.c.poly(shape, self.col["hair"])
        if style == "full":
            self.c.line(self.pts[2:15], self.col["hair_dark"], 0.02)

    def brows(self) -> None:
        if self.species == "cat":
            return
        colour = self.col["hair_dark" if self.species == "robot" else "brow"]
        for tag in ("r", "l"):
            self.c.poly(np.concatenate([self.part(f"brow_top_{tag}"),
                                        self.part(f"brow_bottom_{tag}")[::-1]]), colour)

    def eye(self, tag: str) -> None:
        c, col, k = self.c, self.col, self.k
        upper_idx, lower_idx, iris_idx, e = (
            (fm.RIGHT_EYE_UPPER, fm.RIGHT_EYE_LOWER, 68, 0) if tag == "r"
            else (fm.LEFT_EYE_UPPER, fm.LEFT_EYE_LOWER, 69, 2))
        upper, lower = self.lm(*upper_idx), self.lm(*lower_idx)
        aperture = np.concatenate([upper, lower[-2:0:-1]])                  # (10, 2)
        centre = self.pts[iris_idx]
        edges = self.part("iris_edge")[e:e + 2] - centre
        axes = np.maximum(np.hypot(edges[:, 0], edges[:, 1]), 0.5)
        angle = float(np.degrees(np.arctan2(edges[0, 1], edges[0, 0])))
        crease = self.part(f"crease_{tag}")
        if self.species == "human":
            c.poly(np.concatenate([crease, upper[::-1]]), col["lid"])

            def draw(cv):
                cv.img[:] = col["sclera"]
                cv.ellipse(centre, axes, angle, col["iris_dark"])
                cv.ellipse(centre, axes * 0.8, angle, col["iris"])
                cv.ellipse(centre, axes * 0.42, angle, col["pupil"])
                cv.circle(centre - axes * (0.3, 0.35), max(0.2 * axes[0], 0.6), (255, 255, 255))
                cv.line(upper + (0, 0.008 * k), col["sclera_shadow"], 0.016)
            _clip_paint(self.img, k, aperture, draw)
            c.line(upper - (0, 0.008 * k), col["lash"], 0.022)
            c.line(lower, col["skin_dark"], 0.008)
            c.line(crease, col["skin_dark"], 0.008)
        elif self.species == "cat":
            def draw(cv):
                cv.img[:] = col["iris_dark"]
                cv.ellipse(centre, axes * 1.25, angle, col["iris"])
                cv.ellipse(centre, axes * (0.2, 1.1), angle, col["pupil"])
                cv.circle(centre - axes * (0.35, 0.45), max(0.16 * axes[0], 0.6), (255, 255, 255))
            _clip_paint(self.img, k, aperture, draw)
            c.line(aperture, col["lash"], 0.025, closed=True)
        else:
            socket = self.part("socket")[0 if tag == "r" else 4:][:4]
            c.poly(socket, col["hair_dark"])
            c.line(socket, col["hair_dark"], 0.06, closed=True)

            def draw(cv):
                cv.img[:] = col["led_dim"]
                cv.ellipse(centre, axes * 1.3, angle, col["led"])
                cv.ellipse(centre, axes * 0.6, angle, col["led_core"])
            _clip_paint(self.img, k, aperture, draw)
            c.line(upper, col["hair"], 0.025)

    def nose(self) -> None:
        c, col, k = self.c, self.col, self.k
        if self.species == "cat":
            shape = self.pts[31:36]
            c.poly(shape, col["accent"])
            c.line(shape, col["accent_dark"], 0.012, closed=True)
            c.line(self.lm(33, 51), col["lash"], 0.018)
            return
        if self.species == "robot":
            c.line(self.pts[27:31], col["hair_dark"], 0.012)
            c.line(self.pts[31:36], col["hair_dark"], 0.04)
            return
        alar = self.part("alar")
        self.nose_hull = c.hull(np.concatenate([self.pts[27:36], alar]), col["skin"], smooth=False)
        side = (1 if self.yaw > 0 else -1) if abs(self.yaw) > 6 else (
            1 if self.app.light_side <= 0 else -1)
        wing = 1 if side > 0 else 0
        inner = self.pts[42 if side > 0 else 39]
        bridge = np.stack([self.pts[27] + (inner - self.pts[27]) * 0.35,
                           self.pts[28] + (side * 0.045 * k, 0),
                           self.pts[29] + (side * 0.06 * k, 0), alar[wing]])
        c.line(bridge, col["skin_dark"], 0.014)
        c.lines([np.stack([alar[1], self.pts[35], self.pts[34]]),
                 np.stack([alar[0], self.pts[31], self.pts[32]])], col["skin_dark"], 0.016)
        d = self.pts[35] - self.pts[31]
        angle = float(np.degrees(np.arctan2(d[1], d[0])))
        for p in self.part("nostril"):
            c.ellipse(p, (0.03 * k, 0.015 * k), angle, col["nose_dark"])
        if abs(self.yaw) < 30:
            tip = self.pts[30] + (0.02 * k * np.sign(self.app.light_side), -0.035 * k)
            _soft_blend(self.img, tip[None], 0.08 * k,
                        lambda m: m.ellipse(tip, (0.025 * k, 0.035 * k), 0, 255),
                        col["skin_light"], 0.8, 0.015 * k)

    def mouth(self) -> None:
        c, col, k = self.c, self.col, self.k
        inner = self.pts[60:68]
        upper_lip = np.concatenate([self.pts[48:55], self.lm(64, 63, 62, 61, 60)])
        lower_lip = np.concatenate([self.lm(54, 55, 56, 57, 58, 59, 48),
                                    self.lm(60, 67, 66, 65, 64)])
        tu, tl = self.part("teeth_upper"), self.part("teeth_lower")
        teeth_up = np.concatenate([tu[:2], self.pts[78:81], tu[2:]])
        teeth_low = np.concatenate([tl[:2], self.pts[81:84], tl[2:]])
        half_width = float(np.hypot(*(self.pts[64] - self.pts[60]))) / 2
        gap = float(np.hypot(*(self.pts[66] - self.pts[62])))

        if self.species == "robot":
            c.poly(self.pts[48:60], col["lip"])

            def draw(cv):
                cv.img[:] = (8, 8, 12)
                cv.poly(teeth_up, col["led_dim"])
                cv.poly(teeth_low, col["led_dim"])
                cv.line(self.pts[78:81], col["led"], 0.015)
            _clip_paint(self.img, k, inner, draw)
            bands = [(self.lm(48, 50, 51, 52, 54) + self.pts[60:65]) / 2,
                     (self.lm(48, 58, 57, 56, 54) + self.lm(60, 67, 66, 65, 64)) / 2]
            c.lines(bands, col["hair_dark"], 0.012)
            if gap < 1.0:
                c.line(self.pts[60:65], col["led"], 0.015)
            c.line(self.pts[48:60], col["hair_light"], 0.02, closed=True)
            return

        def draw(cv):
            cv.img[:] = col["cavity"] if self.species == "human" else (84, 24, 36)
            top, tip = self.pts[84], self.pts[85]
            cv.ellipse((top + tip) / 2 + (0, 0.03 * k),
                       (0.62 * half_width, 0.09 * k + abs(tip[1] - top[1])), 0.0, col["tongue"])
            if self.species == "cat":
                for p, s in ((self.pts[78], 1), (self.pts[80], -1)):
                    cv.poly(np.stack([p - (0.02 * k, 0.02 * k), p + (0.02 * k, -0.02 * k),
                                      p + (0.005 * k * s, 0.05 * k)]), col["teeth"])
                return
            cv.poly(teeth_low, col["teeth"])
            cv.poly(teeth_up, col["teeth"])
            gaps = [np.stack([p, p - (0, 0.08 * k)]) for p in self.pts[78:81]]
            cv.lines(gaps, col["teeth_gap"], 0.006)
        _clip_paint(self.img, k, inner, draw)
        if self.species == "cat":
            c.line(self.pts[48:55], col["lash"], 0.02)
            if gap > 1.0:
                c.line(self.lm(60, 67, 66, 65, 64), col["lash"], 0.015)
            return
        c.poly(upper_lip, col["lip"])
        c.poly(lower_lip, col["lip_light"])
        c.line(self.lm(48, 60, 61, 62, 63, 64, 54), col["lip_dark"], 0.012)
        if gap > 1.0:
            c.line(self.lm(60, 67, 66, 65, 64), col["lip_dark"], 0.008)

    def details(self) -> None:
        c, col, k = self.c, self.col, self.k
        if self.species == "human":
            smile = float(self.params[1])
            if smile > 0.15:
                colour = _mix(col["skin"], col["skin_dark"], min(smile, 1.0) * 0.7)
                folds = [self.part(n)[i] for i in (0, 1)
                         for n in ("fold_top", "fold_mid", "fold_low")]
                c.lines([np.stack(folds[:3]), np.stack(folds[3:])], colour, 0.012)
        elif self.species == "cat":
            w = self.part("whisker")
            lum = sum(self.app.skin) / 3
            colour = (70, 60, 56) if lum > 170 else (238, 236, 230)
            c.lines([np.stack([w[i], w[6 + i]]) for i in range(6)], colour, 0.008)
        else:
            crown = self.part("crown")[0]
            centre = crown + (np.sign(self.app.light_side) * 0.3 * k, 0.15 * k)
            _soft_blend(self.img, centre[None], 0.6 * k,
                        lambda m: m.ellipse(centre, (0.35 * k, 0.16 * k),
                                            -20 * np.sign(self.app.light_side), 255),
                        (255, 255, 255), 0.3, 0.08 * k)

    def glasses(self) -> None:
        if not self.has("glasses"):
            return
        c, colour = self.c, self.col["glasses"]
        lenses = self.part("glasses").reshape(2, 16, 2)
        arms = self.part("glasses_arms").reshape(2, 2, 2)
        for side, arm in ((-1, arms[0]), (1, arms[1])):
            if side * self.yaw <= 15:
                c.line(arm, colour, 0.022)
        for lens in lenses:
            c.line(lens, colour, 0.026, closed=True)
        bridge_mid = (lenses[0, 0] + lenses[1, 8]) / 2 - (0, 0.03 * self.k)
        c.line(np.stack([lenses[0, 0], bridge_mid, lenses[1, 8]]), colour, 0.022)
        glare = [lens[[5, 6]] * 0.8 + lens.mean(0) * 0.2 for lens in lenses]
        c.lines(glare, _mix(colour, (255, 255, 255), 0.75), 0.01)

    def shade(self, hull: np.ndarray) -> None:
        """Soft shading in one blurred mask: a gradient across the head away from the light,
        the far half of a turned face, eye sockets and shadows under the nose and lower lip."""
        k, ls, yaw = self.k, self.app.light_side, self.yaw
        away = np.array([-np.sign(ls) if abs(ls) > 0.15 else 0.0, 0.6])
        away /= np.linalg.norm(away)
        centre = hull.mean(0)
        radius = max(0.5 * float(np.ptp(hull[:, 0])), 1.0)
        start = 0.1 - 0.25 * abs(ls)
        shapes = []                                        # (polygon, level 0..255)
        if abs(yaw) > 4:
            rim = self.pts[8:17] if yaw > 0 else self.pts[8::-1]
            top = self.pts[26 if yaw > 0 else 17]
            far = np.concatenate([self.lm(27, 28, 29, 30, 33, 51, 57), rim, top[None]])
            shapes.append((far, int(255 * min(1.0, abs(yaw) / 50.0) * 0.4)))
        if self.species != "robot":
            for tag in ("r", "l"):
                crease, brow = self.part(f"crease_{tag}"), self.part(f"brow_bottom_{tag}")
                shapes.append((np.concatenate([brow, crease[::-1]]), 60))
            nose = self.lm(31, 32, 33, 34, 35)
            shapes.append((np.concatenate([nose, nose[::-1] + (0, 0.05 * k)]), 110))
            lip = self.lm(55, 56, 57, 58, 59)
            shapes.append((np.concatenate([lip, lip[::-1] + (0, 0.06 * k)]), 80))

        def draw(m):
            h, w = m.img.shape
            xs = np.arange(w, dtype=np.float32) + (m.off[0] - centre[0])
            ys = np.arange(h, dtype=np.float32) + (m.off[1] - centre[1])
            t = (xs[None, :] * away[0] + ys[:, None] * away[1]) / radius      # (h, w)
            m.img[:] = 255 * np.clip((t - start) / (1.0 - start), 0, 1) ** 1.5
            extra = np.zeros_like(m.img)
            for poly, level in shapes:
                cv2.fillPoly(extra, [_fx(poly - m.off)], level, _AA, _SHIFT)
            np.maximum(m.img, extra, out=m.img)
        clip = [hull] if self.nose_hull is None else [hull, self.nose_hull]
        _soft_blend(self.img, hull, 0.05 * k, draw, (10, 6, 16), self.app.shade, 0.05 * k,
                    clip=clip)
