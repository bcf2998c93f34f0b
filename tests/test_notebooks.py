"""Every notebook runs headless under papermill with tiny parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from biokin_nb.notebooks import run_notebook

REPO = Path(__file__).resolve().parents[1]
# Tiny parameters per notebook: seconds on 2 CPU cores.
TINY = {
    "10_skeleton_and_body": {"MAX_FRAMES": 30, "FRAME_STEP": 10},
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
