"""Multi-step baseline pieces (as Pose2Sim / OpenCap): 2D peaks from heatmaps, weighted DLT.

The geometric pieces: Gaussian heatmap targets, a sub-pixel heatmap peak with a confidence,
the letterbox-heatmap -> image pixel map (inverse of ``train.crop_intrinsics``) and a
confidence-weighted DLT triangulation over calibrated cameras (OpenCV convention). Not wired
yet (issue 6): the heatmap loss in training, and triangulated keypoints -> temporal IK.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from biokin_nb.render.cameras import Camera


@dataclass(frozen=True)
class Peaks:
    """Heatmap peaks.

    Attributes:
        pixels: (..., K, 2) sub-pixel peak positions (x = column, y = row) in heatmap pixels.
        confidence: (..., K) the heatmap value at the integer maximum.
    """

    pixels: np.ndarray
    confidence: np.ndarray


def _log_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Vertex of the parabola through the logs of three samples (exact for a Gaussian)."""
    eps = 1e-12
    lm, lc, lp = (np.log(np.maximum(v, eps)) for v in (left, centre, right))
    denom = lm - 2.0 * lc + lp
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(denom < -eps, 0.5 * (lm - lp) / denom, 0.0)
    return np.clip(offset, -0.5, 0.5)


def peak_readout(heatmaps: np.ndarray) -> Peaks:
    """Sub-pixel peaks of (..., K, H, W) non-negative heatmaps.

    The integer maximum is refined per axis by a parabola through the log values of its
    neighbours (exact for an isotropic Gaussian blob away from the border).

    Raises:
        ValueError: fewer than 2 dimensions or an empty map.
    """
    maps = np.asarray(heatmaps, dtype=np.float64)
    if maps.ndim < 2 or maps.shape[-1] < 1 or maps.shape[-2] < 1:
        raise ValueError(f"heatmaps must have shape (..., H, W) with H, W >= 1; got {maps.shape}")
    h, w = maps.shape[-2:]
    flat = maps.reshape(*maps.shape[:-2], h * w)
    index = flat.argmax(axis=-1)
    row, col = np.divmod(index, w)
    confidence = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]

    def at(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        r, c = np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)
        return np.take_along_axis(flat, (r * w + c)[..., None], axis=-1)[..., 0]

    dx = _log_offset(at(row, col - 1), confidence, at(row, col + 1))
    dy = _log_offset(at(row - 1, col), confidence, at(row + 1, col))
    dx = np.where((col > 0) & (col < w - 1), dx, 0.0)
    dy = np.where((row > 0) & (row < h - 1), dy, 0.0)
    return Peaks(np.stack([col + dx, row + dy], axis=-1), confidence)


def triangulate_weighted(
    cameras: Sequence[Camera], pixels: np.ndarray, confidence: np.ndarray
) -> np.ndarray:
    """Confidence-weighted DLT: (V, ..., 2) image pixels and (V, ...) weights -> (..., 3) m.

    Each view's two rows (Hartley-normalized) are scaled by its confidence; views with a
    NaN pixel or a non-positive confidence are left out. NaN where fewer than two remain.

    Raises:
        ValueError: fewer than 2 cameras or mismatched shapes.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    weight = np.asarray(confidence, dtype=np.float64)
    if len(cameras) < 2:
        raise ValueError(f"triangulation needs at least 2 cameras; got {len(cameras)}")
    if (
        pixels.shape[0] != len(cameras)
        or pixels.shape[-1] != 2
        or weight.shape != pixels.shape[:-1]
    ):
        raise ValueError(
            f"pixels must be ({len(cameras)}, ..., 2) and confidence ({len(cameras)}, ...); "
            f"got {pixels.shape} and {weight.shape}"
        )
    rows, seen = [], []
    for camera, uv_pix, wt in zip(cameras, pixels, weight, strict=True):
        norm = np.array([[2.0 / camera.width, 0, -1], [0, 2.0 / camera.height, -1], [0, 0, 1]])
        P = norm @ camera.projection
        uv = uv_pix @ norm[:2, :2].T + norm[:2, 2]
        valid = np.all(np.isfinite(uv), axis=-1) & np.isfinite(wt) & (wt > 0)
        uv = np.where(valid[..., None], uv, 0.0)
        scale = np.where(valid, wt, 0.0)[..., None]
        for i in range(2):
            rows.append((uv[..., i : i + 1] * P[2] - P[i]) * scale)
        seen.append(valid)
    _, _, vt = np.linalg.svd(np.stack(rows, axis=-2))
    X = vt[..., -1, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        points = X[..., :3] / X[..., 3:]
    enough = np.sum(seen, axis=0) >= 2
    return np.where(enough[..., None], points, np.nan)


def gaussian_heatmaps(pixels: np.ndarray, size: tuple[int, int], sigma: float = 1.5) -> np.ndarray:
    """Heatmap targets: (..., K, 2) heatmap pixels (x, y) -> (..., K, H, W) unit-peak Gaussians.

    ``size`` is (H, W); ``sigma`` in heatmap pixels. NaN pixels give all-zero maps (missing
    keypoints). Train the heatmap head against these with the ground-truth keypoints
    projected by the crop cameras.

    Raises:
        ValueError: ``pixels`` not (..., 2) or ``sigma`` not positive.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim < 1 or pixels.shape[-1] != 2 or sigma <= 0:
        raise ValueError(f"pixels must be (..., 2) and sigma > 0; got {pixels.shape}, {sigma}")
    h, w = size
    ys, xs = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    gx = np.exp(-((xs - pixels[..., 0:1]) ** 2) / (2 * sigma**2))  # (..., W)
    gy = np.exp(-((ys - pixels[..., 1:2]) ** 2) / (2 * sigma**2))  # (..., H)
    maps = gy[..., :, None] * gx[..., None, :]
    return np.nan_to_num(maps, nan=0.0)


def heatmap_to_image(pixels: np.ndarray, heatmap_side: int, width: int, height: int) -> np.ndarray:
    """(..., 2) pixels of a square letterbox heatmap of side ``heatmap_side`` -> (..., 2)
    pixels of the (width, height) image; the inverse of ``biokin_nb.train.crop_intrinsics``
    (pixel centres at integers)."""
    if heatmap_side <= 0 or width <= 0 or height <= 0:
        raise ValueError(f"sizes must be positive; got {heatmap_side}, {width} x {height}")
    side = max(width, height)
    s = heatmap_side / side
    pad = np.array([(side - width) // 2, (side - height) // 2], dtype=np.float64)
    return (np.asarray(pixels, dtype=np.float64) + 0.5) / s - 0.5 - pad
