"""SMPL-X through the ``smplx`` package, from licensed model files the user has.

SMPL-X (MPI-IS) cannot be downloaded by biokin_nb: give the folder holding
``SMPLX_<GENDER>.npz`` (or ``.pkl``) or the file itself as ``model_path``, or set the
environment variable ``SMPLX_MODEL_DIR`` to that folder. The file is read by
``smplx.SMPLX``; posing uses smplx's functional ``lbs`` (with its pose-corrective blend
shapes) on rotations derived from the common :class:`~biokin_nb.body.model.BodyPose`
(world rotations per joint: each joint's local rotation is ``G_parent^T G_joint``, SMPL-X
joint frames being aligned with its axes at rest). Native axes (Y up, facing +Z) are
turned into the ground frame here. Shape: ``num_betas`` coefficients in [-5, 5].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from biokin_nb.body.frames import (
    SMPLX_TO_GROUND,
    points_from_ground,
    points_to_ground,
    rotations_from_ground,
)
from biokin_nb.body.model import BodyModel, BodyOutput, BodyPose

ENV_VAR = "SMPLX_MODEL_DIR"
N_JOINTS = 55
MIN_VERTICES = 9930  # smplx reads extra keypoints from vertices up to index 9929
BETA_RANGE = (-5.0, 5.0)
_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")
_SMPLX_ONLY = ("hands_componentsl", "hands_componentsr", "lmk_faces_idx", "lmk_bary_coords")


def resolve_smplx_file(model_path: str | Path | None, gender: str = "neutral") -> Path:
    """The SMPL-X file to load: ``model_path`` (file or folder) or ``$SMPLX_MODEL_DIR``.

    Raises:
        FileNotFoundError: nothing found; the message lists where it looked and how to
            point to the files.
    """
    name = f"SMPLX_{gender.upper()}"
    source = "model_path" if model_path is not None else f"${ENV_VAR}"
    if model_path is None:
        model_path = os.environ.get(ENV_VAR)
    if model_path is None:
        raise FileNotFoundError(
            f"no SMPL-X model: neither model_path nor ${ENV_VAR} is set. SMPL-X is licensed "
            "and cannot be downloaded here: get it from https://smpl-x.is.tue.mpg.de, then "
            f"pass SmplxBody(model_path='<folder with {name}.npz>') or set {ENV_VAR}"
        )
    path = Path(model_path).expanduser()
    candidates = (
        [path] if path.suffix in (".npz", ".pkl") else [path / f"{name}.npz", path / f"{name}.pkl"]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no SMPL-X model file: looked for {', '.join(str(c) for c in candidates)} (from "
        f"{source}); pass model_path= the folder holding {name}.npz or the file itself, "
        f"or set {ENV_VAR} to that folder"
    )


def check_smplx_file(path: Path) -> None:
    """Raise a ValueError unless ``path`` holds an SMPL-X model (not SMPL or SMPL-H)."""
    if path.suffix != ".npz":
        return  # .pkl files are checked by smplx itself
    with np.load(path, allow_pickle=True) as data:
        keys = set(data.files)
        missing = [k for k in _REQUIRED if k not in keys]
        if missing:
            raise ValueError(f"{path} is not a body model file (no {', '.join(missing)})")
        n_joints = int(np.asarray(data["J_regressor"]).shape[0])
        n_vertices = int(np.asarray(data["v_template"]).shape[0])
    kind = {24: "SMPL", 52: "SMPL-H"}.get(n_joints, f"a {n_joints}-joint model")
    if n_joints != N_JOINTS or any(k not in keys for k in _SMPLX_ONLY):
        raise ValueError(
            f"{path} is {kind}, not SMPL-X ({N_JOINTS} joints with hands and face); "
            "give an SMPLX_*.npz file"
        )
    if n_vertices < MIN_VERTICES:
        raise ValueError(
            f"{path} has {n_vertices} vertices; an SMPL-X model has 10,475 (at least "
            f"{MIN_VERTICES} are needed)"
        )


class SmplxBody(BodyModel):
    """SMPL-X (55 joints) in the ground frame.

    Args:
        model_path: folder with ``SMPLX_<GENDER>.npz`` or the file (default
            ``$SMPLX_MODEL_DIR``).
        gender: "neutral", "male" or "female".
        num_betas: shape coefficients used.
        dtype, device: computation dtype and device.
    """

    kind = "smplx"

    def __init__(
        self,
        model_path: str | Path | None = None,
        gender: str = "neutral",
        num_betas: int = 10,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        import smplx
        from smplx.joint_names import JOINT_NAMES

        path = resolve_smplx_file(model_path, gender)
        check_smplx_file(path)
        self.path = path
        self.dtype, self.device = dtype, torch.device(device)
        self._model = smplx.SMPLX(
            str(path),
            gender=gender,
            num_betas=num_betas,
            ext=path.suffix[1:],
            use_pca=False,
            flat_hand_mean=True,
            dtype=dtype,
        ).to(self.device)
        n_betas = self._model.num_betas
        self.shape_names = tuple(f"beta{i}" for i in range(n_betas))
        self.shape_ranges = np.array([BETA_RANGE] * n_betas)
        self.bone_names = tuple(JOINT_NAMES[:N_JOINTS])
        self.bone_parents = tuple(int(p) for p in self._model.parents)
        self.faces = self._model.faces_tensor.to(self.device)

    @property
    def n_vertices(self) -> int:
        return int(self._model.v_template.shape[0])

    def default_shape(self) -> torch.Tensor:
        return torch.zeros(len(self.shape_names), dtype=self.dtype)

    def sample_shapes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, len(self.shape_names), generator=generator).to(self.dtype)

    def dominant_bones(self) -> torch.Tensor:
        return self._model.lbs_weights.argmax(-1)

    def rest(self, shape: torch.Tensor | dict[str, float] | None = None) -> dict:
        """Rest vertices (Bs, V, 3) and joints (Bs, 55, 3), native axes, and ``batch``."""
        shape = self.shape_tensor(shape)
        betas = shape.reshape(-1, len(self.shape_names))
        m = self._model
        vertices = m.v_template + torch.einsum("bl,vkl->bvk", betas, m.shapedirs)
        joints = torch.einsum("jv,bvk->bjk", m.J_regressor, vertices)
        return {"vertices": vertices, "joints": joints, "betas": betas, "batch": shape.shape[:-1]}

    def rest_pose(self, shape: torch.Tensor | dict[str, float] | None = None) -> BodyPose:
        rest = self.rest(shape)
        return self._rest_pose(rest)

    def _rest_pose(self, rest: dict) -> BodyPose:
        vertices = points_to_ground(rest["vertices"], SMPLX_TO_GROUND)
        root = points_to_ground(rest["joints"][:, 0], SMPLX_TO_GROUND)
        return BodyPose.standing(root, vertices, rest["batch"], self.n_bones)

    def forward(
        self,
        shape: torch.Tensor | dict[str, float] | None = None,
        pose: BodyPose | None = None,
        vertex_ids: torch.Tensor | None = None,
    ) -> BodyOutput:
        from smplx.lbs import lbs

        rest = self.rest(shape)
        pose = self._rest_pose(rest) if pose is None else pose
        batch = torch.broadcast_shapes(rest["batch"], pose.batch_shape)
        n = int(np.prod(batch)) if len(batch) else 1
        betas = rest["betas"].reshape(*rest["batch"], -1).expand(*batch, -1).reshape(n, -1)
        world = (
            pose.rotations.to(self.dtype).expand(*batch, self.n_bones, 3, 3).reshape(n, -1, 3, 3)
        )
        native = rotations_from_ground(world, SMPLX_TO_GROUND)
        parents = torch.tensor([max(p, 0) for p in self.bone_parents], device=self.device)
        local = torch.cat(
            [native[:, :1], native[:, parents[1:]].transpose(-1, -2) @ native[:, 1:]], 1
        )
        m = self._model
        vertices, joints = lbs(
            betas,
            local.contiguous(),
            m.v_template,
            m.shapedirs,
            m.posedirs,
            m.J_regressor,
            m.parents,
            m.lbs_weights,
            pose2rot=False,
        )
        rest_root = torch.einsum(
            "v,bvk->bk",
            m.J_regressor[0],
            m.v_template + torch.einsum("bl,vkl->bvk", betas, m.shapedirs),
        )
        root = points_from_ground(
            pose.root.to(self.dtype).expand(*batch, 3).reshape(n, 3), SMPLX_TO_GROUND
        )
        shift = (root - rest_root).unsqueeze(1)
        vertices, joints = vertices + shift, joints + shift
        if vertex_ids is not None:
            vertices = vertices[
                :, torch.as_tensor(vertex_ids, dtype=torch.long, device=self.device)
            ]
        return BodyOutput(
            vertices=points_to_ground(vertices, SMPLX_TO_GROUND).reshape(*batch, -1, 3),
            faces=self.faces,
            joints=points_to_ground(joints, SMPLX_TO_GROUND).reshape(*batch, self.n_bones, 3),
            rotations=world.reshape(*batch, self.n_bones, 3, 3),
        )
