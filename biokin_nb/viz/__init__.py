"""Visualization: plotly skeletons and angle plots, figure export, ipywidgets explorers.

Every function returns a figure (or an :class:`ExplorerView`) and leaves showing it to the
caller. Plots are in OpenSim's ground frame (Y up, X forward), metres and degrees.

The explorer function shares its module's name, so it is imported from there:
``from biokin_nb.viz.explorer import explorer`` (``biokin_nb.viz.explorer`` stays the module).
"""

from biokin_nb.viz.angles import (
    angle_figure,
    as_motion,
    error_summary_figure,
    error_table,
    method_colours,
    resolve_coordinates,
    set_time_cursor,
)
from biokin_nb.viz.explorer import ExplorerView, widget_frontend_available
from biokin_nb.viz.export import find_chromium, save_figure
from biokin_nb.viz.skeleton import (
    SkeletonTracks,
    frame_figure,
    pose_figure,
    skeleton_figure,
    skeleton_segments,
    skeleton_tracks,
)

__all__ = [
    "ExplorerView",
    "SkeletonTracks",
    "angle_figure",
    "as_motion",
    "error_summary_figure",
    "error_table",
    "find_chromium",
    "frame_figure",
    "method_colours",
    "pose_figure",
    "resolve_coordinates",
    "save_figure",
    "set_time_cursor",
    "skeleton_figure",
    "skeleton_segments",
    "skeleton_tracks",
    "widget_frontend_available",
]
