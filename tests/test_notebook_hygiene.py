"""Committed notebooks are clean (no outputs, one parameters cell); the runner and checker work."""

from __future__ import annotations

import warnings
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from biokin_nb import notebooks
from biokin_nb.notebooks import (
    KernelFallbackWarning,
    check_notebook,
    notebook_paths,
    parameters_of,
    resolve_kernel,
    run_all,
    run_notebook,
)

COMMITTED = notebook_paths()


def parameters_cell(source: str) -> nbformat.NotebookNode:
    """A code cell tagged ``parameters``."""
    return new_code_cell(source, metadata={"tags": ["parameters"]})


# --- the committed notebooks -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.stem) for p in COMMITTED] or [pytest.param(None, id="no-notebooks-yet")],
)
def test_committed_notebook_is_clean(path: Path | None) -> None:
    if path is None:
        return  # nothing committed in notebooks/ yet: nothing to check
    assert check_notebook(path) == []


def test_every_notebook_is_numbered() -> None:
    all_notebooks = sorted(notebooks.NOTEBOOKS_DIR.glob("*.ipynb"))
    assert all_notebooks == COMMITTED, "name notebooks NN_name.ipynb (two digits, then _)"


# --- check_notebook and parameters_of ----------------------------------------------------------


def test_clean_notebook_has_no_problems(make_notebook) -> None:
    path = make_notebook(
        new_markdown_cell("# Title"),
        parameters_cell('N_FRAMES = 4\nDEVICE = "cpu"\nSCALE: float = -0.5\nOUT = None'),
        new_code_cell("print(N_FRAMES)"),
    )
    assert check_notebook(path) == []
    assert parameters_of(path) == {"N_FRAMES": 4, "DEVICE": "cpu", "SCALE": -0.5, "OUT": None}


def test_outputs_and_execution_counts_are_reported(make_notebook) -> None:
    cell = new_code_cell("print(1)", execution_count=3)
    cell.outputs = [new_output("stream", name="stdout", text="1\n")]
    path = make_notebook(parameters_cell("X = 1"), cell)
    problems = check_notebook(path)
    assert len(problems) == 2
    assert "cell 1 has outputs" in problems[0]
    assert "cell 1 has an execution count" in problems[1]
    assert "--clear-output" in problems[0]


@pytest.mark.parametrize("count", [0, 2])
def test_parameters_cell_count_is_reported(make_notebook, count: int) -> None:
    path = make_notebook(*[parameters_cell("X = 1") for _ in range(count)], new_code_cell("pass"))
    (problem,) = check_notebook(path)
    assert f"{count} cells are tagged 'parameters'" in problem


def test_two_parameters_cells_are_refused_by_parameters_of(make_notebook) -> None:
    path = make_notebook(parameters_cell("X = 1"), parameters_cell("Y = 2"))
    with pytest.raises(ValueError, match="2 cells are tagged 'parameters'"):
        parameters_of(path)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("n_frames = 4", "'n_frames' is not UPPER_CASE"),
        ("JOINTS = ['knee', 'hip']", "JOINTS is not a bool, int, float, str or None literal"),
        ("PATH = Path('data')", "PATH is not a bool"),
        ("import os", "only `NAME = value` lines"),
        ("A = B = 1", "only `NAME = value` lines"),
        ("%matplotlib inline", "not plain Python"),
    ],
)
def test_bad_parameters_are_reported(make_notebook, source: str, message: str) -> None:
    path = make_notebook(parameters_cell(source))
    (problem,) = check_notebook(path)
    assert message in problem
    with pytest.raises(ValueError, match="bad parameters cell"):
        parameters_of(path)


def test_markdown_parameters_cell_is_reported(make_notebook) -> None:
    path = make_notebook(new_markdown_cell("X = 1", metadata={"tags": ["parameters"]}))
    assert check_notebook(path) == ["cell 0 is tagged 'parameters' but is a markdown cell"]


# --- running -----------------------------------------------------------------------------------


def test_unknown_kernel_falls_back_with_a_warning() -> None:
    with pytest.warns(KernelFallbackWarning, match="ipykernel install --sys-prefix --name nope"):
        assert resolve_kernel("nope-no-such-kernel") == notebooks.FALLBACK_KERNEL


def test_registered_kernel_is_kept() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_kernel(notebooks.FALLBACK_KERNEL) == notebooks.FALLBACK_KERNEL


def test_unknown_parameter_is_refused(make_notebook, tmp_path: Path) -> None:
    path = make_notebook(parameters_cell("X = 1"))
    with pytest.raises(ValueError, match="no parameter.* Y; its parameters are: X"):
        run_notebook(path, tmp_path / "out", {"Y": 2})


def test_run_all_refuses_unknown_stems(make_notebook, tmp_path: Path) -> None:
    make_notebook(parameters_cell("X = 1"), name="10_a.ipynb")
    with pytest.raises(ValueError, match="unknown notebook.* 20_b; available: 10_a"):
        run_all(tmp_path / "out", {"20_b": {"X": 2}}, notebooks_dir=tmp_path)
    with pytest.raises(ValueError, match="--only names unknown"):
        run_all(tmp_path / "out", only=["20_b"], notebooks_dir=tmp_path)


def test_check_command_exit_status(make_notebook, tmp_path: Path, capsys) -> None:
    make_notebook(parameters_cell("X = 1"), name="10_a.ipynb")
    assert notebooks.main(["--check", "--dir", str(tmp_path)]) == 0
    make_notebook(parameters_cell("x = 1"), name="20_b.ipynb")
    assert notebooks.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "20_b.ipynb: parameters cell 0, line 1: 'x' is not UPPER_CASE" in capsys.readouterr().out


def test_command_with_no_notebooks_does_nothing(tmp_path: Path) -> None:
    assert notebooks.main(["--out", str(tmp_path / "out"), "--dir", str(tmp_path)]) == 0
    assert not (tmp_path / "out").exists()


@pytest.mark.notebook
def test_run_notebook_injects_parameters(make_notebook, tmp_path: Path) -> None:
    path = make_notebook(
        parameters_cell("X = 1"),
        new_code_cell("from pathlib import Path\nPath('x.txt').write_text(str(X * 2))"),
        name="10_tiny.ipynb",
    )
    work = tmp_path / "work"
    work.mkdir()
    output = run_notebook(path, tmp_path / "out", {"X": 3}, cwd=work)
    assert (work / "x.txt").read_text() == "6"
    assert output == tmp_path / "out" / "10_tiny.ipynb"
    executed = nbformat.read(output, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "X = 3" in injected[0].source
    assert check_notebook(path) == [], "the source notebook is left untouched"
