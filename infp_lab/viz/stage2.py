"""Pictures of stage 2 for the notebooks and the demo: the guider's attention next to the
two voices (matplotlib summary and plotly heatmaps), what the motion looks like where a
memory entry wins, motion curves, true against predicted speaking states, and the CFG sweep."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from infp_lab.data.audio import frame_energy
from infp_lab.data.clip import STATE_NAMES, Clip
from infp_lab.render import PARAM_NAMES
from infp_lab.viz.plots import STATE_COLOURS, _runs, plot_timeline, shade_states

BANK_COLOURS = {"verbal": STATE_COLOURS["self"], "non-verbal": STATE_COLOURS["other"]}


def plot_attention_overview(clip: Clip, verbal_attention, nonverbal_attention, figsize=(12, 11)):
    """The two voices above what each memory bank does, frame by frame.

    Rows: the state timeline, both tracks' energy, each bank's peak weight and entropy (with
    the uniform-attention level dashed), and the entry each bank weighs most (dots coloured
    by the true state). Attention is (T, K) per bank, at the clip's fps.
    """
    import matplotlib.pyplot as plt

    from infp_lab.stage2.attention import summarise_attention

    banks = {"verbal": summarise_attention(verbal_attention), "non-verbal": summarise_attention(nonverbal_attention)}
    frames, size = len(banks["verbal"].peak), np.asarray(verbal_attention).shape[1]
    t = np.arange(frames) / clip.fps
    states = clip.motion["state"][:frames]
    fig, axes = plt.subplots(6, 1, figsize=figsize, sharex=True,
                             gridspec_kw={"height_ratios": [1, 1.2, 1, 1, 1.4, 1.4]})
    plot_timeline(clip, ax=axes[0])
    axes[0].set_xlabel("")
    for track, audio, colour in (("self", clip.self_audio, STATE_COLOURS["self"]),
                                 ("other", clip.other_audio, STATE_COLOURS["other"])):
        axes[1].plot(t, frame_energy(audio, clip.sample_rate, clip.fps, frames), color=colour, label=f"{track}.wav")
    axes[1].set_ylabel("voice RMS")
    axes[1].legend(loc="upper right", fontsize=8)
    for ax, field, uniform, label in ((axes[2], "peak", 1.0 / size, "peak weight"),
                                      (axes[3], "entropy", np.log(size), "entropy (nats)")):
        shade_states(ax, states, clip.fps)
        for name, summary in banks.items():
            ax.plot(t, getattr(summary, field), color=BANK_COLOURS[name], lw=1.2, label=f"{name} bank")
        ax.axhline(uniform, color="k", ls="--", lw=0.8, label="uniform attention")
        ax.set_ylabel(label)
        ax.legend(loc="upper right", fontsize=7, ncol=3)
    for ax, name in zip(axes[4:], banks):
        colours = [STATE_COLOURS[STATE_NAMES[s]] for s in states]
        ax.scatter(t, banks[name].argmax, c=colours, s=6)
        ax.set_ylim(-1, size)
        ax.set_ylabel(f"{name}\nbank: top entry")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def attention_heatmap(verbal_attention, nonverbal_attention, fps: int = 25, states: np.ndarray | None = None,
                      title: str | None = None):
    """Interactive plotly heatmaps of both banks' attention (entries x time), each with its
    own colour bar, under an optional strip of the true speaking states. Returns a Figure."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    banks = {"verbal bank (self audio)": np.asarray(verbal_attention),
             "non-verbal bank (other audio)": np.asarray(nonverbal_attention)}
    frames, size = next(iter(banks.values())).shape
    t = np.arange(frames) / fps
    strip = states is not None
    rows = len(banks) + int(strip)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        row_heights=([0.08] if strip else []) + [1.0] * len(banks),
                        subplot_titles=(["true state"] if strip else []) + list(banks))
    if strip:
        codes = np.asarray(states)[:frames]
        colours = [STATE_COLOURS[n] for n in STATE_NAMES]
        scale = [[edge, colours[i]] for i in range(len(colours)) for edge in (i / len(colours), (i + 1) / len(colours))]
        fig.add_trace(go.Heatmap(z=codes[None], x=t, y=["state"], zmin=-0.5, zmax=len(colours) - 0.5,
                                 colorscale=scale, showscale=False, customdata=np.array(STATE_NAMES)[codes][None],
                                 hovertemplate="t=%{x:.2f}s: %{customdata}<extra></extra>"), row=1, col=1)
    for i, (name, weights) in enumerate(banks.items()):
        row = i + 1 + int(strip)
        low, high = fig.layout[f"yaxis{row if row > 1 else ''}"].domain  # this panel's place on the page
        fig.add_trace(go.Heatmap(z=weights.T, x=t, y=np.arange(size), colorscale="Viridis", zmin=0.0,
                                 colorbar=dict(title="weight", y=(low + high) / 2, len=high - low, thickness=12),
                                 hovertemplate="t=%{x:.2f}s, entry %{y}: %{z:.3f}<extra></extra>"), row=row, col=1)
        fig.update_yaxes(title_text="entry", row=row, col=1)
    fig.update_xaxes(title_text="time (s)", row=rows, col=1)
    fig.update_layout(height=220 * len(banks) + (80 if strip else 0) + 60, title=title,
                      margin=dict(l=60, r=20, t=60, b=40))
    return fig


