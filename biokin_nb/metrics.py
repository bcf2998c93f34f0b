"""Evaluation metrics for kinematics estimates: angles, positions, velocities, orientations.

Conventions, once for the module:

- Inputs are numpy arrays or torch tensors; each is converted once to float64 numpy
  (:func:`_as_array`) and every result is numpy (an array or a Python ``float``).
- Inputs are SI: angles in rad, positions in m, time in s. The unit of each result is in
  the function's name: ``_deg``, ``_mm``, ``_mm_s`` (mm/s).
- Shapes: coordinates ``(..., T, C)``, keypoints and markers ``(..., T, K, 3)``, body
  orientations in ground ``(..., T, B, 3, 3)``. Leading dimensions ``...`` are batch
  dimensions and are averaged over like frames.
- Missing values are NaN and are left out of every mean (``nanmean``); a mean over no
  value at all is NaN.
- ``pred`` is the estimate, ``true`` the ground truth; both have the same shape, else a
  ``ValueError`` prints both shapes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

MM_PER_M = 1000.0
MPJAS_MODES = ("global", "local")

__all__ = [
    "MPJAS_MODES",
    "PoseMetrics",
    "mae_deg",
    "marker_rmse_mm",
    "marker_rmse_per_frame_mm",
    "mpjas_deg",
    "mpjas_per_body_deg",
    "mpjpe_mm",
    "pa_mpjpe_mm",
    "pa_mpjve_mm_s",
    "procrustes_align",
    "rotation_angle",
    "summarize",
    "wrap_to_pi",
]


# --------------------------------------------------------------------------- helpers


def _as_array(x: Any) -> np.ndarray:
    """A numpy array or torch tensor (any device, any float dtype) -> float64 numpy array."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _pair(pred: Any, true: Any, min_ndim: int, tail: tuple[int, ...] = ()) -> tuple:
    """Convert ``pred`` and ``true``; check equal shapes, ``min_ndim`` and trailing dims."""
    p, t = _as_array(pred), _as_array(true)
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in shape: pred {p.shape}, true {t.shape}")
    if p.ndim < min_ndim or (tail and p.shape[-len(tail) :] != tail):
        want = "(..., " + ", ".join(["N"] * (min_ndim - len(tail)) + [str(d) for d in tail])
        raise ValueError(f"expected shape {want}), got {p.shape}")
    return p, t


