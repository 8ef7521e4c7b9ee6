"""SynConv dataset generation: conversations -> two clips each + splits (design.md section 3.1).

Conversation `i` of a dataset with seed `s` is drawn from its own random stream
`SeedSequence([s, i])`, so the bytes written do not depend on the number of workers.
Splits are disjoint by identity (every participant is a new face) and by voice: espeak-ng's
voice variants are partitioned once, independently of the seed, so a test split generated
later with any seed still has voices that no training split has.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from infp_lab.data.clip import STATE_NAMES, write_clip
from infp_lab.data.synconv.behaviour import Style, animate, sample_style
from infp_lab.data.synconv.dialogue import Conversation, activity, schedule_conversation
from infp_lab.data.synconv.speech import LANGUAGES, SAMPLE_RATE, VISEMES, VOICE_VARIANTS, Voice, sample_voice
from infp_lab.render import PARAM_NAMES, Appearance, project_landmarks, sample_appearance

FPS = 25
BASE_SIZE = 256
SPLITS = ("train", "val", "test")
GENERATOR_VERSION = 1


def split_of_variant(variant: str) -> str:
    """The split a voice variant belongs to (fixed, seed-independent: 3/5 train, 1/5 val, 1/5 test)."""
    index = sorted(VOICE_VARIANTS).index(variant)
    return SPLITS[{3: 1, 4: 2}.get(index % 5, 0)]


def variants_of_split(split: str) -> list[str]:
    return [v for v in sorted(VOICE_VARIANTS) if split_of_variant(v) == split]


@dataclass(frozen=True)
class Person:
    """A conversation participant: a face, a motion style and a voice."""

    identity: str
    appearance: Appearance
    style: Style
    voice: Voice


def _person(rng: np.random.Generator, identity: str, language: str, split: str) -> Person:
    voice = sample_voice(rng, language)
    voice = replace(voice, variant=str(rng.choice(variants_of_split(split))))
    return Person(identity, sample_appearance(rng), sample_style(rng), voice)


def assign_splits(conversations: int, seed: int) -> list[str]:
    """Split of each conversation: about 70/15/15, each split non-empty when there are 3+."""
    if conversations < 1:
        raise ValueError(f"--conversations must be at least 1, got {conversations}")
    order = np.random.default_rng([seed, 7]).permutation(conversations)
    n_test = max(1, round(0.15 * conversations)) if conversations >= 2 else 0
    n_val = max(1, round(0.15 * conversations)) if conversations >= 3 else 0
    splits = ["train"] * conversations
    for rank, i in enumerate(order):
        if rank < n_test:
            splits[i] = "test"
        elif rank < n_test + n_val:
            splits[i] = "val"
    return splits


def generate_conversation(out: Path, seed: int, index: int, seconds: float, language: str, split: str) -> list[str]:
    """Generate conversation `index` and write its two clips; returns the clip names."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    people = tuple(_person(rng, f"s{seed}-c{index:04d}-{side}", language, split) for side in "ab")
    singing = bool(rng.random() < 0.3)
    conversation = schedule_conversation(rng, seconds, language, (people[0].voice, people[1].voice), singing)
    num_frames = int(round(seconds * FPS))
    names = []
    for agent, side in ((0, "a"), (1, "b")):
        name = f"conv{index:04d}_{side}"
        _write_agent_clip(out / name, conversation, people, agent, num_frames, rng, seed, index, split)
        names.append(name)
    return names


