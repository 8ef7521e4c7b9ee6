"""Training plumbing shared by the stages: device choice and what the logs say about memory."""

import pytest
import torch

from infp_lab.train.common import memory_scalars, resolve_device


def test_memory_scalars_report_the_peak_gpu_memory_on_cuda_only(monkeypatch):
    assert memory_scalars(torch.device("cpu")) == {}
    asked = []
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: asked.append(device) or 3 * 2**30)
    assert memory_scalars(torch.device("cuda", 1)) == {"gpu_peak_gib": 3.0}
    assert asked == [torch.device("cuda", 1)]  # the run's own GPU, not the current one


def test_device_choice():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
