"""Pictures of stage 1 for the notebooks and the demo: the motion-encoder inputs, images
from tensors, a face rendered from a latent with its decoded landmarks, the latent space."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from infp_lab.data.clip import STATE_NAMES
from infp_lab.viz.plots import STATE_COLOURS, draw_landmarks


def to_images(x: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, H, W) floats in [0, 1] -> list of (H, W, 3) uint8."""
    array = (x.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return list(array)


def motion_input_panels(frame: torch.Tensor, landmarks: torch.Tensor,
                        region_size: int = 32) -> tuple[list[np.ndarray], list[str]]:
    """The frame, the kept-region mask, the hybrid representation, the landmark map, and the
    three upright crops of the hybrid representation the motion encoder reads (enlarged)."""
    from infp_lab.stage1.hybrid import hybrid_representation, landmark_map, region_mask
    from infp_lab.stage1.motion_encoder import region_crops

    frame, landmarks = frame.unsqueeze(0), landmarks.unsqueeze(0)
    size = frame.shape[-1]
    mask = region_mask(landmarks, size).expand(-1, 3, -1, -1)
    hybrid = hybrid_representation(frame, landmarks)
    crops = [torch.nn.functional.interpolate(c, size=(size, size), mode="nearest")
             for c in region_crops(hybrid, landmarks, region_size)]
    panels = torch.cat([frame, mask, hybrid, landmark_map(landmarks, size), *crops])
    return to_images(panels), ["driving frame", "kept regions", "hybrid representation", "landmark map",
                               "right eye crop", "left eye crop", "mouth crop"]


@torch.no_grad()
def render_latent(model, source: torch.Tensor, source_landmarks: torch.Tensor, latent: torch.Tensor,
                  size: int | None = None) -> np.ndarray:
    """The source rendered with one motion latent (D,), with the landmark head's points drawn."""
    from infp_lab.stage1.inference import reenact

    image = to_images(reenact(model, source, source_landmarks, latent.unsqueeze(0)))[0]
    points = model.landmark_head(latent.unsqueeze(0))[0].numpy() * image.shape[0]
    canvas = draw_landmarks(np.full_like(image, 255), points, colour=(220, 40, 40), radius=1)
    picture = np.concatenate([image, canvas], axis=1)
    if size is not None and size != picture.shape[0]:
        import cv2

        picture = cv2.resize(picture, (2 * size, size), interpolation=cv2.INTER_LINEAR)
    return picture


def latent_pca_figure(latents: np.ndarray, states: np.ndarray, identities: Sequence[str], pca=None):
    """2-D PCA of motion latents coloured by speaking state (left) and by identity (right)."""
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    pca = pca or PCA(n_components=2).fit(latents)
    xy = pca.transform(latents)[:, :2]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for code, name in enumerate(STATE_NAMES):
        keep = states == code
        axes[0].scatter(xy[keep, 0], xy[keep, 1], s=4, color=STATE_COLOURS[name], label=name, alpha=0.6)
    axes[0].legend(markerscale=4)
    axes[0].set_title("coloured by speaking state")
    identities = np.asarray(identities)
    for i, name in enumerate(np.unique(identities)):
        keep = identities == name
        axes[1].scatter(xy[keep, 0], xy[keep, 1], s=4, color=plt.cm.tab10(i % 10), label=name, alpha=0.6)
    axes[1].legend(markerscale=4, fontsize=7)
    axes[1].set_title("coloured by identity")
    for ax in axes:
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    fig.tight_layout()
    return fig
