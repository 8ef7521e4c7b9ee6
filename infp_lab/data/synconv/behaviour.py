"""SynConv behaviour model: per-frame face motion from who is speaking (design.md section 3.1).

What makes the interaction learnable:
- speaking: visemes from the agent's own phoneme events (open vowels open the jaw,
  bilabials press the lips, rounded vowels pucker), smoothed for co-articulation, plus
  prosody-linked head motion, phrase nods and brow raises;
- listening: nods near the partner's phrase ends, smiles, a head tilt, more blinks, a
  closed mouth, and mouth motion only for the agent's own backchannels;
- silence: idle drift and blinks; singing: sustained open vowels and a sway.
Each identity has a style (energy, nod amplitude and probability, expressiveness,
smiling, blink rate) drawn from one of a few archetypes; timing and amplitudes are random.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from infp_lab.data.synconv.dialogue import Placement, activity
from infp_lab.data.synconv.speech import VISEMES
from infp_lab.render import NEUTRAL_PARAMS, PARAM_NAMES

P = {name: i for i, name in enumerate(PARAM_NAMES)}

# Mouth targets per viseme: (jaw_open, lip_round, lip_press, smile), in VISEMES order.
VISEME_TARGETS = np.array([
    (0.00, 0.0, 0.15, 0.0),  # sil
    (0.00, 0.1, 1.00, 0.0),  # PP  p b m: lips pressed
    (0.10, 0.0, 0.45, 0.1),  # FF  f v
    (0.20, 0.0, 0.00, 0.0),  # TH
    (0.25, 0.0, 0.00, 0.0),  # DD
    (0.30, 0.0, 0.00, 0.0),  # kk
    (0.22, 0.6, 0.00, 0.0),  # CH
    (0.12, 0.0, 0.00, 0.2),  # SS
    (0.20, 0.0, 0.00, 0.0),  # nn
    (0.25, 0.3, 0.00, 0.0),  # RR
    (0.90, 0.0, 0.00, 0.1),  # aa  open vowels
    (0.55, 0.0, 0.00, 0.25),  # E
    (0.30, 0.0, 0.00, 0.45),  # I
    (0.60, 0.8, 0.00, 0.0),  # O   rounded
    (0.30, 1.0, 0.00, 0.0),  # U
], dtype=np.float32)
assert len(VISEME_TARGETS) == len(VISEMES)

STYLE_ARCHETYPES = ("calm", "animated", "nodder", "smiley", "stoic", "expressive")
_ARCHETYPE_MEANS = {  # energy, nod_amplitude (deg), nod_probability, expressiveness, smile_base, listen_smile, blink_rate (/min)
    "calm": (0.7, 4.0, 0.5, 0.85, 0.05, 0.25, 14.0),
    "animated": (1.4, 6.0, 0.6, 1.10, 0.10, 0.35, 20.0),
    "nodder": (0.9, 9.0, 0.9, 0.95, 0.05, 0.30, 17.0),
    "smiley": (1.0, 5.5, 0.6, 1.00, 0.35, 0.60, 18.0),
    "stoic": (0.5, 3.0, 0.35, 0.75, 0.00, 0.10, 12.0),
    "expressive": (1.2, 7.0, 0.7, 1.25, 0.15, 0.45, 22.0),
}


@dataclass(frozen=True)
class Style:
    """An identity's motion style: an archetype with per-identity variation."""

    archetype: int
    energy: float
    nod_amplitude: float
    nod_probability: float
    expressiveness: float
    smile_base: float
    listen_smile: float
    blink_rate: float

    @property
    def name(self) -> str:
        return STYLE_ARCHETYPES[self.archetype]

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self)}


def sample_style(rng: np.random.Generator) -> Style:
    """Draw a style: a random archetype, each value jittered by about +-15 %."""
    archetype = int(rng.integers(len(STYLE_ARCHETYPES)))
    means = np.array(_ARCHETYPE_MEANS[STYLE_ARCHETYPES[archetype]])
    values = means * rng.uniform(0.85, 1.15, size=len(means))
    values[2] = min(values[2], 0.95)
    return Style(archetype, *(round(float(v), 4) for v in values))


@dataclass(frozen=True)
class FrameLabels:
    """Per-frame ground truth beside the motion parameters."""

    viseme: np.ndarray  # (T,) int8, index into VISEMES (0 = not speaking)
    phoneme: np.ndarray  # (T,) int16, index into `inventory` (0 = none)
    inventory: tuple[str, ...]  # IPA phonemes; inventory[0] == ""


