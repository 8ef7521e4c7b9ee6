"""SynConv dialogue schedule: who says what, when (design.md section 3.1).

A conversation is a sequence of turns with gaps, overlaps, interruptions, long silences,
listener backchannels at the speaker's phrase ends, and, in some conversations, a sung
segment. Each speaker's placements are mixed into that speaker's own track.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from infp_lab.data.synconv.speech import (
    SAMPLE_RATE, PhonemeEvent, Utterance, Voice, backchannel_text, make_sentence, sing, synthesize,
)


@dataclass(frozen=True)
class Placement:
    """An utterance placed on a speaker's track at `start` seconds."""

    start: float
    utterance: Utterance

    @property
    def end(self) -> float:
        return self.start + self.utterance.duration

    @property
    def kind(self) -> str:
        return self.utterance.kind


@dataclass
class Conversation:
    """Two speakers' placements and mixed tracks over `seconds`."""

    seconds: float
    language: str
    placements: tuple[list[Placement], list[Placement]] = field(default_factory=lambda: ([], []))
    tracks: tuple[np.ndarray, np.ndarray] | None = None  # (N,) float32 each


def truncate(utterance: Utterance, seconds: float) -> Utterance:
    """Cut an utterance at `seconds` with a 10 ms fade-out; later phoneme events are dropped."""
    n = max(0, min(len(utterance.audio), int(round(seconds * SAMPLE_RATE))))
    audio = utterance.audio[:n].copy()
    fade = min(n, SAMPLE_RATE // 100)
    if fade:
        audio[n - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    cut = n / SAMPLE_RATE
    phonemes = tuple(
        PhonemeEvent(p.start, min(p.end, cut), p.phoneme, p.viseme) for p in utterance.phonemes if p.start < cut
    )
    return replace(utterance, audio=audio, phonemes=phonemes)


def _speak(rng: np.random.Generator, voice: Voice, language: str, sentence: bool = True) -> Utterance:
    text = make_sentence(rng, language, int(rng.integers(3, 9))) if sentence else backchannel_text(rng, language)
    utterance = synthesize(text, voice, kind="speech" if sentence else "backchannel")
    gain = rng.uniform(0.45, 0.85) / max(1e-4, float(np.abs(utterance.audio).max()))
    return replace(utterance, audio=(utterance.audio * gain).astype(np.float32))


def schedule_conversation(rng: np.random.Generator, seconds: float, language: str,
                          voices: tuple[Voice, Voice], singing: bool = False) -> Conversation:
    """Draw a random turn-taking schedule and synthesise it.

    Turns hold 1-3 sentences of 3-8 words (most often one; no new sentence after 2-4.5 s
    of turn). Between turns: a gap (most often), a long silence, an overlap (the next
    speaker starts before the end), an interruption (the current speaker is cut off shortly
    after the next one starts), or the same speaker goes on. The listener
    backchannels near the speaker's phrase ends. With `singing`, one turn is sung.
    Roles are not fixed: most turns pass to the other speaker, so both talk within seconds.
    """
    conversation = Conversation(seconds=seconds, language=language)
    speaker = int(rng.integers(2))
    t = rng.uniform(0.2, 1.0)
    sing_turn = int(rng.integers(1, 4)) if singing else -1
    turn, went_on = 0, False
    while t < seconds - 0.5:
        listener = 1 - speaker
        own = conversation.placements[speaker]
        if turn == sing_turn:
            own.append(Placement(t, sing(rng, voices[speaker], rng.uniform(2.0, 4.0))))
            t = own[-1].end
        else:
            turn_start, turn_budget = t, rng.uniform(2.0, 4.5)
            for sentence in range(int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))):
                if sentence and t - turn_start > turn_budget:
                    break
                if sentence:
                    t += rng.uniform(0.15, 0.5)
                own.append(Placement(t, _speak(rng, voices[speaker], language)))
                t = own[-1].end
                if rng.random() < 0.55:  # a backchannel near the phrase end
                    start = t + rng.uniform(-0.3, 0.35)
                    conversation.placements[listener].append(
                        Placement(start, _speak(rng, voices[listener], language, sentence=False)))
                if t >= seconds:
                    break
        # The next turn: who, and how it joins this one.
        roll = rng.random()
        if roll < 0.1 and not went_on:  # the same speaker goes on after a pause (not twice running)
            t += rng.uniform(0.4, 1.2)
            turn, went_on = turn + 1, True
            continue
        went_on = False
        speaker = listener
        last = own[-1]
        if roll < 0.30:  # interruption: the next speaker starts mid-phrase, the current one stops soon after
            cut_at = rng.uniform(0.45, 0.75) * last.utterance.duration
            start = last.start + cut_at
            own[-1] = Placement(last.start, truncate(last.utterance, cut_at + rng.uniform(0.2, 0.5)))
            t = start
        elif roll < 0.45:  # overlap: the next speaker starts just before the end
            t = last.end - rng.uniform(0.1, min(0.5, 0.5 * last.utterance.duration))
        elif roll < 0.57:  # a long silence
            t = last.end + rng.uniform(1.0, 2.5)
        else:  # an ordinary gap
            t = last.end + rng.uniform(0.15, 0.8)
        _drop_backchannels_after(conversation.placements[speaker], t - 0.2)
        turn += 1
    conversation.placements = tuple(_clip_to(p, seconds) for p in conversation.placements)
    conversation.tracks = tuple(_mix(p, seconds, rng) for p in conversation.placements)
    return conversation


def _drop_backchannels_after(placements: list[Placement], t: float) -> None:
    """The new speaker does not backchannel over the start of its own turn."""
    placements[:] = [p for p in placements if not (p.kind == "backchannel" and p.end > t)]


def _clip_to(placements: list[Placement], seconds: float) -> list[Placement]:
    kept = []
    for p in sorted(placements, key=lambda p: p.start):
        if p.start >= seconds - 0.05:
            continue
        if p.end > seconds:
            p = Placement(p.start, truncate(p.utterance, seconds - p.start))
        kept.append(p)
    return kept


def _mix(placements: list[Placement], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One speaker's track: its placements (already clipped to `seconds`) over a faint noise floor."""
    n = int(round(seconds * SAMPLE_RATE))
    track = (rng.standard_normal(n) * 10 ** (-62 / 20)).astype(np.float32)  # about -62 dBFS
    for p in placements:
        start = int(round(p.start * SAMPLE_RATE))
        audio = p.utterance.audio[: n - start]
        track[start:start + len(audio)] += audio
    return np.clip(track, -1.0, 1.0)


def activity(placements: list[Placement], num_frames: int, fps: int = 25, bridge: float = 0.3) -> np.ndarray:
    """Per-frame speaking activity (T,) bool from the voiced phoneme spans of the placements.

    Pauses shorter than `bridge` seconds inside one speaker's speech count as speaking.
    """
    centres = (np.arange(num_frames) + 0.5) / fps
    active = np.zeros(num_frames, bool)
    spans = sorted((p.start + e.start, p.start + e.end) for p in placements for e in voiced_events(p.utterance))
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] < bridge:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        active |= (centres >= start) & (centres < end)
    return active


def voiced_events(utterance: Utterance) -> list[PhonemeEvent]:
    """The non-silent phoneme events of an utterance."""
    return [e for e in utterance.phonemes if e.viseme != 0]
