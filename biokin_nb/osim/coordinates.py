"""Coordinate sequences of a model and their ``.mot`` / ``.sto`` files.

OpenSim's convention, followed on read and write: with ``inDegrees=yes`` only
*rotational* coordinates are in degrees; translational ones are in metres and coupled
ones (``knee_angle_r_beta``) stay in radians, as OpenSim's IK tool writes them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from biokin_nb.osim.io import Table, read_table, write_table
from biokin_nb.osim.model import KinematicModel


@dataclass
class Motion:
    """A coordinate sequence: ``time`` (T,) s and ``q`` (T, C) rad / m in model order."""

    time: np.ndarray
    q: np.ndarray
    coordinate_names: list[str]

    def __post_init__(self) -> None:
        self.time = np.asarray(self.time, dtype=np.float64)
        self.q = np.asarray(self.q, dtype=np.float64)
        if self.q.shape != (len(self.time), len(self.coordinate_names)):
            raise ValueError(
                f"q must have shape (T, C) = ({len(self.time)}, {len(self.coordinate_names)}); "
                f"got {self.q.shape}"
            )

    @property
    def rate(self) -> float:
        """Sampling rate (Hz), from the median time step."""
        return float(1.0 / np.median(np.diff(self.time))) if len(self.time) > 1 else 0.0

    def column(self, name: str) -> np.ndarray:
        """(T,) one coordinate (rad / m)."""
        if name not in self.coordinate_names:
            raise KeyError(f"no coordinate {name!r} in this motion")
        return self.q[:, self.coordinate_names.index(name)]


def motion_from_table(
    model: KinematicModel,
    table: Table,
    *,
    missing: Literal["default", "error"] = "default",
    extra: Literal["error", "ignore"] = "error",
) -> Motion:
    """Coordinates of ``model`` from a table (SI units, model order).

    Args:
        missing: model coordinates absent from the table take their default value
            ("default", with a warning naming them) or raise ("error").
        extra: table columns that are not coordinates of the model raise ("error") or are
            dropped ("ignore").
    """
    names = model.coordinate_names
    extras = [c for c in table.columns if c not in names]
    if extras and extra == "error":
        raise KeyError(
            f"the table has columns that model {model.name!r} lacks: {', '.join(extras)} "
            "(pass extra='ignore' to drop them)"
        )
    absent = [n for n in names if n not in table.columns]
    if absent and missing == "error":
        raise KeyError(f"the table lacks coordinates of model {model.name!r}: {', '.join(absent)}")
    if absent:
        warnings.warn(
            f"coordinates not in the table take their defaults: {', '.join(absent)}",
            stacklevel=2,
        )
    q = np.tile(model.defaults, (len(table.time), 1))
    for i, name in enumerate(names):
        if name in table.columns:
            q[:, i] = table.column(name)
    if table.in_degrees:
        q[:, model.rotational] = np.deg2rad(q[:, model.rotational])
    return Motion(table.time.copy(), q, names)


def table_from_motion(model: KinematicModel, motion: Motion, in_degrees: bool = True) -> Table:
    """A ``.mot`` table of ``motion`` (rotational coordinates in degrees if ``in_degrees``)."""
    q = motion.q.copy()
    if in_degrees:
        q[:, model.rotational] = np.rad2deg(q[:, model.rotational])
    return Table(
        motion.time.copy(), list(model.coordinate_names), q, in_degrees, name="Coordinates"
    )


def read_motion(model: KinematicModel, path: str | Path, **kwargs) -> Motion:
    """Read a ``.mot`` / ``.sto`` of coordinates for ``model`` (see :func:`motion_from_table`)."""
    return motion_from_table(model, read_table(path), **kwargs)


def write_motion(
    model: KinematicModel, motion: Motion, path: str | Path, in_degrees: bool = True
) -> Path:
    """Write ``motion`` as a ``.mot`` that OpenSim reads; returns the path."""
    if motion.coordinate_names != model.coordinate_names:
        raise ValueError("the motion's coordinates are not in the model's order")
    write_table(path, table_from_motion(model, motion, in_degrees))
    return Path(path)
