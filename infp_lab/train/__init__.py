"""Training utilities shared by the stages: devices, DDP, EMA, logging, resumable checkpoints."""