def _bump(curve: np.ndarray, centre: float, width: float, amplitude: float, fps: int) -> None:
    """Add a raised-cosine bump of `width` seconds centred at `centre` seconds."""
    t = (np.arange(len(curve)) + 0.5) / fps
    phase = (t - centre) / width
    inside = np.abs(phase) < 0.5
    curve[inside] += amplitude * 0.5 * (1 + np.cos(2 * np.pi * phase[inside]))


def _drift(rng: np.random.Generator, num_frames: int, fps: int, cutoff_hz: float, amplitude: float) -> np.ndarray:
    """Smooth random drift: low-passed noise with standard deviation `amplitude`."""
    noise = gaussian_filter1d(rng.standard_normal(num_frames + 4 * fps), fps / (2 * np.pi * cutoff_hz))
    noise = noise[2 * fps: 2 * fps + num_frames]
    return (noise / max(noise.std(), 1e-6) * amplitude).astype(np.float32)


def _smooth_mask(mask: np.ndarray, fps: int, seconds: float) -> np.ndarray:
    return gaussian_filter1d(mask.astype(np.float32), seconds * fps)


def mouth_motion(placements: list[Placement], num_frames: int, style: Style, fps: int = 25,
                 rate: int = 100) -> tuple[np.ndarray, FrameLabels]:
    """Mouth parameters (T, 4) = (jaw_open, lip_round, lip_press, smile) and viseme labels.

    Viseme targets are laid out at `rate` Hz, smoothed (co-articulation, ~30 ms) and sampled
    at the frame centres. Sung vowels open wider.
    """
    n = int(np.ceil(num_frames / fps * rate)) + 1
    targets = np.tile(VISEME_TARGETS[0], (n, 1))  # (n, 4)
    visemes = np.zeros(n, np.int8)
    phonemes = np.zeros(n, np.int16)
    inventory: dict[str, int] = {"": 0}
    for p in placements:
        gain = style.expressiveness * (1.2 if p.kind == "singing" else 1.0)
        for e in p.utterance.phonemes:
            i0, i1 = int((p.start + e.start) * rate), int(np.ceil((p.start + e.end) * rate))
            i0, i1 = max(i0, 0), min(i1, n)
            if i1 <= i0 or e.viseme == 0:
                continue
            target = VISEME_TARGETS[e.viseme].copy()
            target[[0, 1, 3]] *= gain
            targets[i0:i1] = target
            visemes[i0:i1] = e.viseme
            phonemes[i0:i1] = inventory.setdefault(e.phoneme, len(inventory))
    smooth = gaussian_filter1d(targets, sigma=0.03 * rate, axis=0)  # co-articulation
    at = np.minimum(((np.arange(num_frames) + 0.5) / fps * rate).astype(int), n - 1)
    labels = FrameLabels(visemes[at], phonemes[at], tuple(inventory))
    return smooth[at].astype(np.float32), labels


def _blinks(rng: np.random.Generator, rate_per_frame: np.ndarray) -> np.ndarray:
    """Blink curve (T,) in [0, 1]: a Poisson process with a 0.4 s refractory time."""
    shape = np.array([0.55, 1.0, 0.85, 0.45, 0.15], np.float32)  # ~200 ms at 25 fps
    curve = np.zeros(len(rate_per_frame) + len(shape), np.float32)
    last = -100
    for i, p in enumerate(rate_per_frame):
        if i - last > 10 and rng.random() < p:
            curve[i:i + len(shape)] = np.maximum(curve[i:i + len(shape)], shape)
            last = i
    return curve[: len(rate_per_frame)]


