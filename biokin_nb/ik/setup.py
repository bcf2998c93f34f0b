"""OpenSim IK setup files (``InverseKinematicsTool`` xml) as a typed :class:`IKSetup`.

Read with :func:`read_ik_setup`; file paths are resolved relative to the xml's folder, as
OpenSim resolves them. The setup's tasks become :func:`biokin_nb.ik.solve_ik` arguments
with :meth:`IKSetup.marker_weights` and :meth:`IKSetup.coordinate_targets`, which check the
names against the model (unknown names raise a ``KeyError`` listing close matches).
OpenSim's semantics: only *applied* tasks count; markers without a task are not fitted;
coordinate task values are in the model's units (rad, m); ``default_value`` means the
coordinate's default in the model.
"""

from __future__ import annotations

import difflib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from biokin_nb.osim.coordinates import read_motion
from biokin_nb.osim.io import MarkerTrajectories, read_trc
from biokin_nb.osim.model import KinematicModel
from biokin_nb.osim.reader import load_model

ValueType = Literal["default_value", "manual_value", "from_file"]
_VALUE_TYPES = ("default_value", "manual_value", "from_file")
_UNASSIGNED = ("", "unassigned")
_TIME_SLACK = 1e-9  # s: frames at the ends of the time range count


@dataclass(frozen=True)
class MarkerTask:
    """Fit marker ``name`` with ``weight`` (when ``apply``)."""

    name: str
    weight: float = 1.0
    apply: bool = True


@dataclass(frozen=True)
class CoordinateTask:
    """Pull coordinate ``name`` towards a value (rad / m) with ``weight`` (when ``apply``)."""

    name: str
    weight: float = 1.0
    value_type: ValueType = "default_value"
    value: float = 0.0
    apply: bool = True


@dataclass(frozen=True)
class IKSetup:
    """An ``InverseKinematicsTool`` setup. Paths are absolute (None where unassigned).

    Attributes:
        source: the xml file.
        name: the tool's name.
        model_file, marker_file, coordinate_file, output_motion_file: resolved paths.
        time_range: (start, end) s, or None for every frame.
        accuracy: OpenSim's convergence accuracy.
        constraint_weight: OpenSim's constraint weight (inf: constraints enforced).
        marker_tasks, coordinate_tasks: the task set, in file order.
    """

    source: Path
    name: str
    model_file: Path | None
    marker_file: Path | None
    coordinate_file: Path | None
    output_motion_file: Path | None
    time_range: tuple[float, float] | None
    accuracy: float
    constraint_weight: float
    marker_tasks: tuple[MarkerTask, ...]
    coordinate_tasks: tuple[CoordinateTask, ...]

    def load_model(self) -> KinematicModel:
        """The setup's model (``FileNotFoundError`` naming the path if it is missing)."""
        return load_model(_existing(self.model_file, "model_file", self.source))

    def load_markers(self, marker_file: str | Path | None = None) -> MarkerTrajectories:
        """The marker trajectories (the setup's ``marker_file`` unless given), cut to
        ``time_range``."""
        path = Path(marker_file) if marker_file else self.marker_file
        markers = read_trc(_existing(path, "marker_file", self.source))
        return select_time_range(markers, self.time_range)

    def marker_weights(self, model: KinematicModel) -> dict[str, float]:
        """``{marker: weight}`` of the applied marker tasks with a weight > 0.

        Raises:
            KeyError: tasks naming markers the model lacks (with close matches).
        """
        applied = [t for t in self.marker_tasks if t.apply and t.weight > 0]
        _check_names("marker", [t.name for t in applied], model.marker_names, self.source)
        return {t.name: t.weight for t in applied}

    def coordinate_targets(
        self, model: KinematicModel, time: np.ndarray
    ) -> dict[str, tuple[float, float | np.ndarray]]:
        """``{coordinate: (weight, target)}`` of the applied coordinate tasks, target in rad
        / m: the model default, the manual value, or ``coordinate_file`` interpolated at
        ``time`` (T,) s.

        Raises:
            KeyError: tasks naming coordinates the model lacks (with close matches).
            FileNotFoundError: a ``from_file`` task without a readable coordinate file.
        """
        applied = [t for t in self.coordinate_tasks if t.apply and t.weight > 0]
        names = [t.name for t in applied]
        _check_names("coordinate", names, model.coordinate_names, self.source)
        motion = None
        if any(t.value_type == "from_file" for t in applied):
            path = _existing(self.coordinate_file, "coordinate_file", self.source)
            motion = read_motion(model, path, extra="ignore")
        out: dict[str, tuple[float, float | np.ndarray]] = {}
        for task in applied:
            if task.value_type == "default_value":
                target = float(model.defaults[model.coordinate_index(task.name)])
            elif task.value_type == "manual_value":
                target = float(task.value)
            else:
                target = np.interp(time, motion.time, motion.column(task.name))
            out[task.name] = (float(task.weight), target)
        return out


