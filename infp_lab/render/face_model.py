"""Parametric 2.5-D face model of SynConv (design.md section 3.1, "Faces").

A 3-D landmark template (built per :class:`Appearance` from its proportions and species)
plus linear expression blendshapes and two correctives, posed by yaw/pitch/roll about a
pivot inside the head and projected with a mild perspective into a ``size x size`` frame.

Coordinates of the template ("face units", about 9 cm each): x to the image right, y down,
z towards the camera; the eyes sit at y = -0.15, the chin at about y = 0.95.

Motion parameters (``PARAM_NAMES``, units are part of the contract): jaw_open 0..1,
smile -0.5..1, lip_round 0..1, lip_press 0..1, blink_left/blink_right 0 open..1 closed
(left = the avatar's own left eye, image right), brow_raise -1..1, gaze_x/gaze_y -1..1
(+x image right, +y down), yaw/pitch/roll in degrees (+yaw turns the face to the image
right, +pitch = chin down, +roll = clockwise), tx/ty fractions of the frame, scale.

Landmarks (``NUM_LANDMARKS`` = 86; "right" = the subject's right = image left):

====== ===================================================================
index  meaning
====== ===================================================================
0-16   jaw contour, 0 = right temple/ear level, 8 = chin, 16 = left side
17-21  right brow, outer (17) to inner (21)
22-26  left brow, inner (22) to outer (26)
27-30  nose bridge, top (27) to tip (30)
31-35  nose base, right wing (31), 33 = under the tip, left wing (35)
36-41  right eye: 36 outer corner, 37-38 upper lid, 39 inner corner, 40-41 lower lid
42-47  left eye: 42 inner corner, 43-44 upper lid, 45 outer corner, 46-47 lower lid
48-59  outer lip: 48 right corner, 49-53 upper lip (51 centre), 54 left corner,
       55-59 lower lip from left to right (57 centre)
60-67  inner lip: 60 right corner, 61-63 upper (62 centre), 64 left corner,
       65-67 lower (66 centre)
68, 69 iris centres: 68 right eye, 69 left eye
70-73  right eyelid extras: 70 upper between 36/37, 71 upper between 38/39,
       72 lower between 39/40, 73 lower between 41/36
74-77  left eyelid extras: 74 upper between 42/43, 75 upper between 44/45,
       76 lower between 45/46, 77 lower between 47/42
78-80  upper-teeth edge: right, centre, left
81-83  lower-teeth edge: right, centre, left
84, 85 tongue top (back, centre), tongue tip
====== ===================================================================

The layout means the same for every species (a cat's or robot's eye, nose and mouth
points play the same roles). Render-only vertices (cranium, hair, ears, neck, glasses, ...)
follow the landmarks in the template; the renderer finds them through ``FaceGeometry.parts``.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from infp_lab.render.appearance import Appearance

PARAM_NAMES: tuple[str, ...] = (
    "jaw_open", "smile", "lip_round", "lip_press", "blink_left", "blink_right",
    "brow_raise", "gaze_x", "gaze_y", "yaw", "pitch", "roll", "tx", "ty", "scale")
NUM_PARAMS = len(PARAM_NAMES)
NUM_EXPRESSIONS = 9  # the first nine parameters are blendshape weights
NEUTRAL_PARAMS: np.ndarray = np.zeros(NUM_PARAMS, np.float32)
NEUTRAL_PARAMS[PARAM_NAMES.index("scale")] = 1.0
NEUTRAL_PARAMS.setflags(write=False)


def _span(start: int, stop: int) -> tuple[int, ...]:
    return tuple(range(start, stop))


LANDMARK_GROUPS: dict[str, tuple[int, ...]] = {
    "jaw": _span(0, 17), "right_brow": _span(17, 22), "left_brow": _span(22, 27),
    "nose": _span(27, 36), "right_eye": _span(36, 42), "left_eye": _span(42, 48),
    "outer_lip": _span(48, 60), "inner_lip": _span(60, 68), "iris": (68, 69),
    "right_eyelid_extra": _span(70, 74), "left_eyelid_extra": _span(74, 78),
    "mouth_interior": _span(78, 86),
}
LANDMARK_GROUPS["contour"] = LANDMARK_GROUPS["jaw"]
LANDMARK_GROUPS["eyes"] = (LANDMARK_GROUPS["right_eye"] + LANDMARK_GROUPS["left_eye"]
                           + LANDMARK_GROUPS["iris"] + LANDMARK_GROUPS["right_eyelid_extra"]
                           + LANDMARK_GROUPS["left_eyelid_extra"])
LANDMARK_GROUPS["mouth"] = (LANDMARK_GROUPS["outer_lip"] + LANDMARK_GROUPS["inner_lip"]
                            + LANDMARK_GROUPS["mouth_interior"])
NUM_LANDMARKS = 86

# Eye lids in image order (image-left corner first); corners are shared by both lids.
RIGHT_EYE_UPPER = (36, 70, 37, 38, 71, 39)
RIGHT_EYE_LOWER = (36, 73, 41, 40, 72, 39)
LEFT_EYE_UPPER = (42, 74, 43, 44, 75, 45)
LEFT_EYE_LOWER = (42, 77, 47, 46, 76, 45)
_LID_PAIRS = np.array([(70, 73), (37, 41), (38, 40), (71, 72),
                       (74, 77), (43, 47), (44, 46), (75, 76)])   # (upper, lower)
_INNER_LIP_PAIRS = np.array([(61, 67), (62, 66), (63, 65)])      # (upper, lower)
_LOWER_LIP = np.array([55, 56, 57, 58, 59])

_PIVOT = np.array([0.0, -0.2, -0.45])     # rotation centre inside the head
_CAMERA_DISTANCE = 12.0                    # face units; mild perspective
_UNITS_TO_FRAME = 0.235                    # frame fraction per face unit at scale 1
_BODY_POSE_SHARE = 0.3                     # how much of yaw/roll the shoulders follow


class FaceGeometry(NamedTuple):
    """Per-appearance template, blendshapes and named vertex ranges."""

    template: np.ndarray        # (V, 3) neutral vertices, landmarks first
    deltas: np.ndarray          # (E, V, 3) blendshape offsets for the expression params
    parts: dict[str, slice]     # named render-only ranges (and landmark groups)
    body: np.ndarray            # (B, 3) torso points, posed with the body pose
    body_parts: dict[str, slice]


class FramePose(NamedTuple):
    """Total head pose of one frame plus the pixels-per-face-unit factor."""

    yaw: float
    pitch: float
    roll: float
    px_per_unit: float


def check_params(params: np.ndarray) -> tuple[np.ndarray, bool]:
    """Validate a (P,) or (T, P) parameter array; return (T, P) float64 and a squeeze flag."""
    arr = np.asarray(params, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != NUM_PARAMS:
        raise ValueError(f"params must have shape ({NUM_PARAMS},) or (T, {NUM_PARAMS}) "
                         f"ordered as PARAM_NAMES, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("params contain NaN or infinite values")
    return (arr[None] if arr.ndim == 1 else arr), arr.ndim == 1


def check_size(size: int) -> int:
    """Validate the output frame size (an int >= 16)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    return int(size)


