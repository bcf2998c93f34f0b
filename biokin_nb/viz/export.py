"""Saving figures: PNG through kaleido when a Chromium is installed, self-contained HTML else.

Kaleido (plotly's static image export) drives a headless Chromium or Chrome; on Debian the
``chromium`` package provides one. Without kaleido or a browser, figures are written as
HTML with plotly.js inline, so they open offline. Each save prints exactly one line naming
the file, its format and why that format. Writes are atomic (no half file on interrupt).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Literal

import plotly.graph_objects as go

from biokin_nb._files import atomic_write

FIGURES_DIR = Path("figures")  # relative to the working directory (the repository root)
BROWSER_ENV = "BROWSER_PATH"  # the variable kaleido's browser finder (choreographer) reads
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
SUFFIXES = {".png": "png", ".html": "html"}

__all__ = [
    "FIGURES_DIR",
    "find_chromium",
    "kaleido_installed",
    "png_unavailable_reason",
    "save_figure",
]


def find_chromium() -> str | None:
    """Path of a Chromium / Chrome executable: ``$BROWSER_PATH``, else the first on PATH."""
    env = os.environ.get(BROWSER_ENV)
    if env and Path(env).is_file():
        return env
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def kaleido_installed() -> bool:
    """Whether the ``kaleido`` package (plotly's image export) can be imported."""
    return importlib.util.find_spec("kaleido") is not None


def png_unavailable_reason() -> str | None:
    """Why PNG export cannot run here (kaleido or a browser missing), or None when it can."""
    if not kaleido_installed():
        return "kaleido is not installed; pip install kaleido"
    if find_chromium() is None:
        return "no Chromium/Chrome found for kaleido; install the Debian package `chromium`"
    return None


def _target(path: str | os.PathLike[str], prefer: str) -> tuple[Path, str]:
    """(path without suffix, wanted format); a bare name goes to :data:`FIGURES_DIR`."""
    path = Path(path)
    if path.suffix.lower() in SUFFIXES:
        path, prefer = path.with_suffix(""), SUFFIXES[path.suffix.lower()]
    if prefer not in SUFFIXES.values():
        raise ValueError(f"prefer must be 'png' or 'html', got {prefer!r}")
    if not path.is_absolute() and path.parent == Path("."):
        path = FIGURES_DIR / path
    return path, prefer


def _write_html(fig: go.Figure, path: Path) -> Path:
    out = path.with_name(path.name + ".html")
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    with atomic_write(out, "w") as file:
        file.write(html)
    return out


def _write_png(fig: go.Figure, path: Path, width: int | None, height: int | None) -> Path:
    out = path.with_name(path.name + ".png")
    data = fig.to_image(format="png", width=width, height=height, scale=2)
    with atomic_write(out, "wb") as file:
        file.write(data)
    return out


def save_figure(
    fig: go.Figure,
    path: str | os.PathLike[str],
    *,
    prefer: Literal["png", "html"] = "png",
    width: int | None = None,
    height: int | None = None,
) -> Path:
    """Write ``fig`` as PNG (kaleido + Chromium) or as offline HTML; print one line saying which.

    Args:
        path: file path without suffix; a bare name (``"knee_angles"``) is written into
            ``figures/``. A ``.png`` / ``.html`` suffix is taken as ``prefer``.
        prefer: ``"png"`` (falls back to HTML when PNG export is unavailable or fails) or
            ``"html"``.
        width, height: PNG size in CSS pixels (rendered at 2x); default the figure's.

    Returns:
        The path written (``.png`` or ``.html``).
    """
    path, prefer = _target(path, prefer)
    path.parent.mkdir(parents=True, exist_ok=True)
    reason = "HTML was requested" if prefer == "html" else png_unavailable_reason()
    if reason is None:
        try:
            out = _write_png(fig, path, width, height)
        except Exception as error:  # kaleido's errors vary by version; reported below
            detail = " ".join(str(error).split())  # one line
            reason = f"PNG export failed ({type(error).__name__}: {detail})"
        else:
            print(f"saved {out} as PNG (kaleido with Chromium at {find_chromium()})")
            return out
    out = _write_html(fig, path)
    print(f"saved {out} as HTML with plotly.js inline, opens offline ({reason})")
    return out
