"""Multi-step baseline (as Pose2Sim / OpenCap): heatmaps -> 2D peaks -> weighted DLT -> IK.

The network's hourglass keypoint heatmaps (the 2D detector; targets and loss:
:mod:`biokin_nb.net.heatmaps`) are read out per view as sub-pixel peaks with a confidence
(:func:`peak_readout`), mapped from the crop's heatmap to full-image pixels
(:func:`heatmap_to_image`, the inverse of the crop intrinsics), triangulated by a
confidence-weighted DLT over the calibrated cameras (:func:`triangulate_weighted`; views
below ``BaselineConfig.min_confidence`` are left out) and fitted by temporal IK with
per-sequence segment scales (:func:`fit_keypoints`, :func:`biokin_nb.ik.solve_ik`) on the
generic model. :func:`predict_baseline` runs it on a clip from the network's heatmaps,
:func:`oracle_prediction` from Gaussians at the true projected keypoints (the pipeline's
own error floor); both return an :class:`~biokin_nb.infer.Prediction`, scored like the
network's by :mod:`biokin_nb.evaluate`.

Conventions: cameras in the OpenCV convention (``render.cameras.Camera``), world in the
OpenSim ground frame (m); heatmaps come in :class:`HeatmapChunk` s: (V, t, K, h, w) maps,
square (h = w = crop size / 4), K = 44 keypoints in ``model.keypoint_names`` order (joint
centres then mass centres), and the (V, 4) crop boxes they were computed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from biokin_nb.ik import solve_ik
from biokin_nb.infer import (
    ChunkEncoding,
    Prediction,
    TwoViewClip,
    chunk_masks_and_boxes,
    encode_chunks,
)
from biokin_nb.net import KinematicsNet
from biokin_nb.net.crops import full_box
from biokin_nb.net.heatmaps import HEATMAP_STRIDE, gaussian_heatmaps, keypoint_heatmap_pixels
from biokin_nb.osim import KinematicModel, forward_kinematics, root_relative_keypoints
from biokin_nb.render.cameras import Camera
from biokin_nb.train import crop_intrinsics


@dataclass(frozen=True)
class HeatmapChunk:
    """Keypoint heatmaps of t frames of V views.

    Attributes:
        maps: (V, t, K, h, h) non-negative heatmaps (targets peak at 1).
        boxes: (V, 4) the crop box of each view in its full image (x0, y0, x1, y1; pixel
            edges; :mod:`biokin_nb.net.crops`), the heatmap covering the box.
    """

    maps: np.ndarray
    boxes: np.ndarray


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


def heatmap_to_image(pixels: np.ndarray, heatmap_side: int, box: np.ndarray) -> np.ndarray:
    """(..., 2) pixels of a square heatmap of side ``heatmap_side`` covering the crop ``box``
    (4,) (x0, y0, x1, y1; pixel edges) -> (..., 2) pixels of the full image; the inverse of
    :func:`biokin_nb.net.points.crop_intrinsics` (pixel centres at integers)."""
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box))
    if heatmap_side <= 0 or not (x1 > x0 and y1 > y0):
        raise ValueError(f"need heatmap_side > 0 and a non-empty box; got {heatmap_side}, {box}")
    step = np.array([(x1 - x0) / heatmap_side, (y1 - y0) / heatmap_side])
    return (np.asarray(pixels, dtype=np.float64) + 0.5) * step - 0.5 + np.array([x0, y0])


# ---- the pipeline ----------------------------------------------------------------------------

PELVIS_YAW = "pelvis_rotation"  # the generic model's heading coordinate (about +Y)
HIPS = ("hip_r", "hip_l")  # joints whose left -> right line gives the heading of the start


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of the multi-step baseline.

    Attributes:
        min_confidence: a view whose heatmap peak value (targets peak at 1) is below this is
            left out of that keypoint's triangulation (weight 0); a keypoint seen by fewer
            than two views is missing (NaN) in that frame.
        max_reprojection: a triangulated keypoint whose reprojection misses a used view's
            peak by more than this (heatmap px) is dropped (NaN): rays that do not meet.
        smoothness: temporal IK weights ``(lambda_v, lambda_a)`` on squared first and second
            frame differences of the coordinates (per frame; m^2 per rad^2 or per m^2, as
            :func:`biokin_nb.ik.solve_ik`).
        max_iterations, tolerance: IK iterations per pass and stopping test (rad or m).
        warm_start: IK re-solves frames from their neighbours where the solution jumps
            (:func:`biokin_nb.ik.solve_ik`); slower on garbage keypoints, better on real ones.
        chunk: frames per frame-encoder chunk.
    """

    min_confidence: float = 0.1
    max_reprojection: float = 2.0
    smoothness: tuple[float, float] = (1e-3, 1e-3)
    max_iterations: int = 50
    tolerance: float = 1e-6
    warm_start: bool = True
    chunk: int = 16

    def __post_init__(self) -> None:
        if (
            not 0 <= self.min_confidence < 1
            or not self.max_reprojection > 0
            or self.chunk < 1
            or self.max_iterations < 1
        ):
            raise ValueError(
                "BaselineConfig needs 0 <= min_confidence < 1, max_reprojection > 0, "
                f"chunk >= 1 and max_iterations >= 1; got {self}"
            )


