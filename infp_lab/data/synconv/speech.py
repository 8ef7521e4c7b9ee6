"""SynConv speech: multilingual espeak-ng speech with phoneme and viseme timing (design.md section 3.1).

``synthesize`` speaks a text with a :class:`Voice` through the espeak-ng C API
(:mod:`infp_lab.data.synconv.espeak`), resamples to 16 kHz, trims leading and trailing
silence and returns an :class:`Utterance` whose phoneme events come from espeak-ng's own
phoneme events. The events tile the utterance: contiguous, non-overlapping, from 0 to its
duration, pauses labelled ``"_"`` (viseme ``sil``). Each phoneme maps to one of the 15
Oculus/OVR visemes that drive the mouth of the face model.

Public names: ``SAMPLE_RATE, VISEMES, PhonemeEvent, Utterance, Voice, LANGUAGES,
VOICE_VARIANTS, viseme_of, sample_voice, synthesize, make_sentence, backchannel_text, sing``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, fields

import numpy as np
import soxr

from infp_lab.data.synconv import espeak
from infp_lab.data.synconv.lexicon import (
    LANGUAGES, backchannel_text, check_language, make_sentence, spoken_form,
)

SAMPLE_RATE = 16000
VISEMES: tuple[str, ...] = (
    "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U",
)
KINDS = ("speech", "backchannel", "singing")
PAUSE = "_"
# espeak-ng voice variants (files in espeak-ng-data/voices/!v) that sound like ordinary speakers
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
                 "Andy", "Denis", "Lee", "Mario", "Michael", "paul", "robert")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "Annie", "aunty", "belinda", "linda")
VOICE_VARIANTS: tuple[str, ...] = MALE_VARIANTS + FEMALE_VARIANTS

_CLASS_SYMBOLS = {
    "PP": "pbmɓʙ", "FF": "fvɸβʋɱ", "TH": "θð", "DD": "tdʈɖɗ", "kk": "kgɡŋxɣhɦχħʕʔqɢɴʜʢ",
    "CH": "ʃʒɕʑʂʐçʝcɟ", "SS": "szʦʣ", "nn": "nlɫɬɮɲɳɭʎʟ", "RR": "rɹʁɾɽɻʀɺ",
    "aa": "aɑæɐʌɶ", "E": "eɛəɜœɘɞɚɝɤ", "I": "iɪɨjᵻ", "O": "oɔɒøɵ", "U": "uʊyʏwɯʉɰɥᵿ",
}
_SYMBOL_VISEME = {s: VISEMES.index(c) for c, symbols in _CLASS_SYMBOLS.items() for s in symbols}
_CLUSTERS = {"tʃ": "CH", "dʒ": "CH", "tɕ": "CH", "dʑ": "CH", "ʈʂ": "CH", "ɖʐ": "CH", "ts": "SS", "dz": "SS"}
_MODIFIER_BASE = {"ʲ": "j", "ʷ": "w", "ʰ": "h", "ˠ": "ɣ", "ˤ": "ʕ", "ⁿ": "n", "ˡ": "l", "ʱ": "ɦ"}
_ON_GLIDES = "iɪjuʊwyɨʉɯ"
_OPENER = tuple(VISEMES.index(c) for c in ("aa", "E", "O"))
_DROP = "ˈˌːˑ'‿|.-+~0123456789"
_SILENT_RMS = 1e-3  # an unnamed espeak phoneme quieter than this is a pause
_CLOSURE_LEVEL = 3e-4  # |sample| at or below this is espeak's digital silence
_MIN_CLOSURE = 66  # espeak samples (3 ms at 22050 Hz)


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme: seconds from the utterance start, IPA symbol, viseme index into VISEMES."""

    start: float
    end: float
    phoneme: str
    viseme: int


