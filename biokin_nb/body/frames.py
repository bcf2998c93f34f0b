"""Axis conventions of the body models and the small rotation toolkit the body layer uses.

The body layer works in OpenSim's ground frame: X forward, Y up, Z to the subject's right,
metres. Each backend's native axes are converted here, once, by a fixed rotation ``C`` with
``x_ground = C @ x_native``; a rotation ``G`` expressed in native axes becomes
``C @ G @ C.T`` in ground axes.

- Anny: Z up, subject facing -Y, subject's left along +X.
- SMPL-X: Y up, subject facing +Z, subject's left along +X.

Rotation matrices are ``(..., 3, 3)`` tensors acting on column vectors; rotation vectors
(axis times angle, rad) are ``(..., 3)``.
"""

from __future__ import annotations

import torch

ANNY_TO_GROUND = ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0), (-1.0, 0.0, 0.0))
SMPLX_TO_GROUND = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0))


def axes_matrix(axes: tuple, like: torch.Tensor) -> torch.Tensor:
    """(3, 3) tensor of a constant axis matrix with the dtype and device of ``like``."""
    return torch.tensor(axes, dtype=like.dtype, device=like.device)


def points_to_ground(points: torch.Tensor, axes: tuple) -> torch.Tensor:
    """(..., 3) native points -> (..., 3) ground points (``C @ x``)."""
    return points @ axes_matrix(axes, points).T


def points_from_ground(points: torch.Tensor, axes: tuple) -> torch.Tensor:
    """(..., 3) ground points -> (..., 3) native points (``C.T @ x``)."""
    return points @ axes_matrix(axes, points)


def rotations_to_ground(rotations: torch.Tensor, axes: tuple) -> torch.Tensor:
    """(..., 3, 3) rotations in native axes -> the same rotations in ground axes."""
    c = axes_matrix(axes, rotations)
    return c @ rotations @ c.T


def rotations_from_ground(rotations: torch.Tensor, axes: tuple) -> torch.Tensor:
    """(..., 3, 3) rotations in ground axes -> the same rotations in native axes."""
    c = axes_matrix(axes, rotations)
    return c.T @ rotations @ c


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*v.shape[:-1], 3, 3)


def rotvec_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors (rad) -> (..., 3, 3) matrices (Rodrigues, smooth at zero)."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    k = _skew(rotvec)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + a * k + b * (k @ k)


def rotation_angle(rotations: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (...,) rotation angle in [0, pi] (rad)."""
    trace = rotations.diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.acos(((trace - 1.0) / 2.0).clamp(-1.0 + 1e-7, 1.0 - 1e-7))


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def frame_from_vectors(primary: torch.Tensor, secondary: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) orthonormal frame with columns (primary, secondary', third).

    ``secondary'`` is ``secondary`` made perpendicular to ``primary`` (Gram-Schmidt);
    both inputs (..., 3) must not be parallel.
    """
    e1 = _unit(primary)
    e2 = _unit(secondary - (secondary * e1).sum(-1, keepdim=True) * e1)
    return torch.stack([e1, e2, torch.linalg.cross(e1, e2)], dim=-1)


def rotation_aligning(
    source: tuple[torch.Tensor, torch.Tensor], target: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """(..., 3, 3) rotation taking the ``source`` vector pair onto the ``target`` pair.

    The first vectors are matched exactly, the second ones in the plane they span with the
    first (a TRIAD alignment). Each vector is (..., 3).
    """
    return frame_from_vectors(*target) @ frame_from_vectors(*source).transpose(-1, -2)
