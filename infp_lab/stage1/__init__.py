"""INFP stage 1: motion-based head imitation (design.md section 4)."""

from infp_lab.stage1.config import PRESETS, Stage1Config, preset
from infp_lab.stage1.model import HeadImitator, Stage1Output

__all__ = ["PRESETS", "HeadImitator", "Stage1Config", "Stage1Output", "preset"]
