"""Every notebook runs headless under papermill with tiny parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from biokin_nb.notebooks import run_notebook

REPO = Path(__file__).resolve().parents[1]
# Tiny parameters per notebook: seconds on 2 CPU cores.
TINY = {
    "10_skeleton_and_body": {
        "MAX_FRAMES": 30,
        "FRAME_STEP": 10,
        "BODY_SHAPES": 1,
        "FIT_SECONDS": 0.2,
        "FIT_ITERATIONS": 5,
    },
    "50_temporal_ik": {"SLSQP_FRAMES": 2, "REAL_FRAMES": 8, "REAL_SLSQP_FRAMES": 2},
    "20_generate_data": {
        "SUBJECTS": 1,
        "CLIPS_PER_SUBJECT": 1,
        "SIZE": 128,
        "DURATION_S": 0.2,
        "FIT_ITERATIONS": 3,
    },
    "60_visualize_3d": {"MAX_FRAMES": 24, "FRAME_STEP": 6, "POSE_FRAME": 10, "MOVIE_FRAMES": 3},
    "70_report": {"MAX_FRAMES": 20, "FRAME_STEP": 5},
    "30_train": {
        "SUBJECTS": 2,
        "SIZE": 96,
        "DURATION_S": 0.2,
        "FIT_ITERATIONS": 3,
        "PRESET": "tiny",
        "WINDOW": 8,
        "STRIDE": 4,
        "STAGE1_EPOCHS": 1,
        "STAGE2_EPOCHS": 1,
        "MAX_STEPS": 1,
    },
    "40_inference": {
        "SUBJECTS": 2,
        "SIZE": 96,
        "DURATION_S": 0.2,
        "FIT_ITERATIONS": 3,
        "PRESET": "tiny",
        "EPOCHS": 1,
        "WINDOW": 8,
    },
}


@pytest.mark.notebook
@pytest.mark.parametrize("stem", sorted(TINY))
def test_notebook_runs(stem, tmp_path):
    figures = tmp_path / "figures"
    params = {**TINY[stem], "FIGURES": str(figures)}
    executed = run_notebook(REPO / "notebooks" / f"{stem}.ipynb", tmp_path, parameters=params)
    assert executed.is_file()
    assert any(figures.iterdir()), "the notebook wrote no figure"


def test_every_notebook_has_tiny_parameters():
    stems = {p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert stems == set(TINY), "add tiny parameters for every notebook to TINY"
