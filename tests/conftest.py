"""Shared fixtures: one small SynConv dataset generated once per test run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def synconv_dir(tmp_path_factory):
    """The issue's reference conversation: 1 conversation, 8 s, seed 3 (two clips)."""
    from infp_lab.data.synconv import generate_dataset

    out = tmp_path_factory.mktemp("synconv")
    generate_dataset(out, conversations=1, seconds=8.0, seed=3)
    return out


@pytest.fixture(scope="session")
def synconv_many(tmp_path_factory):
    """Six 10-second conversations across languages (train/val/test all non-empty)."""
    from infp_lab.data.synconv import generate_dataset

    out = tmp_path_factory.mktemp("synconv_many")
    generate_dataset(out, conversations=6, seconds=10.0, seed=11, workers=2)
    return out
