"""A body model registered to the generic OpenSim model: rig, markers and joint regressor.

:func:`load_registration` bundles what the skeleton-from-shape and fitting steps need:
the body model, the generic model's geometry, the rig table, the virtual-marker table and
the joint regressor. Anny's tables are committed in ``data/body/``; SMPL-X's cannot be
(they derive from the licensed model), so they are built from the user's files on first
use into ``$BIOKIN_BODY_CACHE`` (default ``<repo>/.cache/body``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from biokin_nb.body.markers import (
    DATA_DIR,
    MarkerTable,
    build_marker_table,
    read_marker_table,
    write_marker_table,
)
from biokin_nb.body.model import BodyModel, load_body, require_body_model
from biokin_nb.body.regressor import JointRegressor, load_regressor
from biokin_nb.body.rig import Rig, rig_for
from biokin_nb.body.skeleton import GenericGeometry, generic_geometry
from biokin_nb.osim import KinematicModel, load_model

REPO = Path(__file__).resolve().parents[2]
GENERIC_MODEL = REPO / "data" / "generic_model.osim"


def body_data_dir(backend: str) -> Path:
    """Where a backend's marker table and regressor live (see module docstring)."""
    if backend == "anny":
        return DATA_DIR
    return Path(os.environ.get("BIOKIN_BODY_CACHE", REPO / ".cache" / "body"))


def marker_table_path(backend: str) -> Path:
    return body_data_dir(backend) / f"{backend}_markers.csv"


def regressor_path(backend: str) -> Path:
    return body_data_dir(backend) / f"{backend}_regressor.npz"


@dataclass
class Registration:
    """A body model laid onto the generic OpenSim model.

    Attributes:
        body: the body model.
        geom: the generic model's geometry (``geom.model`` is the KinematicModel).
        rig: the bone correspondence table.
        markers: the virtual markers (vertex per generic marker).
        regressor: the joint regressor (vertices -> the generic model's keypoints).
        model_path: the generic ``.osim`` file.
    """

    body: BodyModel
    geom: GenericGeometry
    rig: Rig
    markers: MarkerTable
    regressor: JointRegressor
    model_path: Path

    @property
    def model(self) -> KinematicModel:
        return self.geom.model

    @property
    def n_joints(self) -> int:
        return len(self.geom.joint_names)

    def support(self) -> torch.Tensor:
        """(K,) the vertex ids the regressor and markers read, for subset forward passes."""
        ids = torch.cat(
            [torch.as_tensor(self.regressor.support), torch.as_tensor(self.markers.vertices)]
        )
        return torch.unique(ids)


def load_backend_parts(
    backend: str | BodyModel = "anny", model_path: str | Path | None = None, **body_kwargs
) -> tuple[BodyModel, Rig, GenericGeometry]:
    """The body model, its rig and the generic geometry (for regenerating the tables).

    Args:
        backend: "anny", "smplx" or a BodyModel instance.
        model_path: the SMPL-X folder or file (SMPL-X only).
    """
    if isinstance(backend, str):
        kwargs = dict(body_kwargs)
        if backend == "smplx" and model_path is not None:
            kwargs["model_path"] = model_path
        body = load_body(backend, **kwargs)
    else:
        body = require_body_model(backend)
    geom = generic_geometry(load_model(GENERIC_MODEL))
    return body, rig_for(body.kind, body.bone_names), geom


def load_registration(
    body: str | BodyModel = "anny",
    model_path: str | Path | None = None,
    markers_file: str | Path | None = None,
    regressor_file: str | Path | None = None,
    generic_model: str | Path | None = None,
    build_missing: bool | None = None,
) -> Registration:
    """Load a body model's registration to the generic model.

    Args:
        body: "anny" (default), "smplx" or a BodyModel instance.
        model_path: SMPL-X folder or file, when ``body`` is "smplx".
        markers_file, regressor_file: the tables (default: in :func:`body_data_dir`).
        generic_model: the generic ``.osim`` (default ``data/generic_model.osim``).
        build_missing: build a missing marker table (fast) in place; default: only for
            SMPL-X. A missing regressor is never fitted implicitly (minutes): the error
            says how to fit it.
    """
    if isinstance(body, str):
        body = load_body(body, **({"model_path": model_path} if body == "smplx" else {}))
    body = require_body_model(body)
    path = Path(generic_model) if generic_model else GENERIC_MODEL
    geom = generic_geometry(load_model(path))
    rig = rig_for(body.kind, body.bone_names)
    markers_file = Path(markers_file) if markers_file else marker_table_path(body.kind)
    build = body.kind != "anny" if build_missing is None else build_missing
    if build and not markers_file.is_file():
        markers_file.parent.mkdir(parents=True, exist_ok=True)
        write_marker_table(build_marker_table(body, rig, geom), markers_file)
    markers = read_marker_table(markers_file, body.kind)
    markers.check_names(geom.model.marker_names)
    regressor = load_regressor(regressor_file or regressor_path(body.kind), body.kind)
    if list(regressor.names) != geom.keypoint_names:
        raise ValueError(
            "the joint regressor's keypoints do not match the generic model's; refit it with "
            f"`python -m biokin_nb.body.regressor --backend {body.kind}`"
        )
    return Registration(body, geom, rig, markers, regressor, path)
