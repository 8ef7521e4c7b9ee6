"""Plots and image helpers for notebooks, scripts and the demo."""

from infp_lab.viz.plots import draw_landmarks, image_grid, plot_motion_vs_energy, plot_timeline

__all__ = ["draw_landmarks", "image_grid", "plot_motion_vs_energy", "plot_timeline"]
