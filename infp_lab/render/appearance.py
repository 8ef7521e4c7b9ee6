"""Identity appearance of a SynConv avatar (design.md section 3.1, "Faces").

An :class:`Appearance` holds everything about a face that does not change over a clip:
species, colours, hair/beard/glasses style, face proportions, background, lighting and the
identity's base head pose (side faces). The per-frame *motion* lives in the parameter vector
of :mod:`infp_lab.render.face_model`. The dataclass is frozen and built from tuples only, so
it is hashable and the renderer can cache per-identity assets keyed by it; ``to_dict`` /
``from_dict`` round-trip it through JSON exactly.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, fields

import numpy as np

SPECIES = ("human", "cat", "robot")
HAIR_STYLES = ("bald", "short", "long", "bun", "bob", "afro")
BEARDS = ("none", "stubble", "moustache", "goatee", "full")
GLASSES = ("none", "round", "square")
BACKGROUNDS = ("solid", "vertical", "radial", "stripes", "bokeh")
PATTERNS = ("plain", "tabby", "tuxedo", "panels")

Colour = tuple[int, int, int]
CHOICES = {"species": SPECIES, "hair_style": HAIR_STYLES, "beard": BEARDS,
           "glasses": GLASSES, "background": BACKGROUNDS, "pattern": PATTERNS}

# Skin tones from light to dark (RGB), interpolated when sampling.
_SKIN_TONES = np.array([(255, 226, 204), (243, 200, 170), (228, 176, 140), (201, 140, 104),
                        (163, 106, 72), (124, 80, 54), (92, 58, 40)], np.float64)
_HAIR_COLOURS = ((28, 24, 22), (58, 38, 28), (96, 64, 40), (140, 84, 46), (176, 96, 52),
                 (214, 182, 124), (160, 156, 152), (226, 224, 218), (70, 60, 120))
_EYE_COLOURS = ((88, 52, 28), (58, 36, 22), (120, 96, 48), (72, 120, 78), (70, 120, 170),
                (110, 128, 140))
_FUR_COLOURS = ((222, 132, 58), (120, 118, 116), (60, 56, 54), (236, 226, 210),
                (178, 140, 96), (30, 28, 30))
_CAT_EYES = ((150, 200, 70), (230, 180, 40), (200, 130, 40), (90, 160, 200))
_METALS = ((176, 184, 194), (210, 214, 220), (96, 110, 130), (214, 160, 70), (236, 236, 232),
           (120, 150, 170))
_LEDS = ((80, 230, 255), (255, 80, 80), (120, 255, 120), (255, 200, 60), (200, 120, 255))


@dataclass(frozen=True)
class Appearance:
    """Per-identity look of a SynConv avatar (everything that is constant over a clip)."""

    species: str = "human"
    skin: Colour = (228, 176, 140)          # human skin / cat fur / robot face plate
    hair: Colour = (58, 38, 28)             # hair / cat markings / robot housing
    eye: Colour = (88, 52, 28)              # iris / cat iris / robot LED
    lip: Colour = (184, 100, 96)
    accent: Colour = (236, 150, 160)        # cat nose and inner ear / robot trim
    shirt: Colour = (60, 90, 150)
    bg_a: Colour = (200, 210, 220)
    bg_b: Colour = (120, 140, 170)
    glasses_colour: Colour = (30, 30, 34)
    hair_style: str = "short"
    beard: str = "none"
    glasses: str = "none"
    background: str = "vertical"
    pattern: str = "plain"
    bg_seed: int = 0
    hair_volume: float = 0.08               # hair thickness, face units
    hairline: float = 0.0                   # + lower (fringe), - receding
    hair_part: float = 0.3                  # parting position -1 (image left) .. 1
    face_width: float = 1.0
    face_length: float = 1.0
    jaw_width: float = 1.0
    eye_spacing: float = 1.0
    eye_size: float = 1.0
    nose_length: float = 1.0
    nose_width: float = 1.0
    mouth_width: float = 1.0
    lip_thickness: float = 1.0
    brow_thickness: float = 1.0
    ear_size: float = 1.0
    blush: float = 0.2                      # cheek blush strength 0..1
    light_side: float = -0.6                # -1 light from image left .. +1 from the right
    shade: float = 0.35                     # strength of the dark side 0..1
    base_yaw: float = 0.0                   # degrees, added to the motion yaw
    base_pitch: float = 0.0                 # degrees, added to the motion pitch
    centre_x: float = 0.0                   # placement offset, fraction of the frame
    centre_y: float = 0.0
    head_scale: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in CHOICES:
                if value not in CHOICES[f.name]:
                    raise ValueError(f"Appearance.{f.name}={value!r} is not one of "
                                     f"{CHOICES[f.name]}")
            elif f.type == "Colour":
                if len(value) != 3:
                    raise ValueError(f"Appearance.{f.name} must be an RGB triple, got {value!r}")
                object.__setattr__(self, f.name, tuple(int(np.clip(round(c), 0, 255))
                                                       for c in value))
            elif f.type == "int":
                object.__setattr__(self, f.name, int(value))
            elif f.type == "float":
                if not np.isfinite(value):
                    raise ValueError(f"Appearance.{f.name} must be finite, got {value!r}")
                object.__setattr__(self, f.name, float(value))

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict (colours as lists)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "Appearance":
        """Inverse of :meth:`to_dict`; missing keys take their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown Appearance fields: {sorted(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


def _pick(rng: np.random.Generator, options: tuple, p: list[float] | None = None):
    return options[int(rng.choice(len(options), p=p))]


def _jitter(rng: np.random.Generator, colour, amount: float) -> Colour:
    return tuple(int(np.clip(c + rng.normal(0.0, amount), 0, 255)) for c in colour)


def _hsv_colour(rng: np.random.Generator, sat: tuple[float, float],
                val: tuple[float, float]) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))
    return (int(r * 255), int(g * 255), int(b * 255))


