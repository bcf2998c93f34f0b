"""Coordinate sequences as figures: angle plots with range-of-motion bands, error summaries.

Conventions, once for the module:

- A *sequence* is a :class:`~biokin_nb.osim.coordinates.Motion` (``time`` (T,) s, ``q``
  (T, C) rad / m), a pair ``(time, q)``, or a bare ``q`` array (T, C) in the model's
  coordinate order (numpy or torch). A bare array takes the ``time`` argument, else the time
  of the first timed sequence of the same length, else frame numbers (the x axis then
  says "frame").
- Sequences are passed as ``{method name: sequence}``; each method keeps one colour
  (:func:`method_colours`) in every subplot and every figure of this package.
- Rotational coordinates are plotted in degrees, translational ones in metres; coupled
  ones (``knee_angle_r_beta``) in the model's own unit, as OpenSim's ``.mot`` keeps them.
- Names may be coordinate names or joint names (a joint stands for its coordinates).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from biokin_nb.metrics import mae_deg
from biokin_nb.osim.coordinates import Motion
from biokin_nb.osim.model import KinematicModel

SequenceLike = Motion | tuple[Any, Any] | Any
PALETTE: tuple[str, ...] = tuple(dict.fromkeys(qualitative.Plotly + qualitative.Dark24))
ROM_NAME = "rom:{}"  # name of the range-of-motion band shape of a coordinate
CURSOR_NAME = "time_cursor"  # name of the vertical time-line shapes
ROM_ZOOM_LIMIT = 5.0  # the y axis shows the whole ROM when it spans at most this x the data
SUBPLOT_HEIGHT, ROW_GAP = 260, 80  # px per subplot row, px between rows
ROM_STYLE = {"fillcolor": "rgba(44, 160, 44, 0.15)", "line_width": 0, "layer": "below"}

__all__ = [
    "CURSOR_NAME",
    "PALETTE",
    "ROM_NAME",
    "angle_figure",
    "as_motion",
    "as_motions",
    "error_summary_figure",
    "error_table",
    "method_colours",
    "resolve_coordinates",
    "sequence_time",
    "set_time_cursor",
]


# --------------------------------------------------------------------------- inputs


def method_colours(
    names: Sequence[str], colours: Mapping[str, str] | None = None
) -> dict[str, str]:
    """One colour per name: ``colours[name]`` where given, else the next free palette colour."""
    given = dict(colours or {})
    free = [c for c in PALETTE if c not in given.values()] or list(PALETTE)
    out, k = {}, 0
    for name in names:
        if name in given:
            out[name] = given[name]
        else:
            out[name], k = free[k % len(free)], k + 1
    return out


def resolve_coordinates(model: KinematicModel, names: Sequence[str] | str) -> list[str]:
    """Coordinate names of ``names`` (coordinates, or joints standing for their coordinates).

    Raises:
        KeyError: one error listing every unknown name with its closest matches.
    """
    names = [names] if isinstance(names, str) else list(names)
    by_joint = {j: [c.name for c in model.coordinates if c.joint == j] for j in model.joint_names}
    out, unknown = [], []
    for name in names:
        if name in model.coordinate_names:
            out.append(name)
        elif by_joint.get(name):
            out.extend(by_joint[name])
        else:
            unknown.append(name)
    if unknown:
        raise KeyError(_unknown_message(model, unknown, list(by_joint)))
    return list(dict.fromkeys(out))


def _unknown_message(model: KinematicModel, unknown: list[str], joints: list[str]) -> str:
    known = model.coordinate_names + joints
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        parts.append(f"{name!r} (did you mean {', '.join(close)}?)" if close else repr(name))
    return (
        f"model {model.name!r} has no coordinate or joint {', '.join(parts)}; "
        "use names from model.coordinate_names or model.joint_names"
    )


def _numpy(x: Any) -> np.ndarray:
    """numpy array or torch tensor (any device) -> float64 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def sequence_time(sequences: Mapping[str, SequenceLike], time: Any = None) -> np.ndarray | None:
    """(T,) s: ``time`` if given, else the time of the first Motion or ``(time, q)`` pair."""
    if time is not None:
        return _numpy(time)
    for seq in sequences.values():
        if isinstance(seq, Motion):
            return seq.time
        if isinstance(seq, tuple):
            return _numpy(seq[0])
    return None


def as_motion(model: KinematicModel, seq: SequenceLike, time: Any = None) -> Motion:
    """A sequence as a Motion in the model's coordinate order.

    Args:
        seq: Motion (reordered by name), ``(time, q)`` pair or ``q`` (T, C) rad / m.
        time: (T,) s for a bare ``q``; frame numbers 0..T-1 when None.

    Raises:
        KeyError: a Motion lacks coordinates of the model.
        ValueError: ``q`` is not (T, C) with C the model's coordinate count.
    """
    if isinstance(seq, Motion):
        return _reorder(model, seq)
    if isinstance(seq, tuple):
        time, seq = seq
    q = _numpy(seq)
    if q.ndim != 2 or q.shape[1] != model.n_coordinates:
        raise ValueError(
            f"coordinates must have shape (T, {model.n_coordinates}) for model "
            f"{model.name!r}; got {q.shape}"
        )
    t = np.arange(len(q), dtype=np.float64) if time is None else _numpy(time)
    return Motion(t, q, list(model.coordinate_names))


