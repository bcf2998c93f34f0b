"""``KinematicsNet``: two-view person crops -> OpenSim joint angles and segment scales.

Per frame: a stacked hourglass encodes each view; N points sampled inside both silhouettes
carry their centred coordinates and both views' local features (L values); a shared MLP
compresses each to L', and an MLP over the N concatenated compact features gives the frame
feature (D). Per clip: the temporal U-Net refines the (T, D) features (full mode; skipped
in ``frame_only`` mode, training stage 1). Heads: per-frame angles (free coordinates as
unit (cos, sin), constrained ones in rad) and per-sequence scales ``raw / 8 + 1`` from the
time-averaged features.

Shapes: S clips, T frames, V views, crops H = W = ``config.image_size``; cameras describe
the crops (OpenCV convention, world = OpenSim ground, m; see :mod:`biokin_nb.net.points`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from biokin_nb.net.config import NetConfig
from biokin_nb.net.hourglass import HourglassOutput, MaskRefiner, ViewEncoder
from biokin_nb.net.layout import CoordinateLayout
from biokin_nb.net.points import PointSet, full_precision, point_features, sample_points
from biokin_nb.net.temporal import TemporalUNet
from biokin_nb.osim import KinematicModel


def mlp(sizes: Sequence[int], final_activation: bool) -> nn.Sequential:
    """Linear layers between consecutive ``sizes`` with ReLU between (and after the last if
    ``final_activation``); acts on the last dimension."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@dataclass
class FrameEncoding:
    """The per-frame encoder's results for (S, T) frames.

    Attributes:
        features: (S, T, D) frame features.
        maps: hourglass maps with leading dims (S, T, V) (heads per stack first).
        points: the sampled points, leading dims (S, T).
        masks: (S, T, V, H, W) bool masks the points were sampled in (given or predicted).
    """

    features: torch.Tensor
    maps: HourglassOutput
    points: PointSet
    masks: torch.Tensor


@dataclass
class NetOutput:
    """Predictions for S clips of T frames (C model coordinates, B bodies).

    Attributes:
        free_cos_sin: (S, T, F, 2) unit (cos, sin) of the free coordinates.
        constrained: (S, T, K) constrained coordinates (rad).
        scales: (S, B, 3) per-clip segment scale factors.
        coordinates: (S, T, C) all model coordinates (rad, m): translations zero, coupled
            ones (knee beta) from their couplers.
        angles: (S, T, P) the P = 36 predicted coordinates (``layout.predicted``).
        encoding: the frame encoder's features, hourglass maps and points (None when
            built from coordinates).
    """

    free_cos_sin: torch.Tensor
    constrained: torch.Tensor
    scales: torch.Tensor
    coordinates: torch.Tensor
    angles: torch.Tensor
    encoding: FrameEncoding | None = None

    @classmethod
    def from_coordinates(
        cls, layout: CoordinateLayout, coordinates: torch.Tensor, scales: torch.Tensor
    ) -> NetOutput:
        """An output holding given (S, T, C) coordinates and (S, B, 3) scales (e.g. a
        baseline's, to score it with the same loss); translations are zeroed."""
        free_cos_sin, constrained = layout.split(coordinates)
        q = layout.coordinates(free_cos_sin, constrained)
        return cls(free_cos_sin, constrained, scales, q, q[..., list(layout.predicted)])


