"""The ``BodyModel`` interface: a surface body model posed bone by bone, in the ground frame.

Every backend (:class:`~biokin_nb.body.anny_body.AnnyBody`,
:class:`~biokin_nb.body.smplx_body.SmplxBody`) is a skinned mesh driven by a tree of bones.
A pose is given the same way for all of them (:class:`BodyPose`): the world rotation that
takes each bone from its rest orientation to its posed one, and the position of the root
bone's head; a bone's head follows its parent. Everything is in OpenSim's ground frame
(X forward, Y up, Z right) and metres; batches take any leading dimensions ``...``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
import torch


class ShapeRangeError(ValueError):
    """A body shape parameter outside the range the body model supports."""


@dataclass
class BodyPose:
    """A pose of a body model with ``NB`` bones.

    Attributes:
        rotations: (..., NB, 3, 3) world rotation of each bone from its rest orientation
            (ground axes); identity everywhere is the rest pose.
        root: (..., 3) ground position of the root bone's head (m).
    """

    rotations: torch.Tensor
    root: torch.Tensor

    @property
    def batch_shape(self) -> torch.Size:
        return self.root.shape[:-1]

    @classmethod
    def standing(
        cls, root: torch.Tensor, vertices: torch.Tensor, batch: torch.Size, n_bones: int
    ) -> BodyPose:
        """The rest pose (identity rotations) lifted so that the lowest vertex is on y = 0.

        Args:
            root: (N, 3) rest position of the root bone's head in ground (m), N = prod(batch).
            vertices: (N, V, 3) rest vertices in ground (m).
            batch: the shapes' batch dimensions.
            n_bones: number of bones NB.
        """
        root = root.clone()
        root[:, 1] = root[:, 1] - vertices[..., 1].amin(-1)
        eye = torch.eye(3, dtype=root.dtype, device=root.device)
        return cls(eye.expand(*batch, n_bones, 3, 3), root.reshape(*batch, 3))


@dataclass
class BodyOutput:
    """A posed body (``...`` leading batch dimensions, V vertices, NB bones).

    Attributes:
        vertices: (..., V, 3) mesh vertices in ground (m); only the requested ones when
            the forward pass was given ``vertex_ids``.
        faces: (F, 3) triangle vertex indices (int64).
        joints: (..., NB, 3) posed bone heads in ground (m), the backend's own skeleton.
        rotations: (..., NB, 3, 3) world rotation of each bone from its rest orientation.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    joints: torch.Tensor
    rotations: torch.Tensor


