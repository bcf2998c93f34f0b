"""3D points inside both views' silhouettes, and their features.

Cameras follow OpenCV: a world point ``X`` (m, OpenSim ground frame) maps to camera
coordinates ``R @ X + t`` (x right, y down, z forward) and to pixels ``K @ (R @ X + t)``
after division by depth; pixel ``(u, v)`` is the centre of column ``u``, row ``v``. ``K``
is the intrinsic matrix of the *crop* the network sees (see :func:`crop_intrinsics`).
Tensors: ``F`` frames, ``V`` views, masks ``(F, V, H, W)`` bool, ``K``, ``R`` ``(F, V, 3, 3)``,
``t`` ``(F, V, 3)``.

Sampling: the subject's centre is triangulated from the mask centroids; every view casts
rays through its mask pixels (every ``ray_stride`` px) and places candidates every
``depth_step_m`` within ``depth_half_range_m`` of the centre's depth; a candidate is kept
when it projects inside every mask. N kept candidates are taken evenly spaced in a fixed
order (repeated cyclically when fewer are kept), so sampling is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def full_precision(device: torch.device) -> torch.autocast:
    """A context with autocast off: camera geometry stays in the cameras' float type."""
    return torch.autocast(device.type, enabled=False)


@dataclass
class PointSet:
    """Points of a batch of frames (``...`` leading dims, N points).

    Attributes:
        points: (..., N, 3) world positions (m).
        centre: (..., 3) mean of all kept candidates (m); the triangulated centre if none.
        n_kept: (...,) number of distinct candidates inside every mask (0: none were, and
            ``points`` are all the centre).
    """

    points: torch.Tensor
    centre: torch.Tensor
    n_kept: torch.Tensor

    @property
    def centred(self) -> torch.Tensor:
        """(..., N, 3) points relative to ``centre`` (m)."""
        return self.points - self.centre[..., None, :]

    def reshape(self, *lead: int) -> PointSet:
        """The same points with leading dims ``lead``."""
        return PointSet(
            self.points.reshape(*lead, *self.points.shape[-2:]),
            self.centre.reshape(*lead, 3),
            self.n_kept.reshape(*lead),
        )


