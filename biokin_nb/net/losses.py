"""The training loss of Lin et al.: ``L = L_angle + L_scale + L_bio + lambda * L_pos``.

- ``L_angle``: free coordinates: mean L1 between predicted and true (cos, sin) pairs;
  constrained coordinates: mean L1 of the angles (rad). Coupled coordinates (knee beta)
  are copies of the knee angle and are not counted twice.
- ``L_scale``: mean L1 of the (B, 3) scale factors.
- ``L_bio``: for a constrained angle outside its range, the L1 distance between its
  (cos, sin) and the (cos, sin) of the violated limit; zero inside; mean over all angles.
- ``L_pos``: mean L1 (m) of the 2B keypoints (joint centres, mass centres) through the
  model's FK with the predicted angles and scales against the true ones, both relative to
  the root joint centre (pelvis), pelvis translations zeroed. ``lambda = 100``.

All terms are computed in float32 (or the inputs' wider float type), the FK with autocast off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from biokin_nb.net.layout import CoordinateLayout
from biokin_nb.net.model import NetOutput
from biokin_nb.osim import root_relative_keypoints


@dataclass
class Target:
    """Ground truth for S clips of T frames.

    Attributes:
        coordinates: (S, T, C) model coordinates (rad, m).
        scales: (S, B, 3) segment scale factors (subject / generic model).
    """

    coordinates: torch.Tensor
    scales: torch.Tensor


@dataclass
class LossTerms:
    """Loss components (scalars); ``total = angle + scale + bio + position_weight * position``.

    ``position`` is the unweighted keypoint L1 (m); ``angle = angle_free + angle_constrained``.
    """

    total: torch.Tensor
    angle: torch.Tensor
    angle_free: torch.Tensor
    angle_constrained: torch.Tensor
    scale: torch.Tensor
    bio: torch.Tensor
    position: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """Every term as a Python float, for logging."""
        return {k: float(v.detach()) for k, v in vars(self).items()}


def unit_circle(angles: torch.Tensor) -> torch.Tensor:
    """(..., 2) (cos, sin) of ``angles`` (...) rad."""
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)


def range_violation(angles: torch.Tensor, ranges: torch.Tensor) -> torch.Tensor:
    """(...,) L1 (cos, sin) distance of ``angles`` (..., K) rad to the violated limit of
    ``ranges`` (K, 2), zero inside the range; summed over the two components."""
    lo, hi = ranges[:, 0], ranges[:, 1]
    limit = torch.where(angles < lo, lo, torch.where(angles > hi, hi, angles))
    return (unit_circle(angles) - unit_circle(limit)).abs().sum(-1)


def pelvis_relative_keypoints(
    layout: CoordinateLayout, coordinates: torch.Tensor, scales: torch.Tensor
) -> torch.Tensor:
    """(S, T, 2B, 3) keypoints (m) relative to the root joint centre, for ``coordinates``
    (S, T, C) (translations zeroed) and ``scales`` (S, B, 3)."""
    with torch.autocast(coordinates.device.type, enabled=False):
        return root_relative_keypoints(layout.model, coordinates, scales[:, None])


def kinematics_loss(
    output: NetOutput, target: Target, layout: CoordinateLayout, position_weight: float = 100.0
) -> LossTerms:
    """The loss of ``output`` against ``target`` (see the module docstring)."""
    _check_target(output, target, layout)
    dtype = torch.promote_types(output.constrained.dtype, torch.float32)
    true_q = target.coordinates.to(dtype)
    angle_free = _mean_l1(
        output.free_cos_sin.to(dtype), unit_circle(true_q[..., list(layout.free)])
    )
    constrained = output.constrained.to(dtype)
    angle_constrained = _mean_l1(constrained, true_q[..., list(layout.constrained)])
    scale = _mean_l1(output.scales.to(dtype), target.scales.to(dtype))
    bio = range_violation(constrained, layout.constrained_ranges(constrained)).mean()
    position = _mean_l1(
        pelvis_relative_keypoints(layout, output.coordinates.to(dtype), output.scales.to(dtype)),
        pelvis_relative_keypoints(layout, true_q, target.scales.to(dtype)),
    )
    angle = angle_free + angle_constrained
    total = angle + scale + bio + position_weight * position
    return LossTerms(total, angle, angle_free, angle_constrained, scale, bio, position)


def _mean_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference; an empty selection counts zero."""
    return (a - b).abs().mean() if a.numel() else a.new_zeros(())


def _check_target(output: NetOutput, target: Target, layout: CoordinateLayout) -> None:
    want_q = tuple(output.coordinates.shape)
    want_s = tuple(output.scales.shape)
    if tuple(target.coordinates.shape) != want_q or tuple(target.scales.shape) != want_s:
        raise ValueError(
            f"target shapes {tuple(target.coordinates.shape)} and {tuple(target.scales.shape)} "
            f"do not match the prediction's (S, T, C) = {want_q} and (S, B, 3) = {want_s} "
            f"for model {layout.model.name!r}"
        )
    if torch.isnan(target.coordinates).any() or torch.isnan(target.scales).any():
        raise ValueError("NaN in the target coordinates or scales; fill or drop those frames")
