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


def _choices(parser, *path: str) -> dict:
    """The choices of each option of the sub-command at `path`, by option string."""
    for name in path:
        parser = next(a for a in parser._actions if a.choices and name in a.choices).choices[name]
    return {a.option_strings[0]: tuple(a.choices) for a in parser._actions if a.option_strings and a.choices}


def test_cli_choices_are_the_librarys_names():
    """The command line spells its choices out (so that `--help` needs no torch); they must
    stay the names the library accepts."""
    from infp_lab.cli import build_parser
    from infp_lab.stage1.config import HYBRID_POINT_SETS, MOTION_INPUTS, MOUTH_DETAIL_SCALES
    from infp_lab.stage1.hybrid import MOUTH_MAPS
    from infp_lab.stage1.train import SYNC_LOSSES, SYNC_REGIONS
    from infp_lab.stage2.config import ABLATIONS
    from infp_lab.stage2.train import HeadMotionLoss

    stage1, stage2 = _choices(build_parser(), "train", "stage1"), _choices(build_parser(), "train", "stage2")
    assert set(stage1["--motion-input"]) == set(MOTION_INPUTS)
    assert set(stage1["--hybrid-points"]) == set(HYBRID_POINT_SETS)
    assert set(stage1["--sync-region"]) == set(SYNC_REGIONS)
    assert set(stage1["--sync-loss"]) == set(SYNC_LOSSES)
    assert set(stage1["--mouth-map"]) == set(MOUTH_MAPS)
    assert set(stage1["--mouth-detail"]) == set(MOUTH_DETAIL_SCALES)
    assert set(stage2["--head-features"]) == set(HeadMotionLoss.FEATURES)
    assert set(stage2["--ablation"]) == set(ABLATIONS)
