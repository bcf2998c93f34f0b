"""Run and check the numbered notebooks.

The notebooks live in ``notebooks/`` as ``NN_name.ipynb`` (two digits, numbered with gaps)
and run in that order under papermill, with the repository root as working directory so that
relative paths such as ``data/`` and ``figures/`` work. Each notebook has exactly one code
cell tagged ``parameters`` holding ``NAME = value`` lines with UPPER_CASE names and primitive
values (bool, int, float, str, None); papermill injects overrides after it. Notebooks are
committed without outputs or execution counts.

Command line (what ``make notebooks`` and ``biokin notebooks`` call)::

    python -m biokin_nb.notebooks --out build/notebooks [--params params.yaml]
                                  [--only 10_skeleton_and_body] [--check]

``params.yaml`` maps a notebook stem to the parameters for that notebook.
"""

from __future__ import annotations

import argparse
import ast
import logging
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import nbformat
import yaml
from jupyter_client.kernelspec import KernelSpecManager

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
DEFAULT_KERNEL = "biokin"
FALLBACK_KERNEL = "python3"  # ipykernel's own spec: jupyter_client starts it with sys.executable
PARAMETERS_TAG = "parameters"
PRIMITIVE_TYPES = (bool, int, float, str, type(None))
_UPPER_CASE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_CLEAR_HINT = "clear it with `jupyter nbconvert --clear-output --inplace {path}`"
_NOT_A_LITERAL = object()

logger = logging.getLogger(__name__)


class KernelFallbackWarning(RuntimeWarning):
    """The requested Jupyter kernel is not registered; the current interpreter's is used."""


def notebook_paths(notebooks_dir: Path | str = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks ``NN_*.ipynb`` in ``notebooks_dir``, in run order."""
    return sorted(Path(notebooks_dir).glob(NOTEBOOK_GLOB))


# --- parameters cell -------------------------------------------------------------------------


def _parameter_cells(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    """(index, cell) of every cell tagged ``parameters``."""
    return [
        (index, cell)
        for index, cell in enumerate(nb.cells)
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])
    ]


def _assignment(node: ast.stmt) -> tuple[str, object]:
    """The (name, value) of one ``NAME = literal`` statement; ValueError says what is wrong."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target, value = node.target, node.value
    else:
        raise ValueError(f"line {node.lineno}: only `NAME = value` lines belong here")
    if not isinstance(target, ast.Name):
        raise ValueError(f"line {node.lineno}: assign to one plain name")
    if not _UPPER_CASE.match(target.id):
        raise ValueError(f"line {node.lineno}: {target.id!r} is not UPPER_CASE; rename it")
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError):
        literal = _NOT_A_LITERAL
    if not isinstance(literal, PRIMITIVE_TYPES):
        raise ValueError(
            f"line {node.lineno}: {target.id} is not a bool, int, float, str or None literal; "
            "compute derived values in a later cell"
        )
    return target.id, literal


def _parse_parameters(source: str) -> tuple[dict[str, object], list[str]]:
    """Parse a parameters cell's source into ({NAME: value}, problems)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return {}, [f"not plain Python (line {error.lineno}: {error.msg})"]
    values: dict[str, object] = {}
    problems: list[str] = []
    for node in tree.body:
        try:
            name, value = _assignment(node)
        except ValueError as error:
            problems.append(str(error))
        else:
            values[name] = value
    return values, problems


def parameters_of(path: Path | str) -> dict[str, object]:
    """The ``{NAME: default}`` of a notebook's ``parameters`` cell ({} when it has none).

    Raises ValueError when the notebook has several parameters cells or the cell holds
    anything but ``NAME = literal`` lines with UPPER_CASE names and primitive values.
    """
    cells = _parameter_cells(nbformat.read(path, as_version=4))
    if not cells:
        return {}
    if len(cells) > 1:
        raise ValueError(f"{path}: {len(cells)} cells are tagged 'parameters'; keep one")
    values, problems = _parse_parameters(cells[0][1].source)
    if problems:
        raise ValueError(f"{path}: bad parameters cell: " + "; ".join(problems))
    return values


# --- hygiene -----------------------------------------------------------------------------------


def _cell_problems(nb: nbformat.NotebookNode, path: Path) -> list[str]:
    """Outputs and execution counts left in code cells."""
    hint = _CLEAR_HINT.format(path=path)
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {index} has outputs; {hint}")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index} has an execution count; {hint}")
    return problems


def _parameters_cell_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Problems with the count, type and content of the ``parameters`` cell."""
    cells = _parameter_cells(nb)
    if len(cells) != 1:
        return [
            f"{len(cells)} cells are tagged 'parameters'; tag exactly one code cell "
            "(the one holding the UPPER_CASE parameters)"
        ]
    index, cell = cells[0]
    if cell.cell_type != "code":
        return [f"cell {index} is tagged 'parameters' but is a {cell.cell_type} cell"]
    _, problems = _parse_parameters(cell.source)
    return [f"parameters cell {index}, {problem}" for problem in problems]


