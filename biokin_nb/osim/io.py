"""Read and write OpenSim text files: ``.mot`` / ``.sto`` tables and ``.trc`` markers.

The project's one file-IO module for OpenSim's text formats; it does not need ``opensim``.

Conventions:
    - Arrays are numpy float64. Times are in seconds; marker positions are in metres
      (converted from the ``.trc`` file's units on reading, to the requested units on
      writing). Table values are kept exactly as written in the file: a ``.mot`` with
      ``inDegrees=yes`` holds degrees and nothing here converts them.
    - Time must be finite and strictly increasing, as OpenSim's tables require.
    - Numbers are written with ``repr`` (the shortest text that reads back to the same
      float64), so a write then read round trip is exact.
    - Bad input raises one exception naming the file, the line (1-based) and the fix.
    - Writers are atomic (:func:`biokin_nb._files.atomic_write`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biokin_nb._files import atomic_write

PathLike = str | os.PathLike[str]

_RESERVED_KEYS = ("version", "nRows", "nColumns", "inDegrees")
_OLD_MOT_KEYS = {"datacolumns": "nColumns", "datarows": "nRows"}
_TRUE, _FALSE = ("yes", "true", "1"), ("no", "false", "0")
_UNITS_PER_METRE = {"m": 1.0, "cm": 100.0, "mm": 1000.0}
_TRC_KEYS = (
    "DataRate",
    "CameraRate",
    "NumFrames",
    "NumMarkers",
    "Units",
    "OrigDataRate",
    "OrigDataStartFrame",
    "OrigNumFrames",
)


# --------------------------------------------------------------------------- data classes


@dataclass
class Table:
    """An OpenSim ``.mot`` / ``.sto`` file.

    Attributes:
        time: ``(T,)`` seconds, strictly increasing.
        columns: the ``N`` column labels, without ``"time"``.
        values: ``(T, N)`` the numbers as written in the file (no unit conversion).
        in_degrees: the header's ``inDegrees`` flag (``False`` when absent).
        name: the first header line (OpenSim's table name).
        header: the other ``key=value`` header lines, in file order.
    """

    time: np.ndarray
    columns: list[str]
    values: np.ndarray
    in_degrees: bool
    name: str = ""
    header: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.time = np.asarray(self.time, dtype=np.float64)
        self.values = np.asarray(self.values, dtype=np.float64)
        self.columns = list(self.columns)
        _check_table(self)

    def column(self, name: str) -> np.ndarray:
        """The ``(T,)`` values of column ``name``; ``KeyError`` with close matches if absent."""
        return self.values[:, _index(name, self.columns, "column")]


@dataclass
class MarkerTrajectories:
    """A ``.trc`` file: marker positions over time.

    Attributes:
        time: ``(T,)`` seconds, strictly increasing.
        names: the ``M`` marker names.
        positions: ``(T, M, 3)`` metres, in the file's lab frame; NaN where a marker is
            missing.
        rate: the ``DataRate`` in Hz.
        units: units of the source file (``"mm"``, ``"cm"`` or ``"m"``); ``positions``
            are always metres.
    """

    time: np.ndarray
    names: list[str]
    positions: np.ndarray
    rate: float
    units: str = "m"

    def __post_init__(self) -> None:
        self.time = np.asarray(self.time, dtype=np.float64)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.names = list(self.names)
        self.rate = float(self.rate)
        _check_markers(self)

    def marker(self, name: str) -> np.ndarray:
        """The ``(T, 3)`` positions (m) of marker ``name``; ``KeyError`` with close matches."""
        return self.positions[:, _index(name, self.names, "marker")]


# --------------------------------------------------------------------------- validation


def _index(name: str, names: Sequence[str], what: str) -> int:
    """Position of ``name`` in ``names``, or a ``KeyError`` that suggests close matches."""
    if name in names:
        return names.index(name)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"did you mean {close}?" if close else f"available: {list(names)[:20]}"
    raise KeyError(f"no {what} named {name!r}; {hint}")


def _check_time(time: np.ndarray) -> None:
    """``ValueError`` unless ``time`` is ``(T,)``, finite and strictly increasing."""
    if time.ndim != 1:
        raise ValueError(f"time must have shape (T,), got {time.shape}")
    bad = _first_bad_time(time)
    if bad is not None:
        raise ValueError(
            f"time[{bad}]: {_time_problem(time, bad)}; times must be finite and strictly "
            "increasing (sort the rows and drop duplicates)"
        )


def _first_bad_time(time: np.ndarray) -> int | None:
    """Index of the first time that is not finite or not after its predecessor, or None."""
    if time.size and not np.isfinite(time[0]):
        return 0
    bad = np.flatnonzero(~(np.diff(time) > 0) | ~np.isfinite(time[1:]))
    return int(bad[0]) + 1 if bad.size else None


def _time_problem(time: np.ndarray, bad: int) -> str:
    """What is wrong with ``time[bad]`` (see :func:`_first_bad_time`)."""
    if not np.isfinite(time[bad]):
        return f"time {float(time[bad])!r} is not a finite number"
    return f"time {float(time[bad])!r} is not after the previous time {float(time[bad - 1])!r}"


def _check_table(table: Table) -> None:
    """``ValueError`` unless the shapes of ``table`` agree: time (T,), values (T, N)."""
    _check_time(table.time)
    expected = (table.time.shape[0], len(table.columns))
    if table.values.shape != expected:
        raise ValueError(
            f"values must have shape (T, N) = {expected} for {expected[0]} times and "
            f"{expected[1]} columns, got {table.values.shape}; pass one label per column"
        )


def _check_markers(markers: MarkerTrajectories) -> None:
    """``ValueError`` unless time (T,), positions (T, M, 3), names (M), rate and units agree."""
    _check_time(markers.time)
    expected = (markers.time.shape[0], len(markers.names), 3)
    if markers.positions.shape != expected:
        raise ValueError(
            f"positions must have shape (T, M, 3) = {expected} for {expected[0]} times and "
            f"{expected[1]} marker names, got {markers.positions.shape}"
        )
    if not (np.isfinite(markers.rate) and markers.rate > 0):
        raise ValueError(f"rate must be a positive number of Hz, got {markers.rate!r}")
    _check_units(markers.units)


def _check_units(units: str) -> None:
    if units not in _UNITS_PER_METRE:
        raise ValueError(f"units must be one of {list(_UNITS_PER_METRE)}, got {units!r}")


def _check_labels(labels: Sequence[str], what: str, forbidden: str) -> None:
    """``ValueError`` if a label is empty or holds a character that would split it."""
    for label in labels:
        if not label or any(c in label for c in forbidden):
            raise ValueError(
                f"{what} {label!r} cannot be written: labels must be non-empty and contain "
                f"none of {forbidden!r}; rename it"
            )


# --------------------------------------------------------------------------- text helpers


def _read_lines(path: PathLike) -> list[str]:
    """The lines of a text file, or ``FileNotFoundError`` naming the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (resolved to {path.resolve()})")
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _where(path: PathLike, lineno: int) -> str:
    return f"{path}, line {lineno}"


def _floats(tokens: Sequence[str], path: PathLike, lineno: int) -> list[float]:
    """Tokens as floats (empty token -> NaN), or ``ValueError`` naming the bad token."""
    out = []
    for token in tokens:
        token = token.strip()
        try:
            out.append(float(token) if token else np.nan)
        except ValueError:
            raise ValueError(
                f"{_where(path, lineno)}: {token!r} is not a number; fix or remove the value"
            ) from None
    return out


def _check_rows_time(time: np.ndarray, linenos: list[int], path: PathLike) -> None:
    """Like :func:`_check_time`, with the message naming the file line."""
    bad = _first_bad_time(time)
    if bad is not None:
        raise ValueError(
            f"{_where(path, linenos[bad])}: {_time_problem(time, bad)}; times must be finite "
            "and strictly increasing (sort the rows and drop duplicates)"
        )


def _fmt(values: np.ndarray) -> str:
    """Tab-joined shortest round-trip text of 1-D ``values`` (``nan`` for NaN)."""
    return "\t".join(map(repr, values.tolist()))


# --------------------------------------------------------------------------- .mot / .sto


def read_table(path: PathLike) -> Table:
    """Read an OpenSim ``.mot`` or ``.sto`` file.

    Reads the OpenSim 4 format (name line, ``version=1``, ``nRows``, ``nColumns``,
    ``inDegrees``, ``endheader``), the files ``TimeSeriesTable`` writes, and the old
    ``.mot`` format (``name``, ``datacolumns``, ``datarows``, ``range`` lines). Columns are
    tab or whitespace separated. Header lines that are neither the name nor ``key=value``
    (free text) are skipped.

    Returns:
        A :class:`Table` with ``time`` (T,) s and ``values`` (T, N) as in the file.
    """
    lines = _read_lines(path)
    end = _find_endheader(lines, path)
    name, fields = _parse_table_header(lines[:end], path)
    in_degrees = _parse_bool(fields.pop("inDegrees", "no"), path, "inDegrees")
    sizes = {key: _parse_count(fields.pop(key, None), path, key) for key in ("nRows", "nColumns")}
    fields.pop("version", None)
    columns, time, values = _parse_table_body(lines, end + 1, path)
    _check_count(sizes["nColumns"], len(columns) + 1, "nColumns", "labels (with time)", path)
    _check_count(sizes["nRows"], len(time), "nRows", "data rows", path)
    return Table(time, columns, values, in_degrees, name, fields)


def _find_endheader(lines: list[str], path: PathLike) -> int:
    for i, line in enumerate(lines):
        if line.strip().lower() == "endheader":
            return i
    raise ValueError(
        f"{path}: no 'endheader' line; an OpenSim .mot/.sto header must end with a line "
        "'endheader' before the column labels"
    )


def _parse_table_header(lines: list[str], path: PathLike) -> tuple[str, dict[str, str]]:
    """The table name and the ``key=value`` fields of the header lines before endheader."""
    name, fields = "", {}
    for i, raw in enumerate(lines):
        line = raw.strip()
        words = line.split()
        if "=" in line:
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip()
        elif words and words[0].lower() in _OLD_MOT_KEYS:
            if len(words) != 2:
                raise ValueError(f"{_where(path, i + 1)}: expected '{words[0]} <count>'")
            fields[_OLD_MOT_KEYS[words[0].lower()]] = words[1]
        elif words and words[0].lower() == "name":
            name = line[len(words[0]) :].strip()
        elif i == 0:
            name = line
    return name, fields


def _parse_bool(text: str, path: PathLike, key: str) -> bool:
    if text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
    raise ValueError(f"{path}: header {key}={text!r} should be 'yes' or 'no'")


def _parse_count(text: str | None, path: PathLike, key: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{path}: header {key}={text!r} is not an integer") from None


def _check_count(stated: int | None, found: int, key: str, what: str, path: PathLike) -> None:
    if stated is not None and stated != found:
        raise ValueError(
            f"{path}: header says {key}={stated} but the file has {found} {what}; the file "
            f"may be truncated or the header wrong (fix {key} if the data are complete)"
        )


def _parse_table_body(
    lines: list[str], start: int, path: PathLike
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Column labels (without time), time (T,) and values (T, N) after endheader."""
    numbered = [(i + 1, line) for i, line in enumerate(lines) if i >= start and line.strip()]
    if not numbered:
        raise ValueError(f"{path}: no column labels after 'endheader'")
    label_lineno, label_line = numbered[0]
    labels = _split_labels(label_line)
    if labels[0].lower() != "time":
        raise ValueError(
            f"{_where(path, label_lineno)}: first column label is {labels[0]!r}; OpenSim "
            "tables need 'time' as the first column"
        )
    rows = [_table_row(line, len(labels), path, n) for n, line in numbered[1:]]
    data = np.array(rows, dtype=np.float64).reshape(len(rows), len(labels))
    _check_rows_time(data[:, 0], [n for n, _ in numbered[1:]], path)
    return labels[1:], data[:, 0].copy(), data[:, 1:].copy()


def _split_labels(line: str) -> list[str]:
    """Labels of a tab separated line (spaces allowed inside), else whitespace separated."""
    line = line.strip()
    return [s.strip() for s in line.split("\t")] if "\t" in line else line.split()


def _table_row(line: str, width: int, path: PathLike, lineno: int) -> list[float]:
    tokens = line.split()
    if len(tokens) != width:
        raise ValueError(
            f"{_where(path, lineno)}: {len(tokens)} values but {width} column labels "
            "(with time); every row needs one value per column"
        )
    return _floats(tokens, path, lineno)


def write_table(path: PathLike, table: Table, *, allow_nan: bool = False) -> None:
    """Write ``table`` as an OpenSim 4 ``.mot`` / ``.sto`` file, atomically.

    The format (name line, ``version=1``, ``nRows``, ``nColumns``, ``inDegrees``, the
    ``header`` items, ``endheader``, tab separated labels and rows) is read by
    ``opensim.Storage`` and ``opensim.TimeSeriesTable``. An empty ``name`` is written as
    the file's stem. Values are written as given (``values`` (T, N), no unit conversion).

    Args:
        path: destination, usually ending in ``.mot`` or ``.sto``.
        table: the data.
        allow_nan: write NaN / inf values. Off by default because ``opensim.Storage``
            (the OpenSim GUI, AnalyzeTool) silently stops reading at the first NaN row;
            ``opensim.TimeSeriesTable`` reads them.
    """
    _check_table(table)
    _check_table_text(table)
    if not allow_nan and not np.isfinite(table.values).all():
        row, col = np.argwhere(~np.isfinite(table.values))[0]
        raise ValueError(
            f"cannot write {path}: values[{row}, {col}] (column {table.columns[col]!r}) is "
            f"{float(table.values[row, col])!r}; opensim.Storage stops reading at a NaN row. Fill "
            "or drop the gaps, or pass allow_nan=True for opensim.TimeSeriesTable only"
        )
    with atomic_write(path) as file:
        file.write(_table_header(table, Path(path).stem))
        file.write("\t".join(["time", *table.columns]) + "\n")
        for t, row in zip(table.time, table.values, strict=True):
            file.write(f"{float(t)!r}\t{_fmt(row)}\n")


def _check_table_text(table: Table) -> None:
    """``ValueError`` if the name, header or labels would not read back as written."""
    _check_labels(table.columns, "column label", " \t\r\n")
    if any(c in table.name for c in "=\r\n"):
        raise ValueError(f"table name {table.name!r} must not contain '=' or line breaks")
    reserved = [key for key in table.header if key in _RESERVED_KEYS]
    if reserved:
        raise ValueError(
            f"header keys {reserved} are written from the table itself; remove them from "
            "Table.header (set Table.in_degrees for inDegrees)"
        )
    for key, value in table.header.items():
        if not key.strip() or any(c in key + value for c in "\r\n") or "=" in key:
            raise ValueError(f"header item {key!r}={value!r} must be one line with a key")


def _table_header(table: Table, default_name: str) -> str:
    lines = [
        table.name or default_name,
        "version=1",
        f"nRows={len(table.time)}",
        f"nColumns={len(table.columns) + 1}",
        f"inDegrees={'yes' if table.in_degrees else 'no'}",
        *(f"{key}={value}" for key, value in table.header.items()),
        "endheader",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- .trc


def read_trc(path: PathLike) -> MarkerTrajectories:
    """Read a ``.trc`` marker file (PathFileType 4, X/Y/Z) into metres.

    Handles ``mm`` / ``cm`` / ``m`` units, gaps written as empty fields (Vicon style) or
    ``NaN`` / ``nan`` (OpenSim style), trailing tabs, an optional ``Frame#`` column and a
    missing blank line after the ``X1 Y1 Z1`` line.

    Returns:
        :class:`MarkerTrajectories` with ``positions`` (T, M, 3) in metres, NaN in gaps.
    """
    lines = _read_lines(path)
    if len(lines) < 4 or not lines[0].startswith("PathFileType"):
        raise ValueError(
            f"{_where(path, 1)}: not a .trc file; the first line should start with "
            "'PathFileType' followed by three header lines"
        )
    meta = _parse_trc_meta(lines, path)
    names, offset = _parse_trc_labels(lines[3], path)
    n_markers = _parse_count(meta.get("NumMarkers"), path, "NumMarkers")
    _check_count(n_markers, len(names), "NumMarkers", "marker names", path)
    units = meta.get("Units", "")
    if units not in _UNITS_PER_METRE:
        raise ValueError(f"{_where(path, 3)}: Units={units!r}; expected one of mm, cm, m")
    time, flat = _parse_trc_rows(lines, offset, len(names), path)
    n_frames = _parse_count(meta.get("NumFrames"), path, "NumFrames")
    _check_count(n_frames, len(time), "NumFrames", "data rows", path)
    positions = flat.reshape(len(time), len(names), 3) / _UNITS_PER_METRE[units]
    return MarkerTrajectories(time, names, positions, _trc_rate(meta, path), units)


def _parse_trc_meta(lines: list[str], path: PathLike) -> dict[str, str]:
    """The ``DataRate ... OrigNumFrames`` keys of line 2 mapped to the values of line 3."""
    keys, values = lines[1].split(), lines[2].split()
    if len(keys) != len(values) or "DataRate" not in keys:
        raise ValueError(
            f"{_where(path, 2)}: malformed .trc header: line 2 must list keys including "
            f"DataRate and Units, line 3 one value per key (got {len(keys)} keys, "
            f"{len(values)} values)"
        )
    return dict(zip(keys, values, strict=True))


def _trc_rate(meta: dict[str, str], path: PathLike) -> float:
    try:
        return float(meta["DataRate"])
    except ValueError:
        raise ValueError(
            f"{_where(path, 3)}: DataRate={meta['DataRate']!r} is not a number"
        ) from None


def _parse_trc_labels(line: str, path: PathLike) -> tuple[list[str], int]:
    """Marker names of line 4 and the index of the first data column (2 with Frame#)."""
    labels = _split_labels(line)
    offset = 2 if labels and labels[0].lower() in ("frame#", "frame") else 1
    if len(labels) < offset or labels[offset - 1].lower() != "time":
        raise ValueError(
            f"{_where(path, 4)}: expected column labels 'Frame#', 'Time' then the marker "
            f"names, got {labels[:3]}"
        )
    return [label for label in labels[offset:] if label], offset


def _parse_trc_rows(
    lines: list[str], offset: int, n_markers: int, path: PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Time (T,) and file-unit coordinates (T, 3M) from the data lines (from line 5/6)."""
    start = 5 if len(lines) > 4 and "X1" in lines[4].split() else 4  # the X1 Y1 Z1 line
    numbered = [(i + 1, line) for i, line in enumerate(lines) if i >= start and line.strip()]
    width = offset + 3 * n_markers
    rows = [_trc_row(line, width, path, n) for n, line in numbered]
    data = np.array(rows, dtype=np.float64).reshape(len(rows), width)
    time = data[:, offset - 1].copy()
    _check_rows_time(time, [n for n, _ in numbered], path)
    return time, data[:, offset:].copy()


def _trc_row(line: str, width: int, path: PathLike, lineno: int) -> list[float]:
    """One data row: empty fields are gaps (NaN); extra fields must be empty (trailing tabs)."""
    fields = line.split("\t") if "\t" in line else line.split()
    if len(fields) < width or any(f.strip() for f in fields[width:]):
        raise ValueError(
            f"{_where(path, lineno)}: {len(fields)} fields but the header's markers need "
            f"{width} (frame, time and X/Y/Z per marker); write gaps as empty fields or NaN"
        )
    return _floats(fields[:width], path, lineno)


def write_trc(path: PathLike, markers: MarkerTrajectories, units: str = "mm") -> None:
    """Write ``markers`` as a ``.trc`` file (PathFileType 4, X/Y/Z), atomically.

    The header and rows follow OpenSim's own TRC writer, so ``opensim.TimeSeriesTableVec3``,
    ``opensim.MarkerData`` and the ``InverseKinematicsTool`` read it. Gaps (NaN) are
    written as ``nan``, which all of these read (empty fields are not read by
    ``TimeSeriesTableVec3`` at the end of a row).

    Args:
        path: destination, usually ending in ``.trc``.
        markers: positions (T, M, 3) in metres.
        units: units of the numbers in the file: ``"mm"`` (default), ``"cm"`` or ``"m"``.
    """
    _check_markers(markers)
    _check_units(units)
    _check_labels(markers.names, "marker name", "\t\r\n")
    coords = markers.positions.reshape(len(markers.time), -1) * _UNITS_PER_METRE[units]
    with atomic_write(path) as file:
        file.write(_trc_header(markers, units, Path(path).name))
        for i, (t, row) in enumerate(zip(markers.time, coords, strict=True)):
            file.write(f"{i + 1}\t{float(t)!r}\t{_fmt(row)}\n")


def _trc_header(markers: MarkerTrajectories, units: str, filename: str) -> str:
    n_frames, n_markers = len(markers.time), len(markers.names)
    rate = repr(markers.rate)
    values = (rate, rate, n_frames, n_markers, units, rate, 1, n_frames)
    xyz = (f"X{i}\tY{i}\tZ{i}" for i in range(1, n_markers + 1))
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{filename}",
        "\t".join(_TRC_KEYS),
        "\t".join(map(str, values)),
        "Frame#\tTime\t" + "".join(f"{name}\t\t\t" for name in markers.names),
        "\t".join(["", "", *xyz]),
        "",
    ]
    return "\n".join(lines) + "\n"