def animate(self_placements: list[Placement], other_placements: list[Placement], num_frames: int,
            style: Style, rng: np.random.Generator, fps: int = 25) -> tuple[np.ndarray, FrameLabels]:
    """Motion parameters (T, P) in PARAM_NAMES order for the agent, and its frame labels."""
    T = num_frames
    params = np.tile(NEUTRAL_PARAMS.astype(np.float32), (T, 1))  # (T, P)
    speaking = activity(self_placements, T, fps)
    partner = activity(other_placements, T, fps)
    listening = partner & ~speaking
    speak_soft, listen_soft = _smooth_mask(speaking, fps, 0.3), _smooth_mask(listening, fps, 0.5)
    energy = style.energy

    mouth, labels = mouth_motion(self_placements, T, style, fps)
    params[:, P["jaw_open"]] = mouth[:, 0] + np.abs(_drift(rng, T, fps, 0.3, 0.008))
    params[:, P["lip_round"]] = mouth[:, 1]
    params[:, P["lip_press"]] = mouth[:, 2]

    # Head pose: idle drift everywhere, faster prosodic motion while speaking.
    params[:, P["yaw"]] = _drift(rng, T, fps, 0.12, 2.5 * energy) + speak_soft * _drift(rng, T, fps, 0.7, 3.0 * energy)
    params[:, P["pitch"]] = _drift(rng, T, fps, 0.12, 1.5 * energy) + speak_soft * _drift(rng, T, fps, 0.9, 2.0 * energy)
    params[:, P["roll"]] = _drift(rng, T, fps, 0.1, 1.2 * energy) + listen_soft * rng.uniform(-4, 4) * energy
    params[:, P["tx"]] = _drift(rng, T, fps, 0.08, 0.008 * energy)
    params[:, P["ty"]] = _drift(rng, T, fps, 0.08, 0.006 * energy)
    params[:, P["scale"]] += _drift(rng, T, fps, 0.05, 0.01)

    pitch, brow = params[:, P["pitch"]], params[:, P["brow_raise"]]
    brow += listen_soft * 0.15 * style.expressiveness
    for p in self_placements:
        if p.kind == "speech":  # phrase-initial brow raise and emphasis nods
            if rng.random() < 0.6:
                _bump(brow, p.start + 0.15, 0.6, rng.uniform(0.3, 0.7) * style.expressiveness, fps)
            for _ in range(int(rng.integers(1, 3))):
                _bump(pitch, p.start + rng.uniform(0.1, 0.9) * p.utterance.duration, 0.45,
                      rng.uniform(1.5, 3.5) * energy, fps)
        elif p.kind == "backchannel" and rng.random() < 0.8:  # "mm-hmm" with a nod
            _bump(pitch, p.start + 0.15, 0.55, style.nod_amplitude * rng.uniform(0.5, 0.9), fps)
    for p in other_placements:  # listener nods near the partner's phrase ends
        if p.kind == "speech" and rng.random() < style.nod_probability:
            at = p.end + rng.uniform(0.05, 0.45)
            amplitude = style.nod_amplitude * rng.uniform(0.7, 1.2)
            _bump(pitch, at, rng.uniform(0.45, 0.75), amplitude, fps)
            if rng.random() < 0.3:  # a double nod
                _bump(pitch, at + 0.55, 0.5, 0.7 * amplitude, fps)

    # Singing: a slow sway.
    singing = np.zeros(T, bool)
    centres = (np.arange(T) + 0.5) / fps
    for p in self_placements:
        if p.kind == "singing":
            singing |= (centres >= p.start) & (centres < p.end)
    if singing.any():
        sway = _smooth_mask(singing, fps, 0.4) * np.sin(2 * np.pi * rng.uniform(0.3, 0.5) * centres + rng.uniform(0, 6.3))
        params[:, P["roll"]] += sway * rng.uniform(3, 6)
        params[:, P["yaw"]] += sway * rng.uniform(2, 5)

    # Smile: the identity's resting smile, more while listening, slowly varying.
    params[:, P["smile"]] = (style.smile_base + listen_soft * style.listen_smile * rng.uniform(0.6, 1.2)
                             + _drift(rng, T, fps, 0.1, 0.05) + mouth[:, 3])

    # Blinks: more while listening.
    rate = style.blink_rate / 60.0 / fps * np.where(listening, 1.4, np.where(speaking, 1.0, 1.15))
    blink = _blinks(rng, rate)
    params[:, P["blink_left"]] = blink
    params[:, P["blink_right"]] = np.clip(blink * rng.uniform(0.9, 1.0), 0, 1)

    # Gaze: held on the partner while listening, wandering saccades while speaking.
    for axis, spread in (("gaze_x", 0.45), ("gaze_y", 0.25)):
        jumps = np.cumsum(rng.random(T) < 0.04)
        targets = rng.uniform(-spread, spread, jumps[-1] + 1)[jumps]
        params[:, P[axis]] = gaussian_filter1d(targets * (0.35 + 0.65 * speak_soft), 1.0)

    return _clamp(params), labels


_LIMITS = {"jaw_open": (0, 1), "smile": (-0.5, 1), "lip_round": (0, 1), "lip_press": (0, 1),
           "blink_left": (0, 1), "blink_right": (0, 1), "brow_raise": (-1, 1), "gaze_x": (-1, 1),
           "gaze_y": (-1, 1), "yaw": (-30, 30), "pitch": (-20, 20), "roll": (-15, 15),
           "tx": (-0.06, 0.06), "ty": (-0.06, 0.06), "scale": (0.9, 1.1)}


def _clamp(params: np.ndarray) -> np.ndarray:
    for name, (low, high) in _LIMITS.items():
        params[:, P[name]] = np.clip(params[:, P[name]], low, high)
    return params.astype(np.float32)
