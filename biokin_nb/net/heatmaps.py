"""2D keypoint heatmaps of the hourglass: targets, the training loss, and the map geometry.

The hourglass heatmaps are at a quarter of the crop size. A crop pixel ``u`` (pixel centres
at integers) lies at heatmap pixel ``(u + 1/2) / 4 - 1/2``; :func:`resize_intrinsics` turns
crop intrinsics into heatmap intrinsics, so the ground-truth keypoints project straight onto
the maps. Targets are unit-peak isotropic Gaussians (``sigma`` in heatmap pixels) and the
loss is their mean squared error over every stack (intermediate supervision), as in
Newell et al.'s stacked hourglass and the multi-step baselines (Pose2Sim, OpenCap) built on
2D detectors.
"""

from __future__ import annotations

import torch

from biokin_nb.net.points import project

HEATMAP_STRIDE = 4


def resize_intrinsics(K: torch.Tensor, factor: float) -> torch.Tensor:
    """(..., 3, 3) intrinsics of an image resized by ``factor`` (pixel centres at integers:
    ``u' = (u + 1/2) * factor - 1/2``)."""
    out = K.clone()
    out[..., :2, :] = factor * K[..., :2, :] + (0.5 * factor - 0.5) * K[..., 2:, :]
    return out


def gaussian_heatmaps(pixels: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """Heatmap targets: (..., K, 2) pixels (x = column, y = row) -> (..., K, H, W) unit-peak
    Gaussians; ``size`` is (H, W), ``sigma`` in pixels. NaN pixels give all-zero maps.

    Raises:
        ValueError: ``pixels`` not (..., 2) or ``sigma`` not positive.
    """
    if pixels.ndim < 1 or pixels.shape[-1] != 2 or not sigma > 0:
        raise ValueError(
            f"pixels must be (..., 2) and sigma > 0; got {tuple(pixels.shape)}, {sigma}"
        )
    h, w = size
    xs = torch.arange(w, dtype=pixels.dtype, device=pixels.device)
    ys = torch.arange(h, dtype=pixels.dtype, device=pixels.device)
    gx = torch.exp(-((xs - pixels[..., 0:1]) ** 2) / (2 * sigma**2))  # (..., W)
    gy = torch.exp(-((ys - pixels[..., 1:2]) ** 2) / (2 * sigma**2))  # (..., H)
    return torch.nan_to_num(gy[..., :, None] * gx[..., None, :], nan=0.0)


def keypoint_heatmap_pixels(
    keypoints: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """Heatmap pixels (S, T, V, P, 2) of world keypoints (S, T, P, 3) (m) seen by crop
    cameras broadcastable to (S, T, V, 3, 3) / (S, T, V, 3); points behind a camera are NaN."""
    k_map = resize_intrinsics(K, 1.0 / HEATMAP_STRIDE)
    pixels, depth = project(keypoints[:, :, None], k_map, R, t)
    return torch.where((depth > 1e-3)[..., None], pixels, torch.nan)


def heatmap_loss(
    heatmaps: torch.Tensor,
    keypoints: torch.Tensor,
    K: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    sigma: float = 1.0,
) -> torch.Tensor:
    """Mean squared error of every stack's heatmaps (stacks, S, T, V, P, h, w) against
    Gaussians at the projected keypoints (S, T, P, 3) (cameras as
    :func:`keypoint_heatmap_pixels`), in float32."""
    pixels = keypoint_heatmap_pixels(keypoints.float(), K.float(), R.float(), t.float())
    target = gaussian_heatmaps(pixels, tuple(heatmaps.shape[-2:]), sigma)
    return ((heatmaps.float() - target) ** 2).mean()
