"""Plots and image grids shared by the notebooks, scripts and demo (no UI code)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from infp_lab.data.audio import frame_energy
from infp_lab.data.clip import STATE_NAMES, Clip

STATE_COLOURS = {"none": "#dddddd", "self": "#2a9d8f", "other": "#e76f51", "both": "#8e44ad"}


def plot_timeline(clip: Clip, ax=None, title: str | None = None):
    """The speaking-state timeline (self / other / both / none) with the utterance texts."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(12, 2.2))
    state = clip.motion["state"]
    t = np.arange(len(state) + 1) / clip.fps
    for code, name in enumerate(STATE_NAMES):
        for start, stop in _runs(state == code):
            ax.axvspan(t[start], t[stop], ymin=0.0, ymax=1.0, color=STATE_COLOURS[name], alpha=0.8, lw=0)
    for segment in clip.meta.get("segments", []):
        y = 0.75 if segment["speaker"] == "self" else 0.25
        ax.text(segment["start"], y, _segment_label(segment), fontsize=7, va="center", clip_on=True)
    ax.set_xlim(0, t[-1])
    ax.set_yticks([0.25, 0.75], ["other", "self"])
    ax.set_xlabel("time (s)")
    ax.legend(handles=[Patch(color=STATE_COLOURS[n], label=n) for n in STATE_NAMES],
              loc="upper right", ncol=4, fontsize=7, framealpha=0.9)
    ax.set_title(title or f"{clip.name}: who is speaking ({clip.meta['language']})")
    return ax


def _segment_label(segment: dict) -> str:
    """The segment's text when the default font has its glyphs (Latin script), else its kind."""
    text = segment["text"]
    if not all(ord(ch) < 0x250 for ch in text):
        text = f"({len(text.split())} words)" if segment["kind"] != "singing" else ""
    prefix = "" if segment["kind"] == "speech" else f"{segment['kind']}: "
    return (prefix + text)[:30]


def plot_motion_vs_energy(clip: Clip, names: Sequence[str] = ("jaw_open", "lip_press", "pitch", "smile", "blink_left"),
                          figsize=(12, 8)):
    """Ground-truth motion curves under the two voices' frame energies, state-shaded."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(names) + 1, 1, figsize=figsize, sharex=True)
    t = np.arange(clip.num_frames) / clip.fps
    own = frame_energy(clip.self_audio, clip.sample_rate, clip.fps, clip.num_frames)
    other = frame_energy(clip.other_audio, clip.sample_rate, clip.fps, clip.num_frames)
    axes[0].plot(t, own, color=STATE_COLOURS["self"], label="self.wav energy")
    axes[0].plot(t, other, color=STATE_COLOURS["other"], label="other.wav energy")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_ylabel("RMS")
    for ax, name in zip(axes[1:], names):
        shade_states(ax, clip.motion["state"], clip.fps)
        ax.plot(t, clip.param(name), color="k", lw=1)
        ax.set_ylabel(name, rotation=0, ha="right")
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"{clip.name}: motion follows who speaks (teal: self speaking, orange: partner)")
    fig.tight_layout()
    return fig


def shade_states(ax, states: np.ndarray, fps: int = 25, alpha: float = 0.18) -> None:
    """Shade a time axis (seconds) by speaking state (T,) int: self, other and both; none stays white."""
    states = np.asarray(states)
    for code, name in enumerate(STATE_NAMES):
        if name == "none":
            continue
        for start, stop in _runs(states == code):
            ax.axvspan(start / fps, stop / fps, color=STATE_COLOURS[name], alpha=alpha, lw=0)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of a boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def image_grid(images: Sequence[np.ndarray], columns: int, labels: Sequence[str] | None = None,
               pad: int = 4, background: int = 255) -> np.ndarray:
    """Tile equally sized (H, W, 3) uint8 images into one image, with optional captions."""
    import cv2

    if not images:
        raise ValueError("image_grid needs at least one image")
    height, width = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    grid = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad, 3), background, np.uint8)
    for i, image in enumerate(images):
        y, x = pad + (i // columns) * (height + pad), pad + (i % columns) * (width + pad)
        tile = np.ascontiguousarray(image)
        if labels is not None:
            tile = tile.copy()
            scale = max(0.3, width / 640)
            cv2.putText(tile, labels[i], (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(tile, labels[i], (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        grid[y:y + height, x:x + width] = tile
    return grid


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray, colour=(0, 255, 0), radius: int = 1) -> np.ndarray:
    """A copy of `image` with (L, 2) pixel landmarks drawn as dots."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    for x, y in np.round(landmarks).astype(int):
        cv2.circle(out, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)
    return out