def _reorder(model: KinematicModel, motion: Motion) -> Motion:
    if motion.coordinate_names == model.coordinate_names:
        return motion
    missing = [n for n in model.coordinate_names if n not in motion.coordinate_names]
    if missing:
        raise KeyError(
            f"the motion lacks coordinates of model {model.name!r}: {', '.join(missing)}; "
            "read it with biokin_nb.osim.coordinates.read_motion(model, path)"
        )
    cols = [motion.coordinate_names.index(n) for n in model.coordinate_names]
    return Motion(motion.time, motion.q[:, cols], list(model.coordinate_names))


def as_motions(
    model: KinematicModel, sequences: Mapping[str, SequenceLike], time: Any = None
) -> dict[str, Motion]:
    """``{name: Motion}``; bare arrays get :func:`sequence_time` when lengths agree.

    Raises:
        ValueError: a bare array whose length matches no available time (pass ``time=``).
    """
    if not sequences:
        raise ValueError("no sequences given: pass {method name: Motion or (T, C) array}")
    common = sequence_time(sequences, time)
    out = {}
    for name, seq in sequences.items():
        bare = not isinstance(seq, Motion | tuple)
        if bare and common is not None and len(common) != len(_numpy(seq)):
            raise ValueError(
                f"sequence {name!r} has {len(_numpy(seq))} frames but the time has "
                f"{len(common)}; pass it as a Motion or a (time, q) pair"
            )
        out[name] = as_motion(model, seq, common if bare else None)
    return out


# --------------------------------------------------------------------------- units


def _unit(model: KinematicModel, index: int) -> tuple[str, float]:
    """(y-axis title, factor from model units) of coordinate ``index``."""
    motion = model.coordinates[index].motion
    if motion == "rotational":
        return "angle (deg)", math.degrees(1.0)
    if motion == "translational":
        return "translation (m)", 1.0
    return "coupled value (model units)", 1.0


