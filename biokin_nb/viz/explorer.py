"""Explorer: a 3D skeleton and per-coordinate angle plots of several methods, in sync.

Live, in a notebook front end a person uses (JupyterLab, Notebook 7, VS Code): ipywidgets
with a frame slider and play button, a multi-select of coordinates and a checkbox per
method; the 3D view shows the checked methods at the current frame and every angle plot
carries a vertical line at that frame's time. The plots are redrawn into
``ipywidgets.Output`` panes (plain plotly figures, no extra widget package), so the 3D
camera returns to its default view after each change.

Headless (papermill, nbconvert, a script, or ``static=True``): no widget; the static
figures instead, the animated skeleton (its own play button and slider) and the angle plots.

Detection (:func:`widget_frontend_available`): an IPython kernel whose current execute
request allows stdin. Interactive front ends send ``allow_stdin=True``; nbclient, which
papermill and nbconvert use, sends ``False`` and has no widget manager.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from biokin_nb.osim.fk import FKResult
from biokin_nb.osim.model import KinematicModel
from biokin_nb.viz.angles import (
    SequenceLike,
    angle_figure,
    as_motions,
    method_colours,
    resolve_coordinates,
    set_time_cursor,
)
from biokin_nb.viz.skeleton import SkeletonTracks, frame_figure, skeleton_figure, skeleton_tracks

__all__ = ["ExplorerView", "explorer", "widget_frontend_available"]


@dataclass
class ExplorerView:
    """What :func:`explorer` returns; displaying it shows the widget, else both figures.

    Attributes:
        skeleton: the 3D figure (animated when static; the current frame when live).
        angles: the angle plots (with the time line at the current frame when live).
        widget: the ipywidgets box, None when static.
        controls: the widgets by role (``frame``, ``play``, ``coordinates``, one
            ``method:<name>`` checkbox per method); empty when static.
    """

    skeleton: go.Figure
    angles: go.Figure
    widget: Any = None
    controls: dict[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.widget is not None

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.widget is not None:
            display(self.widget)
        else:
            display(self.skeleton, self.angles)


def widget_frontend_available() -> bool:
    """True in an IPython kernel driven by an interactive front end with ipywidgets.

    False outside IPython, in a terminal IPython, and under nbclient (papermill,
    ``jupyter nbconvert --execute``), whose execute requests do not allow stdin.
    """
    if importlib.util.find_spec("ipywidgets") is None:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    return bool(getattr(getattr(shell, "kernel", None), "_allow_stdin", False))


def explorer(
    model: KinematicModel,
    sequences: Mapping[str, SequenceLike | FKResult],
    coordinates: Sequence[str] | str,
    *,
    time: Any = None,
    scales: Any = None,
    show_markers: bool = True,
    frame_step: int = 1,
    colours: Mapping[str, str] | None = None,
    static: bool | None = None,
) -> ExplorerView:
    """Explore several methods' motions of ``model``: 3D skeleton and angle plots in sync.

    Args:
        sequences: ``{method: q (T, C) rad / m, Motion, (time, q) or FKResult}``, equal T;
            FKResult sequences appear in 3D only (they carry no coordinates).
        coordinates: coordinate or joint names plotted at first (all are selectable live).
        time: (T,) s; default the first Motion's time.
        scales: body scales for FK (see :func:`biokin_nb.viz.skeleton.skeleton_tracks`).
        frame_step: frame stride of the slider and the animation.
        static: True for the static figures, False for widgets; None detects the front end
            (:func:`widget_frontend_available`).

    Returns:
        An :class:`ExplorerView`; it displays itself as the last expression of a cell.
    """
    names = resolve_coordinates(model, coordinates)
    palette = method_colours(list(sequences), colours)
    angle_seqs = {k: v for k, v in sequences.items() if not isinstance(v, FKResult)}
    if static is None:
        static = not widget_frontend_available()
    if static:
        return ExplorerView(
            skeleton_figure(
                model,
                sequences,
                scales=scales,
                time=time,
                frame_step=frame_step,
                show_markers=show_markers,
                colours=palette,
            ),
            angle_figure(model, angle_seqs, names, time=time, colours=palette),
        )
    tracks = skeleton_tracks(model, sequences, scales=scales, time=time)
    return _LiveExplorer(model, tracks, angle_seqs, names, palette, show_markers, frame_step).view


class _LiveExplorer:
    """The widgets and their callbacks; keeps ``view``'s figures at the current state."""

    def __init__(
        self,
        model: KinematicModel,
        tracks: SkeletonTracks,
        sequences: Mapping[str, SequenceLike],
        coordinates: list[str],
        palette: dict[str, str],
        show_markers: bool,
        frame_step: int,
    ) -> None:
        import ipywidgets as widgets

        self.model, self.tracks, self.palette = model, tracks, palette
        self.motions = as_motions(model, sequences, tracks.time) if sequences else {}
        self.show_markers = show_markers
        self.frame, self.coordinates, self.methods = 0, coordinates, list(tracks.names)
        self.outputs = {
            "skeleton": widgets.Output(layout=widgets.Layout(width="40%")),
            "angles": widgets.Output(layout=widgets.Layout(width="60%")),
        }
        self.view = ExplorerView(self._skeleton(), self._angles())
        self.view.controls = self._controls(widgets, frame_step)
        self.view.widget = self._layout(widgets)
        self._render("skeleton", "angles")

    # ---- state -> figures --------------------------------------------------------------
    def _time(self) -> float:
        return float(self.frame if self.tracks.time is None else self.tracks.time[self.frame])

    def _skeleton(self) -> go.Figure:
        return frame_figure(
            self.tracks,
            self.frame,
            names=self.methods,
            show_markers=self.show_markers,
            colours=self.palette,
        )

    def _angles(self) -> go.Figure:
        shown = {k: v for k, v in self.motions.items() if k in self.methods}
        if not shown or not self.coordinates:
            return go.Figure(layout_title_text="pick at least one method and one coordinate")
        return angle_figure(
            self.model, shown, self.coordinates, colours=self.palette, cursor_time=self._time()
        )

    def _render(self, *which: str) -> None:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is None:  # nowhere to show them; the figures stay on self.view
            return
        figures = {"skeleton": self.view.skeleton, "angles": self.view.angles}
        for name in which:
            with self.outputs[name]:
                self.outputs[name].clear_output(wait=True)
                display(figures[name])

    # ---- callbacks ----------------------------------------------------------------------
    def on_frame(self, change: dict) -> None:
        self.frame = int(change["new"])
        self.view.skeleton = self._skeleton()
        if self.view.angles.data:
            set_time_cursor(self.view.angles, self._time())
        self.view.controls["time"].value = _time_text(self.tracks, self.frame)
        self._render("skeleton", "angles")

    def on_select(self, _change: dict | None = None) -> None:
        controls = self.view.controls
        self.coordinates = list(controls["coordinates"].value)
        self.methods = [m for m in self.tracks.names if controls[f"method:{m}"].value]
        self.view.skeleton, self.view.angles = self._skeleton(), self._angles()
        self._render("skeleton", "angles")

    # ---- widgets ------------------------------------------------------------------------
    def _controls(self, widgets: Any, frame_step: int) -> dict[str, Any]:
        last = self.tracks.n_frames - 1
        frame = widgets.IntSlider(
            value=0, min=0, max=last, step=frame_step, description="frame", continuous_update=False
        )
        play = widgets.Play(value=0, min=0, max=last, step=frame_step, interval=200)
        widgets.jslink((play, "value"), (frame, "value"))
        frame.observe(self.on_frame, names="value")
        coords = widgets.SelectMultiple(
            options=self.model.coordinate_names,
            rows=8,
            value=tuple(self.coordinates),
            description="coordinates",
        )
        coords.observe(self.on_select, names="value")
        controls = {
            "frame": frame,
            "play": play,
            "coordinates": coords,
            "time": widgets.Label(_time_text(self.tracks, 0)),
        }
        for name in self.tracks.names:
            box = widgets.Checkbox(value=True, description=name, indent=False)
            box.observe(self.on_select, names="value")
            controls[f"method:{name}"] = box
        return controls

    def _layout(self, widgets: Any) -> Any:
        c = self.view.controls
        swatch = '<span style="color:{}; font-size:1.4em">&#9632;</span>'
        methods = [
            widgets.HBox([widgets.HTML(swatch.format(self.palette[m])), c[f"method:{m}"]])
            for m in self.tracks.names
        ]
        return widgets.VBox(
            [
                widgets.HBox([c["play"], c["frame"], c["time"]]),
                widgets.HBox([widgets.VBox(methods), c["coordinates"]]),
                widgets.HBox([self.outputs["skeleton"], self.outputs["angles"]]),
            ]
        )


def _time_text(tracks: SkeletonTracks, frame: int) -> str:
    return f"frame {frame}" if tracks.time is None else f"t = {tracks.time[frame]:.2f} s"