def triangulate_heatmaps(
    heatmaps: Iterable[HeatmapChunk],
    cameras: Sequence[Camera],
    min_confidence: float = 0.1,
    max_reprojection: float = 2.0,
) -> np.ndarray:
    """World keypoints (T, K, 3) (m) from heatmap chunks in frame order; NaN where fewer than
    two views have a peak of at least ``min_confidence``, or where the point reprojects more
    than ``max_reprojection`` heatmap px from a used view's peak (or behind its camera).

    Raises:
        ValueError: a chunk's maps not (V, t, K, h, h) for the V cameras, or no chunk at all.
    """
    points = [
        _triangulate_chunk(chunk, cameras, min_confidence, max_reprojection) for chunk in heatmaps
    ]
    if not points:
        raise ValueError("no heatmaps to triangulate (a clip of 0 frames?)")
    return np.concatenate(points, axis=0)


def _triangulate_chunk(
    chunk: HeatmapChunk,
    cameras: Sequence[Camera],
    min_confidence: float,
    max_reprojection: float,
) -> np.ndarray:
    """One chunk's heatmaps -> (t, K, 3) m (NaN where under-observed)."""
    maps, boxes = np.asarray(chunk.maps), np.asarray(chunk.boxes, dtype=np.float64)
    if maps.ndim != 5 or maps.shape[0] != len(cameras) or maps.shape[-1] != maps.shape[-2]:
        raise ValueError(
            f"heatmaps must be (V, t, K, h, h) with V = {len(cameras)} cameras; got {maps.shape}"
        )
    peaks = peak_readout(maps)
    side = maps.shape[-1]
    views = zip(peaks.pixels, boxes, strict=True)
    pixels = np.stack([heatmap_to_image(p, side, b) for p, b in views])
    weight = np.where(peaks.confidence >= min_confidence, peaks.confidence, 0.0)
    points = triangulate_weighted(cameras, pixels, weight)
    limits = max_reprojection * (boxes[:, 2] - boxes[:, 0]) / side  # image px per view
    return _drop_misses(points, cameras, pixels, weight > 0, limits)


def _drop_misses(
    points: np.ndarray,
    cameras: Sequence[Camera],
    pixels: np.ndarray,
    used: np.ndarray,
    limits: np.ndarray,
) -> np.ndarray:
    """``points`` (..., 3) m with NaN where the reprojection into a view in ``used`` (V, ...)
    misses its peak ``pixels`` (V, ..., 2) by more than that view's limit (V,) (image px),
    or falls behind that camera."""
    points = points.copy()
    for camera, uv, seen, limit in zip(cameras, pixels, used, limits, strict=True):
        error = np.linalg.norm(camera.project(points) - uv, axis=-1)
        bad = seen & ~(error <= limit)  # NaN errors count as bad
        points[bad] = np.nan
    return points


