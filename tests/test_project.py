"""Project hygiene: pyproject.toml and environment.yml agree, entry points and layout exist."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from biokin_nb import cli

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((REPO / "environment.yml").read_text())
LAYOUT = ("biokin_nb", "notebooks", "data", "figures", "tests", "bench")


def requirements(lines: list[str]) -> dict[str, Requirement]:
    """Requirement strings by canonical package name."""
    parsed = [Requirement(line) for line in lines]
    return {canonicalize_name(req.name): req for req in parsed}


def conda_dependencies() -> list[str]:
    """The conda (non-pip) dependency strings of environment.yml."""
    return [dep for dep in ENVIRONMENT["dependencies"] if isinstance(dep, str)]


def pip_dependencies() -> list[str]:
    """The pip section of environment.yml."""
    (pip,) = [dep["pip"] for dep in ENVIRONMENT["dependencies"] if isinstance(dep, dict)]
    return pip


def fenced_blocks(markdown: str) -> list[list[str]]:
    """The lines of each ``` fenced block, in order."""
    return [
        block.splitlines() for block in re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)
    ]


def commands(lines: list[str]) -> list[str]:
    """Shell commands among ``lines``: not blank, not comments, prompt ``$ `` removed."""
    stripped = (line.strip().removeprefix("$ ").strip() for line in lines)
    return [line for line in stripped if line and not line.startswith("#")]


def test_environment_pip_section_matches_pyproject() -> None:
    expected = requirements(PYPROJECT["project"]["dependencies"])
    actual = requirements(pip_dependencies())
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    differ = sorted(name for name in set(expected) & set(actual) if expected[name] != actual[name])
    assert not (missing or extra or differ), (
        f"environment.yml pip section vs pyproject.toml: missing {missing}, extra {extra}, "
        f"different specifiers {[(str(expected[n]), str(actual[n])) for n in differ]}"
    )


def test_environment_pins_python_311() -> None:
    pins = [dep for dep in conda_dependencies() if re.match(r"python\b", dep)]
    assert len(pins) == 1 and re.fullmatch(r"python\s*==?\s*3\.11(\.[0-9*]+)?", pins[0]), pins


@pytest.mark.parametrize("source", ["pyproject.toml", "environment.yml"])
def test_torch_specifier(source: str) -> None:
    lines = (
        PYPROJECT["project"]["dependencies"] if source == "pyproject.toml" else pip_dependencies()
    )
    specifier: SpecifierSet = requirements(lines)["torch"].specifier
    assert specifier.contains("2.13.0")
    assert specifier.contains("2.13.0+cpu")
    for above in ("2.14.1.post1", "2.14.2", "2.15.0.dev20260101", "2.15.0", "3.0.0"):
        assert not specifier.contains(above, prereleases=True), f"{source} admits torch {above}"


def test_readme_starts_with_make_notebooks_and_make_test() -> None:
    readme = REPO / "README.md"
    if not readme.is_file():
        pytest.skip("README.md is not written yet")
    blocks = fenced_blocks(readme.read_text())
    assert blocks, "README.md needs a fenced block starting with `make notebooks`, `make test`"
    without_comments = [c.split("#")[0].strip() for c in commands(blocks[0])]
    assert without_comments[:2] == ["make notebooks", "make test"]


def test_ci_runs_make_test() -> None:
    script = REPO / ".ci" / "run"
    assert os.access(script, os.X_OK), ".ci/run must be executable (chmod +x .ci/run)"
    assert "make test" in commands(script.read_text().splitlines())


@pytest.mark.parametrize("folder", LAYOUT)
def test_design_layout_folder_exists(folder: str) -> None:
    assert (REPO / folder).is_dir(), f"DESIGN.md's layout has {folder}/; create it"


def test_biokin_script_points_at_cli_main() -> None:
    assert PYPROJECT["project"]["scripts"]["biokin"] == "biokin_nb.cli:main"


def test_cli_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "notebooks" in capsys.readouterr().out


def test_cli_notebooks_check_runs(tmp_path: Path) -> None:
    assert cli.main(["notebooks", "--check", "--dir", str(tmp_path)]) == 0
