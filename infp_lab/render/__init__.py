"""Face rendering for SynConv: parametric 2.5-D face model and rasteriser (design.md 3.1)."""
from infp_lab.render.appearance import Appearance, sample_appearance
from infp_lab.render.face_model import (LANDMARK_GROUPS, NEUTRAL_PARAMS, NUM_LANDMARKS,
                                        PARAM_NAMES, project_landmarks)
from infp_lab.render.face_renderer import render_frame, render_frames

__all__ = ["Appearance", "sample_appearance", "PARAM_NAMES", "NEUTRAL_PARAMS",
           "LANDMARK_GROUPS", "NUM_LANDMARKS", "project_landmarks", "render_frame",
           "render_frames"]
