"""Slim inference weights from training checkpoints (style.md "Checkpoints")."""

from __future__ import annotations

from pathlib import Path

from infp_lab.checkpoint import load_training_checkpoint


def export_checkpoint(checkpoint: str | Path, out: str | Path, ema: bool = True) -> Path:
    """Write the (EMA) weights of a training checkpoint as safetensors with its config."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    state = load_training_checkpoint(checkpoint)
    if "config" not in state or "model" not in state:
        raise ValueError(f"{checkpoint} is not an infp-lab training checkpoint")
    if "motion" in state["config"] and "appearance" in state["config"]:
        from infp_lab.stage1.config import Stage1Config
        from infp_lab.stage1.model import HeadImitator

        model = HeadImitator(Stage1Config.from_dict(state["config"]))
    else:
        raise ValueError(f"{checkpoint}: unknown model config")
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in (state["ema"] if ema else state["model"]).items()})
    return model.save_pretrained(out, extra={"step": state["step"], "ema": ema})