@dataclass(frozen=True, eq=False)
class Utterance:
    """Mono float32 audio at SAMPLE_RATE in [-1, 1] with the phoneme events that tile it."""

    audio: np.ndarray  # (N,) float32
    phonemes: tuple[PhonemeEvent, ...]
    text: str
    language: str
    kind: str  # "speech", "backchannel" or "singing"

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language, espeak voice name, variant, pitch 0-100, range 0-100, rate in wpm."""

    language: str
    espeak_voice: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int

    @property
    def espeak_name(self) -> str:
        return f"{self.espeak_voice}+{self.variant}" if self.variant else self.espeak_voice

    @property
    def is_female(self) -> bool:
        return self.variant in FEMALE_VARIANTS

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Voice":
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def viseme_of(ipa_phoneme: str) -> int:
    """Viseme index of an IPA phoneme; stress, length, tone marks and diacritics are ignored.

    Affricates follow their release (tʃ -> CH, ts -> SS), diphthongs their first vowel unless
    it is an on-glide (iɑ -> aa), a bare modifier its base sound (ʲ -> j -> I); pauses and
    empty names give ``sil`` (0) and any other unknown symbol ``DD``.
    """
    text = unicodedata.normalize("NFD", ipa_phoneme or "").strip()
    if not text or text[0] in "_#(":
        return 0
    text = "".join(_MODIFIER_BASE.get(c, c) if i == 0 else c for i, c in enumerate(text.lstrip(_DROP)))
    base = "".join(c for c in text if not unicodedata.combining(c) and c not in _DROP
                   and unicodedata.category(c) not in ("Lm", "Sk")).lower()
    if not base:
        return 0
    for cluster, name in _CLUSTERS.items():
        if base.startswith(cluster):
            return VISEMES.index(name)
    if len(base) > 1 and base[0] in _ON_GLIDES and _SYMBOL_VISEME.get(base[1], 0) in _OPENER:
        return _SYMBOL_VISEME[base[1]]  # an on-glide (Mandarin iɑ, Russian ja) yields to its nucleus
    return _SYMBOL_VISEME.get(base[0], VISEMES.index("DD"))


def sample_voice(rng: np.random.Generator, language: str) -> Voice:
    """A random voice for ``language``: variant, pitch 20-80, range 30-90, rate 130-200 wpm."""
    check_language(language)
    return Voice(language=language, espeak_voice=LANGUAGES[language],
                 variant=str(rng.choice(VOICE_VARIANTS)), pitch=int(rng.integers(20, 81)),
                 pitch_range=int(rng.integers(30, 91)), rate=int(rng.integers(130, 201)))


def synthesize(text: str, voice: Voice, kind: str = "speech") -> Utterance:
    """Speak ``text`` with ``voice``.

    Args:
        text: text in the voice's language and script (pinyin with tone digits for ``cmn``,
            kana for ``ja``).
        voice: the voice, e.g. from :func:`sample_voice`.
        kind: ``"speech"``, ``"backchannel"`` or ``"singing"`` (stored on the utterance).

    Returns:
        An :class:`Utterance` at ``SAMPLE_RATE`` with silence trimmed (10 ms kept at each end)
        and phoneme events tiling ``[0, duration]``.

    Raises:
        ValueError: for an unknown language or kind, empty text, or text espeak-ng does not voice.
    """
    check_language(voice.language)
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not text or not text.strip():
        raise ValueError("cannot synthesise empty text")
    samples, events, rate = espeak.synth(spoken_form(text, voice.language), voice.espeak_name,
                                         voice.rate, voice.pitch, voice.pitch_range)
    audio = samples.astype(np.float32) / 32768.0  # (N,) at espeak's rate
    segments = _segments(events, audio)
    spoken = [(start, end) for start, end, name in segments if name != PAUSE]
    loud = np.flatnonzero(np.abs(audio) > 0.01 * max(float(np.abs(audio).max(initial=0.0)), 1e-3))
    if loud.size == 0 or not spoken:
        raise ValueError(f"espeak-ng produced no audible speech for {text!r} ({voice.language})")
    # speech runs from the first to the last spoken phoneme where there is sound (breathy
    # variants leave a noise tail inside the final pause); 10 ms are kept either side
    margin = rate // 100
    begin, finish = max(loud[0], spoken[0][0]), min(loud[-1] + 1, spoken[-1][1])
    if finish <= begin:
        begin, finish = loud[0], loud[-1] + 1
    first, last = max(0, begin - margin), min(len(audio), finish + margin)
    out = soxr.resample(audio[first:last], rate, SAMPLE_RATE, quality="HQ")  # (M,) at SAMPLE_RATE
    fade = min(len(out) // 2, SAMPLE_RATE // 200)
    out[:fade] *= np.linspace(0.0, 1.0, fade, dtype=out.dtype)
    out[len(out) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=out.dtype)
    out = np.clip(out, -1.0, 1.0).astype(np.float32)
    kept = [(max(start, first), name) for start, end, name in segments if min(end, last) > max(start, first)]
    bounds = [min(len(out), round((start - first) * SAMPLE_RATE / rate)) for start, _ in kept]
    bounds.append(len(out))
    phonemes = tuple(PhonemeEvent(a / SAMPLE_RATE, b / SAMPLE_RATE, name, viseme_of(name))
                     for (_, name), a, b in zip(kept, bounds[:-1], bounds[1:]) if b > a)
    return Utterance(out, phonemes, text, voice.language, kind)


def _segments(events: list, audio: np.ndarray) -> list[list]:
    """[start, end, IPA name] of the phonemes tiling ``audio`` (espeak samples), pauses as PAUSE.

    espeak-ng also reports unnamed phonemes: silent ones are pauses, voiced ones (a release
    before a trill, a syllable joint) are folded into the next named phoneme.
    """
    marks = [(e.sample, e.value) for e in events if e.type == espeak.EVENT_PHONEME]
    marks = [(0, "")] + [(min(max(s, 0), len(audio)), n) for s, n in marks] + [(len(audio), None)]
    spans = []  # (start, end, name) in espeak samples, zero-length ones dropped
    for (start, name), (end, _) in zip(marks[:-1], marks[1:]):
        if end > start:
            spans.append((start, end, name.strip() if not name.startswith("(") else ""))
    merged: list[list] = []
    pending = None  # start of voiced unnamed spans not yet given to a named phoneme
    for start, end, name in spans:
        if not name:
            if float(np.sqrt(np.mean(np.square(audio[start:end])))) >= _SILENT_RMS:
                pending = start if pending is None else pending
                continue
            name = PAUSE
        if pending is not None:
            if name != PAUSE or not merged:
                start = pending
            else:  # a voiced unnamed span before a pause belongs to the phoneme before it
                merged[-1][1] = start
            pending = None
        if merged and merged[-1][2] == name == PAUSE:
            merged[-1][1] = end
        else:
            merged.append([start, end, name])
    if pending is not None:
        if merged:
            merged[-1][1] = len(audio)
        else:
            merged.append([pending, len(audio), PAUSE])
    # espeak-ng reports a stop or fricative at its release; its closure, exact silence at the
    # end of the phoneme before it, is moved into it (a closed mouth belongs to the closure).
    for before, after in zip(merged[:-1], merged[1:]):
        if PAUSE not in (before[2], after[2]):
            audible = np.flatnonzero(np.abs(audio[before[0]:after[0]]) > _CLOSURE_LEVEL)
            if audible.size and after[0] - (before[0] + audible[-1] + 1) >= _MIN_CLOSURE:
                before[1] = after[0] = before[0] + int(audible[-1]) + 1
    return merged


def __getattr__(name: str):
    # `sing` lives in singing.py, which imports this module's types; resolve it lazily.
    if name == "sing":
        from infp_lab.data.synconv.singing import sing

        return sing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SAMPLE_RATE", "VISEMES", "KINDS", "PAUSE", "VOICE_VARIANTS", "MALE_VARIANTS", "FEMALE_VARIANTS",
    "PhonemeEvent", "Utterance", "Voice", "LANGUAGES", "viseme_of", "sample_voice", "synthesize",
    "make_sentence", "backchannel_text", "sing",
]