def _nanmean(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``np.nanmean`` that returns NaN for an all-NaN slice without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _check_fps(fps: float) -> float:
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive frame rate in Hz, got {fps}")
    return float(fps)


# --------------------------------------------------------------------------- joint angles


def wrap_to_pi(angle: np.ndarray) -> np.ndarray:
    """Wrap angles (rad, any shape) to ``[-pi, pi)``."""
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def mae_deg(pred: Any, true: Any, periodic: np.ndarray | None = None) -> np.ndarray:
    """Mean absolute error of each generalized coordinate, in degrees.

    Args:
        pred, true: coordinates ``(..., T, C)`` in rad (translations would be in m and
            their "degrees" meaningless: pass rotational coordinates only).
        periodic: optional bool mask ``(C,)``; for flagged coordinates (free rotations
            such as pelvis_rotation) the error is wrapped to ``[-pi, pi)`` first, so
            179 deg against -179 deg is a 2 deg error.

    Returns:
        ``(C,)`` MAE per coordinate in degrees; NaN samples are skipped.
    """
    p, t = _pair(pred, true, min_ndim=2)
    err = p - t
    if periodic is not None:
        mask = np.asarray(periodic, dtype=bool)
        if mask.shape != (p.shape[-1],):
            raise ValueError(
                f"periodic must be a bool mask of shape ({p.shape[-1]},), got {mask.shape}"
            )
        err = np.where(mask, wrap_to_pi(err), err)
    return np.degrees(_nanmean(np.abs(err).reshape(-1, p.shape[-1]), axis=0))


# --------------------------------------------------------------------------- positions


def _similarity(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity ``y ~ s R x + t`` per frame (Umeyama 1991).

    ``x``, ``y``: ``(..., K, 3)``. Returns ``s (...,)``, ``R (..., 3, 3)`` with det +1,
    ``t (..., 3)``.
    """
    mu_x, mu_y = x.mean(axis=-2), y.mean(axis=-2)
    xc, yc = x - mu_x[..., None, :], y - mu_y[..., None, :]
    cov = np.einsum("...ki,...kj->...ij", yc, xc) / x.shape[-2]
    u, d, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    sign = np.where(sign == 0, 1.0, sign)  # rank-deficient: either sign is optimal
    flip = np.ones_like(d)
    flip[..., -1] = sign
    rot = u @ (flip[..., :, None] * vt)
    var_x = np.mean(np.sum(xc**2, axis=-1), axis=-1)
    scale = np.sum(d * flip, axis=-1) / np.where(var_x > 0, var_x, 1.0)
    trans = mu_y - scale[..., None] * np.einsum("...ij,...j->...i", rot, mu_x)
    return scale, rot, trans


def procrustes_align(pred: Any, true: Any) -> np.ndarray:
    """Align ``pred`` to ``true`` frame by frame with the best similarity transform.

    Umeyama's closed form: rotation (proper, det +1, never a reflection), one uniform
    scale and a translation per frame, minimizing the summed squared point distances.

    Args:
        pred, true: points ``(..., K, 3)`` in m; every leading index is its own frame.

    Returns:
        Aligned ``pred``, ``(..., K, 3)`` in m. A frame with a NaN point is all NaN.
    """
    p, t = _pair(pred, true, min_ndim=2, tail=(3,))
    scale, rot, trans = _similarity(p, t)
    return scale[..., None, None] * np.einsum("...ij,...kj->...ki", rot, p) + trans[..., None, :]


def mpjpe_mm(pred: Any, true: Any, root: int | None = None) -> float:
    """Mean per-joint position error (Euclidean), in mm, without alignment.

    Args:
        pred, true: keypoints ``(..., K, 3)`` in m.
        root: optional joint index; when given, both are made relative to their own
            root joint first (root-relative MPJPE; the root's own error is then 0).

    Returns:
        Mean over all frames and joints of ``|pred - true|``, in mm; NaN skipped.
    """
    p, t = _pair(pred, true, min_ndim=2, tail=(3,))
    if root is not None:
        k = p.shape[-2]
        if not -k <= root < k:
            raise ValueError(f"root index {root} is out of range for {k} joints")
        p = p - p[..., root : root + 1, :]
        t = t - t[..., root : root + 1, :]
    return float(_nanmean(np.linalg.norm(p - t, axis=-1)) * MM_PER_M)


def pa_mpjpe_mm(pred: Any, true: Any) -> float:
    """Procrustes-aligned MPJPE, in mm: :func:`procrustes_align` per frame, then MPJPE.

    Args:
        pred, true: keypoints ``(..., K, 3)`` in m.

    Returns:
        Mean joint distance after alignment, in mm. Invariant to any rotation, uniform
        scale and translation of ``pred`` in each frame.
    """
    return mpjpe_mm(procrustes_align(pred, true), true)


# --------------------------------------------------------------------------- velocities


def pa_mpjve_mm_s(pred: Any, true: Any, fps: float) -> float:
    """Procrustes-aligned mean per-joint velocity error, in mm/s.

    Choice made here: each frame of ``pred`` is first aligned to ``true`` with
    :func:`procrustes_align` (as for PA-MPJPE, following Lin et al. 2024, Table 3);
    velocities of the aligned ``pred`` and of ``true`` are then first (forward)
    differences times ``fps``, giving ``T - 1`` samples between consecutive frames
    (no smoothing, no central differences, so nothing is hidden at the ends). The result
    is the mean over those samples and the joints of the norm of the velocity difference.
    A rigid (or similarity) motion of ``pred`` relative to ``true``, even one varying in
    time, is removed by the per-frame alignment and costs nothing.

    Args:
        pred, true: keypoints ``(..., T, K, 3)`` in m, ``T >= 2``.
        fps: frame rate in Hz (> 0).

    Returns:
        Mean velocity error in mm/s; NaN skipped.
    """
    rate = _check_fps(fps)
    p, t = _pair(pred, true, min_ndim=3, tail=(3,))
    if p.shape[-3] < 2:
        raise ValueError(f"velocities need at least 2 frames, got T = {p.shape[-3]}")
    aligned = procrustes_align(p, t)
    dv = (np.diff(aligned, axis=-3) - np.diff(t, axis=-3)) * rate
    return float(_nanmean(np.linalg.norm(dv, axis=-1)) * MM_PER_M)


# --------------------------------------------------------------------------- orientations


def rotation_angle(rot: np.ndarray) -> np.ndarray:
    """Axis-angle magnitude (rad, in ``[0, pi]``) of rotation matrices ``(..., 3, 3)``.

    ``atan2(|axial vector of (R - R^T) / 2|, (trace R - 1) / 2)``: accurate near 0 and
    near pi, unlike ``arccos`` of the trace alone, which loses half the digits near 0.
    """
    axial = np.stack(
        [
            rot[..., 2, 1] - rot[..., 1, 2],
            rot[..., 0, 2] - rot[..., 2, 0],
            rot[..., 1, 0] - rot[..., 0, 1],
        ],
        axis=-1,
    )
    sin = 0.5 * np.linalg.norm(axial, axis=-1)
    cos = 0.5 * (np.trace(rot, axis1=-2, axis2=-1) - 1.0)
    return np.arctan2(sin, cos)


def _to_parent_frame(rot: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """Orientations in ground ``(..., B, 3, 3)`` -> each body in its parent's frame."""
    n_bodies = rot.shape[-3]
    idx = np.asarray(parents, dtype=int)
    if idx.shape != (n_bodies,):
        raise ValueError(f"parents must list one index per body ({n_bodies}), got {idx.shape}")
    bad = [b for b, p in enumerate(idx) if not -1 <= p < n_bodies or p == b]
    if bad:
        raise ValueError(
            f"parents of bodies {bad} are invalid: use -1 for a root, else 0..{n_bodies - 1}"
        )
    is_root = idx < 0
    parent_rot = np.where(is_root[:, None, None], np.eye(3), rot[..., np.maximum(idx, 0), :, :])
    return np.swapaxes(parent_rot, -1, -2) @ rot


def mpjas_per_body_deg(
    rot_pred: Any,
    rot_true: Any,
    parents: Sequence[int] | None = None,
    mode: Literal["global", "local"] = "global",
) -> np.ndarray:
    """Mean angle between estimated and true orientation of each body, in degrees.

    Args:
        rot_pred, rot_true: body orientations in ground ``(..., T, B, 3, 3)``.
        parents: parent index per body, -1 for a root; needed for ``mode="local"``.
        mode: ``"global"`` compares orientations in ground; ``"local"`` first expresses
            each body in its parent's frame (the joint orientation; roots stay in ground).

    Returns:
        ``(B,)`` mean over frames (and batch) of ``|angle(R_pred^T R_true)|``, degrees.
    """
    rp, rt = _pair(rot_pred, rot_true, min_ndim=4, tail=(3, 3))
    if mode not in MPJAS_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MPJAS_MODES)}")
    if mode == "local":
        if parents is None:
            raise ValueError("mode='local' needs parents: one parent index per body, -1 for root")
        rp, rt = _to_parent_frame(rp, parents), _to_parent_frame(rt, parents)
    angle = rotation_angle(np.swapaxes(rp, -1, -2) @ rt)
    return np.degrees(_nanmean(angle.reshape(-1, rp.shape[-3]), axis=0))


def mpjas_deg(
    rot_pred: Any,
    rot_true: Any,
    parents: Sequence[int] | None = None,
    mode: Literal["global", "local"] = "global",
) -> float:
    """Mean per-joint angular separation (MPJAS), in degrees.

    The mean over frames and bodies of the axis-angle magnitude of ``R_pred^T R_true``.
    KinePose (IMVIP 2022) defines MPJAS per joint orientation, i.e. ``mode="local"``:
    each body relative to its parent. ``mode="global"`` compares orientations in ground,
    so an error at the root shows on every body below it.

    Args:
        rot_pred, rot_true: body orientations in ground ``(..., T, B, 3, 3)``.
        parents: parent index per body (-1 for a root); needed for ``mode="local"``.
        mode: ``"global"`` or ``"local"``.

    Returns:
        MPJAS in degrees (KinePose reports rad per joint; divide by 57.2958 to compare).
    """
    return float(_nanmean(mpjas_per_body_deg(rot_pred, rot_true, parents, mode)))


# --------------------------------------------------------------------------- markers


def _marker_sums(pred: Any, true: Any, weights: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: weighted sum of squared marker errors (m^2) and sum of valid weights."""
    p, t = _pair(pred, true, min_ndim=3, tail=(3,))
    n_markers = p.shape[-2]
    w = np.ones(n_markers) if weights is None else _as_array(weights)
    if w.shape != (n_markers,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be {n_markers} finite values >= 0, got shape {w.shape}")
    sq = np.sum((p - t) ** 2, axis=-1)
    valid = np.isfinite(sq)
    return np.sum(np.where(valid, w * sq, 0.0), axis=-1), np.sum(valid * w, axis=-1)


def marker_rmse_per_frame_mm(pred: Any, true: Any, weights: Any | None = None) -> np.ndarray:
    """Weighted RMS marker distance of each frame, in mm.

    ``sqrt(sum_m w_m |p_m - t_m|^2 / sum_m w_m)`` over the markers that are not NaN in
    either input in that frame (OpenSim IK's marker error RMS when all weights are 1).

    Args:
        pred, true: markers ``(..., T, M, 3)`` in m; NaN marks a missing marker.
        weights: optional ``(M,)`` non-negative weights, default all 1.

    Returns:
        ``(..., T)`` RMSE in mm; NaN for a frame with no valid (weighted) marker.
    """
    sq_sum, w_sum = _marker_sums(pred, true, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.where(w_sum > 0, sq_sum / w_sum, np.nan)) * MM_PER_M


def marker_rmse_mm(pred: Any, true: Any, weights: Any | None = None) -> float:
    """Weighted RMS marker distance over all frames and markers, in mm.

    Pooled over every valid (frame, marker) pair, not a mean of per-frame RMSEs:
    ``sqrt(sum w |p - t|^2 / sum w)``. Shapes and weights as in
    :func:`marker_rmse_per_frame_mm`. NaN when no marker is valid.
    """
    sq_sum, w_sum = _marker_sums(pred, true, weights)
    total = float(np.sum(w_sum))
    return float(np.sqrt(np.sum(sq_sum) / total) * MM_PER_M) if total > 0 else float("nan")


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class PoseMetrics:
    """The headline numbers of Lin et al. (2024), Table 1 and 3."""

    mae_deg: float  # mean over coordinates of the per-coordinate MAE
    pa_mpjpe_mm: float
    pa_mpjve_mm_s: float


def summarize(
    coords_pred: Any,
    coords_true: Any,
    keypoints_pred: Any,
    keypoints_true: Any,
    fps: float,
    periodic: np.ndarray | None = None,
) -> PoseMetrics:
    """Angles ``(..., T, C)`` in rad and keypoints ``(..., T, K, 3)`` in m -> PoseMetrics."""
    return PoseMetrics(
        mae_deg=float(_nanmean(mae_deg(coords_pred, coords_true, periodic))),
        pa_mpjpe_mm=pa_mpjpe_mm(keypoints_pred, keypoints_true),
        pa_mpjve_mm_s=pa_mpjve_mm_s(keypoints_pred, keypoints_true, fps),
    )
