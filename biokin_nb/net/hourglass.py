"""Stacked hourglass image encoder with group norm, and its optional heads.

Images are ``(..., 3, H, W)`` RGB in [0, 1]; every map comes out at ``(H / 4, W / 4)``.
Each stack is an hourglass (``depth`` 2x poolings, nearest up-sampling, skip branches at
every scale) followed by a residual block and a 1x1 convolution; the next stack starts from
the previous input plus re-projections of this stack's features and head outputs. Heads
(2D keypoint heatmaps, person mask logits) are read from every stack for intermediate
supervision; the local features the points sample come from the last stack.

``ViewEncoder`` applies one hourglass to every view (``shared_views``: one set of weights)
or one hourglass per view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from biokin_nb.net.config import NetConfig


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with ``gcd(groups, channels)`` groups (so any channel count works)."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class Residual(nn.Module):
    """Pre-activation bottleneck: GN-ReLU-1x1, GN-ReLU-3x3, GN-ReLU-1x1, plus a skip."""

    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        mid = max(c_out // 2, 1)
        self.body = nn.Sequential(
            group_norm(c_in, groups),
            nn.ReLU(),
            nn.Conv2d(c_in, mid, 1),
            group_norm(mid, groups),
            nn.ReLU(),
            nn.Conv2d(mid, mid, 3, padding=1),
            group_norm(mid, groups),
            nn.ReLU(),
            nn.Conv2d(mid, c_out, 1),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` poolings; (n, c, h, w) -> (n, c, h, w)."""

    def __init__(self, depth: int, channels: int, groups: int) -> None:
        super().__init__()
        self.upper = Residual(channels, channels, groups)
        self.down = Residual(channels, channels, groups)
        self.inner = (
            Hourglass(depth - 1, channels, groups)
            if depth > 1
            else Residual(channels, channels, groups)
        )
        self.up = Residual(channels, channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.upper(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


def _stem(channels: int, groups: int) -> nn.Sequential:
    """(n, 3, H, W) -> (n, channels, H / 4, W / 4): 7x7 stride-2 conv, residuals, max-pool."""
    quarter, half = max(channels // 4, 1), max(channels // 2, 1)
    return nn.Sequential(
        nn.Conv2d(3, quarter, 7, stride=2, padding=3),
        group_norm(quarter, groups),
        nn.ReLU(),
        Residual(quarter, half, groups),
        nn.MaxPool2d(2),
        Residual(half, half, groups),
        Residual(half, channels, groups),
    )


@dataclass
class HourglassOutput:
    """Maps of one batch of images (``...`` the input's leading dims, ``h, w = H/4, W/4``).

    Attributes:
        features: (..., feature_channels, h, w) local image features of the last stack.
        heatmaps: (stacks, ..., K, h, w) keypoint heatmaps per stack, or None.
        mask_logits: (stacks, ..., h, w) person mask logits per stack, or None.
    """

    features: torch.Tensor
    heatmaps: torch.Tensor | None
    mask_logits: torch.Tensor | None


class StackedHourglass(nn.Module):
    """Stacked hourglass network (``config`` sizes; ``n_keypoints`` heatmaps if enabled)."""

    def __init__(self, config: NetConfig, n_keypoints: int) -> None:
        super().__init__()
        c, g = config.hourglass_channels, config.norm_groups
        self.n_out = (n_keypoints if config.heatmap_head else 0) + int(config.mask_head)
        self.n_keypoints = n_keypoints if config.heatmap_head else 0
        self.stem = _stem(c, g)
        self.stacks = nn.ModuleList(
            nn.Sequential(Hourglass(config.hourglass_depth, c, g), Residual(c, c, g))
            for _ in range(config.hourglass_stacks)
        )
        self.post = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, c, 1), group_norm(c, g), nn.ReLU())
            for _ in range(config.hourglass_stacks)
        )
        self.heads = nn.ModuleList(
            nn.Conv2d(c, self.n_out, 1) for _ in range(config.hourglass_stacks if self.n_out else 0)
        )
        n_merge = config.hourglass_stacks - 1
        self.merge_features = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(n_merge))
        self.merge_heads = nn.ModuleList(
            nn.Conv2d(self.n_out, c, 1) for _ in range(n_merge if self.n_out else 0)
        )
        self.project = nn.Sequential(
            nn.Conv2d(c, config.feature_channels, 1),
            group_norm(config.feature_channels, g),
            nn.ReLU(),
        )

    def forward(self, images: torch.Tensor) -> HourglassOutput:
        """``images`` (..., 3, H, W) in [0, 1] -> :class:`HourglassOutput`."""
        lead = images.shape[:-3]
        x = self.stem(images.reshape(-1, *images.shape[-3:]) - 0.5)
        outputs = []
        for i, (stack, post) in enumerate(zip(self.stacks, self.post, strict=True)):
            feature = post(stack(x))
            out = self.heads[i](feature) if self.n_out else None
            outputs.append(out)
            if i < len(self.merge_features):
                x = x + self.merge_features[i](feature)
                if out is not None:
                    x = x + self.merge_heads[i](out)
        features = self.project(feature)
        return self._split(features, outputs, lead)

    def _split(
        self, features: torch.Tensor, outputs: list[torch.Tensor | None], lead: torch.Size
    ) -> HourglassOutput:
        heatmaps = masks = None
        if self.n_out:
            stacked = torch.stack(outputs)  # (stacks, n, n_out, h, w)
            stacked = stacked.reshape(len(outputs), *lead, *stacked.shape[2:])
            if self.n_keypoints:
                heatmaps = stacked[..., : self.n_keypoints, :, :]
            if self.n_out > self.n_keypoints:
                masks = stacked[..., self.n_keypoints, :, :]
        return HourglassOutput(features.reshape(*lead, *features.shape[1:]), heatmaps, masks)


