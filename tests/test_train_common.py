"""Training plumbing shared by the stages: device choice, the scalar log and what it says about memory."""

import pytest
import torch

from infp_lab.train.common import ScalarLogger, memory_scalars, read_scalars, resolve_device


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


def test_scalar_log_reads_back_per_name_in_logged_order(tmp_path):
    """What a run logs, and what a resumed run appends to the same file, reads back as curves."""
    first = ScalarLogger(tmp_path)
    first.log(1, **{"train/loss": 2.5, "steps_per_s": 4.0})
    first.log(2, **{"train/loss": 1.25})
    first.close()
    resumed = ScalarLogger(tmp_path)
    resumed.log(3, **{"train/loss": 0.5, "val/psnr": 28.125})
    resumed.close()
    assert read_scalars(tmp_path / "metrics.csv") == {
        "train/loss": [(1, 2.5), (2, 1.25), (3, 0.5)], "steps_per_s": [(1, 4.0)], "val/psnr": [(3, 28.125)]}
    ScalarLogger(tmp_path / "off", enabled=False).log(1, loss=1.0)
    assert not (tmp_path / "off" / "metrics.csv").exists()
