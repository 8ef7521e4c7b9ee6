"""Training plumbing shared by stage 1, stage 2 and the baselines (design.md sections 4-5):
device choice with bf16 autocast on CUDA, DDP set-up (torchrun; gloo on CPU, NCCL on GPU),
EMA weights, CSV + TensorBoard scalars, and step-indexed batch sampling that resumes
exactly where a killed run stopped."""

from __future__ import annotations

import contextlib
import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA when present; asking for "cuda" without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA device is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; use cpu, cuda or auto")
    return torch.device(name)


def setup_distributed(device: torch.device) -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def distributed_device(name: str = "auto") -> tuple[torch.device, DistInfo]:
    """`resolve_device` + `setup_distributed`; on CUDA, this process's own GPU."""
    device = resolve_device(name)
    info = setup_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    return device, info


def distribute(model: nn.Module, device: torch.device, info: DistInfo,
               find_unused_parameters: bool = False) -> nn.Module:
    """The model wrapped in DistributedDataParallel when the run has several processes."""
    if info.world_size == 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[info.local_rank] if device.type == "cuda" else None,
                                               find_unused_parameters=find_unused_parameters)


def cleanup_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_scalars(device: torch.device) -> dict[str, float]:
    """The peak GPU memory allocated on `device` so far (since the process started or the last
    `torch.cuda.reset_peak_memory_stats`), in GiB, for the training logs; nothing on CPU."""
    if device.type != "cuda":
        return {}
    return {"gpu_peak_gib": torch.cuda.max_memory_allocated(device) / 2**30}


def run_checkpoint(out: Path, resume: bool) -> Path:
    """`out/checkpoint.pt`, with `out` created; FileExistsError if it exists and `resume` is off."""
    path = out / "checkpoint.pt"
    if path.exists() and not resume:
        raise FileExistsError(f"{path} exists: pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return path


def cosine_lr(step: int, lr: float, warmup: int, steps: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 10% of `lr` at `steps`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class EMA:
    """Exponential moving average of a model's parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))  # warm start
        for key, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                self.shadow[key].lerp_(value.float(), 1 - decay)
            else:
                self.shadow[key].copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow = {k: v.clone().float() for k, v in state.items()}

    def copy_to(self, model: nn.Module) -> nn.Module:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})
        return model


class ScalarLogger:
    """Scalars to `metrics.csv` (always) and TensorBoard (when installed)."""

    def __init__(self, folder: Path, enabled: bool = True):
        self.enabled = enabled
        self.path = folder / "metrics.csv"
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(folder / "tensorboard"))
            except ImportError:
                self.writer = None

    def log(self, step: int, **scalars: float) -> None:
        if not self.enabled:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", "name", "value"])
            for name, value in scalars.items():
                writer.writerow([step, name, f"{float(value):.6g}"])
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name, float(value), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """A `metrics.csv` written by `ScalarLogger` as {name: [(step, value), ...]}, in the
    order logged (a resumed run appends to the same file)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            curves.setdefault(row["name"], []).append((int(row["step"]), float(row["value"])))
    return curves


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches of dataset indices for steps [start, stop): step s, rank r takes indices
    ((s * world + r) * batch, ...). The indices (and so the data) depend only on the step,
    so a resumed run sees exactly what the killed one would have seen."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.start, self.stop, self.batch_size = start, stop, batch_size
        self.rank, self.world_size = rank, world_size

    def __iter__(self):
        for step in range(self.start, self.stop):
            first = (step * self.world_size + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