def check_notebook(path: Path | str) -> list[str]:
    """Hygiene problems of a committed notebook; empty when it is clean.

    Checks: no outputs, no execution counts, exactly one code cell tagged ``parameters``,
    and that cell holds only ``NAME = literal`` lines with UPPER_CASE names and primitive
    values.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    return _cell_problems(nb, path) + _parameters_cell_problems(nb)


# --- running -----------------------------------------------------------------------------------


def resolve_kernel(kernel: str) -> str:
    """``kernel`` if it is a registered Jupyter kernel, else this interpreter's kernel (warns)."""
    if kernel in KernelSpecManager().find_kernel_specs():
        return kernel
    warnings.warn(
        f"Jupyter kernel {kernel!r} is not registered; running with {FALLBACK_KERNEL!r} "
        f"({sys.executable}) instead. Register it with "
        f"`python -m ipykernel install --sys-prefix --name {kernel}` (`make setup` does).",
        KernelFallbackWarning,
        stacklevel=2,
    )
    return FALLBACK_KERNEL


def _check_parameter_names(path: Path, parameters: Mapping[str, object]) -> None:
    """Raise ValueError naming any parameter the notebook's parameters cell does not define."""
    known = parameters_of(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(
            f"{path.name} has no parameter(s) {', '.join(unknown)}; "
            f"its parameters are: {', '.join(known) or 'none'}"
        )


def run_notebook(
    path: Path | str,
    out_dir: Path | str,
    parameters: Mapping[str, object] | None = None,
    kernel: str = DEFAULT_KERNEL,
    cwd: Path | str | None = None,
    *,
    progress_bar: bool = False,
) -> Path:
    """Execute one notebook with papermill and return the path of the executed copy.

    The copy is ``out_dir / path.name``. ``parameters`` override the notebook's parameters
    cell (every name must be defined there). The notebook runs in ``cwd`` (default: the
    repository root). Raises papermill's ``PapermillExecutionError`` when a cell fails; the
    executed copy then shows the traceback.
    """
    import papermill  # imported here: it takes a second and only running needs it

    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"notebook {path} not found; pass an existing .ipynb file")
    parameters = dict(parameters or {})
    if parameters:
        _check_parameter_names(path, parameters)
    out_dir = Path(out_dir).resolve()
    output = out_dir / path.name
    if output == path:
        raise ValueError(f"out_dir {out_dir} holds the source notebook; pick another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(path),
        str(output),
        parameters=parameters,
        kernel_name=resolve_kernel(kernel),
        language="python",
        cwd=str(cwd if cwd is not None else REPO_ROOT),
        progress_bar=progress_bar,
    )
    return output


def _check_stems(paths: Sequence[Path], stems: Sequence[str], what: str) -> None:
    """Raise ValueError if some of ``stems`` name no notebook in ``paths``."""
    unknown = sorted(set(stems) - {path.stem for path in paths})
    if unknown:
        available = ", ".join(path.stem for path in paths) or "none"
        raise ValueError(
            f"{what} names unknown notebook(s) {', '.join(unknown)}; available: {available}"
        )


