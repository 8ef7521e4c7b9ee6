"""The command line: data synth + data render end to end, and clear errors."""

import subprocess
import sys

import numpy as np

from infp_lab.cli import main
from infp_lab.render.video import read_video


def test_render_writes_h264_with_audio(synconv_dir, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    assert main(["data", "render", "--clip", str(synconv_dir / "conv0000_a"), "--out", str(out), "--size", "128"]) == 0
    frames, fps = read_video(out)
    assert fps == 25 and frames.shape[1:] == (128, 128, 3)
    assert abs(len(frames) - 200) <= 1 and frames.std() > 20
    from infp_lab.data.audio import load_audio

    audio = load_audio(out)  # the AAC track decodes back
    assert abs(len(audio) / 16000 - 8.0) < 0.2 and np.sqrt(np.mean(audio**2)) > 0.01


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["data", "render", "--clip", str(tmp_path / "nope"), "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert "clip folder not found" in err and "Traceback" not in err
    assert main(["data", "synth", "--out", str(tmp_path), "--conversations", "1", "--languages", "klingon"]) == 2
    assert "unknown language" in capsys.readouterr().err


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "infp_lab", "data", "synth", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--conversations" in result.stdout