@lru_cache(maxsize=64)
def face_geometry(appearance: Appearance) -> FaceGeometry:
    """Template and blendshapes of one identity (cached per appearance)."""
    if not isinstance(appearance, Appearance):
        raise ValueError(f"appearance must be an Appearance, got {type(appearance).__name__}")
    neutral, parts = _build_vertices(appearance, np.zeros(NUM_EXPRESSIONS))
    deltas = np.empty((NUM_EXPRESSIONS,) + neutral.shape)       # (E, V, 3)
    for k in range(NUM_EXPRESSIONS):
        unit = np.zeros(NUM_EXPRESSIONS)
        unit[k] = 1.0
        deltas[k] = _build_vertices(appearance, unit)[0] - neutral
    body, body_parts = _build_body(appearance)
    for arr in (neutral, deltas, body):
        arr.setflags(write=False)
    return FaceGeometry(neutral, deltas, parts, body, body_parts)


def expression_vertices(params2d: np.ndarray, geom: FaceGeometry,
                        count: int | None = None) -> np.ndarray:
    """Unposed vertices with blendshapes and correctives applied: (T, count, 3)."""
    count = geom.template.shape[0] if count is None else count
    weights = params2d[:, :NUM_EXPRESSIONS]                                  # (T, E)
    verts = geom.template[None, :count] + np.einsum(
        "te,evc->tvc", weights, geom.deltas[:, :count])                      # (T, V, 3)
    y = verts[..., 1]                                                        # view (T, V)
    # Lip press closes the lip gap multiplicatively (a linear blendshape cannot).
    press = np.clip(params2d[:, PARAM_NAMES.index("lip_press")], 0.0, 1.0)
    gap = np.maximum(y[:, _INNER_LIP_PAIRS[:, 1]] - y[:, _INNER_LIP_PAIRS[:, 0]], 0.0)  # (T, 3)
    closing = 0.95 * press[:, None] * gap
    y[:, _INNER_LIP_PAIRS[:, 1]] -= closing
    y[:, _LOWER_LIP] -= closing[:, 1:2]
    # Inner lips and eyelids never cross.
    y[:, _INNER_LIP_PAIRS[:, 1]] = np.maximum(y[:, _INNER_LIP_PAIRS[:, 1]],
                                              y[:, _INNER_LIP_PAIRS[:, 0]])
    y[:, _LID_PAIRS[:, 0]] = np.minimum(y[:, _LID_PAIRS[:, 0]], y[:, _LID_PAIRS[:, 1]])
    return verts