def _selected(paths: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """The notebooks among ``paths`` whose stems are in ``only`` (all when None)."""
    if only is None:
        return list(paths)
    _check_stems(paths, only, "--only")
    return [path for path in paths if path.stem in only]


def run_all(
    out_dir: Path | str,
    parameters_by_notebook: Mapping[str, Mapping[str, object]] | None = None,
    *,
    only: Sequence[str] | None = None,
    notebooks_dir: Path | str = NOTEBOOKS_DIR,
    kernel: str = DEFAULT_KERNEL,
    progress_bar: bool = False,
) -> list[Path]:
    """Run the numbered notebooks in order; return the executed copies' paths.

    ``parameters_by_notebook`` maps a notebook stem (``"10_skeleton_and_body"``) to its
    parameters; ``only`` restricts the run to those stems. Stops at the first failing notebook.
    """
    paths = notebook_paths(notebooks_dir)
    parameters_by_notebook = parameters_by_notebook or {}
    _check_stems(paths, list(parameters_by_notebook), "the parameters")
    outputs = []
    for path in _selected(paths, only):
        logger.info("running %s", path.name)
        parameters = parameters_by_notebook.get(path.stem)
        try:
            outputs.append(
                run_notebook(path, out_dir, parameters, kernel, progress_bar=progress_bar)
            )
        except Exception as error:
            error.add_note(f"while running {path}; executed copy: {Path(out_dir) / path.name}")
            raise
    return outputs


def load_params(path: Path | str) -> dict[str, dict[str, object]]:
    """Read a params YAML file mapping notebook stem -> {NAME: value}."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(
            f"{path}: expected a mapping of notebook stem to a mapping of parameters, e.g.\n"
            "10_skeleton_and_body:\n  N_FRAMES: 4"
        )
    return {str(stem): dict(values) for stem, values in data.items()}


# --- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the notebook runner's options to ``parser`` (shared with ``biokin notebooks``)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("build/notebooks"),
        help="folder for the executed copies (default: build/notebooks)",
    )
    parser.add_argument(
        "--params", type=Path, help="YAML file mapping notebook stem to its parameters"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="STEM",
        help="run only this notebook (repeatable), e.g. 10_skeleton_and_body",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check notebook hygiene instead of running; non-zero on problems",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=NOTEBOOKS_DIR,
        help="folder of NN_*.ipynb notebooks (default: the repo's notebooks/)",
    )
    parser.add_argument(
        "--kernel", default=DEFAULT_KERNEL, help=f"Jupyter kernel name (default: {DEFAULT_KERNEL})"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _check_all(paths: Sequence[Path]) -> int:
    """Print each notebook's hygiene problems; 1 if there are any, else 0."""
    status = 0
    for path in paths:
        for problem in check_notebook(path):
            print(f"{path}: {problem}")
            status = 1
    print(f"checked {len(paths)} notebook(s): {'problems found' if status else 'clean'}")
    return status


def _run(args: argparse.Namespace, paths: Sequence[Path]) -> int:
    """Run ``paths`` as the command line says; 1 when a notebook fails."""
    from papermill.exceptions import PapermillExecutionError

    params = load_params(args.params) if args.params else None
    try:
        outputs = run_all(
            args.out,
            params,
            only=[path.stem for path in paths],
            notebooks_dir=args.dir,
            kernel=args.kernel,
            progress_bar=not args.no_progress,
        )
    except PapermillExecutionError as error:
        notes = "\n".join(getattr(error, "__notes__", []))
        print(f"notebook failed, {error.ename}: {error.evalue}\n{notes}", file=sys.stderr)
        return 1
    print(f"ran {len(outputs)} notebook(s); executed copies in {args.out}")
    return 0


def run_from_args(args: argparse.Namespace) -> int:
    """Run or check the notebooks as the parsed command line says; return the exit status."""
    logging.getLogger("papermill").setLevel(logging.WARNING)  # its per-run INFO lines are noise
    try:
        paths = _selected(notebook_paths(args.dir), args.only)
        if not paths:
            print(f"no notebooks matching {NOTEBOOK_GLOB} in {args.dir}; nothing to do")
            return 0
        return _check_all(paths) if args.check else _run(args, paths)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m biokin_nb.notebooks``: run or check the numbered notebooks."""
    parser = argparse.ArgumentParser(
        prog="python -m biokin_nb.notebooks", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_from_args(args)


if __name__ == "__main__":
    raise SystemExit(main())