def read_ik_setup(path: str | Path) -> IKSetup:
    """Read an OpenSim ``InverseKinematicsTool`` setup xml.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an IK setup, or a malformed value (the message names it).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no IK setup at {path} (give an InverseKinematicsTool .xml)")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path} is not valid xml: {err}") from None
    tool = root if root.tag == "InverseKinematicsTool" else root.find("InverseKinematicsTool")
    if tool is None:
        raise ValueError(f"{path} holds no <InverseKinematicsTool> (is it an IK setup file?)")
    folder = path.parent
    return IKSetup(
        source=path,
        name=tool.get("name", ""),
        model_file=_path(tool, "model_file", folder),
        marker_file=_path(tool, "marker_file", folder),
        coordinate_file=_path(tool, "coordinate_file", folder),
        output_motion_file=_path(tool, "output_motion_file", folder),
        time_range=_time_range(tool, path),
        accuracy=_number(tool, "accuracy", 1e-5, path),
        constraint_weight=_number(tool, "constraint_weight", float("inf"), path),
        marker_tasks=tuple(_marker_task(e, path) for e in tool.iter("IKMarkerTask")),
        coordinate_tasks=tuple(_coordinate_task(e, path) for e in tool.iter("IKCoordinateTask")),
    )


def select_time_range(
    markers: MarkerTrajectories, time_range: tuple[float, float] | None
) -> MarkerTrajectories:
    """The frames with ``start <= time <= end`` (all when ``time_range`` is None).

    Raises:
        ValueError: no frame in the range (the message gives the data's time span).
    """
    if time_range is None:
        return markers
    start, end = time_range
    keep = (markers.time >= start - _TIME_SLACK) & (markers.time <= end + _TIME_SLACK)
    if not keep.any():
        raise ValueError(
            f"no marker frame in the time range {start:g}..{end:g} s (the data spans "
            f"{markers.time[0]:g}..{markers.time[-1]:g} s); fix <time_range>"
        )
    return MarkerTrajectories(
        markers.time[keep], markers.names, markers.positions[keep], markers.rate, markers.units
    )


# --------------------------------------------------------------------------- parsing


def _text(element: ET.Element, tag: str) -> str | None:
    child = element.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _path(tool: ET.Element, tag: str, folder: Path) -> Path | None:
    text = _text(tool, tag)
    if text is None or text.lower() in _UNASSIGNED:
        return None
    return (folder / text.replace("\\", "/")).resolve()


def _number(element: ET.Element, tag: str, default: float, source: Path) -> float:
    text = _text(element, tag)
    if text is None or text == "":
        return default
    if text.lower() in ("inf", "infinity"):
        return float("inf")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{source}: <{tag}> must be a number, got {text!r}") from None


def _flag(element: ET.Element, tag: str, source: Path) -> bool:
    text = (_text(element, tag) or "true").lower()
    if text not in ("true", "false"):
        raise ValueError(f"{source}: <{tag}> must be true or false, got {text!r}")
    return text == "true"


def _time_range(tool: ET.Element, source: Path) -> tuple[float, float] | None:
    text = _text(tool, "time_range")
    if not text:
        return None
    try:
        start, end = (float(v) for v in text.split())
    except ValueError:
        raise ValueError(f"{source}: <time_range> must be two numbers, got {text!r}") from None
    if not end >= start:
        raise ValueError(f"{source}: <time_range> end {end} is before start {start}")
    return start, end


def _marker_task(element: ET.Element, source: Path) -> MarkerTask:
    name = element.get("name", "")
    return MarkerTask(name, _weight(element, name, source), _flag(element, "apply", source))


def _coordinate_task(element: ET.Element, source: Path) -> CoordinateTask:
    name = element.get("name", "")
    value_type = (_text(element, "value_type") or "default_value").lower()
    if value_type not in _VALUE_TYPES:
        raise ValueError(
            f"{source}: coordinate task {name!r} has value_type {value_type!r}; "
            f"use one of {', '.join(_VALUE_TYPES)}"
        )
    return CoordinateTask(
        name,
        _weight(element, name, source),
        value_type,  # type: ignore[arg-type]
        _number(element, "value", 0.0, source),
        _flag(element, "apply", source),
    )


def _weight(element: ET.Element, name: str, source: Path) -> float:
    weight = _number(element, "weight", 1.0, source)
    if not np.isfinite(weight) or weight < 0:
        raise ValueError(f"{source}: task {name!r} has weight {weight}; weights must be >= 0")
    return weight


def _check_names(kind: str, names: list[str], known: list[str], source: Path) -> None:
    unknown = [n for n in names if n not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    raise KeyError(
        f"{source.name}: IK tasks name {kind}s the model lacks: {'; '.join(hints)}. "
        f"Fix the names in the setup, or set <apply>false</apply> on those tasks"
    )


def _existing(path: Path | None, tag: str, source: Path) -> Path:
    if path is None:
        raise FileNotFoundError(f"{source} assigns no <{tag}>; set it in the xml or pass a path")
    if not path.is_file():
        raise FileNotFoundError(
            f"{tag} {path} (from {source.name}) does not exist; fix <{tag}> or pass the path"
        )
    return path
