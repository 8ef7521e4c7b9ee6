"""Tests of SynConv speech, lexicon and singing (design.md section 3.1).

We cannot listen, so the checks are numbers: RMS, duration per word, voiced-frame fraction,
phoneme counts, viseme variety, and frames of audio against the phoneme events.
"""

from __future__ import annotations

import json
import multiprocessing
import re

import numpy as np
import pytest

from infp_lab.data.synconv import espeak
from infp_lab.data.synconv.lexicon import BACKCHANNELS, WORDS
from infp_lab.data.synconv.speech import (
    LANGUAGES, SAMPLE_RATE, VISEMES, VOICE_VARIANTS, PhonemeEvent, Utterance, Voice, backchannel_text,
    make_sentence, sample_voice, sing, synthesize, viseme_of,
)

HOP = SAMPLE_RATE // 100  # 10 ms frames


def frame_rms(audio: np.ndarray) -> np.ndarray:
    n = len(audio) // HOP
    return np.sqrt(np.mean(audio[: n * HOP].reshape(n, HOP) ** 2, axis=1))  # (n,)


def check_tiling(u: Utterance) -> None:
    """Events contiguous, non-overlapping, from 0 to the duration, each with a valid viseme."""
    assert u.phonemes[0].start == 0.0
    assert u.phonemes[-1].end == pytest.approx(u.duration, abs=1e-9)
    for a, b in zip(u.phonemes[:-1], u.phonemes[1:]):
        assert a.end == b.start
    for p in u.phonemes:
        assert p.end > p.start and 0 <= p.viseme < len(VISEMES)
        assert p.viseme == viseme_of(p.phoneme)


def quiet_inside_pauses(u: Utterance, guard: float = 0.006) -> bool:
    """10 ms frames lying wholly inside a pause event (with a guard) are quiet."""
    rms = frame_rms(u.audio)
    starts = np.arange(len(rms)) * HOP / SAMPLE_RATE
    loud = rms > 0.02 * rms.max()
    for p in u.phonemes:
        if p.viseme == 0:
            inside = (starts >= p.start + guard) & (starts + HOP / SAMPLE_RATE <= p.end - guard)
            if loud[inside].any():
                return False
    return True


@pytest.mark.parametrize("phoneme, viseme", [
    ("p", "PP"), ("m", "PP"), ("f", "FF"), ("θ", "TH"), ("t̪", "DD"), ("ŋ", "kk"), ("χ", "kk"),
    ("tʃ", "CH"), ("dʒʲ", "CH"), ("ts.h", "SS"), ("s̪", "SS"), ("l", "nn"), ("ʁ", "RR"), ("ɾ", "RR"),
    ("ˈaː", "aa"), ("ä", "aa"), ("ɛ̃", "E"), ("ˌə", "E"), ("ᵻ", "I"), ("ˈiː", "I"), ("o̞", "O"),
    ("ø", "O"), ("ɯᵝ", "U"), ("w", "U"), ("ˈaɪ", "aa"), ("ˈiɑ", "aa"), ("ʲ", "I"), ("", "sil"),
    ("_", "sil"), ("ˈ", "sil"), ("ʘ", "DD"),
])
def test_viseme_of(phoneme: str, viseme: str) -> None:
    assert VISEMES[viseme_of(phoneme)] == viseme


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_language_speaks(language: str) -> None:
    rng = np.random.default_rng(7)
    voice = sample_voice(rng, language)
    text = make_sentence(rng, language, n_words=6)
    u = synthesize(text, voice)
    assert u.audio.dtype == np.float32 and u.audio.ndim == 1 and np.abs(u.audio).max() <= 1.0
    assert (u.language, u.kind, u.text) == (language, "speech", text)
    check_tiling(u)
    rms = frame_rms(u.audio)
    assert 0.02 < float(np.sqrt(np.mean(u.audio**2))) < 0.5
    assert 0.12 < u.duration / 6 < 0.9  # seconds per word
    assert (rms > 0.02 * rms.max()).mean() > 0.6  # voiced-frame fraction
    spoken = [p for p in u.phonemes if p.viseme != 0]
    assert len(spoken) >= 12
    assert len({p.viseme for p in spoken}) >= 5
    assert max((p.end - p.start for p in u.phonemes if p.viseme == 0), default=0.0) < 0.5
    assert quiet_inside_pauses(u)