class ViewEncoder(nn.Module):
    """Hourglass encoding of every view: shared weights (``config.shared_views``) or not."""

    def __init__(self, config: NetConfig, n_keypoints: int) -> None:
        super().__init__()
        n = 1 if config.shared_views else config.n_views
        self.hourglasses = nn.ModuleList(StackedHourglass(config, n_keypoints) for _ in range(n))

    def forward(self, images: torch.Tensor) -> HourglassOutput:
        """``images`` (..., V, 3, H, W) -> maps with leading dims (..., V)."""
        if len(self.hourglasses) == 1:
            return self.hourglasses[0](images)
        per_view = [hg(images[..., v, :, :, :]) for v, hg in enumerate(self.hourglasses)]
        return HourglassOutput(
            features=torch.stack([o.features for o in per_view], dim=-4),
            heatmaps=_stack_optional([o.heatmaps for o in per_view], dim=-4),
            mask_logits=_stack_optional([o.mask_logits for o in per_view], dim=-3),
        )


def _stack_optional(tensors: list[torch.Tensor | None], dim: int) -> torch.Tensor | None:
    return None if tensors[0] is None else torch.stack(tensors, dim=dim)


class MaskRefiner(nn.Module):
    """Full-resolution person mask logits from the hourglass's quarter-resolution ones.

    The coarse logits are upsampled (bilinear) to the crop and corrected by a residual of
    3x3 convolutions over ``[RGB - 1/2, upsampled logits]`` with dilations ``dilations``
    (receptive field ``1 + 2 * sum(dilations)`` px: 33 by default), so boundaries snap to
    image edges. The last convolution starts at zero: an untrained refiner is plain
    upsampling.
    """

    def __init__(self, channels: int = 24, dilations: tuple[int, ...] = (1, 2, 4, 8, 1)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 4
        for d in dilations[:-1]:
            layers += [nn.Conv2d(c_in, channels, 3, padding=d, dilation=d), nn.ReLU()]
            c_in = channels
        d = dilations[-1]
        layers.append(nn.Conv2d(c_in, 1, 3, padding=d, dilation=d))
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, images: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """``images`` (..., 3, H, W) in [0, 1] and ``coarse`` logits (..., h, w) ->
        (..., H, W) logits."""
        lead, size = images.shape[:-3], images.shape[-2:]
        up = F.interpolate(
            coarse.reshape(-1, 1, *coarse.shape[-2:]).float(),
            size=size,
            mode="bilinear",
            align_corners=False,
        )
        x = torch.cat([images.reshape(-1, *images.shape[-3:]).float() - 0.5, up], dim=1)
        return (up + self.body(x))[:, 0].reshape(*lead, *size)
