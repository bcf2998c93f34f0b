"""``NetConfig``: every size knob of the network and its loss, with two presets.

``NetConfig.paper()`` has the sizes of Lin et al. (CVPRW 2024); ``NetConfig.cpu()`` is a small
network that trains on a laptop CPU. Every knob has a tiny setting (see ``tests/test_net*``).
A config round-trips through ``to_dict`` / ``from_dict`` (plain JSON types) and is stored in
every checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from biokin_nb.osim.generic import FREE_COORDINATES


@dataclass(frozen=True)
class NetConfig:
    """Sizes of :class:`biokin_nb.net.KinematicsNet` (defaults: the paper's).

    Image encoder (one stacked hourglass per view):
        image_size: side of the square person crops fed to the hourglass (px).
        n_views: number of camera views.
        shared_views: one hourglass (shared weights) for all views, else one per view.
        hourglass_stacks, hourglass_channels, hourglass_depth: stacks, channels and number of
            2x poolings inside each hourglass; features come out at ``image_size / 4``.
        norm_groups: group-norm groups (reduced to the gcd with each layer's channels).
        feature_channels: local image feature channels per view, sampled at the points.
        heatmap_head: 2D keypoint heatmap head (one map per model keypoint; baseline).
        mask_head: person mask head (sigmoid), used for masks at inference.
        mask_refine: a full-resolution mask refiner on top of the mask head (the head's
            maps are at a quarter of the crop; see :class:`biokin_nb.net.hourglass.MaskRefiner`).

    Points (sampled inside both silhouettes, see :mod:`biokin_nb.net.points`):
        n_points: points per frame (N).
        ray_stride: pixels between the candidate rays through the crop (px).
        depth_step_m, depth_half_range_m: candidate spacing along each ray and the half
            length of the depth interval around the subject's centre (m).

    Frame encoder: point feature ``3 + n_views * feature_channels`` -> ``point_hidden`` ->
    ``point_feature`` (shared over points); the N compact features concatenated ->
    ``frame_hidden`` -> ``frame_feature`` (D).

    Temporal transformer U-Net over ``sequence_length`` frames: ``temporal_channels``,
    ``temporal_blocks`` and ``temporal_heads`` per level, ``temporal_factors`` the time
    down-sampling between levels, ``ffn_expansion`` the GDFN hidden-width factor.

    Heads and loss: ``free_coordinates`` predicted as (cos, sin); scales as
    ``raw / scale_divisor + 1``; ``position_weight`` the lambda of the keypoint term.
    """

    image_size: int = 256
    n_views: int = 2
    shared_views: bool = True
    hourglass_stacks: int = 4
    hourglass_channels: int = 256
    hourglass_depth: int = 4
    norm_groups: int = 32
    feature_channels: int = 512
    heatmap_head: bool = True
    mask_head: bool = True
    mask_refine: bool = False
    n_points: int = 500
    ray_stride: int = 4
    depth_step_m: float = 0.05
    depth_half_range_m: float = 1.0
    point_hidden: tuple[int, ...] = (512, 512)
    point_feature: int = 32
    frame_hidden: tuple[int, ...] = (128, 128)
    frame_feature: int = 102
    sequence_length: int = 64
    temporal_channels: tuple[int, ...] = (48, 96, 384)
    temporal_blocks: tuple[int, ...] = (2, 4, 6)
    temporal_heads: tuple[int, ...] = (1, 2, 4)
    temporal_factors: tuple[int, ...] = (2, 4)
    ffn_expansion: float = 2.66
    free_coordinates: tuple[str, ...] = field(default=FREE_COORDINATES)
    scale_divisor: float = 8.0
    position_weight: float = 100.0

    def __post_init__(self) -> None:
        _check_config(self)

    # ---- presets -----------------------------------------------------------------------
    @classmethod
    def paper(cls) -> NetConfig:
        """Lin et al.'s sizes: 4-stack 256-channel hourglass on 256 px crops, N = 500,
        L = 1027 -> 512 -> 512 -> 32, N * 32 -> 128 -> 128 -> D = 102, T = 64 U-Net."""
        return cls(mask_refine=True)

    @classmethod
    def cpu(cls) -> NetConfig:
        """A small network that trains on a CPU: 2 stacks of 32 channels on 128 px crops,
        N = 128 points, D = 32, T = 16, U-Net channels (16, 32, 64) with one block a level."""
        return cls(
            image_size=128,
            hourglass_stacks=2,
            hourglass_channels=32,
            hourglass_depth=3,
            norm_groups=8,
            feature_channels=16,
            n_points=128,
            point_hidden=(64, 64),
            point_feature=8,
            frame_hidden=(64, 64),
            frame_feature=32,
            sequence_length=16,
            temporal_channels=(16, 32, 64),
            temporal_blocks=(1, 1, 1),
            temporal_heads=(1, 2, 4),
            mask_refine=True,
        )

    # ---- derived sizes -----------------------------------------------------------------
    @property
    def point_input(self) -> int:
        """L: 3D coordinates plus the local features of every view (1027 for the paper)."""
        return 3 + self.n_views * self.feature_channels

    @property
    def feature_size(self) -> int:
        """Side of the hourglass feature maps (px): ``image_size / 4``."""
        return self.image_size // 4

    @property
    def time_multiple(self) -> int:
        """Clip lengths are padded to a multiple of this for the temporal module."""
        return math.prod(self.temporal_factors)

    # ---- serialization -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples as lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NetConfig:
        """The config of ``values`` (as from :meth:`to_dict`); missing keys take defaults.

        Raises:
            KeyError: keys that are not fields of NetConfig.
        """
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise KeyError(
                f"unknown NetConfig fields {', '.join(unknown)}; the fields are {', '.join(names)}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def differences(self, other: NetConfig) -> dict[str, tuple[Any, Any]]:
        """``{field: (self value, other value)}`` for every field that differs."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def _check_config(c: NetConfig) -> None:
    """One ValueError listing every inconsistent size."""
    problems = []
    if c.image_size % 4 or c.image_size < 8:
        problems.append(f"image_size must be a multiple of 4 and >= 8 (got {c.image_size})")
    elif (c.image_size // 4) % 2**c.hourglass_depth:
        problems.append(
            f"image_size / 4 = {c.image_size // 4} must be divisible by 2**hourglass_depth "
            f"= {2**c.hourglass_depth}; lower hourglass_depth or change image_size"
        )
    positive = ("n_views", "hourglass_stacks", "hourglass_channels", "hourglass_depth")
    positive += ("norm_groups", "feature_channels", "n_points", "ray_stride", "point_feature")
    positive += ("frame_feature", "sequence_length")
    problems += [f"{k} must be >= 1 (got {getattr(c, k)})" for k in positive if getattr(c, k) < 1]
    problems += _temporal_problems(c)
    if c.depth_step_m <= 0 or c.depth_half_range_m <= 0:
        problems.append("depth_step_m and depth_half_range_m must be > 0")
    if problems:
        raise ValueError("invalid NetConfig: " + "; ".join(problems))


def _temporal_problems(c: NetConfig) -> list[str]:
    levels = len(c.temporal_channels)
    if not (len(c.temporal_blocks) == len(c.temporal_heads) == levels >= 1):
        return ["temporal_channels, temporal_blocks and temporal_heads need one entry per level"]
    if len(c.temporal_factors) != levels - 1:
        return [f"temporal_factors needs {levels - 1} entries (one between levels)"]
    problems = []
    for i, (ch, heads) in enumerate(zip(c.temporal_channels, c.temporal_heads, strict=True)):
        if heads < 1 or ch % heads:
            problems.append(f"temporal_channels[{i}] = {ch} not divisible by {heads} heads")
    for i, r in enumerate(c.temporal_factors):
        if r < 1 or c.temporal_channels[i + 1] % r:
            problems.append(
                f"temporal_channels[{i + 1}] = {c.temporal_channels[i + 1]} must be divisible by "
                f"the down-sampling factor {r}"
            )
    if c.sequence_length % c.time_multiple:
        problems.append(
            f"sequence_length {c.sequence_length} must be a multiple of {c.time_multiple} "
            "(the product of temporal_factors)"
        )
    return problems
