"""Shared fixtures: the validation data in ../shared/validation, offscreen settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VALIDATION = REPO.parent / "shared" / "validation"

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
os.environ.setdefault("ANNY_CACHE_DIR", str(REPO / ".cache" / "anny"))

# The validation models by short name (paths in ../shared/validation).
VALIDATION_MODELS = {
    "gait2354": "gait2354_walk/subject01_simbody.osim",
    "rajagopal2016": "rajagopal2016_walk/Rajagopal2016.osim",
    "rajagopal2016_scaled": "rajagopal2016_walk/generated_opensim4.6/subject_scaled_walk.osim",
    "subject_walk_scaled": "rajagopal_walk_opensim-core/subject_walk_scaled.osim",
    "laiuhlrich2022": "extra_models/LaiUhlrich2022.osim",
    "pose2sim": "extra_models/Model_Pose2Sim_simple.osim",
}
# OpenSim's FK along its converged IK solutions: (model, npz).
FK_REFERENCES = {
    "gait2354": (
        "gait2354_walk/subject01_simbody.osim",
        "gait2354_walk/generated_opensim4.6/subject01_walk1_ik_os46_acc1e-9_fk.npz",
    ),
    "rajagopal2016_walk": (
        "rajagopal2016_walk/generated_opensim4.6/subject_scaled_walk.osim",
        "rajagopal2016_walk/generated_opensim4.6/ik_output_walk_acc1e-9_fk.npz",
    ),
    "subject_walk_scaled": (
        "rajagopal_walk_opensim-core/subject_walk_scaled.osim",
        "rajagopal_walk_opensim-core/generated_opensim4.6/subject_walk_scaled_ik_acc1e-9_fk.npz",
    ),
}


@pytest.fixture(scope="session")
def validation_dir() -> Path:
    """../shared/validation, or skip with a message saying where it was looked for."""
    if not VALIDATION.is_dir():
        pytest.skip(f"validation data not found at {VALIDATION} (clone with ../shared beside it)")
    return VALIDATION


@pytest.fixture
def make_notebook(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a notebook of the given nbformat cells to tmp_path; returns its path.

    ``make_notebook(new_code_cell("X = 1", metadata={"tags": ["parameters"]}), name="n.ipynb")``
    """
    import nbformat  # imported here: only the notebook tests need it

    def write(*cells: nbformat.NotebookNode, name: str = "00_example.ipynb") -> Path:
        path = tmp_path / name
        nbformat.write(nbformat.v4.new_notebook(cells=list(cells)), path)
        return path

    return write