def project(
    points: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels (..., P, 2) and depths (..., P) (m) of world ``points`` (..., P, 3) in cameras
    ``K``, ``R`` (..., 3, 3), ``t`` (..., 3)."""
    cam = points @ R.transpose(-1, -2) + t[..., None, :]
    depth = cam[..., 2]
    pix = cam @ K.transpose(-1, -2)
    return pix[..., :2] / depth.clamp_min(1e-6)[..., None], depth


def crop_intrinsics(K: torch.Tensor, box: torch.Tensor, size: int) -> torch.Tensor:
    """Intrinsics (..., 3, 3) of a crop of ``box`` (..., 4) = (x0, y0, x1, y1) (pixel-edge
    coordinates: pixel ``i`` covers ``[i, i + 1)``) resized to ``size`` x ``size`` px."""
    sx = size / (box[..., 2] - box[..., 0])
    sy = size / (box[..., 3] - box[..., 1])
    out = K.clone()
    out[..., 0, :] = K[..., 0, :] * sx[..., None]
    out[..., 1, :] = K[..., 1, :] * sy[..., None]
    # u' + 1/2 = (u + 1/2 - x0) * sx  (pixel centres, applied to the homogeneous row)
    out[..., 0, :] += ((0.5 - box[..., 0]) * sx - 0.5)[..., None] * K[..., 2, :]
    out[..., 1, :] += ((0.5 - box[..., 1]) * sy - 0.5)[..., None] * K[..., 2, :]
    return out


def inside_masks(
    points: torch.Tensor, masks: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """(F, P) bool: ``points`` (F, P, 3) in front of every camera and on a mask pixel of
    every view (nearest pixel) for ``masks`` (F, V, H, W)."""
    n_frames, n_views, h, w = masks.shape
    pix, depth = project(points[:, None], K, R, t)  # (F, V, P, 2), (F, V, P)
    col, row = pix.round().long().unbind(-1)
    ok = (depth > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    flat = (row.clamp(0, h - 1) * w + col.clamp(0, w - 1)).reshape(n_frames, n_views, -1)
    on_mask = torch.gather(masks.reshape(n_frames, n_views, h * w), 2, flat)
    return (ok & on_mask.reshape(ok.shape)).all(dim=1)


def subject_centre(
    masks: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """(F, 3) least-squares intersection (m) of the rays through each view's mask centroid
    (the principal point for an empty mask)."""
    n_frames, n_views, h, w = masks.shape
    rows, cols = torch.meshgrid(
        torch.arange(h, device=masks.device), torch.arange(w, device=masks.device), indexing="ij"
    )
    weight = masks.to(K.dtype)
    count = weight.sum((-2, -1))
    mean_u = (weight * cols).sum((-2, -1)) / count.clamp_min(1)
    mean_v = (weight * rows).sum((-2, -1)) / count.clamp_min(1)
    pix = torch.stack([mean_u, mean_v], dim=-1)
    pix = torch.where(count[..., None] > 0, pix, K[..., :2, 2])
    origin, direction = _rays(K, R, t, pix[:, :, None])
    d = F.normalize(direction[:, :, 0], dim=-1)  # (F, V, 3)
    eye = torch.eye(3, dtype=K.dtype, device=K.device)
    proj = eye - d[..., :, None] * d[..., None, :]  # (F, V, 3, 3)
    a = proj.sum(1)
    b = (proj @ origin[..., None]).sum(1)
    return torch.linalg.solve(a + 1e-9 * eye, b)[..., 0]


def _rays(
    K: torch.Tensor, R: torch.Tensor, t: torch.Tensor, pixels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera centres (..., 3) and directions (..., G, 3) scaled to unit camera depth, so that
    ``origin + z * direction`` lies at depth ``z`` (m); ``pixels`` (..., G, 2)."""
    homog = torch.cat([pixels, torch.ones_like(pixels[..., :1])], dim=-1)
    cam = homog @ torch.linalg.inv(K).transpose(-1, -2)  # (..., G, 3), z = 1
    direction = cam @ R  # R^T applied to row vectors
    origin = -(R.transpose(-1, -2) @ t[..., None])[..., 0]
    return origin, direction


def _grid_pixels(h: int, w: int, stride: int, device: torch.device) -> torch.Tensor:
    """(G, 2) pixel centres (u, v) every ``stride`` px, from ``stride // 2``."""
    offset = stride // 2
    us = torch.arange(w // stride, device=device) * stride + offset
    vs = torch.arange(h // stride, device=device) * stride + offset
    v, u = torch.meshgrid(vs, us, indexing="ij")
    return torch.stack([u.flatten(), v.flatten()], dim=-1)


def candidates(
    masks: torch.Tensor,
    K: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    centre: torch.Tensor,
    *,
    ray_stride: int,
    depth_step_m: float,
    depth_half_range_m: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates (F, V * G * S, 3) (m) on the rays of every view's pixel grid (G pixels,
    S depths around the centre's depth), and (F, V * G * S) bool: the ray's pixel is masked."""
    n_frames, n_views, h, w = masks.shape
    grid = _grid_pixels(h, w, ray_stride, masks.device).to(K.dtype)  # (G, 2)
    origin, direction = _rays(K, R, t, grid.expand(n_frames, n_views, -1, -1))
    _, centre_depth = project(centre[:, None, None], K, R, t)  # (F, V, 1)
    n_steps = int(round(depth_half_range_m / depth_step_m))
    offsets = torch.arange(-n_steps, n_steps + 1, device=K.device, dtype=K.dtype) * depth_step_m
    depths = (centre_depth + offsets).clamp_min(1e-3)  # (F, V, S)
    pts = origin[:, :, None, None] + depths[:, :, None, :, None] * direction[:, :, :, None]
    col, row = grid.long().unbind(-1)
    source = masks[:, :, row, col]  # (F, V, G)
    source = source[..., None].expand(-1, -1, -1, depths.shape[-1])
    return pts.reshape(n_frames, -1, 3), source.reshape(n_frames, -1)


def select_evenly(valid: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (F, n) of ``n`` valid entries of ``valid`` (F, P) spread evenly in order (cycled
    when fewer are valid; 0 where none is), and the number valid (F,)."""
    count = valid.long().cumsum(-1)  # (F, P)
    n_valid = count[:, -1]
    j = torch.arange(n, device=valid.device)[None]
    rank = torch.where(
        n_valid[:, None] >= n,
        (j * n_valid[:, None]) // n,
        j % n_valid.clamp_min(1)[:, None],
    )
    idx = torch.searchsorted(count, rank + 1)
    return idx.clamp_max(valid.shape[-1] - 1), n_valid


def sample_points(
    masks: torch.Tensor,
    K: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    *,
    n_points: int,
    ray_stride: int = 4,
    depth_step_m: float = 0.05,
    depth_half_range_m: float = 1.0,
    chunk: int = 8,
) -> PointSet:
    """``n_points`` points (m) per frame inside every view's mask (see the module docstring).

    Args:
        masks: (F, V, H, W) person masks of the crops (bool, or probabilities cut at 0.5).
        K, R, t: (F, V, 3, 3), (F, V, 3, 3), (F, V, 3) cameras of the crops.
        chunk: frames processed at once (bounds memory).
    """
    _check_cameras(masks, K, R, t)
    masks = masks > 0.5 if masks.is_floating_point() else masks.bool()
    spacing = (ray_stride, depth_step_m, depth_half_range_m)
    parts = []
    with torch.no_grad(), full_precision(K.device):
        for sl in (slice(s, s + chunk) for s in range(0, masks.shape[0], chunk)):
            parts.append(_sample_chunk(masks[sl], K[sl], R[sl], t[sl], n_points, spacing))
    return PointSet(*(torch.cat(p, dim=0) for p in zip(*parts, strict=True)))


def _sample_chunk(
    masks: torch.Tensor,
    K: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    n_points: int,
    spacing: tuple[int, float, float],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    centre = subject_centre(masks, K, R, t)
    stride, step, half = spacing
    pts, source = candidates(
        masks, K, R, t, centre, ray_stride=stride, depth_step_m=step, depth_half_range_m=half
    )
    valid = source & inside_masks(pts, masks, K, R, t)
    idx, n_kept = select_evenly(valid, n_points)
    chosen = torch.gather(pts, 1, idx[..., None].expand(-1, -1, 3))
    weight = valid.to(pts.dtype)[..., None]
    mean = (pts * weight).sum(1) / weight.sum(1).clamp_min(1)
    centre = torch.where(n_kept[:, None] > 0, mean, centre)
    chosen = torch.where(n_kept[:, None, None] > 0, chosen, centre[:, None])
    return chosen, centre, n_kept


def point_features(
    points: PointSet,
    features: torch.Tensor,
    K: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    image_size: tuple[int, int],
) -> torch.Tensor:
    """Point features (F, N, 3 + V * C): centred coordinates (m) and each view's ``features``
    (F, V, C, h, w) bilinearly sampled where the point projects (zeros outside the image).
    The feature maps cover the whole ``image_size`` (H, W) crop the cameras describe."""
    n_frames, n_views = features.shape[:2]
    with full_precision(K.device):
        pix, _ = project(points.points[:, None], K, R, t)  # (F, V, N, 2)
    h, w = image_size
    scale = pix.new_tensor([w, h])
    grid = (2 * pix + 1) / scale - 1  # pixel centres -> [-1, 1], align_corners=False
    sampled = F.grid_sample(
        features.flatten(0, 1),
        grid.flatten(0, 1)[:, :, None].to(features.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )  # (F * V, C, N, 1)
    sampled = sampled[..., 0].reshape(n_frames, n_views, -1, sampled.shape[2])
    local = sampled.permute(0, 3, 1, 2).flatten(2)  # (F, N, V * C)
    return torch.cat([points.centred.to(local.dtype), local], dim=-1)


def _check_cameras(masks: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor):
    if masks.ndim != 4:
        raise ValueError(f"masks must have shape (F, V, H, W); got {tuple(masks.shape)}")
    lead = tuple(masks.shape[:2])
    expected = {"K": (*lead, 3, 3), "R": (*lead, 3, 3), "t": (*lead, 3)}
    for name, tensor in (("K", K), ("R", R), ("t", t)):
        if tuple(tensor.shape) != expected[name]:
            raise ValueError(
                f"{name} must have shape {expected[name]} to match masks {tuple(masks.shape)}; "
                f"got {tuple(tensor.shape)}"
            )
