"""Weights files: safetensors with the config in the metadata (style.md "Checkpoints"),
and atomic training checkpoints. Weights load only from safetensors, never from pickle."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], kind: str, config: dict,
                 extra: dict | None = None) -> Path:
    """Write a slim inference file: tensors + {"kind", "config", **extra} as JSON metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"kind": kind, "config": json.dumps(config)}
    metadata.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def load_weights(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """Read a file written by `save_weights`; returns (state_dict, config, extra metadata).

    Raises ValueError when the file is not a safetensors weights file of this `kind`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable safetensors weights file: {error}") from None
    if metadata.get("kind") != kind:
        raise ValueError(f"{path} holds {metadata.get('kind') or 'unknown'!r} weights, expected {kind!r}")
    config = json.loads(metadata["config"])
    extra = {k: json.loads(v) for k, v in metadata.items() if k not in ("kind", "config")}
    return state, config, extra


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes: names the exact weights a run or a cache was built from."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_training_checkpoint(path: str | Path, state: dict) -> Path:
    """torch.save to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_training_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint written by this project (tensors and plain containers only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_pretrained(model_cls, config_cls, path: str | Path, kind: str, device="cpu", with_extra: bool = False):
    """Rebuild a model from a file written by `save_weights` alone: its config from the
    metadata (`config_cls.from_dict`), then its weights; clear errors for a wrong file.
    With `with_extra`, returns (model, the file's extra metadata)."""
    state, config, extra = load_weights(path, kind)
    try:
        model = model_cls(config_cls.from_dict(config))
    except (TypeError, KeyError) as error:
        raise ValueError(f"{path} holds an unreadable {kind} config: {error}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{path} does not match its own {kind} config: {error}") from None
    model = model.to(device).eval()
    return (model, extra) if with_extra else model


def update_metadata(path: str | Path, kind: str, entries: dict) -> Path:
    """Rewrite a file written by `save_weights` with `entries` added to (or replacing) its
    extra metadata; the tensors and the config are kept as they are. Atomic, like `save_weights`."""
    state, config, extra = load_weights(path, kind)
    return save_weights(path, state, kind, config, {**extra, **entries})
