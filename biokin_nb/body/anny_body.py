"""Anny, the default body model: free, ships its assets, shape given by a phenotype.

Anny (NAVER, Apache 2.0) builds its model data from its shipped MakeHuman assets on first
use and caches it (about 800 MB, 1.5 to 3 minutes) in ``ANNY_CACHE_DIR``; biokin_nb points
that to ``<repo>/.cache/anny`` unless the variable is set, and says so when it builds.

Shape: the six phenotype parameters ``gender`` (0 male .. 1 female), ``age`` (0 baby,
1/3 child, 2/3 young adult, 1 old), ``muscle``, ``weight``, ``height``, ``proportions``,
each in [0, 1]. Anny gives the rest mesh and rest skeleton of a shape; posing uses
:mod:`biokin_nb.body.lbs` with Anny's skinning weights (the same transforms as Anny's own
``world-orient`` parameterization, checked in the tests). Anny's native axes (Z up, facing
-Y) are turned into the ground frame once, on the rest mesh.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from biokin_nb.body.frames import ANNY_TO_GROUND, points_to_ground
from biokin_nb.body.lbs import ancestor_matrix, bone_transforms, skin
from biokin_nb.body.model import BodyModel, BodyOutput, BodyPose

REPO = Path(__file__).resolve().parents[2]
SHAPE_NAMES = ("gender", "age", "muscle", "weight", "height", "proportions")
# Adults of about 1.5 to 2.05 m: the ranges ``sample_shapes`` draws from (inside [0, 1]).
ADULT_SAMPLING = {
    "gender": (0.0, 1.0),
    "age": (0.6, 1.0),
    "muscle": (0.1, 0.9),
    "weight": (0.1, 0.9),
    "height": (0.15, 0.8),
    "proportions": (0.2, 0.8),
}
DEFAULT_SHAPE = {
    "gender": 0.5,
    "age": 2.0 / 3.0,
    "muscle": 0.5,
    "weight": 0.5,
    "height": 0.5,
    "proportions": 0.5,
}
_LEG_BONES = ("upperleg01", "upperleg02", "lowerleg01", "lowerleg02")
_KNEE_RING_HALF_HEIGHT = 0.015  # m
_REST_CACHE_SIZE = 4


def anny_cache_dir() -> Path:
    """The Anny cache folder: ``$ANNY_CACHE_DIR``, else ``<repo>/.cache/anny``."""
    return Path(os.environ.get("ANNY_CACHE_DIR", REPO / ".cache" / "anny"))


def _cache_is_built(cache: Path) -> bool:
    return any(cache.glob("v*/build_compact_model_data_*.safetensors"))


def _build_anny(cache: Path):
    """Construct ``anny.Anny()`` with its cache in ``cache``, announcing a first build."""
    import anny
    from anny.paths import set_anny_cache_path

    cache.mkdir(parents=True, exist_ok=True)
    set_anny_cache_path(cache)
    first = not _cache_is_built(cache)
    if first:
        print(
            f"Building the Anny model cache in {cache} (first use on this machine: "
            "about 800 MB, 1.5 to 3 minutes)...",
            flush=True,
        )
    start = time.perf_counter()
    model = anny.Anny()
    if first:
        print(f"Anny cache built in {time.perf_counter() - start:.0f} s.", flush=True)
    return model


class AnnyBody(BodyModel):
    """The Anny body model (13,718 vertices, 104 bones) in the ground frame.

    Args:
        dtype: computation dtype (float32 is about twice as fast as float64 on a CPU).
        device: torch device.
        cache_dir: Anny's cache folder (default :func:`anny_cache_dir`).
    """

    kind = "anny"
    shape_names = SHAPE_NAMES
    shape_ranges = np.array([[0.0, 1.0]] * len(SHAPE_NAMES))

    def __init__(
        self,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        cache_dir: str | Path | None = None,
    ) -> None:
        self.dtype, self.device = dtype, torch.device(device)
        self._model = _build_anny(Path(cache_dir) if cache_dir else anny_cache_dir())
        self._model.to(dtype=dtype, device=self.device)
        self.bone_names = tuple(self._model.bone_labels)
        self.bone_parents = tuple(int(p) for p in self._model.bone_parents)
        self.faces = self._model.faces.to(device=self.device, dtype=torch.int64)
        self._parents = torch.tensor([max(p, 0) for p in self.bone_parents], device=self.device)
        self._ancestors = ancestor_matrix(self.bone_parents).to(self.device, dtype)
        from anny.skinning.skinning import dense_bone_weights

        m = self._model
        self._weights = dense_bone_weights(
            m.vertex_bone_weights, m.vertex_bone_indices, self.n_bones
        )
        self._rest_cache: dict = {}
        self._knees = self._knee_rings()

    @property
    def n_vertices(self) -> int:
        return int(self._weights.shape[0])

    @property
    def skinning_weights(self) -> torch.Tensor:
        """(V, NB) dense skinning weights."""
        return self._weights

    @property
    def anny(self):
        """The wrapped ``anny.Anny`` module (native axes)."""
        return self._model

    def default_shape(self) -> torch.Tensor:
        return torch.tensor([DEFAULT_SHAPE[n] for n in SHAPE_NAMES], dtype=self.dtype)

    def sample_shapes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        lo, hi = (torch.tensor([ADULT_SAMPLING[k][i] for k in SHAPE_NAMES]) for i in (0, 1))
        u = torch.rand(n, len(SHAPE_NAMES), generator=generator, dtype=torch.float64)
        return (lo + u * (hi - lo)).to(self.dtype)

    def dominant_bones(self) -> torch.Tensor:
        return self._weights.argmax(-1)

    # ------------------------------------------------------------------ rest model
    def rest(self, shape: torch.Tensor | dict[str, float] | None = None) -> dict:
        """Rest mesh and skeleton of (..., S) shapes, in ground, flattened to (Bs, ...).

        Returns a dict with ``vertices`` (Bs, V, 3), ``heads`` (Bs, NB, 3) (rest bone
        heads, knees re-seated, see :meth:`_knee_rings`) and ``batch`` (the shapes'
        leading dimensions). Results for shapes without gradient are cached.
        """
        shape = self.shape_tensor(shape)
        key = None
        if not shape.requires_grad:
            key = (tuple(shape.shape), shape.detach().cpu().numpy().tobytes())
            if key in self._rest_cache:
                return self._rest_cache[key]
        rest = self._rest(shape)
        if key is not None:
            if len(self._rest_cache) >= _REST_CACHE_SIZE:
                self._rest_cache.pop(next(iter(self._rest_cache)))
            self._rest_cache[key] = rest
        return rest

    def _rest(self, shape: torch.Tensor) -> dict:
        from anny.skinning.skinning import apply_linear_blendshape

        flat = shape.reshape(-1, len(SHAPE_NAMES))
        kwargs = {name: flat[:, i] for i, name in enumerate(SHAPE_NAMES)}
        coeffs = self._model.get_phenotype_blendshape_coefficients(**kwargs)
        vertices = self._model.get_rest_vertices(coeffs)
        m = self._model
        heads = apply_linear_blendshape(m.template_bone_heads, m.bone_heads_blendshapes, coeffs)
        heads = self._reseat_knees(vertices, heads)
        return {
            "vertices": points_to_ground(vertices, ANNY_TO_GROUND),
            "heads": points_to_ground(heads, ANNY_TO_GROUND),
            "batch": shape.shape[:-1],
        }

    def _knee_rings(self) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """Per knee: (bone index, ring vertex ids, offset (3,) native) for :meth:`rest`.

        Anny's knee bone head drifts along the leg relative to the skin with the height
        phenotype (from 6 cm below the knee's skin landmarks at height 0 to 7 cm above at
        height 1). The rest knee head is re-seated at the centroid of the skin ring around
        the knee plus the offset it has from that centroid in the default shape, so that
        the mesh bends where its knee is for every body.
        """
        from anny.skinning.skinning import apply_linear_blendshape

        flat = self.default_shape()[None]
        kwargs = {name: flat[:, i] for i, name in enumerate(SHAPE_NAMES)}
        m = self._model
        coeffs = m.get_phenotype_blendshape_coefficients(**kwargs)
        vertices = m.get_rest_vertices(coeffs)[0]
        heads = apply_linear_blendshape(m.template_bone_heads, m.bone_heads_blendshapes, coeffs)[0]
        dominant = self.dominant_bones()
        rings = []
        for side in ("R", "L"):
            knee = self.bone_names.index(f"lowerleg01.{side}")
            leg = torch.tensor([self.bone_names.index(f"{b}.{side}") for b in _LEG_BONES])
            band = (vertices[:, 2] - heads[knee, 2]).abs() < _KNEE_RING_HALF_HEIGHT
            ids = torch.nonzero(band & torch.isin(dominant, leg.to(self.device))).flatten()
            rings.append((knee, ids, heads[knee] - vertices[ids].mean(0)))
        return rings

    def _reseat_knees(self, vertices: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        heads = heads.clone()
        for knee, ids, offset in self._knees:
            heads[:, knee] = vertices[:, ids].mean(1) + offset
        return heads

    def rest_pose(self, shape: torch.Tensor | dict[str, float] | None = None) -> BodyPose:
        return self._rest_pose(self.rest(shape))

    def _rest_pose(self, rest: dict) -> BodyPose:
        return BodyPose.standing(rest["heads"][:, 0], rest["vertices"], rest["batch"], self.n_bones)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        shape: torch.Tensor | dict[str, float] | None = None,
        pose: BodyPose | None = None,
        vertex_ids: torch.Tensor | None = None,
    ) -> BodyOutput:
        rest = self.rest(shape)
        pose = self._rest_pose(rest) if pose is None else pose
        batch = torch.broadcast_shapes(rest["batch"], pose.batch_shape)
        heads = _unflatten(rest["heads"], rest["batch"])
        vertices = _unflatten(rest["vertices"], rest["batch"])
        weights = self._weights
        if vertex_ids is not None:
            ids = torch.as_tensor(vertex_ids, dtype=torch.long, device=self.device)
            vertices, weights = vertices[..., ids, :], weights[ids]
        rotations = pose.rotations.to(self.dtype)
        translations, joints = bone_transforms(
            rotations, heads, pose.root.to(self.dtype), self._parents, self._ancestors
        )
        posed = skin(vertices, weights, rotations, translations)
        return BodyOutput(
            vertices=posed.expand(*batch, *posed.shape[-2:]),
            faces=self.faces,
            joints=joints.expand(*batch, self.n_bones, 3),
            rotations=rotations.expand(*batch, self.n_bones, 3, 3),
        )


def _unflatten(x: torch.Tensor, batch: torch.Size) -> torch.Tensor:
    """(Bs, ...) -> (*batch, ...) (batch () for a single shape)."""
    return x.reshape(*batch, *x.shape[1:])