def fit_keypoints(
    model: KinematicModel, keypoints: np.ndarray, fps: float, config: BaselineConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Temporal IK with per-sequence segment scales on world keypoints.

    Args:
        model: the (unscaled) generic model; keypoints in ``model.keypoint_names`` order.
        keypoints: (T, K, 3) m, NaN where missing (IK leaves them out of that frame).
        fps: frame rate (Hz), for the IK time stamps.
        config: smoothness and IK settings.

    Returns:
        Coordinates (T, C) (rad, m; pelvis translations in the world) and scales (B, 3). With
        no keypoint in any frame: the model's default pose and unit scales.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    n_frames = len(keypoints)
    if np.isnan(keypoints).all():
        return np.tile(model.defaults, (n_frames, 1)), np.ones((model.n_bodies, 3))
    result = solve_ik(
        model,
        keypoints,
        marker_names=model.keypoint_names,
        solve_scales=True,
        mode="temporal" if n_frames > 1 else "frame",
        smoothness=config.smoothness if n_frames > 1 else 1e-3,
        init=_initial_pose(model, keypoints),
        warm_start=config.warm_start,
        max_iterations=config.max_iterations,
        tolerance=config.tolerance,
        time=np.arange(n_frames) / fps,
    )
    return result.q, result.scales


def _initial_pose(model: KinematicModel, keypoints: np.ndarray) -> np.ndarray:
    """(T, C) IK start: the default pose with the pelvis translations at the first keypoint
    (the pelvis origin) and the heading (``PELVIS_YAW`` about the vertical) turned so that
    the left -> right hip direction matches the observed one; both interpolated over frames
    where they are missing. A start facing the wrong way leaves IK in a poor local minimum
    (arms and hips twisted) even on exact keypoints."""
    q = np.tile(model.defaults, (len(keypoints), 1))
    if np.isfinite(keypoints[:, 0]).all(axis=1).any():
        q[:, model.translational] = _fill_frames(keypoints[:, 0])
    names = model.coordinate_names
    if PELVIS_YAW in names and all(h in model.joint_names for h in HIPS):
        right, left = (model.joint_names.index(h) for h in HIPS)
        rest = forward_kinematics(model, torch.from_numpy(model.defaults)).keypoints.numpy()
        yaw = _heading(keypoints[:, right] - keypoints[:, left])
        q[:, names.index(PELVIS_YAW)] += yaw - _heading(rest[right] - rest[left])
    return q


def _heading(direction: np.ndarray) -> np.ndarray:
    """Angle (rad) about +Y of (..., 3) directions from +Z (the hip line at heading 0), NaN
    frames interpolated, unwrapped over frames for (T, 3) input."""
    angle = np.arctan2(direction[..., 0], direction[..., 2])
    if angle.ndim == 0:
        return angle
    seen = np.isfinite(angle)
    if not seen.any():
        return np.zeros_like(angle)
    angle[seen] = np.unwrap(angle[seen])
    return _fill_frames(angle[:, None])[:, 0]


def _fill_frames(values: np.ndarray) -> np.ndarray:
    """(T, D) values with NaN rows linearly interpolated in frame index (held at the ends;
    zeros when no row is finite)."""
    seen = np.isfinite(values).all(axis=1)
    if not seen.any():
        return np.zeros_like(values)
    frames = np.arange(len(values))
    columns = [np.interp(frames, frames[seen], values[seen, i]) for i in range(values.shape[1])]
    return np.stack(columns, axis=1)


def keypoints_prediction(
    model: KinematicModel,
    keypoints: np.ndarray,
    masks: np.ndarray,
    boxes: np.ndarray,
    fps: float,
    config: BaselineConfig,
) -> Prediction:
    """:func:`fit_keypoints` of world keypoints (T, K, 3) (m, NaN missing) as a
    :class:`~biokin_nb.infer.Prediction`: pelvis translations zeroed, keypoints (T, K, 3)
    pelvis-relative through FK, ``masks`` (V, T, H, H) bool and crop ``boxes`` (V, T, 4)
    passed through."""
    q, scales = fit_keypoints(model, keypoints, fps, config)
    q[:, model.translational] = 0.0
    kp = root_relative_keypoints(model, torch.from_numpy(q), torch.from_numpy(scales)).numpy()
    return Prediction(q, scales, kp, masks, fps, boxes)


# ---- heatmap sources -------------------------------------------------------------------------


def network_heatmaps(chunk: ChunkEncoding) -> HeatmapChunk:
    """The last hourglass stack's heatmaps of one encoded chunk (S = 1), with its boxes.

    Raises:
        ValueError: the network has no heatmap head.
    """
    heatmaps = chunk.encoding.maps.heatmaps
    if heatmaps is None:
        raise ValueError(
            "the network has no keypoint heatmap head (NetConfig.heatmap_head=False); the "
            "multi-step baseline needs one: train with heatmap_head=True"
        )
    maps = heatmaps[-1][0].transpose(0, 1).float().cpu().numpy()
    return HeatmapChunk(maps, chunk.boxes.cpu().numpy())


@torch.no_grad()
def predict_baseline(
    net: KinematicsNet,
    clip: TwoViewClip,
    config: BaselineConfig | None = None,
    chunks: list[ChunkEncoding] | None = None,
) -> Prediction:
    """The multi-step baseline on a clip: the network's heatmaps (frame encoder in person
    crops, as :func:`biokin_nb.infer.predict`, or the given ``chunks`` of this clip) ->
    peaks -> weighted DLT -> temporal IK with scales.

    Returns:
        A :class:`~biokin_nb.infer.Prediction`: coordinates (T, C) rad / m with pelvis
        translations zero, scales (B, 3), pelvis-relative keypoints (T, K, 3) m, the
        predicted masks (V, T, H, H) and crop boxes (V, T, 4).
    """
    config = config or BaselineConfig()
    chunks = chunks if chunks is not None else list(encode_chunks(net, clip, config.chunk))
    points = triangulate_heatmaps(
        (network_heatmaps(c) for c in chunks),
        clip.cameras,
        config.min_confidence,
        config.max_reprojection,
    )
    masks, boxes = chunk_masks_and_boxes(chunks)
    return keypoints_prediction(net.kinematic_model, points, masks, boxes, clip.fps, config)


def oracle_heatmaps(
    keypoints: np.ndarray,
    cameras: Sequence[Camera],
    crop_size: int,
    sigma: float = 1.0,
    chunk: int = 16,
) -> Iterator[HeatmapChunk]:
    """Perfect heatmaps: unit-peak Gaussians (``sigma`` in heatmap px) at world keypoints
    (T, K, 3) (m) projected into each camera's letterbox crop (full box) of side
    ``crop_size`` px; yields chunks of (V, t, K, crop_size / 4, crop_size / 4) maps of at
    most ``chunk`` frames, the training targets of :func:`biokin_nb.net.heatmaps.heatmap_loss`."""
    K = torch.stack(
        [crop_intrinsics(torch.tensor(c.K), c.width, c.height, crop_size) for c in cameras]
    )
    R = torch.stack([torch.tensor(c.R) for c in cameras])
    t = torch.stack([torch.tensor(c.t) for c in cameras])
    boxes = np.stack([full_box(c.width, c.height).numpy() for c in cameras])
    side = crop_size // HEATMAP_STRIDE
    points = torch.as_tensor(np.asarray(keypoints, dtype=np.float64))
    for start in range(0, len(points), chunk):
        pixels = keypoint_heatmap_pixels(points[None, start : start + chunk], K, R, t)[0]
        maps = gaussian_heatmaps(pixels, (side, side), sigma).transpose(0, 1).numpy()
        yield HeatmapChunk(maps, boxes)


def oracle_prediction(
    model: KinematicModel,
    keypoints: np.ndarray,
    cameras: Sequence[Camera],
    fps: float,
    crop_size: int,
    config: BaselineConfig | None = None,
    sigma: float = 1.0,
) -> Prediction:
    """The multi-step pipeline from :func:`oracle_heatmaps` of the true world keypoints
    (T, K, 3) (m): the error of peaks, triangulation and IK alone. Masks are all False
    (V, T, crop_size, crop_size), boxes the full boxes."""
    config = config or BaselineConfig()
    heatmaps = oracle_heatmaps(keypoints, cameras, crop_size, sigma, config.chunk)
    points = triangulate_heatmaps(heatmaps, cameras, config.min_confidence, config.max_reprojection)
    masks = np.zeros((len(cameras), len(points), crop_size, crop_size), dtype=bool)
    boxes = np.stack([full_box(c.width, c.height).numpy() for c in cameras])
    boxes = np.broadcast_to(boxes[:, None], (len(cameras), len(points), 4)).copy()
    return keypoints_prediction(model, points, masks, boxes, fps, config)
