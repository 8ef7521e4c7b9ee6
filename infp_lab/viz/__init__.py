"""Plots and image helpers for notebooks, scripts and the demo (no UI code)."""

from infp_lab.viz.plots import draw_landmarks, image_grid, plot_motion_vs_energy, plot_timeline
from infp_lab.viz.stage1 import latent_pca_figure, motion_input_panels, render_latent, to_images

__all__ = ["draw_landmarks", "image_grid", "latent_pca_figure", "motion_input_panels", "plot_motion_vs_energy",
           "plot_timeline", "render_latent", "to_images"]