def test_events_follow_the_audio_energy() -> None:
    """Vowel events line up with energy: shifting them by 40 ms either way fits worse."""
    rng = np.random.default_rng(3)
    fits = np.zeros(3)
    for i in range(22):
        language = list(LANGUAGES)[i % len(LANGUAGES)]
        u = synthesize(make_sentence(rng, language), sample_voice(rng, language))
        log_energy = np.log(frame_rms(u.audio) + 1e-5)
        centres = (np.arange(len(log_energy)) + 0.5) * HOP / SAMPLE_RATE
        for k, shift in enumerate((-0.04, 0.0, 0.04)):
            vowel = np.zeros(len(centres))
            for p in u.phonemes:
                if VISEMES[p.viseme] in ("aa", "E", "I", "O", "U"):
                    vowel[(centres >= p.start + shift) & (centres < p.end + shift)] = 1
            fits[k] += np.corrcoef(vowel, log_energy)[0, 1]
    assert fits[1] > fits[0] and fits[1] > fits[2]


def test_mandarin_reads_tones_in_pinyin() -> None:
    assert LANGUAGES["cmn"] == "cmn-latn-pinyin"
    u = synthesize("ni3 hao3", Voice("cmn", LANGUAGES["cmn"], "f2", 50, 50, 160))
    names = "".join(p.phoneme for p in u.phonemes)
    assert "θ" not in names and "ɹ" not in names  # no English "three"
    assert 3 <= len([p for p in u.phonemes if p.viseme != 0]) <= 6 and u.duration < 1.0
    sentence = make_sentence(np.random.default_rng(0), "cmn", n_words=8)
    syllables = re.findall(r"[a-zv]+\d?", sentence)
    assert all(s[-1] in "12345" for s in syllables), sentence


def test_scripts_of_the_lexicon() -> None:
    rng = np.random.default_rng(1)
    assert re.search(r"[\u3040-\u30ff]", make_sentence(rng, "ja"))
    assert not re.search(r"[\u4e00-\u9fff]", "".join(WORDS["ja"]))  # kana only, no kanji
    assert re.search(r"[\u0600-\u06ff]", make_sentence(rng, "ar"))
    assert re.search(r"[\u0900-\u097f]", make_sentence(rng, "hi"))
    assert re.search(r"[\u0400-\u04ff]", make_sentence(rng, "ru"))
    for language in LANGUAGES:
        assert len(set(WORDS[language])) >= 60, language
        same_seed = [make_sentence(np.random.default_rng(5), language) for _ in range(2)]
        assert same_seed[0] == same_seed[1]
        assert len(make_sentence(rng, language, n_words=5).split()) >= 5


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_backchannels_are_short(language: str) -> None:
    voice = Voice(language, LANGUAGES[language], "m3", 50, 50, 170)
    for text in BACKCHANNELS[language]:
        u = synthesize(text, voice, kind="backchannel")
        assert 0.1 < u.duration < 1.3, (text, u.duration)
        assert u.kind == "backchannel" and any(p.viseme != 0 for p in u.phonemes)
        check_tiling(u)
    assert backchannel_text(np.random.default_rng(0), language) in BACKCHANNELS[language]


def test_every_variant_speaks() -> None:
    for variant in VOICE_VARIANTS:
        u = synthesize("The quick brown fox jumps.", Voice("en", LANGUAGES["en"], variant, 50, 50, 170))
        assert 0.8 < u.duration < 3.0 and float(np.sqrt(np.mean(u.audio**2))) > 0.02, variant


def test_synthesis_is_deterministic() -> None:
    voice = Voice("en", LANGUAGES["en"], "f1", 40, 60, 150)  # f1 has pitch flutter
    first = synthesize("Remember the garden in summer.", voice)
    synthesize("Something else in between.", Voice("de", "de", "m2", 70, 30, 190))
    again = synthesize("Remember the garden in summer.", voice)
    assert first.audio.tobytes() == again.audio.tobytes()
    assert first.phonemes == again.phonemes