class KinematicsNet(nn.Module):
    """The biomechanics-aware network of Lin et al. for ``model`` with ``config`` sizes."""

    def __init__(self, config: NetConfig, model: KinematicModel) -> None:
        super().__init__()
        self.config = config
        self.layout = CoordinateLayout.build(model, config.free_coordinates)
        self.views = ViewEncoder(config, n_keypoints=2 * model.n_bodies)
        refine = config.mask_refine and config.mask_head
        self.mask_refiner = MaskRefiner() if refine else None
        self.point_mlp = mlp([config.point_input, *config.point_hidden, config.point_feature], True)
        frame_in = config.n_points * config.point_feature
        self.frame_mlp = mlp([frame_in, *config.frame_hidden, config.frame_feature], False)
        self.temporal = TemporalUNet(config)
        self.angle_head = nn.Linear(config.frame_feature, self.layout.n_outputs)
        self.scale_head = nn.Linear(config.frame_feature, 3 * model.n_bodies)
        self._init_heads()

    def _init_heads(self) -> None:
        """Start at the model's default pose (clipped into range) and unit scales: small head
        weights, biases (1, 0) for each free (cos, sin) and the defaults for the rest."""
        model, layout = self.kinematic_model, self.layout
        lo, hi = model.ranges.T
        neutral = torch.tensor(model.defaults.clip(lo, hi)[list(layout.constrained)])
        with torch.no_grad():
            for head in (self.angle_head, self.scale_head):
                head.weight.mul_(0.01)
                head.bias.zero_()
            self.angle_head.bias[0 : 2 * len(layout.free) : 2] = 1.0
            self.angle_head.bias[2 * len(layout.free) :] = neutral.to(self.angle_head.bias)

    @property
    def kinematic_model(self) -> KinematicModel:
        return self.layout.model

    def forward(
        self,
        images: torch.Tensor,
        K: torch.Tensor,
        R: torch.Tensor,
        t: torch.Tensor,
        masks: torch.Tensor | None = None,
        *,
        frame_only: bool = False,
    ) -> NetOutput:
        """Predict a batch of clips.

        Args:
            images: (S, T, V, 3, H, W) RGB crops in [0, 1].
            K, R, t: crop cameras broadcastable to (S, T, V, 3, 3), (S, T, V, 3, 3),
                (S, T, V, 3): intrinsics (px), world-to-camera rotation and translation (m).
            masks: (S, T, V, H, W) person masks (bool or probabilities); None: the mask
                head's prediction.
            frame_only: skip the temporal module (training stage 1).
        """
        encoding = self.encode(images, K, R, t, masks)
        features = encoding.features if frame_only else self.temporal_features(encoding.features)
        return self.heads(features, encoding)

    def encode(
        self,
        images: torch.Tensor,
        K: torch.Tensor,
        R: torch.Tensor,
        t: torch.Tensor,
        masks: torch.Tensor | None = None,
    ) -> FrameEncoding:
        """The per-frame encoder (arguments as :meth:`forward`)."""
        s, n_t = self._check_images(images)
        lead = (s, n_t, self.config.n_views)
        cams = [_broadcast(x, lead, tail, name) for x, tail, name in _cams(K, R, t)]
        maps = self.views(images)
        masks = self._masks(masks, images, maps, lead)
        flat = [x.flatten(0, 1) for x in cams]
        points = sample_points(
            masks.flatten(0, 1),
            *flat,
            n_points=self.config.n_points,
            ray_stride=self.config.ray_stride,
            depth_step_m=self.config.depth_step_m,
            depth_half_range_m=self.config.depth_half_range_m,
        )
        size = (self.config.image_size, self.config.image_size)
        per_point = point_features(points, maps.features.flatten(0, 1), *flat, size)
        compact = self.point_mlp(per_point).flatten(1)  # (S * T, N * L')
        features = self.frame_mlp(compact).reshape(s, n_t, -1)
        return FrameEncoding(features, maps, points.reshape(s, n_t), masks)

    def temporal_features(self, features: torch.Tensor) -> torch.Tensor:
        """(S, T, D) -> (S, T, D) through the temporal U-Net."""
        return self.temporal(features)

    def heads(self, features: torch.Tensor, encoding: FrameEncoding) -> NetOutput:
        """Angles per frame and scales per clip from (S, T, D) features (in float32 even
        under autocast)."""
        n_free = len(self.layout.free)
        with full_precision(features.device):
            features = features.float()
            raw = self.angle_head(features)
            scales = self.scale_head(features.mean(dim=1)) / self.config.scale_divisor + 1.0
            pairs = raw[..., : 2 * n_free].unflatten(-1, (n_free, 2))
            free_cos_sin = F.normalize(pairs, dim=-1, eps=1e-6)
            constrained = raw[..., 2 * n_free :]
            scales = scales.unflatten(-1, (-1, 3))
            coordinates = self.layout.coordinates(free_cos_sin, constrained)
        angles = coordinates[..., list(self.layout.predicted)]
        return NetOutput(free_cos_sin, constrained, scales, coordinates, angles, encoding)

    def _check_images(self, images: torch.Tensor) -> tuple[int, int]:
        c = self.config
        expected = (c.n_views, 3, c.image_size, c.image_size)
        if images.ndim != 6 or tuple(images.shape[2:]) != expected:
            raise ValueError(
                f"images must have shape (S, T, {', '.join(map(str, expected))}) "
                f"(clips, frames, views, RGB, crop size of the config); got {tuple(images.shape)}"
            )
        return images.shape[0], images.shape[1]

    def mask_logits(self, images: torch.Tensor, maps: HourglassOutput) -> torch.Tensor:
        """(..., H, W) full-resolution mask logits of ``images`` (..., 3, H, W) from the last
        stack's mask head (detached: masks choose points, they are not trained through
        them), refined when the config has a refiner, else upsampled (bilinear).

        Raises:
            ValueError: the config has no mask head.
        """
        if maps.mask_logits is None:
            raise ValueError("no masks given and the config has no mask head: pass masks")
        coarse = maps.mask_logits[-1].detach()
        if self.mask_refiner is not None:
            return self.mask_refiner(images, coarse)
        size = images.shape[-2:]
        flat = coarse.reshape(-1, 1, *coarse.shape[-2:]).float()
        up = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
        return up[:, 0].reshape(*coarse.shape[:-2], *size)

    def _masks(
        self,
        masks: torch.Tensor | None,
        images: torch.Tensor,
        maps: HourglassOutput,
        lead: tuple[int, int, int],
    ) -> torch.Tensor:
        """(S, T, V, H, W) bool: the given masks, or the predicted ones (logit > 0)."""
        size = (self.config.image_size, self.config.image_size)
        if masks is not None:
            return _broadcast(masks, lead, size, "masks")
        with torch.no_grad():
            return self.mask_logits(images, maps) > 0


def _cams(K: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> list:
    return [(K, (3, 3), "K"), (R, (3, 3), "R"), (t, (3,), "t")]


def _broadcast(x: torch.Tensor, lead: tuple[int, ...], tail: tuple[int, ...], name: str):
    """``x`` expanded to ``lead + tail``, or a ValueError naming the shapes."""
    try:
        return x.expand(*lead, *tail)
    except RuntimeError:
        raise ValueError(
            f"{name} must broadcast to {(*lead, *tail)} (clips, frames, views, ...); "
            f"got {tuple(x.shape)}"
        ) from None
