"""SynConv: a synthetic dyadic conversation world with per-frame ground truth (design.md section 3.1)."""

from infp_lab.data.synconv.generate import generate_conversation, generate_dataset

__all__ = ["generate_conversation", "generate_dataset"]