def test_errors() -> None:
    voice = Voice("en", LANGUAGES["en"], "m1", 50, 50, 170)
    with pytest.raises(ValueError, match="supported: en, cmn"):
        synthesize("hello", Voice("xx", "en", "m1", 50, 50, 170))
    with pytest.raises(ValueError, match="empty"):
        synthesize("   ", voice)
    with pytest.raises(ValueError, match="kind"):
        synthesize("hello", voice, kind="shouting")
    for call in (sample_voice, make_sentence, backchannel_text):
        with pytest.raises(ValueError, match="supported"):
            call(np.random.default_rng(0), "klingon")
    with pytest.raises(ValueError):
        sing(np.random.default_rng(0), voice, 0.0)


def test_sample_voice_and_round_trip() -> None:
    for seed in range(30):
        voice = sample_voice(np.random.default_rng(seed), "es")
        assert voice == sample_voice(np.random.default_rng(seed), "es")
        assert voice.variant in VOICE_VARIANTS and voice.espeak_voice == LANGUAGES["es"]
        assert 20 <= voice.pitch <= 80 and 130 <= voice.rate <= 200 and 0 <= voice.pitch_range <= 100
        assert Voice.from_dict(json.loads(json.dumps(voice.to_dict()))) == voice


def test_singing() -> None:
    male = Voice("en", LANGUAGES["en"], "m3", 50, 50, 170)
    female = Voice("en", LANGUAGES["en"], "f3", 50, 50, 170)
    u = sing(np.random.default_rng(4), male, 5.0)
    again = sing(np.random.default_rng(4), male, 5.0)
    assert u.audio.tobytes() == again.audio.tobytes() and u.phonemes == again.phonemes
    assert u.kind == "singing" and u.duration == pytest.approx(5.0, abs=1e-3)
    assert u.audio.dtype == np.float32 and np.isfinite(u.audio).all() and np.abs(u.audio).max() <= 1.0
    check_tiling(u)
    sung = [p for p in u.phonemes if p.viseme != 0]
    assert len(sung) == len(u.text.split()) >= 4
    assert all(VISEMES[p.viseme] in ("aa", "E", "I", "O", "U") for p in sung)
    assert quiet_inside_pauses(u)
    assert (frame_rms(u.audio) > 0.02 * frame_rms(u.audio).max()).mean() > 0.6

    def median_f0(utterance: Utterance) -> float:
        estimates = []
        for p in utterance.phonemes:
            if p.viseme and p.end - p.start > 0.25:
                seg = utterance.audio[int((p.start + 0.08) * SAMPLE_RATE): int((p.start + 0.2) * SAMPLE_RATE)]
                ac = np.correlate(seg, seg, "full")[len(seg) - 1:]
                lag = 30 + int(np.argmax(ac[30:250]))
                estimates.append(SAMPLE_RATE / lag)
        return float(np.median(estimates))

    f0_male = median_f0(sing(np.random.default_rng(9), male, 8.0))
    f0_female = median_f0(sing(np.random.default_rng(9), female, 8.0))
    assert 80 < f0_male < 260 and f0_female > 1.5 * f0_male


def _speak(args: tuple[str, dict]) -> bytes:
    text, voice = args
    return synthesize(text, Voice.from_dict(voice)).audio.tobytes()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_processes(method: str) -> None:
    jobs = [("Good morning, friend.", Voice("en", "en-us", "m1", 50, 50, 170).to_dict()),
            ("Bonjour mon ami.", Voice("fr", "fr", "f2", 60, 40, 150).to_dict())]
    expected = [_speak(job) for job in jobs]  # the parent's engine is initialised before forking
    with multiprocessing.get_context(method).Pool(2) as pool:
        assert pool.map_async(_speak, jobs * 2).get(timeout=120) == expected * 2


def test_raw_binding_reports_positions() -> None:
    samples, events, rate = espeak.synth("Hello world.", "en-us")
    assert rate == espeak.native_sample_rate() and samples.dtype == np.int16 and len(samples) > rate // 4
    positions = [e.sample for e in events if e.type == espeak.EVENT_PHONEME]
    assert len(positions) >= 6 and positions == sorted(positions) and positions[-1] <= len(samples)
    assert any(e.type == espeak.EVENT_WORD for e in events)


def test_public_types() -> None:
    event = PhonemeEvent(0.0, 0.1, "a", viseme_of("a"))
    assert VISEMES[event.viseme] == "aa"
    u = Utterance(np.zeros(1600, np.float32), (event,), "a", "en", "speech")
    assert u.duration == pytest.approx(0.1)