def plot_entry_profiles(profiles: np.ndarray, entries: Sequence[int], names: Sequence[str] = PARAM_NAMES,
                        ax=None, title: str | None = None):
    """Entries x motion parameters, in standard deviations from the clip's mean (see
    `infp_lab.stage2.attention.entry_motion_profiles`), as an annotated diverging map."""
    import matplotlib.pyplot as plt

    profiles = np.asarray(profiles, np.float64)
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 0.6 * len(entries) + 1.6))
    limit = max(1.0, float(np.nanmax(np.abs(profiles)))) if np.isfinite(profiles).any() else 1.0
    image = ax.imshow(profiles, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for (row, col), value in np.ndenumerate(profiles):
        if np.isfinite(value):
            ax.text(col, row, f"{value:+.1f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(entries)), [f"entry {k}" for k in entries])
    ax.figure.colorbar(image, ax=ax, label="std from the clip's mean", fraction=0.03)
    ax.set_title(title or "motion where each entry wins")
    return ax


def plot_motion_curves(motions: Mapping[str, np.ndarray], names: Sequence[str] = ("jaw_open", "pitch"),
                       fps: int = 25, states: np.ndarray | None = None, speaking: np.ndarray | None = None,
                       reference: str | None = None, param_names: Sequence[str] = PARAM_NAMES,
                       axes=None, figsize=None, title: str | None = None):
    """Motion parameters over time, one panel per name and one line per motion (T, P).

    `states` (T,) shades the panels by the true speaking state; `speaking` (T,) bool marks
    the frames a classifier calls speaking with a dark bar along each panel's bottom;
    `reference` names the motion drawn as a thick black line (e.g. the ground truth).
    Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    own_figure = axes is None
    if own_figure:
        fig, axes = plt.subplots(len(names), 1, figsize=figsize or (12, 1.9 * len(names) + 0.6), sharex=True)
    axes = np.atleast_1d(axes)
    fig = axes[0].figure
    others = [label for label in motions if label != reference]
    colours = dict(zip(others, plt.cm.viridis(np.linspace(0.0, 0.85, max(1, len(others))))))
    for ax, name in zip(axes, names):
        column = list(param_names).index(name)
        if states is not None:
            shade_states(ax, states, fps)
        for label, motion in motions.items():
            values = np.asarray(motion)[:, column]
            t = np.arange(len(values)) / fps
            if label == reference:
                ax.plot(t, values, color="k", lw=2.0, label=label)
            else:
                ax.plot(t, values, color=colours[label], lw=1.1, label=label)
        if speaking is not None:
            where = blended_transform_factory(ax.transData, ax.transAxes)
            for start, stop in _runs(np.asarray(speaking, bool)):
                ax.add_patch(plt.Rectangle((start / fps, 0.0), (stop - start) / fps, 0.06, transform=where,
                                           color="#333333", lw=0))
        ax.set_ylabel(name)
    if len(motions) > 1:
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    axes[-1].set_xlabel("time (s)")
    if title:
        axes[0].set_title(title, fontsize=10)
    if own_figure:
        fig.tight_layout()
    return fig


def plot_speaking_states(states: np.ndarray, predictions: Mapping[str, np.ndarray], fps: int = 25, ax=None,
                         title: str | None = None):
    """The true state (four colours) above rows of predicted speaking (teal) or not (grey),
    with thin lines at every true change of the avatar speaking."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from infp_lab.metrics import is_speaking

    states = np.asarray(states)
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 0.55 * (len(predictions) + 1) + 1.2))
    rows = len(predictions) + 1
    top = rows - 0.5
    for code, name in enumerate(STATE_NAMES):
        for start, stop in _runs(states == code):
            ax.broken_barh([(start / fps, (stop - start) / fps)], (top - 0.4, 0.8), color=STATE_COLOURS[name])
    for i, values in enumerate(predictions.values()):
        y = top - 1 - i
        values = np.asarray(values, bool)
        for flag, colour in ((True, STATE_COLOURS["self"]), (False, STATE_COLOURS["none"])):
            for start, stop in _runs(values == flag):
                ax.broken_barh([(start / fps, (stop - start) / fps)], (y - 0.4, 0.8), color=colour)
    speaking = is_speaking(states)
    for change in np.flatnonzero(speaking[1:] != speaking[:-1]) + 1:
        ax.axvline(change / fps, color="k", lw=0.6, ls=":")
    ax.set_yticks([top - i for i in range(rows)], ["true state", *[f"{k}: speaking?" for k in predictions]])
    ax.set_ylim(-0.1, rows + 0.1)
    ax.set_xlim(0, len(states) / fps)
    ax.set_xlabel("time (s)")
    handles = [Patch(color=STATE_COLOURS[n], label=n) for n in STATE_NAMES]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, title="state (top row)",
              title_fontsize=7)
    ax.set_title(title or "who speaks, and what the motion says (dotted: true turn changes)")
    return ax


