"""A tiny synthetic two-view scene for tests, benchmarks and smoke runs (not a renderer).

The skeleton is posed by the FK with smooth random coordinates; its masks are the pixels
within ``radius_m`` of points along the bones, seen by cameras looking at the subject from
the front (+X) and the right side (+Z) of OpenSim's ground frame (Y up). Images are the
masks in a colour plus noise. Everything comes from one seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from biokin_nb.net.config import NetConfig
from biokin_nb.net.losses import Target
from biokin_nb.net.points import project
from biokin_nb.osim import KinematicModel, apply_coupler_constraints, forward_kinematics


@dataclass
class ToyClips:
    """S clips of T frames, V views, crops H = W (shapes as ``KinematicsNet.forward``).

    Attributes:
        images: (S, T, V, 3, H, W) in [0, 1].
        masks: (S, T, V, H, W) bool.
        K, R: (S, T, V, 3, 3) crop intrinsics (px) and world-to-camera rotations.
        t: (S, T, V, 3) world-to-camera translations (m).
        target: true coordinates (S, T, C) and scales (S, B, 3).
    """

    images: torch.Tensor
    masks: torch.Tensor
    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    target: Target


def look_at(eye: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera ``R`` (3, 3) and ``t`` (3,) of a camera at ``eye`` looking at
    ``centre`` (m) with ground +Y up in the image."""
    z = (centre - eye) / np.linalg.norm(centre - eye)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])
    return rot, -rot @ eye


def toy_cameras(
    size: int, n_views: int = 2, distance_m: float = 3.5, field_m: float = 2.4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """K, R (V, 3, 3) and t (V, 3) of ``n_views`` cameras 1.1 m high around the origin
    (frontal first, then every 90 deg), each crop ``size`` px wide seeing ``field_m``."""
    centre = np.array([0.0, 0.9, 0.0])
    f = size * distance_m / field_m
    c = (size - 1) / 2
    k = np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])
    ks, rs, ts = [], [], []
    for v in range(n_views):
        angle = v * math.pi / 2
        eye = np.array([distance_m * math.cos(angle), 1.1, distance_m * math.sin(angle)])
        rot, trans = look_at(eye, centre)
        ks.append(k)
        rs.append(rot)
        ts.append(trans)
    return tuple(torch.tensor(np.stack(a), dtype=torch.float32) for a in (ks, rs, ts))


def toy_coordinates(model: KinematicModel, clips: int, frames: int, seed: int) -> torch.Tensor:
    """(S, T, C) smooth random poses: defaults plus sinusoids within a quarter of each range,
    pelvis 0.95 m high, couplers applied."""
    rng = np.random.default_rng(seed)
    lo, hi = model.ranges.T
    lo, hi = np.maximum(lo, -np.pi), np.minimum(hi, np.pi)
    mid, half = (lo + hi) / 2, (hi - lo) / 8
    phase = rng.uniform(0, 2 * np.pi, (clips, 1, model.n_coordinates))
    rate = rng.uniform(0.5, 2.0, (clips, 1, model.n_coordinates))
    time = np.arange(frames)[None, :, None] / max(frames, 1)
    q = mid + half * np.sin(2 * np.pi * rate * time + phase)
    q[..., model.translational] = 0.0
    if "pelvis_ty" in model.coordinate_names:
        q[..., model.coordinate_index("pelvis_ty")] = 0.95
    return apply_coupler_constraints(model, torch.tensor(q, dtype=torch.float32))


def _bone_points(model: KinematicModel, centres: torch.Tensor, per_bone: int) -> torch.Tensor:
    """(..., P, 3) points along every parent-to-child joint-centre segment."""
    joint_of_body = {j.child_body: i for i, j in enumerate(model.joints)}
    pairs = [
        (joint_of_body[j.parent_body], i) for i, j in enumerate(model.joints) if j.parent_body >= 0
    ]
    a = centres[..., [p for p, _ in pairs], :]
    b = centres[..., [c for _, c in pairs], :]
    w = torch.linspace(0, 1, per_bone)[:, None, None]
    return (a[..., None, :, :] * (1 - w) + b[..., None, :, :] * w).flatten(-3, -2)


def _rasterize(
    points: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor, size: int, r: float
) -> torch.Tensor:
    """(S, T, V, H, W) bool: pixels within ``r`` m (at the point's depth) of a projected point
    of ``points`` (S, T, P, 3); one frame at a time to bound memory."""
    pix, depth = project(points[..., None, :, :], K, R, t)  # (S, T, V, P, 2)
    radius2 = (K[..., 0, 0, None] * r / depth) ** 2  # (S, T, V, P)
    axis = torch.arange(size, dtype=pix.dtype)
    frames = []
    for p, r2 in zip(pix.flatten(0, 1), radius2.flatten(0, 1), strict=True):
        du = (axis[:, None] - p[:, None, None, :, 0]) ** 2  # (V, 1, W, P)
        dv = (axis[:, None, None] - p[:, None, None, :, 1]) ** 2  # (V, H, 1, P)
        frames.append(((du + dv) <= r2[:, None, None]).any(-1))
    return torch.stack(frames).reshape(*pix.shape[:3], size, size)


def toy_clips(
    config: NetConfig, model: KinematicModel, clips: int = 1, frames: int = 8, seed: int = 0
) -> ToyClips:
    """``clips`` clips of ``frames`` frames at the crop size and views of ``config``."""
    gen = torch.Generator().manual_seed(seed)
    q = toy_coordinates(model, clips, frames, seed)
    scales = 1.0 + 0.1 * (2 * torch.rand(clips, model.n_bodies, 3, generator=gen) - 1)
    centres = forward_kinematics(model, q, scales[:, None]).joint_centres
    K, R, t = toy_cameras(config.image_size, config.n_views)
    lead = (clips, frames, config.n_views)
    K, R, t = K.expand(*lead, 3, 3), R.expand(*lead, 3, 3), t.expand(*lead, 3)
    masks = _rasterize(_bone_points(model, centres, 6), K, R, t, config.image_size, 0.06)
    colour = torch.rand(clips, 1, config.n_views, 3, 1, 1, generator=gen)
    noise = torch.rand(*masks.shape[:3], 3, *masks.shape[-2:], generator=gen)
    images = (0.7 * masks[:, :, :, None] * colour + 0.3 * noise).clamp(0, 1)
    return ToyClips(images, masks, K, R, t, Target(q, scales))
