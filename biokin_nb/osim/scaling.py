"""OpenSim's own scaling: apply per-body scale factors with ``Model::scale`` and write .osim."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from biokin_nb.osim._opensim import opensim


def opensim_model(path: str | Path) -> Any:
    """Load an ``opensim.Model`` and initialize it (clear error when the file is missing)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no OpenSim model at {path} (give the path of a .osim file)")
    model = opensim().Model(str(path))
    model.initSystem()
    return model


def scale_opensim_model(
    model: Any, scales: np.ndarray, preserve_mass_distribution: bool = True
) -> Any:
    """Scale ``model`` in place with OpenSim's ``Model::scale`` and re-initialize it.

    Args:
        model: an ``opensim.Model`` (its body order is the order of ``scales``).
        scales: (B, 3) scale factors per body, in ``model.getBodySet()`` order.
    """
    osim = opensim()
    scales = np.asarray(scales, dtype=np.float64)
    n_bodies = model.getBodySet().getSize()
    if scales.shape != (n_bodies, 3):
        raise ValueError(f"scales must have shape ({n_bodies}, 3); got {scales.shape}")
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError("scale factors must be finite and > 0")
    scale_set = osim.ScaleSet()
    for body, factors in zip(model.getBodySet(), scales, strict=True):
        scale = osim.Scale()
        scale.setSegmentName(body.getName())
        scale.setScaleFactors(osim.Vec3(*map(float, factors)))
        scale.setApply(True)
        scale_set.cloneAndAppend(scale)
    state = model.initSystem()
    model.scale(state, scale_set, preserve_mass_distribution)
    model.initSystem()
    return model


def write_scaled_osim(
    source: str | Path, scales: np.ndarray, out: str | Path, name: str | None = None
) -> Path:
    """Write ``source`` scaled by ``scales`` (B, 3) to ``out`` (atomic); returns ``out``."""
    model = scale_opensim_model(opensim_model(source), scales)
    if name:
        model.setName(name)
    return print_model(model, out)


def print_model(model: Any, out: str | Path) -> Path:
    """Write an ``opensim.Model`` to ``out`` atomically (a temp file then a rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".osim", dir=out.parent)
    os.close(fd)
    try:
        model.printToXML(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out
