"""Visualization: plotly skeletons and angle plots, figure export, ipywidgets explorers.

Every function returns a figure (or an :class:`ExplorerView`) and leaves showing it to the
caller. Plots are in OpenSim's ground frame (Y up, X forward), metres and degrees.

Pyvista scenes (body mesh + skeleton, screenshots, movies) live in :mod:`biokin_nb.viz.scene`;
their names are exported here too, imported on first use (pyvista takes seconds to load).

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

# Pyvista scenes, loaded on first use (see __getattr__).
_SCENE_NAMES = (
    "body_silhouette_mask",
    "foreground_mask",
    "motion_movie",
    "project_points",
    "render_image",
    "scene_view",
    "screenshot",
    "skeleton_scene",
    "stand_in_body",
    "update_scene",
)
__all__ += list(_SCENE_NAMES)


def __getattr__(name: str) -> object:
    """The pyvista scene functions, imported from :mod:`biokin_nb.viz.scene` on first use."""
    if name in _SCENE_NAMES:
        from biokin_nb.viz import scene

        return getattr(scene, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