def _y_range(values: np.ndarray, rom: np.ndarray | None) -> list[float]:
    """y-axis limits: the data, and the ROM too unless it would squash the data."""
    finite = values[np.isfinite(values)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    span = hi - lo
    if rom is not None and rom[1] - rom[0] <= ROM_ZOOM_LIMIT * max(span, 1e-9):
        lo, hi = min(lo, rom[0]), max(hi, rom[1])
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
    return [float(lo - pad), float(hi + pad)]


# --------------------------------------------------------------------------- angle figure


def angle_figure(
    model: KinematicModel,
    sequences: Mapping[str, SequenceLike],
    coordinates: Sequence[str] | str,
    *,
    rom: bool = True,
    time: Any = None,
    colours: Mapping[str, str] | None = None,
    cursor_time: float | None = None,
    ncols: int = 3,
    title: str | None = None,
) -> go.Figure:
    """Per-coordinate curves of several methods, with each coordinate's range of motion.

    Args:
        sequences: ``{method: sequence}`` (see the module docstring); time in s.
        coordinates: coordinate or joint names, one subplot per coordinate.
        rom: shade the model's range of motion (deg or m), a shape named ``rom:<name>``.
        cursor_time: draw a vertical time line at this time (s), see :func:`set_time_cursor`.
        ncols: subplots per row.

    Returns:
        A figure with one line trace per (coordinate, method); one legend entry per method.
    """
    names = resolve_coordinates(model, coordinates)
    motions = as_motions(model, sequences, time)
    palette = method_colours(list(motions), colours)
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    height = max(320, SUBPLOT_HEIGHT * nrows)
    fig = make_subplots(
        nrows,
        ncols,
        subplot_titles=names,
        vertical_spacing=ROW_GAP / height,
        horizontal_spacing=0.09,
    )
    timed = sequence_time(sequences, time) is not None
    for k, name in enumerate(names):
        row, col = k // ncols + 1, k % ncols + 1
        bottom = k + ncols >= len(names)
        _add_coordinate(fig, model, name, motions, palette, (row, col), first=k == 0, rom=rom)
        fig.update_xaxes(
            title_text=("time (s)" if timed else "frame") if bottom else None, row=row, col=col
        )
    fig.update_layout(
        title=title or f"Coordinates of {model.name}" + (" (shaded: range of motion)" * rom),
        height=height,
        legend_title_text="method",
        template="plotly_white",
    )
    if cursor_time is not None:
        set_time_cursor(fig, cursor_time)
    return fig


def _add_coordinate(
    fig: go.Figure,
    model: KinematicModel,
    name: str,
    motions: Mapping[str, Motion],
    palette: Mapping[str, str],
    cell: tuple[int, int],
    *,
    first: bool,
    rom: bool,
) -> None:
    """The method curves, ROM band and y axis of one coordinate's subplot."""
    index = model.coordinate_index(name)
    label, factor = _unit(model, index)
    row, col = cell
    for method, motion in motions.items():
        trace = go.Scatter(
            x=motion.time,
            y=motion.q[:, index] * factor,
            name=method,
            legendgroup=method,
            showlegend=first,
            mode="lines",
            line={"color": palette[method], "width": 2},
        )
        fig.add_trace(trace, row=row, col=col)
    band = [float(v) for v in model.ranges[index] * factor]
    if rom:
        fig.add_hrect(
            y0=band[0], y1=band[1], name=ROM_NAME.format(name), row=row, col=col, **ROM_STYLE
        )
    values = np.concatenate([m.q[:, index] * factor for m in motions.values()])
    fig.update_yaxes(
        title_text=label,
        range=_y_range(values, np.asarray(band) if rom else None),
        row=row,
        col=col,
    )


def set_time_cursor(fig: go.Figure, t: float) -> go.Figure:
    """Move (or add) the vertical time line of every subplot with data to ``t`` (s).

    The lines are shapes named :data:`CURSOR_NAME`; returns ``fig`` (changed in place).
    """
    shapes = [s for s in fig.layout.shapes if s.name != CURSOR_NAME]
    axes = dict.fromkeys((tr.xaxis or "x", tr.yaxis or "y") for tr in fig.data)
    line = {"color": "black", "width": 1.5, "dash": "dot"}
    for xref, yref in axes:
        shapes.append(
            go.layout.Shape(
                type="line",
                x0=t,
                x1=t,
                xref=xref,
                y0=0,
                y1=1,
                yref=f"{yref} domain",
                line=line,
                name=CURSOR_NAME,
            )
        )
    fig.layout.shapes = shapes
    return fig


# --------------------------------------------------------------------------- errors


def _free_rotations(model: KinematicModel) -> np.ndarray:
    """(C,) bool: rotational coordinates of joints to ground (their errors wrap at 180 deg)."""
    to_ground = {j.name for j in model.joints if j.parent_body < 0}
    return np.array([c.joint in to_ground for c in model.coordinates]) & model.rotational


def _error_coordinates(model: KinematicModel, coordinates: Sequence[str] | None) -> list[str]:
    if coordinates is None:
        mask = model.rotational & ~model.locked
        return [n for n, m in zip(model.coordinate_names, mask, strict=True) if m]
    names = resolve_coordinates(model, coordinates)
    linear = [n for n in names if not model.rotational[model.coordinate_index(n)]]
    if linear:
        raise ValueError(
            f"MAE in degrees is for rotational coordinates; {', '.join(linear)} are "
            "translational or coupled: leave them out"
        )
    return names


def error_table(
    model: KinematicModel,
    reference: SequenceLike,
    estimates: Mapping[str, SequenceLike],
    coordinates: Sequence[str] | None = None,
) -> pd.DataFrame:
    """MAE (deg) of each method against ``reference``, per rotational coordinate.

    Args:
        reference, estimates: sequences (T, C) rad of equal length.
        coordinates: rotational coordinate or joint names; default every unlocked
            rotational coordinate. Errors of ground-joint rotations wrap at 180 deg.

    Returns:
        DataFrame, index ``coordinate``, one column per method, values in degrees
        (:func:`biokin_nb.metrics.mae_deg`).
    """
    names = _error_coordinates(model, coordinates)
    idx = [model.coordinate_index(n) for n in names]
    true = as_motion(model, reference).q[:, idx]
    periodic = _free_rotations(model)[idx]
    data = {m: mae_deg(as_motion(model, e).q[:, idx], true, periodic) for m, e in estimates.items()}
    table = pd.DataFrame(data, index=pd.Index(names, name="coordinate"))
    table.columns.name = "method"
    return table


def error_summary_figure(
    model: KinematicModel,
    reference: SequenceLike,
    estimates: Mapping[str, SequenceLike],
    coordinates: Sequence[str] | None = None,
    *,
    colours: Mapping[str, str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Grouped bars of :func:`error_table`: MAE (deg) per coordinate, one bar trace per method."""
    table = error_table(model, reference, estimates, coordinates)
    palette = method_colours(list(table.columns), colours)
    fig = go.Figure()
    for method in table.columns:
        fig.add_trace(
            go.Bar(
                x=list(table.index),
                y=table[method].to_numpy(),
                name=method,
                marker_color=palette[method],
            )
        )
    fig.update_layout(
        barmode="group",
        title=title or f"Joint angle error per coordinate ({model.name})",
        xaxis_title="coordinate",
        yaxis_title="MAE (deg)",
        legend_title_text="method",
    )
    return fig