def sample_appearance(rng: np.random.Generator, species: str | None = None,
                      side: bool | None = None) -> Appearance:
    """Draw a random identity look, using only ``rng`` (deterministic per seed).

    Args:
        rng: numpy random generator.
        species: "human", "cat", "robot" or None (human 70 %, cat 15 %, robot 15 %).
        side: True forces a side face (|base_yaw| in 25..45 degrees), False a near-frontal
            one, None gives a side face with probability 0.15.

    Returns:
        A frozen :class:`Appearance`.
    """
    if species is None:
        species = _pick(rng, SPECIES, [0.7, 0.15, 0.15])
    if species not in SPECIES:
        raise ValueError(f"unknown species {species!r}; expected one of {SPECIES}")
    if side is None:
        side = bool(rng.random() < 0.15)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    base_yaw = sign * (rng.uniform(25, 45) if side else rng.uniform(0, 8))
    common = dict(
        species=species, bg_seed=int(rng.integers(0, 2**31 - 1)),
        background=_pick(rng, BACKGROUNDS, [0.2, 0.3, 0.2, 0.15, 0.15]),
        bg_a=_hsv_colour(rng, (0.05, 0.45), (0.55, 0.95)),
        bg_b=_hsv_colour(rng, (0.1, 0.6), (0.25, 0.8)),
        shirt=_hsv_colour(rng, (0.2, 0.8), (0.2, 0.85)),
        face_width=rng.uniform(0.93, 1.07), face_length=rng.uniform(0.94, 1.06),
        jaw_width=rng.uniform(0.86, 1.08), eye_spacing=rng.uniform(0.94, 1.06),
        eye_size=rng.uniform(0.88, 1.12), nose_length=rng.uniform(0.9, 1.1),
        nose_width=rng.uniform(0.85, 1.2), mouth_width=rng.uniform(0.88, 1.12),
        lip_thickness=rng.uniform(0.75, 1.3), brow_thickness=rng.uniform(0.7, 1.4),
        ear_size=rng.uniform(0.9, 1.12), light_side=rng.uniform(-1, 1),
        shade=rng.uniform(0.2, 0.5), base_yaw=base_yaw, base_pitch=rng.uniform(-4, 4),
        centre_x=rng.uniform(-0.02, 0.02), centre_y=rng.uniform(-0.015, 0.015),
        head_scale=rng.uniform(0.94, 1.03),
    )
    if species == "human":
        t = rng.uniform(0, len(_SKIN_TONES) - 1)
        i = min(int(t), len(_SKIN_TONES) - 2)
        skin = _SKIN_TONES[i] * (1 - (t - i)) + _SKIN_TONES[i + 1] * (t - i)
        skin = _jitter(rng, skin, 5)
        lip = tuple(int(c) for c in np.array(skin) * (0.78, 0.52, 0.55) + (28, 10, 14))
        style = _pick(rng, HAIR_STYLES, [0.12, 0.34, 0.22, 0.1, 0.12, 0.1])
        beard = _pick(rng, BEARDS, [0.62, 0.12, 0.08, 0.08, 0.1])
        volume = rng.uniform(0.2, 0.3) if style == "afro" else rng.uniform(0.04, 0.11)
        return Appearance(
            **common, skin=skin, lip=_jitter(rng, lip, 6),
            hair=_jitter(rng, _pick(rng, _HAIR_COLOURS), 8),
            eye=_jitter(rng, _pick(rng, _EYE_COLOURS), 6),
            accent=(236, 150, 160), hair_style=style, beard=beard,
            glasses=_pick(rng, GLASSES, [0.7, 0.15, 0.15]),
            glasses_colour=_pick(rng, ((30, 30, 34), (120, 70, 40), (180, 180, 190),
                                       (150, 30, 40))),
            pattern="plain", hair_volume=volume, hairline=rng.uniform(-0.12, 0.2),
            hair_part=rng.uniform(-0.8, 0.8),
            blush=rng.uniform(0.0, 0.45))
    if species == "cat":
        fur = _jitter(rng, _pick(rng, _FUR_COLOURS), 10)
        marks = tuple(int(c * 0.55) for c in fur)
        return Appearance(
            **common, skin=fur, hair=_jitter(rng, marks, 6),
            eye=_jitter(rng, _pick(rng, _CAT_EYES), 10), lip=(90, 60, 60),
            accent=_jitter(rng, (232, 150, 160), 10), hair_style="bald", beard="none",
            glasses="none", pattern=_pick(rng, ("plain", "tabby", "tuxedo"), [0.3, 0.45, 0.25]),
            hair_volume=0.0, hairline=0.0, blush=0.0)
    metal = _jitter(rng, _pick(rng, _METALS), 8)
    housing = tuple(int(c * rng.uniform(0.55, 0.8)) for c in metal)
    return Appearance(
        **common, skin=metal, hair=housing, eye=_pick(rng, _LEDS), lip=(40, 44, 50),
        accent=_jitter(rng, _pick(rng, _METALS), 20), hair_style="bald", beard="none",
        glasses="none", pattern=_pick(rng, ("plain", "panels"), [0.4, 0.6]),
        hair_volume=0.0, hairline=0.0, blush=0.0)
