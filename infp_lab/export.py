"""Slim inference weights from training checkpoints (style.md "Checkpoints")."""

from __future__ import annotations

from pathlib import Path

from infp_lab.checkpoint import load_training_checkpoint

STAGE2_METADATA = ("val", "stage1_weights", "stage1_sha256")  # copied from a stage-2 checkpoint


def _model_for(state: dict, checkpoint: Path):
    """An empty model of the kind the checkpoint holds (told apart by its config) and the
    extra metadata of its kind."""
    config = state["config"]
    if "motion" in config and "appearance" in config:
        from infp_lab.stage1.config import Stage1Config
        from infp_lab.stage1.model import HeadImitator

        return HeadImitator(Stage1Config.from_dict(config)), {}
    if "dit" in config and "guider" in config:
        from infp_lab.stage2.config import Stage2Config
        from infp_lab.stage2.model import MotionGenerator

        return MotionGenerator(Stage2Config.from_dict(config)), {k: state[k] for k in STAGE2_METADATA if k in state}
    raise ValueError(f"{checkpoint}: unknown model config")


def export_checkpoint(checkpoint: str | Path, out: str | Path, ema: bool = True) -> Path:
    """Write the (EMA) weights of a stage-1 or stage-2 training checkpoint as safetensors with its config."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    state = load_training_checkpoint(checkpoint)
    if "config" not in state or "model" not in state:
        raise ValueError(f"{checkpoint} is not an infp-lab training checkpoint")
    model, extra = _model_for(state, checkpoint)
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in (state["ema"] if ema else state["model"]).items()})
    return model.save_pretrained(out, extra={"step": state["step"], "ema": ema, **extra})
