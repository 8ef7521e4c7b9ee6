"""SynConv singing: a small source-filter singer for the sung segments (design.md section 3.1).

espeak-ng does not sing, so sung segments come from a hand-written source-filter model:

- a random melody (pentatonic, major or minor scale; a random walk over scale degrees around
  the voice's register), grouped into phrases separated by breath rests;
- an F0 contour with portamento between notes, vibrato (4.5-6.5 Hz, fading in after each
  onset) and jitter (slowly varying random F0 perturbation of about half a percent);
- a Rosenberg glottal pulse train at that F0 (computed at twice the rate and decimated),
  differentiated for lip radiation, plus a little pulse-synchronous aspiration noise;
- a cascade of four second-order formant resonators per sung vowel (scipy.signal), with
  vowel-to-vowel crossfades and F1 raised above F0 on high notes, as trained singers do;
- an amplitude envelope: attacks after rests, releases before them, a dip between legato
  notes, per-note dynamics.

The result is an :class:`~infp_lab.data.synconv.speech.Utterance` of kind ``"singing"`` whose
phoneme events are one per sung vowel (rests are ``"_"``), tiling the whole clip.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from infp_lab.data.synconv.lexicon import check_language
from infp_lab.data.synconv.speech import PAUSE, SAMPLE_RATE, PhonemeEvent, Utterance, Voice, viseme_of

# F1-F4 (Hz) of an adult male voice; female voices scale them by 1.17
_FORMANTS = {
    "a": (730, 1090, 2440, 3400), "e": (530, 1840, 2480, 3400), "i": (270, 2290, 3010, 3500),
    "o": (570, 840, 2410, 3300), "u": (300, 870, 2240, 3300),
}
_BANDWIDTHS = (90.0, 110.0, 160.0, 250.0)
_VOWEL_WEIGHTS = {"a": 0.35, "o": 0.2, "e": 0.2, "i": 0.15, "u": 0.1}
_SCALES = ((0, 2, 4, 7, 9), (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10))  # pentatonic, major, minor
_OVERSAMPLE = 2
_XFADE = 0.03  # seconds of vowel crossfade either side of a note boundary


def sing(rng: np.random.Generator, voice: Voice, seconds: float) -> Utterance:
    """Sing a random melody on vowels for ``seconds`` in ``voice``'s register.

    Args:
        rng: the only source of randomness: the same seed gives the same song.
        voice: gives the register (female variants sing an octave higher; ``pitch`` 0-100
            shifts it by up to half an octave either way) and the language label.
        seconds: the clip length (at least 0.2 s).

    Returns:
        An :class:`Utterance` of kind ``"singing"`` with one phoneme event per sung vowel.
    """
    check_language(voice.language)
    if not seconds >= 0.2:
        raise ValueError(f"seconds must be at least 0.2, got {seconds}")
    n = int(round(seconds * SAMPLE_RATE))
    notes = _melody(rng, voice, n)  # [(start, end, f0 or 0 for a rest, vowel)] in samples
    f0 = _f0_contour(rng, notes, n)  # (n,) Hz, 0 in rests
    source = _glottal_source(rng, f0)  # (n,)
    audio = _formant_filter(source, notes, f0, female=voice.is_female)  # (n,)
    audio *= _envelope(rng, notes, n)
    audio *= rng.uniform(0.35, 0.6) / max(float(np.abs(audio).max()), 1e-6)
    events = tuple(PhonemeEvent(start / SAMPLE_RATE, end / SAMPLE_RATE, vowel, viseme_of(vowel))
                   for start, end, _, vowel in notes)
    text = " ".join(vowel for _, _, pitch, vowel in notes if pitch > 0)
    return Utterance(audio.astype(np.float32), events, text, voice.language, "singing")


def _melody(rng: np.random.Generator, voice: Voice, n: int) -> list[tuple[int, int, float, str]]:
    centre = (220.0 if voice.is_female else 120.0) * 2.0 ** ((voice.pitch - 50) / 100.0)
    scale = _SCALES[int(rng.integers(0, len(_SCALES)))]
    beat = rng.uniform(0.3, 0.55) * SAMPLE_RATE
    vowels, weights = list(_VOWEL_WEIGHTS), np.array(list(_VOWEL_WEIGHTS.values()))
    degree, low, high = 0, -(len(scale) // 2) - 1, len(scale) // 2 + 2  # about -8 to +12 semitones
    notes, t, since_rest = [], 0, 0
    while t < n:
        if since_rest >= 3 and rng.random() < 0.15:  # a breath rest between phrases
            length, pitch, vowel = int(beat * rng.choice([0.5, 1.0])), 0.0, PAUSE
            since_rest = 0
        else:
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2]), low, high))
            octave, step = divmod(degree, len(scale))
            pitch = centre * 2.0 ** (octave + scale[step] / 12.0)
            length = int(beat * rng.choice([0.5, 1.0, 1.0, 1.0, 1.5, 2.0, 3.0]))
            vowel = str(rng.choice(vowels, p=weights / weights.sum()))
            since_rest += 1
        notes.append((t, min(n, t + length), pitch, vowel))
        t += length
    if notes[-1][2] == 0.0 and len(notes) > 1:  # never end on a rest: stretch the last note
        last = notes.pop()
        notes[-1] = (notes[-1][0], last[1], notes[-1][2], notes[-1][3])
    return notes


def _f0_contour(rng: np.random.Generator, notes, n: int) -> np.ndarray:
    target = np.zeros(n)
    for start, end, pitch, _ in notes:
        target[start:end] = pitch
    voiced = target > 0
    semitones = np.where(voiced, 12 * np.log2(np.maximum(target, 1.0)), 0.0)
    filled = np.interp(np.arange(n), np.flatnonzero(voiced), semitones[voiced])  # bridge rests
    glide = signal.lfilter([0.004], [1, -0.996], filled - filled[0]) + filled[0]  # ~15 ms portamento
    t = np.arange(n) / SAMPLE_RATE
    onset = np.zeros(n)
    for start, end, pitch, _ in notes:
        onset[start:end] = t[start:end] - t[start]
    depth = rng.uniform(0.2, 0.5) * np.clip((onset - 0.2) / 0.3, 0.0, 1.0)  # semitones, fades in
    vibrato = depth * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t + rng.uniform(0, 2 * np.pi))
    jitter = signal.lfilter([0.02], [1, -0.98], rng.standard_normal(n)) * 0.6  # ~0.5 % F0
    return np.where(voiced, 440.0 * 2.0 ** ((glide + vibrato + jitter - 12 * np.log2(440.0)) / 12.0), 0.0)


def _glottal_source(rng: np.random.Generator, f0: np.ndarray) -> np.ndarray:
    rate = SAMPLE_RATE * _OVERSAMPLE
    fine = np.repeat(f0, _OVERSAMPLE)  # (n * OVERSAMPLE,)
    phase = np.cumsum(fine / rate) % 1.0
    rise, fall = 0.4, 0.16  # Rosenberg pulse: opening and closing fractions of the period
    flow = np.where(phase < rise, 0.5 * (1 - np.cos(np.pi * phase / rise)),
                    np.where(phase < rise + fall, np.cos(0.5 * np.pi * (phase - rise) / fall), 0.0))
    flow *= 1.0 + 0.05 * signal.lfilter([0.05], [1, -0.95], rng.standard_normal(len(flow)))  # shimmer
    breath = 0.08 * rng.standard_normal(len(flow)) * flow
    derivative = np.diff(flow + breath, prepend=0.0) * (fine > 0)
    return signal.resample_poly(derivative, 1, _OVERSAMPLE)


def _resonators(vowel: str, pitch: float, female: bool) -> np.ndarray:
    formants = np.array(_FORMANTS[vowel], float) * (1.17 if female else 1.0)
    formants[0] = max(formants[0], 1.1 * pitch)  # F1 tuning on high notes
    sections = []
    for freq, bandwidth in zip(formants, _BANDWIDTHS):
        radius = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
        a = [1.0, -2 * radius * np.cos(2 * np.pi * min(freq, 0.45 * SAMPLE_RATE) / SAMPLE_RATE), radius**2]
        sections.append([sum(a), 0.0, 0.0] + a)  # unit gain at DC
    return np.array(sections)  # (4, 6) second-order sections


def _formant_filter(source: np.ndarray, notes, f0: np.ndarray, female: bool) -> np.ndarray:
    n, pad = len(source), int(_XFADE * SAMPLE_RATE)
    out, weight = np.zeros(n), np.zeros(n)
    sung = [(s, e, p, v) for s, e, p, v in notes if p > 0]
    for start, end, pitch, vowel in sung:
        lo, hi = max(0, start - pad), min(n, end + pad)
        part = signal.sosfilt(_resonators(vowel, pitch, female), source[lo:hi])
        t = np.arange(lo, hi)
        ramp = np.clip((t - (start - pad)) / (2 * pad), 0, 1) * np.clip((end + pad - t) / (2 * pad), 0, 1)
        out[lo:hi] += part * ramp
        weight[lo:hi] += ramp
    return out / np.maximum(weight, 1e-3)


def _envelope(rng: np.random.Generator, notes, n: int) -> np.ndarray:
    env = np.zeros(n)
    for i, (start, end, pitch, _) in enumerate(notes):
        if pitch == 0:
            continue
        length = end - start
        level = np.full(length, rng.uniform(0.75, 1.0))  # per-note dynamics
        after_rest = i == 0 or notes[i - 1][2] == 0
        before_rest = i == len(notes) - 1 or notes[i + 1][2] == 0
        attack = min(length // 2, int(SAMPLE_RATE * (rng.uniform(0.04, 0.08) if after_rest else 0.03)))
        release = min(length // 2, int(SAMPLE_RATE * (rng.uniform(0.06, 0.12) if before_rest else 0.03)))
        level[:attack] *= _rise(attack, 0.0 if after_rest else 0.6)  # legato notes dip, not stop
        level[length - release:] *= _rise(release, 0.0 if before_rest else 0.6)[::-1]
        env[start:end] = level
    return env


def _rise(n: int, floor: float) -> np.ndarray:
    """A quarter-sine ramp of ``n`` samples from ``floor`` up to 1."""
    return floor + (1 - floor) * np.sin(0.5 * np.pi * np.arange(n) / max(n, 1))
