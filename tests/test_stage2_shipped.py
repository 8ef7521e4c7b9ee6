"""The shipped stage-2 weights on a committed sample conversation (unseen in training):
long generation is continuous at window borders, and the mouth talks while the avatar speaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from infp_lab.data.clip import load_clip
from infp_lab.stage2 import MotionGenerator, generate_from_audio

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "stage2_tiny.safetensors"
CLIP = ROOT / "data_samples" / "synconv" / "conv0000_a"


@pytest.fixture(scope="module")
def generated():
    model = MotionGenerator.from_pretrained(WEIGHTS).eval()
    clip = load_clip(CLIP)
    with torch.no_grad():
        out = generate_from_audio(model, clip.self_audio, clip.other_audio, clip.sample_rate, seed=0)
    return model, clip, out


def test_long_generation_is_continuous_at_window_borders(generated):
    model, clip, out = generated
    latents = out.latents.numpy()
    assert abs(len(latents) - clip.num_frames) <= 1
    step = np.linalg.norm(np.diff(latents, axis=0), axis=1)  # (T-1,) frame-to-frame motion
    window = model.config.dit.window
    borders = np.arange(window, len(latents), window) - 1  # step from the last frame of a window to the next
    inside = np.setdiff1d(np.arange(len(step)), borders)
    assert len(borders) >= 3
    assert step[borders].mean() < 2.0 * step[inside].mean(), (step[borders], step[inside].mean())


def test_mouth_opens_more_while_speaking_than_while_listening(generated):
    """Talk while the own voice speaks, keep the mouth calmer while only the partner speaks:
    jaw opening read from the generated latents by a reader fitted on the training samples."""
    from infp_lab.data.clip import list_clips
    from infp_lab.render import PARAM_NAMES
    from infp_lab.stage1 import HeadImitator
    from infp_lab.stage1.inference import encode_clip
    from infp_lab.stage2.evaluate import MotionReader

    _, clip, out = generated
    stage1 = HeadImitator.from_pretrained(ROOT / "weights" / "stage1_tiny.safetensors").eval()
    train = [load_clip(p, load_audio_tracks=False) for p in list_clips(CLIP.parent, "train")]
    with torch.no_grad():
        reader = MotionReader(np.concatenate([encode_clip(stage1, c).numpy() for c in train]),
                              np.concatenate([c.motion["params"] for c in train]))
    jaw = reader(out.latents.numpy())[:, PARAM_NAMES.index("jaw_open")]
    state = clip.motion["state"][: len(jaw)]
    assert jaw[state == 1].mean() > jaw[state == 2].mean() + 0.05