def _write_agent_clip(path: Path, conversation: Conversation, people: tuple[Person, Person], agent: int,
                      num_frames: int, rng: np.random.Generator, seed: int, index: int, split: str) -> None:
    me, partner = people[agent], people[1 - agent]
    mine, theirs = conversation.placements[agent], conversation.placements[1 - agent]
    params, labels = animate(mine, theirs, num_frames, me.style, rng, FPS)
    state = (activity(mine, num_frames, FPS).astype(np.int8) + 2 * activity(theirs, num_frames, FPS).astype(np.int8))
    landmarks = project_landmarks(params, me.appearance, BASE_SIZE)  # (T, L, 2)
    n_samples = num_frames * SAMPLE_RATE // FPS
    segments = [{"speaker": who, "start": round(p.start, 4), "end": round(p.end, 4), "kind": p.kind,
                 "text": p.utterance.text}
                for who, placements in (("self", mine), ("other", theirs)) for p in placements]
    meta = {
        "fps": FPS, "sample_rate": SAMPLE_RATE, "num_frames": num_frames, "language": conversation.language,
        "identity": me.identity, "partner_identity": partner.identity, "param_names": list(PARAM_NAMES),
        "style": me.style.to_dict(), "style_id": me.style.archetype, "species": me.appearance.species,
        "base_yaw": me.appearance.base_yaw, "voice": me.voice.to_dict(), "partner_voice": partner.voice.to_dict(),
        "voice_id": _voice_id(me.voice), "state_names": list(STATE_NAMES), "visemes": list(VISEMES),
        "phonemes": list(labels.inventory), "segments": sorted(segments, key=lambda s: s["start"]),
        "conversation": f"conv{index:04d}", "agent": "ab"[agent], "split": split,
        "generator": {"name": "synconv", "version": GENERATOR_VERSION, "seed": seed},
    }
    motion = {"params": params, "landmarks": landmarks.astype(np.float32), "state": state,
              "viseme": labels.viseme, "phoneme": labels.phoneme}
    render_spec = {"renderer": "synconv-face", "version": GENERATOR_VERSION, "base_size": BASE_SIZE,
                   "appearance": me.appearance.to_dict()}
    write_clip(path, conversation.tracks[agent][:n_samples], conversation.tracks[1 - agent][:n_samples],
               meta, motion, render_spec)


def _voice_id(voice: Voice) -> str:
    return f"{voice.language}:{voice.variant}:p{voice.pitch}:r{voice.rate}"


def _job(args: tuple) -> list[str]:
    return generate_conversation(*args)


def generate_dataset(out: str | Path, conversations: int = 10, seconds: float = 20.0, seed: int = 0,
                     languages: list[str] | None = None, workers: int = 1, progress: bool = False) -> dict:
    """Write `conversations` conversations (two clips each), `splits.json` and `dataset.json`.

    Languages are used in turn (conversation i speaks languages[i % len(languages)]).
    Returns a summary dict (clips, conversations, splits, wall_seconds).
    """
    languages = list(languages or LANGUAGES)
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise ValueError(f"unknown language(s) {', '.join(unknown)}; supported: {', '.join(LANGUAGES)}")
    if not 2.0 <= seconds <= 600.0:
        raise ValueError(f"--seconds must be between 2 and 600, got {seconds}")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = assign_splits(conversations, seed)
    jobs = [(out, seed, i, seconds, languages[i % len(languages)], splits[i]) for i in range(conversations)]
    start = time.perf_counter()
    from tqdm.auto import tqdm

    bar = tqdm(total=conversations, desc="synconv", unit="conv", disable=not progress)
    if workers == 1:
        names = []
        for job in jobs:
            names.append(_job(job))
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            names = []
            for result in pool.map(_job, jobs):
                names.append(result)
                bar.update()
    bar.close()
    wall = time.perf_counter() - start
    split_lists = {s: [n for i, pair in enumerate(names) if splits[i] == s for n in pair] for s in SPLITS}
    (out / "splits.json").write_text(json.dumps(split_lists, indent=1))
    summary = {"conversations": conversations, "clips": 2 * conversations, "seconds": seconds, "seed": seed,
               "languages": languages, "generator_version": GENERATOR_VERSION, "splits": split_lists}
    (out / "dataset.json").write_text(json.dumps(summary, indent=1))
    return {**summary, "wall_seconds": wall}