SWEEP_PANELS = (("lse_c", "sync: LSE-C (higher is better)"), ("sid_expression", "diversity: SID, expression"),
                ("sid_pose", "diversity: SID, pose"), ("var_expression", "diversity: Var, expression"),
                ("var_pose", "diversity: Var, pose"))


def plot_cfg_sweep(rows: Mapping[str, Mapping[str, float]], panels=SWEEP_PANELS, figsize=(15, 3.2),
                   xlabel: str = "audio guidance scale"):
    """Metrics against the audio guidance scale, one panel per metric, the ground truth as a
    dashed line.

    `rows` maps a scale (as a string, e.g. "2.0") to its metrics, plus a "ground_truth" row,
    as in the `rows` of scripts/stage2_experiments.py's cfg-sweep JSON (or another setting,
    e.g. the pose gain of its pose-sweep, named by `xlabel`). `panels` lists (metric key,
    title) pairs.
    """
    import matplotlib.pyplot as plt

    scales = sorted((float(k), k) for k in rows if k != "ground_truth")
    truth = rows.get("ground_truth", {})
    fig, axes = plt.subplots(1, len(panels), figsize=figsize)
    for ax, (key, title) in zip(np.atleast_1d(axes), panels):
        values = [rows[label].get(key, np.nan) for _, label in scales]
        ax.plot([s for s, _ in scales], values, "o-", color="#264653", label="generated")
        if key in truth:
            ax.axhline(truth[key], color="#e76f51", ls="--", lw=1.2, label="ground truth")
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=9)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
