"""Baseline: OpenSim's own ``InverseKinematicsTool``, same inputs and result as ``solve_ik``.

The tool runs headless in a temporary folder (setup xml, marker and coordinate files,
results), with OpenSim's file log off, so nothing is written to the working directory.
The returned :class:`IKResult` holds the tool's ``.mot`` (read with ``read_motion``) and
the cost and marker distances of those coordinates under the same task weights, computed
with the project's kinematics (which agree with OpenSim to rounding). ``wall_time_s`` is
the time of ``InverseKinematicsTool.run()`` on a model loaded beforehand.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time as _time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from biokin_nb.ik.setup import CoordinateTask, IKSetup, MarkerTask, read_ik_setup
from biokin_nb.ik.setup import select_time_range as _select_time_range
from biokin_nb.ik.solver import CoordinateTasks, IKResult, ik_cost
from biokin_nb.osim._opensim import opensim
from biokin_nb.osim.coordinates import read_motion
from biokin_nb.osim.io import MarkerTrajectories, Table, read_trc, write_table, write_trc
from biokin_nb.osim.model import KinematicModel
from biokin_nb.osim.reader import load_model

_TIME_MATCH = 1e-6  # s


def run_opensim_ik(
    model: KinematicModel | str | Path,
    markers: MarkerTrajectories | str | Path,
    *,
    setup: IKSetup | str | Path | None = None,
    weights: Mapping[str, float] | None = None,
    coordinate_tasks: CoordinateTasks | None = None,
    time_range: tuple[float, float] | None = None,
    accuracy: float | None = None,
    constraint_weight: float | None = None,
) -> IKResult:
    """Run OpenSim's IK tool and return its solution as an :class:`IKResult`.

    Args:
        model: a model read with ``load_model`` (its ``source`` file is given to OpenSim)
            or the path of a ``.osim``.
        markers: marker trajectories or a ``.trc`` path.
        setup: an IK setup (or its xml path) for the tasks, time range, accuracy and
            constraint weight; the arguments below override it.
        weights: ``{marker: weight}`` (default: the setup's, else 1 for every marker that
            the model and the data share).
        coordinate_tasks: ``{coordinate: (weight, target rad / m, number or (T,))}``.
        time_range: (start, end) s (default: the setup's, else all frames).
        accuracy: OpenSim's accuracy (default: the setup's, else 1e-5).
        constraint_weight: default: the setup's, else infinity (constraints enforced).

    Raises:
        FileNotFoundError: a missing model or marker file.
        KeyError: task names the model lacks.
        RuntimeError: OpenSim's tool failed (its message is included).
    """
    model, model_file = _model_and_file(model)
    setup = read_ik_setup(setup) if isinstance(setup, str | Path) else setup
    trajectories = _trajectories(markers)
    time_range = time_range or (setup.time_range if setup else None)
    trajectories = _select_time_range(trajectories, time_range)
    marker_tasks, weights = _marker_tasks(model, trajectories, setup, weights)
    tasks = _coordinate_tasks(model, setup, coordinate_tasks, trajectories.time)
    with tempfile.TemporaryDirectory(prefix="biokin_opensim_ik_") as tmp:
        folder = Path(tmp)
        trc = folder / "markers.trc"
        write_trc(trc, trajectories)
        coordinate_file, coordinate_xml = _coordinate_file(model, tasks, trajectories, folder)
        xml = _write_setup(
            folder,
            model_file=model_file,
            marker_file=trc,
            coordinate_file=coordinate_file,
            marker_tasks=marker_tasks,
            coordinate_tasks=coordinate_xml,
            time_range=(float(trajectories.time[0]), float(trajectories.time[-1])),
            accuracy=accuracy or (setup.accuracy if setup else 1e-5),
            constraint_weight=_constraint_weight(constraint_weight, setup),
        )
        seconds = _run_tool(xml, model_file)
        motion = read_motion(model, folder / "ik.mot")
    frames = _matching_frames(trajectories.time, motion.time)
    observed = MarkerTrajectories(
        motion.time, trajectories.names, trajectories.positions[frames], trajectories.rate
    )
    targets = {k: (w, v[frames] if np.ndim(v) else v) for k, (w, v) in tasks.items()}
    cost, residuals = ik_cost(model, motion.q, observed, weights=weights, coordinate_tasks=targets)
    return IKResult(
        time=motion.time,
        q=motion.q,
        coordinate_names=model.coordinate_names,
        marker_names=[n for n in weights if n in trajectories.names],
        marker_residuals=residuals,
        cost=cost,
        iterations=0,
        wall_time_s=seconds,
        converged=np.ones(len(motion.time), dtype=bool),
        mode="opensim",
    )


# --------------------------------------------------------------------------- inputs


def _model_and_file(model: KinematicModel | str | Path) -> tuple[KinematicModel, Path]:
    if isinstance(model, KinematicModel):
        if model.source is None or not Path(model.source).is_file():
            raise FileNotFoundError(
                f"model {model.name!r} has no .osim file on disk (source={model.source}); "
                "pass the path of its .osim instead"
            )
        return model, Path(model.source).resolve()
    path = Path(model).resolve()
    return load_model(path), path


def _trajectories(markers: MarkerTrajectories | str | Path) -> MarkerTrajectories:
    if isinstance(markers, MarkerTrajectories):
        return markers
    path = Path(markers)
    if not path.is_file():
        raise FileNotFoundError(f"no marker file at {path} (give a .trc)")
    return read_trc(path)


def _marker_tasks(
    model: KinematicModel,
    trajectories: MarkerTrajectories,
    setup: IKSetup | None,
    weights: Mapping[str, float] | None,
) -> tuple[list[MarkerTask], dict[str, float]]:
    """The tasks to write and the weights of the markers OpenSim will fit."""
    if weights is None and setup is not None:
        weights = setup.marker_weights(model)
    if weights is None:
        weights = {n: 1.0 for n in trajectories.names if n in model.marker_names}
    missing = [n for n in weights if n not in model.marker_names]
    if missing:
        raise KeyError(f"markers not in model {model.name!r}: {', '.join(missing)}")
    tasks = [MarkerTask(n, float(w)) for n, w in weights.items() if w > 0]
    fitted = {t.name: t.weight for t in tasks if t.name in trajectories.names}
    return tasks, fitted


def _coordinate_tasks(
    model: KinematicModel,
    setup: IKSetup | None,
    tasks: CoordinateTasks | None,
    time: np.ndarray,
) -> dict[str, tuple[float, float | np.ndarray]]:
    if tasks is None:
        return setup.coordinate_targets(model, time) if setup is not None else {}
    for name in tasks:
        model.coordinate_index(name)  # KeyError with close matches
    return {k: (float(w), v) for k, (w, v) in tasks.items()}


def _constraint_weight(value: float | None, setup: IKSetup | None) -> float:
    if value is not None:
        return float(value)
    return setup.constraint_weight if setup is not None else float("inf")


def _coordinate_file(
    model: KinematicModel,
    tasks: Mapping[str, tuple[float, float | np.ndarray]],
    trajectories: MarkerTrajectories,
    folder: Path,
) -> tuple[Path | None, list[CoordinateTask]]:
    """Coordinate tasks as OpenSim tasks; time-varying targets go to a ``.sto`` file."""
    varying = {k: v for k, (_, v) in tasks.items() if np.ndim(v)}
    xml_tasks = [
        CoordinateTask(k, w, "from_file" if k in varying else "manual_value", _scalar(v))
        for k, (w, v) in tasks.items()
    ]
    if not varying:
        return None, xml_tasks
    values = np.stack([np.asarray(v, dtype=np.float64) for v in varying.values()], axis=1)
    path = folder / "coordinates.sto"
    write_table(path, Table(trajectories.time, list(varying), values, False, "targets"))
    return path, xml_tasks


def _scalar(value: float | np.ndarray) -> float:
    return 0.0 if np.ndim(value) else float(value)


# --------------------------------------------------------------------------- the tool


def _write_setup(folder: Path, **fields) -> Path:
    """An ``InverseKinematicsTool`` xml in ``folder`` with absolute paths."""
    doc = ET.Element("OpenSimDocument", Version="40000")
    tool = ET.SubElement(doc, "InverseKinematicsTool", name="biokin_nb")

    def add(tag: str, text: object) -> None:
        ET.SubElement(tool, tag).text = str(text)

    add("results_directory", folder)
    add("model_file", fields["model_file"])
    weight = fields["constraint_weight"]
    add("constraint_weight", "Inf" if np.isinf(weight) else repr(weight))
    add("accuracy", repr(float(fields["accuracy"])))
    tool.append(_task_set(fields["marker_tasks"], fields["coordinate_tasks"]))
    add("marker_file", fields["marker_file"])
    add("coordinate_file", fields["coordinate_file"] or "Unassigned")
    add("time_range", " ".join(repr(t) for t in fields["time_range"]))
    add("report_errors", "false")
    add("output_motion_file", folder / "ik.mot")
    add("report_marker_locations", "false")
    path = folder / "setup_ik.xml"
    ET.ElementTree(doc).write(path, encoding="UTF-8", xml_declaration=True)
    return path


def _task_set(markers: list[MarkerTask], coordinates: list[CoordinateTask]) -> ET.Element:
    task_set = ET.Element("IKTaskSet")
    objects = ET.SubElement(task_set, "objects")
    for task in markers:
        element = ET.SubElement(objects, "IKMarkerTask", name=task.name)
        ET.SubElement(element, "apply").text = "true"
        ET.SubElement(element, "weight").text = repr(task.weight)
    for task in coordinates:
        element = ET.SubElement(objects, "IKCoordinateTask", name=task.name)
        ET.SubElement(element, "apply").text = "true"
        ET.SubElement(element, "weight").text = repr(task.weight)
        ET.SubElement(element, "value_type").text = task.value_type
        ET.SubElement(element, "value").text = repr(task.value)
    ET.SubElement(task_set, "groups")
    return task_set


def _run_tool(xml: Path, model_file: Path) -> float:
    """Run the tool of ``xml`` on a model loaded beforehand; returns the run's seconds."""
    osim = opensim()
    os_model = osim.Model(str(model_file))  # kept alive until the tool is done
    tool = osim.InverseKinematicsTool(str(xml), False)
    tool.setModel(os_model)
    with _stdout_to(xml.parent / "stdout.txt"):  # the tool prints the model's summary
        start = _time.perf_counter()
        try:
            ok = tool.run()
        except RuntimeError as err:
            raise RuntimeError(f"OpenSim's InverseKinematicsTool failed: {err}") from None
        seconds = _time.perf_counter() - start
    if not ok:
        raise RuntimeError("OpenSim's InverseKinematicsTool reported failure")
    del tool, os_model
    return seconds


@contextlib.contextmanager
def _stdout_to(path: Path) -> Iterator[None]:
    """Send what C++ code writes to the process's stdout (fd 1) to ``path`` meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(path, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            try:
                yield
            finally:
                os.dup2(saved, 1)
    finally:
        os.close(saved)


def _matching_frames(time: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Indices into ``time`` of the times ``wanted`` (the frames OpenSim solved)."""
    index = np.clip(np.searchsorted(time, wanted - _TIME_MATCH), 0, len(time) - 1)
    if not np.allclose(time[index], wanted, atol=_TIME_MATCH):
        raise RuntimeError("OpenSim's output times do not match the marker frames")
    return index


__all__ = ["run_opensim_ik"]
