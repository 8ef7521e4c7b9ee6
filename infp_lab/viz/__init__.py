"""Plots and image helpers for notebooks, scripts and the demo (no UI code)."""

from infp_lab.viz.plots import draw_landmarks, image_grid, plot_motion_vs_energy, plot_timeline, shade_states
from infp_lab.viz.stage1 import latent_pca_figure, motion_input_panels, render_latent, to_images
from infp_lab.viz.stage2 import (attention_heatmap, plot_attention_overview, plot_cfg_sweep, plot_entry_profiles,
                                 plot_motion_curves, plot_speaking_states)

__all__ = ["attention_heatmap", "draw_landmarks", "image_grid", "latent_pca_figure", "motion_input_panels",
           "plot_attention_overview", "plot_cfg_sweep", "plot_entry_profiles", "plot_motion_curves",
           "plot_motion_vs_energy", "plot_speaking_states", "plot_timeline", "render_latent", "shade_states",
           "to_images"]