def _rotations(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(T, 3, 3) matrices R = roll @ pitch @ yaw for angles in degrees."""
    a, b, c = (np.radians(v) for v in (yaw, pitch, roll))
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    one, zero = np.ones_like(a), np.zeros_like(a)
    r_yaw = np.stack([ca, zero, sa, zero, one, zero, -sa, zero, ca], -1).reshape(-1, 3, 3)
    r_pitch = np.stack([one, zero, zero, zero, cb, sb, zero, -sb, cb], -1).reshape(-1, 3, 3)
    r_roll = np.stack([cc, -sc, zero, sc, cc, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return r_roll @ r_pitch @ r_yaw


def total_pose(params2d: np.ndarray, appearance: Appearance) -> tuple[np.ndarray, ...]:
    """Motion pose plus the identity's base pose: (yaw, pitch, roll) each (T,) degrees."""
    yaw = params2d[:, 9] + appearance.base_yaw
    pitch = params2d[:, 10] + appearance.base_pitch
    return yaw, pitch, params2d[:, 11]


def project_points(points: np.ndarray, params2d: np.ndarray, appearance: Appearance,
                   size: int, body: bool = False) -> np.ndarray:
    """Pose and project (T, N, 3) face-unit points to (T, N, 2) pixel coordinates.

    ``body=True`` uses the torso pose (a share of yaw and roll, no pitch).
    """
    yaw, pitch, roll = total_pose(params2d, appearance)
    if body:
        yaw, pitch, roll = yaw * _BODY_POSE_SHARE, pitch * 0.0, roll * _BODY_POSE_SHARE
    rot = _rotations(yaw, pitch, roll)                                     # (T, 3, 3)
    q = np.einsum("tij,tnj->tni", rot, points - _PIVOT)                    # (T, N, 3)
    persp = _CAMERA_DISTANCE / (_CAMERA_DISTANCE - q[..., 2:3])            # (T, N, 1)
    xy = q[..., :2] * persp + _PIVOT[:2]                                   # (T, N, 2)
    k = (_UNITS_TO_FRAME * size * appearance.head_scale) * params2d[:, 14]  # (T,)
    centre_x = size * (0.5 + appearance.centre_x + params2d[:, 12])
    centre_y = size * (0.5 + appearance.centre_y + params2d[:, 13])
    centre = np.stack([centre_x, centre_y], -1)                            # (T, 2)
    return xy * k[:, None, None] + centre[:, None, :]


def frame_pose(params: np.ndarray, appearance: Appearance, size: int) -> FramePose:
    """Total pose of one (P,) parameter vector, for the renderer."""
    p2 = params[None]
    yaw, pitch, roll = total_pose(p2, appearance)
    k = _UNITS_TO_FRAME * size * appearance.head_scale * params[14]
    return FramePose(float(yaw[0]), float(pitch[0]), float(roll[0]), float(k))


def project_landmarks(params: np.ndarray, appearance: Appearance, size: int) -> np.ndarray:
    """Project the 86 landmarks of one frame or a sequence.

    Args:
        params: (P,) or (T, P) motion parameters ordered as ``PARAM_NAMES``.
        appearance: the identity (its base pose is added to the motion pose).
        size: frame side in pixels (>= 16).

    Returns:
        (L, 2) or (T, L, 2) float32 pixel coordinates (x, y).
    """
    params2d, squeeze = check_params(params)
    size = check_size(size)
    geom = face_geometry(appearance)
    verts = expression_vertices(params2d, geom, NUM_LANDMARKS)             # (T, L, 3)
    pts = project_points(verts, params2d, appearance, size).astype(np.float32)
    return pts[0] if squeeze else pts


# --------------------------------------------------------------------------------------
# Template construction. Every expression weight enters linearly, so the blendshapes of
# ``face_geometry`` (differences against the neutral build) reproduce these formulas.
# --------------------------------------------------------------------------------------
_HUMAN = dict(
    eye_y=-0.15, eye_dx=0.30, eye_z=0.36, eye_hw=0.135, eye_hu=0.072, eye_hl=0.05,
    tilt=0.01, iris_r=0.056, crease=0.03,
    brow_y=-0.33, brow_len=0.36, brow_arch=0.05, brow_t=0.035,
    bridge_z=0.42, nose_tip=0.19, nose_tip_z=0.76, nose_base=0.285, nose_hw=0.11,
    nose_base_dy=(-0.02, 0.005, 0.012, 0.005, -0.02),
    mouth_y=0.50, mouth_z=0.50, mouth_hw=0.245, lip_up=0.075, lip_lo=0.095, inner_y0=0.0,
    up_x=(-1, -0.62, -0.25, 0, 0.25, 0.62, 1), up_y=(0, -0.6, -1.0, -0.82, -1.0, -0.6, 0),
    lo_x=(0.62, 0.25, 0, -0.25, -0.62), lo_y=(0.65, 0.95, 1.0, 0.95, 0.65),
    in_x=(-0.86, -0.42, 0, 0.42, 0.86),
    chin=0.95, chin_z=0.36, jaw_hw=0.76, jaw_top=-0.12, jaw_n=2.3, jaw_side_z=-0.2,
    jaw_drop=0.30, cr_c=(0.0, -0.40, -0.42), cr_r=(0.80, 0.98, 0.95), cr_n=2.0,
    neck_hw=0.40, ear_y=0.03)
_LAYOUTS = {
    "human": _HUMAN,
    "cat": {**_HUMAN, **dict(
        eye_y=-0.14, eye_dx=0.34, eye_hw=0.15, eye_hu=0.085, eye_hl=0.07, tilt=0.03,
        iris_r=0.08, crease=0.0, brow_y=-0.36, brow_arch=0.02, nose_tip=0.15,
        nose_tip_z=0.66, nose_base=0.24, nose_hw=0.075,
        nose_base_dy=(-0.075, -0.035, 0.0, -0.035, -0.075),
        mouth_y=0.39, mouth_z=0.52, mouth_hw=0.16, lip_up=0.05, lip_lo=0.07, inner_y0=0.03,
        up_x=(-1, -0.7, -0.35, 0, 0.35, 0.7, 1), up_y=(-0.2, 0.5, 0.55, -0.6, 0.55, 0.5, -0.2),
        lo_x=(0.6, 0.3, 0, -0.3, -0.6), lo_y=(1.0, 1.5, 1.6, 1.5, 1.0),
        chin=0.68, chin_z=0.40, jaw_hw=0.84, jaw_n=2.1, jaw_drop=0.2,
        cr_c=(0.0, -0.32, -0.40), cr_r=(0.84, 0.90, 0.90), neck_hw=0.6)},
    "robot": {**_HUMAN, **dict(
        eye_hw=0.14, eye_hu=0.06, eye_hl=0.06, tilt=0.0, iris_r=0.045, crease=0.03,
        brow_arch=0.0, brow_t=0.04, nose_tip=0.17, nose_tip_z=0.56, nose_base=0.25,
        nose_hw=0.08, mouth_y=0.56, mouth_hw=0.27, lip_up=0.065, lip_lo=0.065,
        up_x=(-1, -0.97, -0.5, 0, 0.5, 0.97, 1), up_y=(0, -1, -1, -1, -1, -1, 0),
        lo_x=(0.97, 0.5, 0, -0.5, -0.97), lo_y=(1, 1, 1, 1, 1),
        in_x=(-0.9, -0.45, 0, 0.45, 0.9), chin=0.9, jaw_n=6.0, jaw_hw=0.74,
        cr_c=(0.0, -0.42, -0.40), cr_r=(0.76, 0.92, 0.86), cr_n=6.0, neck_hw=0.26)},
}


def _pts(x, y, z) -> np.ndarray:
    """Stack broadcastable coordinates into an (N, 3) array."""
    x, y, z = np.broadcast_arrays(np.atleast_1d(np.asarray(x, float)),
                                  np.atleast_1d(np.asarray(y, float)),
                                  np.atleast_1d(np.asarray(z, float)))
    return np.stack([x, y, z], -1)


class _Build:
    """Scratch state of one template build: layout, appearance, weights and outputs."""

    def __init__(self, app: Appearance, e: np.ndarray):
        self.L, self.a = _LAYOUTS[app.species], app
        (self.jaw, self.smile, self.round, self.press, self.blink_left, self.blink_right,
         self.brow, self.gaze_x, self.gaze_y) = (float(v) for v in e)
        self.lm = np.zeros((NUM_LANDMARKS, 3))
        self.extra: dict[str, np.ndarray] = {}
        self.chin_y = self.fy(self.L["chin"])
        self.top_y = self.fy(self.L["nose_base"])

    def fy(self, y):
        """Stretch a y coordinate below the eyes by the identity's face length."""
        return self.L["eye_y"] + (np.asarray(y, float) - self.L["eye_y"]) * self.a.face_length

    def jaw_weight(self, y):
        """How much a point at template height y follows the jaw (0 above the nose)."""
        return np.clip((np.asarray(y) - self.top_y) / (self.chin_y - self.top_y), 0.0, 1.0)

    def ellipsoid(self, lat: np.ndarray, n_lon: int, grow=0.0) -> np.ndarray:
        """Cranium surface samples at polar angles ``lat`` (0 = top): (len(lat)*n_lon, 3)."""
        L = self.L
        lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        d = np.stack([np.sin(la) * np.cos(lo), -np.cos(la), np.sin(la) * np.sin(lo)], -1)
        d = np.sign(d) * np.abs(d) ** (2.0 / L["cr_n"])      # superellipsoid for robots
        radii = np.array(L["cr_r"]) * (self.a.face_width, 1.0, 1.0) + np.asarray(grow)
        return (np.array(L["cr_c"]) + d * radii).reshape(-1, 3)


def _jaw_and_brows(b: _Build) -> None:
    L, a = b.L, b.a
    u = np.linspace(-np.pi / 2, np.pi / 2, 17)
    sn, cs = np.sin(u), np.abs(np.cos(u))
    ex = 2.0 / L["jaw_n"]
    width = L["jaw_hw"] * a.face_width * (1 - (1 - a.jaw_width) * cs ** 2)
    y = L["jaw_top"] + (b.chin_y - L["jaw_top"]) * cs ** ex
    z = L["jaw_side_z"] + (L["chin_z"] - L["jaw_side_z"]) * cs ** 1.5
    w = b.jaw_weight(y)
    b.lm[0:17] = _pts(width * np.sign(sn) * np.abs(sn) ** ex,
                      y + b.jaw * L["jaw_drop"] * a.face_length * w, z - 0.12 * b.jaw * w)
    u = np.linspace(0, 1, 5)
    for side, first, tag in ((-1, 17, "r"), (1, 22, "l")):
        outer = 1 - u if side < 0 else u
        x = side * (L["eye_dx"] * a.eye_spacing + 0.02) + (u - 0.5) * L["brow_len"]
        y = (L["brow_y"] - L["brow_arch"] * np.sin(np.pi * (0.15 + 0.85 * (1 - outer)))
             + 0.03 * outer ** 3 - (0.055 + 0.03 * (1 - outer)) * b.brow)
        x = x + side * 0.02 * (1 - outer) * b.brow
        centre = _pts(x, y, L["bridge_z"] + 0.01 - 0.14 * outer ** 2)
        b.lm[first:first + 5] = centre
        half = 0.5 * L["brow_t"] * a.brow_thickness * (1.15 - 0.5 * outer)
        b.extra[f"brow_top_{tag}"] = centre - _pts(0, half, 0)
        b.extra[f"brow_bottom_{tag}"] = centre + _pts(0, half, 0)


def _eyes(b: _Build) -> None:
    L, a = b.L, b.a
    t = np.array([0, 1 / 6, 1 / 3, 2 / 3, 5 / 6, 1])
    hw, hu, hl = (L[k] * a.eye_size for k in ("eye_hw", "eye_hu", "eye_hl"))
    iris_edges, sockets = [], []
    for side, upper_idx, lower_idx, iris, blink, tag in (
            (-1, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, 68, b.blink_right, "r"),
            (1, LEFT_EYE_UPPER, LEFT_EYE_LOWER, 69, b.blink_left, "l")):
        cx, cy, cz = side * L["eye_dx"] * a.eye_spacing, L["eye_y"], L["eye_z"]

        def lids(tt):
            outer = 1 - tt if side < 0 else tt
            bump, tilt = np.sin(np.pi * tt), -L["tilt"] * (2 * outer - 1)
            return outer, bump, tilt, cx + (tt - 0.5) * 2 * hw

        outer, bump, tilt, x = lids(t)
        upper_open = cy - hu * bump ** 0.85 + tilt
        lower_open = cy + hl * bump + tilt
        closed = cy + 0.45 * hl * bump + tilt
        follow = 0.25 * hu * bump * b.gaze_y
        z = cz + 0.04 * bump - 0.05 * outer
        b.lm[list(upper_idx)] = _pts(x, upper_open + blink * (closed - upper_open) + follow, z)
        lower = (lower_open + blink * (closed - lower_open) + follow
                 - 0.3 * hl * bump * b.smile)
        b.lm[list(lower_idx[1:-1])] = _pts(x, lower, z)[1:-1]
        centre = _pts(cx + b.gaze_x * 0.5 * hw, cy - 0.12 * hu + b.gaze_y * 0.4 * hu, cz + 0.05)
        b.lm[iris] = centre[0]
        r = L["iris_r"] * a.eye_size
        iris_edges += [centre + _pts(r, 0, 0), centre - _pts(0, r, 0)]
        tc = np.linspace(0.02, 0.98, 5)
        outer, bump, tilt, x = lids(tc)
        b.extra[f"crease_{tag}"] = _pts(
            cx + (tc - 0.5) * 2.06 * hw,
            cy - hu * bump ** 0.85 - (L["crease"] + 0.008) * a.eye_size + tilt - 0.012 * b.brow,
            cz + 0.04 * bump - 0.05 * outer)
        sockets.append(_pts(cx + np.array([-1.3, 1.3, 1.3, -1.3]) * hw,
                            cy + np.array([-1.7 * hu, -1.7 * hu, 1.8 * hl, 1.8 * hl]), cz - 0.02))
    b.extra["iris_edge"] = np.concatenate(iris_edges)       # r-x, r-y, l-x, l-y
    b.extra["socket"] = np.concatenate(sockets)             # 4 corners per eye


def _nose(b: _Build) -> None:
    L, a = b.L, b.a
    ey = L["eye_y"]
    tip_y = ey + (L["nose_tip"] - ey) * a.nose_length * a.face_length
    base_y = ey + (L["nose_base"] - ey) * a.nose_length * a.face_length
    fr = np.array([0.0, 0.36, 0.70, 1.0])
    b.lm[27:31] = _pts(0, ey + (tip_y - ey) * fr,
                       L["bridge_z"] + (L["nose_tip_z"] - L["bridge_z"]) * fr ** 1.3)
    hw = L["nose_hw"] * a.nose_width
    xs = np.array([-1, -0.5, 0, 0.5, 1.0])
    b.lm[31:36] = _pts(xs * hw + np.sign(xs) * (np.abs(xs) == 1) * 0.012 * b.smile,
                       base_y + np.array(L["nose_base_dy"]) - 0.01 * b.smile * np.abs(xs),
                       L["nose_tip_z"] - 0.24 + np.array([0, 0.06, 0.1, 0.06, 0]))
    b.extra["alar"] = _pts([-1.05 * hw, 1.05 * hw], base_y - 0.075, L["nose_tip_z"] - 0.3)
    b.extra["nostril"] = _pts([-0.5 * hw, 0.5 * hw], base_y - 0.008, L["nose_tip_z"] - 0.2)
    hw_m = L["mouth_hw"] * a.mouth_width
    ym = b.fy(L["mouth_y"])
    drop = L["jaw_drop"] * a.face_length * 0.9
    sg = np.array([-1.0, 1.0])
    for name, x, y, fx, fy, jy in (
            ("fold_top", 0.17 * hw / 0.11, base_y - 0.05, 0.2, 0.0, 0.0),
            ("fold_mid", hw_m + 0.05, ym - 0.035, 1.0, 1.0, 0.0),
            ("fold_low", hw_m + 0.055, ym + 0.08, 1.0, 1.0, 0.4)):
        b.extra[name] = _pts(sg * (x + 0.035 * fx * b.smile), y - 0.03 * fy * b.smile
                             + jy * drop * b.jaw, 0.42)
    b.extra["blush"] = _pts(sg * (0.44 * a.face_width + 0.01 * b.smile),
                            b.fy(0.17) - 0.04 * b.smile, 0.36)


def _mouth(b: _Build) -> None:
    L, a = b.L, b.a
    ym, zm, hw = b.fy(L["mouth_y"]), L["mouth_z"], L["mouth_hw"] * a.mouth_width
    y0, lt = ym + L["inner_y0"], a.lip_thickness
    drop = L["jaw_drop"] * a.face_length * 0.9

    def shaped(x, y, z, c, jaw_dy, smile_dy, round_dx, round_dy, press_dy):
        sgn = np.sign(x)
        dx = 0.055 * c ** 2 * b.smile - 0.03 * c * b.jaw - round_dx * c * b.round
        return _pts(x + sgn * dx,
                    y + jaw_dy * b.jaw + smile_dy * b.smile + round_dy * b.round
                    + press_dy * b.press, z + 0.08 * b.round - 0.02 * b.press)

    x = np.array(L["up_x"]) * hw
    c = np.abs(x) / hw
    b.lm[48:55] = shaped(x, ym + L["lip_up"] * lt * np.array(L["up_y"]),
                         zm + np.array([-0.1, -0.02, 0.03, 0.04, 0.03, -0.02, -0.1]), c,
                         drop * 0.45 * c ** 4 - 0.012 * (1 - c), -0.05 * c ** 2 - 0.01 * (1 - c),
                         0.085, -0.012 * (1 - c), 0.02 * lt * (1 - c ** 4))
    x = np.array(L["lo_x"]) * hw
    c = np.abs(x) / hw
    b.lm[55:60] = shaped(x, ym + L["lip_lo"] * lt * np.array(L["lo_y"]),
                         zm + np.array([-0.02, 0.02, 0.03, 0.02, -0.02]), c,
                         drop * (1 - 0.55 * c ** 4), -0.045 * c ** 2 + 0.015 * (1 - c),
                         0.075, 0.012 * (1 - c), -0.025 * lt * (1 - c ** 4))
    x = np.array(L["in_x"]) * hw
    c = np.abs(x) / (np.abs(x).max())
    b.lm[60:65] = shaped(x, y0 + np.array([0, -0.004, -0.005, -0.004, 0]), zm - 0.03, c,
                         drop * 0.45 * c ** 4 - 0.02 * (1 - c), -0.05 * c ** 2 - 0.012 * (1 - c),
                         0.1, -0.014 * (1 - c), 0.0)
    x = np.array(L["in_x"][3:0:-1]) * hw
    c = np.abs(x) / (np.abs(np.array(L["in_x"])).max() * hw)
    b.lm[65:68] = shaped(x, y0 + 0.004, zm - 0.03, c, drop * (1 - 0.55 * c ** 4),
                         -0.05 * c ** 2 + 0.022 * (1 - c), 0.1, 0.014 * (1 - c), 0.0)
    xs = np.array([-0.42, 0.0, 0.42]) * hw
    sgn = np.sign(xs)
    b.lm[78:81] = _pts(xs + sgn * 0.03 * b.smile, y0 + 0.014, zm - 0.07)
    b.lm[81:84] = _pts(xs + sgn * 0.03 * b.smile, y0 + 0.02 + 0.85 * drop * b.jaw
                       + 0.015 * b.smile, zm - 0.08)
    b.lm[84] = _pts(0, y0 + 0.06 + 0.7 * drop * b.jaw, zm - 0.25)[0]
    b.lm[85] = _pts(0, y0 + 0.04 + 0.82 * drop * b.jaw, zm - 0.1)[0]
    sg = np.array([-1.0, -1.0, 1.0, 1.0])
    b.extra["teeth_upper"] = _pts(sg * (0.62 * hw + 0.04 * b.smile),
                                  y0 + np.array([-0.07, 0.006, 0.006, -0.07]), zm - 0.08)
    b.extra["teeth_lower"] = _pts(sg * (0.58 * hw + 0.04 * b.smile),
                                  y0 + np.array([0.1, 0.028, 0.028, 0.1]) + 0.85 * drop * b.jaw
                                  + 0.015 * b.smile, zm - 0.09)
    mx = np.array([-0.33, -0.14, 0.0, 0.14, 0.33]) * hw / 0.245
    c = np.abs(mx) / mx.max()
    b.extra["moustache"] = _pts(mx + np.sign(mx) * 0.055 * c ** 2 * b.smile,
                                ym + np.array([-0.01, -0.085, -0.075, -0.085, -0.01]) * lt
                                - 0.05 * c ** 2 * b.smile, zm + 0.05)
    bx = np.array([-0.74, -0.62, -0.44, -0.32, 0, 0.32, 0.44, 0.62, 0.74]) * a.face_width
    by = b.fy(np.array([0.0, 0.27, 0.40, 0.43, 0.41, 0.43, 0.40, 0.27, 0.0]))
    corner = (np.abs(np.abs(bx / a.face_width) - 0.32) < 1e-6).astype(float)
    b.extra["beard"] = _pts(bx + np.sign(bx) * 0.05 * corner * b.smile,
                            by + b.jaw_weight(by) * L["jaw_drop"] * a.face_length * b.jaw
                            - 0.04 * corner * b.smile,
                            0.12 + 0.4 * (1 - np.abs(bx) / 0.8))


def _head(b: _Build) -> None:
    L, a = b.L, b.a
    cx, cy, cz = L["cr_c"]
    rx, ry, rz = L["cr_r"]
    fw = a.face_width
    b.extra["cranium"] = b.ellipsoid(np.array([0.0, 0.45, 0.9, 1.35, 1.8, 2.2]), 16)
    sg = np.array([-1.0, 1.0])
    # Back of the head, cheeks and the front profile (forehead, cheekbones, philtrum, chin)
    # so that the silhouette of a turned head follows the face.
    ym, base = b.fy(L["mouth_y"]), b.fy(L["nose_base"])
    chin_front = b.chin_y - 0.2
    b.extra["head_extra"] = np.concatenate([
        _pts(sg * 0.45 * fw, 0.3, cz - 0.7), _pts(0, 0.4, cz - 0.78),
        _pts(sg * 0.66 * fw, 0.0, 0.12), _pts(sg * 0.63 * fw, 0.3, 0.12),
        _pts(0, L["brow_y"] - 0.15, L["bridge_z"] + 0.08), _pts(sg * 0.42 * fw, -0.02, 0.33),
        _pts(0, (ym + base) / 2, L["mouth_z"] + 0.02),
        _pts(0, chin_front + b.jaw_weight(chin_front) * L["jaw_drop"] * a.face_length * b.jaw,
             L["chin_z"] + 0.1)])
    b.extra["neck_top"] = np.concatenate([_pts(sg * L["neck_hw"] * fw, 0.45, -0.30),
                                          _pts(sg * L["neck_hw"] * fw, 0.2, -0.75)])
    # Hairline / robot face-plate top: image left to right over the forehead.
    hx = np.linspace(-1, 1, 11) * 0.75 * fw
    if a.species == "robot":
        hy = -0.66 + 0.08 * np.abs(hx / hx.max()) ** 6
    else:
        fringe = a.hair_style in ("long", "bob", "short") and a.hairline > 0.1
        yc = -0.72 + 0.9 * a.hairline
        hy = yc + (-0.06 - yc) * np.abs(hx / hx.max()) ** (4.0 if fringe else 2.2)
        hy = hy - 0.07 * a.hair_part * hx * (1 - np.abs(hx / hx.max()))   # side parting
        if fringe:                                                     # jagged fringe tips
            hy[1:-1] += 0.025 * (-1.0) ** np.arange(1, len(hx) - 1)
    inside = 1 - (hx / (rx * fw)) ** 2 - ((hy - cy) / ry) ** 2
    b.extra["hairline"] = _pts(hx, hy, cz + rz * np.sqrt(np.clip(inside, 0.02, 1)) + 0.01)
    b.extra["crown"] = _pts(0, cy - 0.85 * ry, cz + 0.2)
    # Hair volumes (empty for bald heads and non-humans keep fixed sizes per appearance).
    v = a.hair_volume
    if a.species == "human" and a.hair_style != "bald":
        bottom = 0.25 if a.hair_style == "afro" else -0.05
        lat_b = np.arccos(np.clip((cy - bottom) / (ry + v), -1, 1))
        b.extra["hair_cap"] = b.ellipsoid(np.linspace(0, lat_b, 6), 24, grow=(v, 1.5 * v, v))
    if a.hair_style in ("long", "bob", "afro") and a.species == "human":
        end = {"long": 1.45, "bob": 0.62, "afro": 0.3}[a.hair_style]
        wide = (rx + v) * fw * (1.08 if a.hair_style == "long" else 1.0)
        b.extra["hair_back"] = np.concatenate([
            b.extra["hair_cap"], _pts(sg * wide, end, cz),
            _pts(sg * wide * 0.85, end + 0.06, cz - 0.4), _pts(0, end + 0.08, cz - 0.5)])
        if a.hair_style != "afro":
            inward = 0.66 if a.hair_style == "bob" else 0.76
            for side, tag in ((-1, "r"), (1, "l")):
                b.extra[f"lock_{tag}"] = _pts(
                    side * np.array([0.74, 0.82, inward + 0.04, 0.97 + v, 0.88 + v]) * fw,
                    [-0.45, 0.25, end + 0.04, end + 0.06, -0.45],
                    [-0.02, -0.12, -0.15, -0.45, -0.35])
    if a.hair_style == "bun" and a.species == "human":
        centre = _pts(0, cy - ry - v - 0.1, cz - 0.3)
        b.extra["bun"] = np.concatenate([centre, centre + _pts(0.27, 0, 0)])
    _ears(b, sg)


def _ears(b: _Build, sg: np.ndarray) -> None:
    L, a = b.L, b.a
    fw, es = a.face_width, a.ear_size
    if a.species == "cat":
        for side, tag in ((-1, "r"), (1, "l")):
            tri = _pts(side * np.array([0.16, 0.66, 0.76]) * fw, [-1.08, -1.62, -0.68],
                       [-0.25, -0.35, -0.35])
            mid = tri.mean(0)
            b.extra[f"ear_{tag}"] = tri
            b.extra[f"ear_inner_{tag}"] = mid + 0.6 * (tri - mid) + _pts(0, 0.05, 0.03)
        return
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    for side, tag in ((-1, "r"), (1, "l")):
        centre = np.array([side * 0.77 * fw, L["ear_y"], -0.36])
        if a.species == "robot":
            ring = _pts(0, -0.17 * np.cos(t), 0.17 * np.sin(t))
            b.extra[f"ear_{tag}"] = np.concatenate([centre + ring + _pts(side * 0.07, 0, 0),
                                                    centre + ring - _pts(side * 0.03, 0, 0)])
            b.extra[f"ear_inner_{tag}"] = centre + 0.55 * ring[::2] + _pts(side * 0.07, 0, 0)
            continue
        up, back = np.array([0.0, 1.0, 0.0]), np.array([side * 0.72, 0.0, -0.69])
        h, d = 0.2 * es, 0.1 * es
        taper = 1 - 0.35 * np.clip(-np.cos(t), 0, 1)
        b.extra[f"ear_{tag}"] = (centre + np.outer(-h * np.cos(t), up)
                                 + np.outer(d * (1 + np.sin(t)) * taper, back))
        ti = np.linspace(0.12, 0.88, 5) * np.pi
        b.extra[f"ear_inner_{tag}"] = (centre + np.outer(-0.62 * h * np.cos(ti), up)
                                       + np.outer(d * (1 + 0.55 * np.sin(ti)), back))


def _accessories(b: _Build) -> None:
    L, a = b.L, b.a
    fw, ey = a.face_width, L["eye_y"]
    base_y = ey + (L["nose_base"] - ey) * a.nose_length * a.face_length
    if a.glasses != "none":
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        rx, ry, n = (0.145, 0.13, 2.0) if a.glasses == "round" else (0.16, 0.115, 5.0)
        ct, st = np.cos(t), np.sin(t)
        ox = rx * np.sign(ct) * np.abs(ct) ** (2 / n)
        oy = ry * np.sign(st) * np.abs(st) ** (2 / n)
        lenses, hinges = [], []
        for side in (-1, 1):
            cx = side * L["eye_dx"] * a.eye_spacing
            wrap = 0.05 * (side * ox / rx + 1)             # lens edges bend back to the ears
            lenses.append(_pts(cx + ox, ey + 0.01 + oy, L["eye_z"] + 0.14 - wrap))
            hinges.append(_pts(side * (abs(cx) + rx + 0.02), ey - 0.02, L["eye_z"] + 0.06))
            hinges.append(_pts(side * 0.80 * fw, -0.06, -0.32))
        b.extra["glasses"] = np.concatenate(lenses)          # 16 points per lens
        b.extra["glasses_arms"] = np.concatenate(hinges)     # hinge, ear end per side
    if a.species == "cat":
        sg = np.array([-1.0, 1.0])
        b.extra["muzzle"] = _pts(sg * 0.085 * a.nose_width, base_y + 0.075, 0.6)
        dy = np.array([-0.03, 0.01, 0.05])
        roots = [_pts(side * 0.13, base_y + 0.05 + dy, 0.6) for side in (-1, 1)]
        tips = [_pts(side * np.array([0.9, 0.96, 0.88]) * fw, base_y + np.array([-0.1, 0.02, 0.14]),
                     0.3) for side in (-1, 1)]
        b.extra["whisker"] = np.concatenate(roots + tips)     # 3 roots r, 3 roots l, tips
        fx = np.array([-0.14, 0.0, 0.14])
        forehead = np.stack([_pts(fx, -0.80, 0.4), _pts(fx * 0.7, -0.56, 0.45)], 1)
        cheeks = np.stack([_pts(np.repeat(sg, 2) * 0.8 * fw, [0.0, 0.16, 0.0, 0.16], 0.0),
                           _pts(np.repeat(sg, 2) * 0.6 * fw, [0.06, 0.19, 0.06, 0.19], 0.1)], 1)
        b.extra["stripes"] = np.concatenate([forehead, cheeks]).reshape(-1, 3)  # pairs
    if a.species == "robot":
        cy, ry, cz = L["cr_c"][1], L["cr_r"][1], L["cr_c"][2]
        b.extra["antenna"] = _pts(0, [cy - ry + 0.02, cy - ry - 0.3], cz)


def _build_vertices(app: Appearance, e: np.ndarray) -> tuple[np.ndarray, dict[str, slice]]:
    """All template vertices for expression weights ``e``: (V, 3) and named slices."""
    b = _Build(app, e)
    _jaw_and_brows(b)
    _eyes(b)
    _nose(b)
    _mouth(b)
    _head(b)
    _accessories(b)
    parts, start = {}, NUM_LANDMARKS
    for name, arr in b.extra.items():
        parts[name] = slice(start, start + len(arr))
        start += len(arr)
    return np.concatenate([b.lm] + list(b.extra.values())), parts


def _build_body(app: Appearance) -> tuple[np.ndarray, dict[str, slice]]:
    """Torso points (posed with the body, not the head): (B, 3) and named slices."""
    L, fw = _LAYOUTS[app.species], app.face_width
    if app.species == "robot":
        half = np.array([(2.5, 3.4), (2.4, 1.8), (2.15, 1.5), (0.6, 1.38), (0.35, 1.3)])
    else:
        half = np.array([(2.7, 3.4), (2.35, 2.2), (2.0, 1.78), (1.45, 1.52), (0.85, 1.36),
                         (0.5, 1.22)])
    if app.species == "cat":
        half = np.array([(2.2, 3.4), (2.1, 2.4), (1.8, 1.95), (1.3, 1.62), (0.9, 1.45),
                         (0.7, 1.35)])
    x = np.concatenate([-half[:, 0], half[::-1, 0]])
    y = np.concatenate([half[:, 1], half[::-1, 1]])
    groups = {
        "shoulders": _pts(x, y, -0.45 - 0.25 * (x / 2) ** 2),
        "neck_base": _pts(np.array([-1.0, 1.0]) * L["neck_hw"] * fw
                          * (1.5 if app.species == "cat" else 1.05), 1.75, -0.45),
        "collar_v": _pts([-0.5, -0.25, 0.0, 0.25, 0.5], [1.22, 1.46, 1.7, 1.46, 1.22], -0.3),
        "collar_round": _pts([-0.5, -0.33, 0, 0.33, 0.5], [1.22, 1.42, 1.5, 1.42, 1.22], -0.3),
    }
    parts, start = {}, 0
    for name, arr in groups.items():
        parts[name] = slice(start, start + len(arr))
        start += len(arr)
    return np.concatenate(list(groups.values())), parts