class BodyModel(abc.ABC):
    """A skinned body mesh with named shape parameters and a bone tree.

    Subclasses set ``kind``, ``shape_names``, ``shape_ranges`` ((S, 2) valid range of each
    shape parameter), ``bone_names``, ``bone_parents`` (-1 for the root, bone 0), ``faces``
    and implement :meth:`forward`, :meth:`rest_pose` and :meth:`sample_shapes`.
    """

    kind: str
    shape_names: tuple[str, ...]
    shape_ranges: np.ndarray
    bone_names: tuple[str, ...]
    bone_parents: tuple[int, ...]
    faces: torch.Tensor
    dtype: torch.dtype
    device: torch.device

    @property
    def n_vertices(self) -> int:
        return int(self.faces.max()) + 1

    @property
    def n_bones(self) -> int:
        return len(self.bone_names)

    def bone_index(self, name: str) -> int:
        if name not in self.bone_names:
            raise KeyError(f"no bone {name!r} in the {self.kind} body model")
        return self.bone_names.index(name)

    @abc.abstractmethod
    def default_shape(self) -> torch.Tensor:
        """(S,) the shape used when none is given."""

    @abc.abstractmethod
    def forward(
        self,
        shape: torch.Tensor | dict[str, float] | None = None,
        pose: BodyPose | None = None,
        vertex_ids: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Posed mesh and skeleton in ground (m).

        Args:
            shape: (..., S) shape parameters, a ``{name: value}`` dict (others default) or
                None (:meth:`default_shape`); validated against ``shape_ranges``.
            pose: the pose (None: :meth:`rest_pose`); its batch broadcasts with the shape's.
            vertex_ids: (K,) vertex indices to compute (None: all).
        """

    @abc.abstractmethod
    def rest_pose(self, shape: torch.Tensor | dict[str, float] | None = None) -> BodyPose:
        """The rest pose (identity rotations) standing on the floor y = 0, per shape."""

    @abc.abstractmethod
    def dominant_bones(self) -> torch.Tensor:
        """(V,) index of the bone with the largest skinning weight of each vertex."""

    @abc.abstractmethod
    def sample_shapes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, S) random plausible adult shapes."""

    def __call__(self, *args, **kwargs) -> BodyOutput:
        return self.forward(*args, **kwargs)

    def shape_tensor(self, shape: torch.Tensor | dict[str, float] | None) -> torch.Tensor:
        """(..., S) validated shape tensor from a tensor, a ``{name: value}`` dict or None.

        Raises:
            KeyError: a dict names an unknown parameter.
            ShapeRangeError: a value is NaN or outside ``shape_ranges``.
            ValueError: the last dimension is not S.
        """
        if shape is None:
            return self.default_shape()
        if isinstance(shape, dict):
            unknown = [k for k in shape if k not in self.shape_names]
            if unknown:
                raise KeyError(
                    f"unknown {self.kind} shape parameter(s) {', '.join(map(repr, unknown))}; "
                    f"the parameters are {', '.join(self.shape_names)}"
                )
            out = self.default_shape().clone()
            for name, value in shape.items():
                out[self.shape_names.index(name)] = float(value)
            shape = out
        shape = torch.as_tensor(shape, dtype=self.dtype, device=self.device)
        if shape.ndim < 1 or shape.shape[-1] != len(self.shape_names):
            raise ValueError(
                f"{self.kind} shape must have shape (..., {len(self.shape_names)}) "
                f"({', '.join(self.shape_names)}); got {tuple(shape.shape)}"
            )
        check_shape_range(shape, self.shape_names, self.shape_ranges, self.kind)
        return shape


def check_shape_range(
    shape: torch.Tensor, names: tuple[str, ...], ranges: np.ndarray, kind: str
) -> None:
    """Raise one ShapeRangeError naming the first parameter outside its range (or NaN)."""
    values = shape.detach().reshape(-1, len(names)).cpu().double().numpy()
    bad = np.isnan(values) | (values < ranges[:, 0]) | (values > ranges[:, 1])
    if not bad.any():
        return
    column = int(np.nonzero(bad.any(0))[0][0])
    value = values[bad[:, column], column][0]
    lo, hi = ranges[column]
    raise ShapeRangeError(
        f"{kind} shape parameter {names[column]!r} = {value:g} is outside its range "
        f"[{lo:g}, {hi:g}]; clamp or rescale it into the range"
    )


def load_body(kind: str = "anny", **kwargs) -> BodyModel:
    """A body model by name: ``"anny"`` (default, free) or ``"smplx"`` (licensed files).

    Keyword arguments go to the backend (e.g. ``model_path`` for SMPL-X).

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "anny":
        from biokin_nb.body.anny_body import AnnyBody

        return AnnyBody(**kwargs)
    if kind == "smplx":
        from biokin_nb.body.smplx_body import SmplxBody

        return SmplxBody(**kwargs)
    raise ValueError(f"unknown body model {kind!r}: choose 'anny' (default) or 'smplx'")


def require_body_model(body: object) -> BodyModel:
    """``body`` if it is a BodyModel, else a TypeError saying what to pass."""
    if not isinstance(body, BodyModel):
        raise TypeError(
            f"expected a BodyModel (AnnyBody or SmplxBody, e.g. load_body('anny')); "
            f"got {type(body).__name__}"
        )
    return body
