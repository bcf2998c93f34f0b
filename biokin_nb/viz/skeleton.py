"""3D skeletons of a model in plotly: bones, joint centres and markers, animated over time.

Conventions, once for the module: OpenSim's ground frame (Y up, X forward, Z to the
subject's right), metres. Scenes have the camera's up vector on +Y and equal scales on all
axes: a fixed cube around every point of every sequence over the whole motion, so nothing
jumps or stretches while the animation plays. Joint centres are FK's ``joint_centres``
(one per joint, ``model.joint_names`` order); a bone joins the centre of each joint to the
centre of the joint of its parent body (:func:`skeleton_segments`). Sequences are
``{name: q (T, C) rad / m, Motion, (time, q) or FKResult}``; one colour per name
(:func:`biokin_nb.viz.angles.method_colours`), shared with the angle plots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from biokin_nb.osim.fk import FKResult, forward_kinematics
from biokin_nb.osim.model import KinematicModel
from biokin_nb.viz.angles import (
    SequenceLike,
    _numpy,
    as_motion,
    method_colours,
    sequence_time,
)

MARGIN = 0.1  # m of room around the points inside the scene cube
CAMERA = {"up": {"x": 0, "y": 1, "z": 0}, "eye": {"x": 0.9, "y": 0.5, "z": 1.6}}
MIN_FRAME_MS = 20  # fastest animation step (ms)

__all__ = [
    "SkeletonTracks",
    "frame_figure",
    "pose_figure",
    "skeleton_figure",
    "skeleton_segments",
    "skeleton_tracks",
]


@dataclass
class SkeletonTracks:
    """Points to draw for named sequences of one model, all ``T`` frames long.

    Attributes:
        joints: ``{name: (T, J, 3)}`` joint centres in ground (m), ``model.joint_names``.
        markers: ``{name: (T, M, 3)}`` markers in ground (m), ``model.marker_names``.
        time: (T,) s, or None (frame numbers).
        segments: bones as ``(parent joint, child joint)`` indices into ``joints``.
        joint_names, marker_names: hover labels.
    """

    joints: dict[str, np.ndarray]
    markers: dict[str, np.ndarray]
    time: np.ndarray | None
    segments: list[tuple[int, int]]
    joint_names: list[str]
    marker_names: list[str]

    @property
    def names(self) -> list[str]:
        return list(self.joints)

    @property
    def n_frames(self) -> int:
        return next(iter(self.joints.values())).shape[0]

    def cube(self) -> list[list[float]]:
        """[[lo, hi]] * 3 (m): equal-length axis ranges enclosing every point of every frame."""
        return _cube([*self.joints.values(), *self.markers.values()])


def skeleton_segments(model: KinematicModel) -> list[tuple[int, int]]:
    """Bones as ``(parent joint, child joint)`` indices into ``model.joint_names``.

    For each joint whose parent is a body ``p`` (not ground), a bone runs from the centre of
    ``p``'s own joint to this joint's centre (J - 1 bones for a tree with one root).
    """
    return [
        (model.bodies[j.parent_body].joint, k)
        for k, j in enumerate(model.joints)
        if j.parent_body >= 0
    ]


# --------------------------------------------------------------------------- data


def _fk_points(
    model: KinematicModel, seq: SequenceLike | FKResult, scales: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(T, J, 3) joint centres and (T, M, 3) markers (m) of one sequence."""
    if not isinstance(seq, FKResult):
        q = torch.as_tensor(as_motion(model, seq).q, dtype=torch.float64)
        s = None if scales is None else torch.as_tensor(_numpy(scales))
        with torch.no_grad():
            seq = forward_kinematics(model, q, s)
    joints, markers = _numpy(seq.joint_centres), _numpy(seq.markers)
    if joints.ndim != 3 or joints.shape[1:] != (len(model.joints), 3):
        raise ValueError(
            f"expected joint centres (T, {len(model.joints)}, 3) of model {model.name!r}, "
            f"got {joints.shape}: pass one sequence (T, C), not a batch"
        )
    return joints, markers


def skeleton_tracks(
    model: KinematicModel,
    sequences: Mapping[str, SequenceLike | FKResult],
    *,
    scales: Any = None,
    time: Any = None,
) -> SkeletonTracks:
    """Forward kinematics of every sequence, as points to draw.

    Args:
        sequences: ``{name: q (T, C) rad / m, Motion, (time, q) or FKResult (T, ...)}``.
        scales: (B, 3) or (T, B, 3) body scale factors for every ``q`` sequence, or
            ``{name: scales}`` per sequence (missing names: unscaled).
        time: (T,) s; default the first Motion's time.

    Raises:
        ValueError: no sequence, or sequences of different lengths.
    """
    if not sequences:
        raise ValueError("no sequences given: pass {name: (T, C) coordinates or FKResult}")
    per_name = isinstance(scales, Mapping)
    joints, markers = {}, {}
    for name, seq in sequences.items():
        s = scales.get(name) if per_name else scales
        joints[name], markers[name] = _fk_points(model, seq, s)
    lengths = {name: j.shape[0] for name, j in joints.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"sequences differ in length (frames): {lengths}; trim them first")
    plain = {k: v for k, v in sequences.items() if not isinstance(v, FKResult)}
    return SkeletonTracks(
        joints,
        markers,
        sequence_time(plain, time),
        skeleton_segments(model),
        model.joint_names,
        model.marker_names,
    )


# --------------------------------------------------------------------------- traces


def _cube(points: Sequence[np.ndarray]) -> list[list[float]]:
    """Equal-length [lo, hi] ranges (m) around all finite points ``(..., 3)``."""
    flat = np.concatenate([p.reshape(-1, 3) for p in points if p.size])
    flat = flat[np.isfinite(flat).all(axis=1)]
    if not len(flat):
        return [[-1.0, 1.0]] * 3
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 + MARGIN
    return [[float(c - half), float(c + half)] for c in centre]


def _bone_xyz(points: np.ndarray, segments: Sequence[tuple[int, int]]) -> np.ndarray:
    """(3, 3S) x, y, z of the bones of one frame (``points`` (J, 3)): a, b, NaN per bone.

    Scatter3d lines break at NaN (``connectgaps`` is off), so one trace draws every bone.
    """
    pairs = np.asarray(segments, dtype=int).reshape(-1, 2)
    xyz = np.full((len(pairs), 3, 3), np.nan)
    xyz[:, 0], xyz[:, 1] = points[pairs[:, 0]], points[pairs[:, 1]]
    return xyz.reshape(-1, 3).T


def _pose_traces(
    name: str,
    colour: str,
    joints: np.ndarray,
    markers: np.ndarray | None,
    tracks: SkeletonTracks,
) -> list[go.Scatter3d]:
    """Bones, joint centres and (if given) markers of one pose: 2 or 3 traces, one legend."""
    bx, by, bz = _bone_xyz(joints, tracks.segments)
    group = {"legendgroup": name, "name": name}
    traces = [
        go.Scatter3d(
            x=bx,
            y=by,
            z=bz,
            mode="lines",
            line={"color": colour, "width": 5},
            hoverinfo="skip",
            showlegend=True,
            **group,
        ),
        go.Scatter3d(
            x=joints[:, 0],
            y=joints[:, 1],
            z=joints[:, 2],
            mode="markers",
            marker={"color": colour, "size": 4},
            text=tracks.joint_names,
            hovertemplate="%{text}<extra>" + name + "</extra>",
            showlegend=False,
            **group,
        ),
    ]
    if markers is not None:
        traces.append(
            go.Scatter3d(
                x=markers[:, 0],
                y=markers[:, 1],
                z=markers[:, 2],
                mode="markers",
                marker={"color": colour, "size": 2, "symbol": "diamond", "opacity": 0.6},
                text=tracks.marker_names,
                hovertemplate="%{text}<extra>" + name + " marker</extra>",
                showlegend=False,
                **group,
            )
        )
    return traces


def _frame_traces(
    tracks: SkeletonTracks,
    frame: int,
    names: Sequence[str],
    colours: Mapping[str, str],
    show_markers: bool,
) -> list[go.Scatter3d]:
    traces = []
    for name in names:
        markers = tracks.markers[name][frame]
        shown = markers if show_markers and markers.shape[0] else None
        traces += _pose_traces(name, colours[name], tracks.joints[name][frame], shown, tracks)
    return traces


def _frame_xyz(tracks: SkeletonTracks, frame: int, show_markers: bool) -> list[dict]:
    """Positions only of the traces of :func:`_frame_traces` (all sequences) at ``frame``.

    Animation frames update x, y, z and keep the rest (colours, names) of the first frame;
    plain dicts keep the figure quick to build.
    """
    out = []
    for name in tracks.names:
        joints, markers = tracks.joints[name][frame], tracks.markers[name][frame]
        points = [_bone_xyz(joints, tracks.segments), joints.T]
        if show_markers and markers.shape[0]:
            points.append(markers.T)
        out += [{"type": "scatter3d", "x": p[0], "y": p[1], "z": p[2]} for p in points]
    return out


def _scene(cube: list[list[float]]) -> dict:
    """Scene layout: fixed equal ranges, axis titles in m, camera with Y up."""
    axes = {
        f"{a}axis": {"title": {"text": f"{a} (m)"}, "range": r, "autorange": False}
        for a, r in zip("xyz", cube, strict=True)
    }
    return {**axes, "aspectmode": "cube", "camera": CAMERA}


# --------------------------------------------------------------------------- figures


def frame_figure(
    tracks: SkeletonTracks,
    frame: int,
    *,
    names: Sequence[str] | None = None,
    show_markers: bool = True,
    colours: Mapping[str, str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """One frame of ``tracks`` (of the sequences ``names``, default all) in a fixed cube.

    Colours are assigned over all of ``tracks.names``, so a subset keeps its colours.
    """
    if not 0 <= frame < tracks.n_frames:
        raise ValueError(f"frame {frame} is out of range: the motion has {tracks.n_frames}")
    palette = method_colours(tracks.names, colours)
    shown = tracks.names if names is None else list(names)
    fig = go.Figure(_frame_traces(tracks, frame, shown, palette, show_markers))
    fig.update_layout(
        title=title or f"Skeleton, {_frame_label(tracks, frame)}",
        scene=_scene(tracks.cube()),
        legend_title_text="sequence",
        height=600,
        margin={"l": 0, "r": 0, "t": 50, "b": 0},
    )
    return fig


def _frame_label(tracks: SkeletonTracks, frame: int) -> str:
    return f"frame {frame}" if tracks.time is None else f"t = {tracks.time[frame]:.2f} s"


def skeleton_figure(
    model: KinematicModel,
    sequences: Mapping[str, SequenceLike | FKResult],
    *,
    scales: Any = None,
    time: Any = None,
    show_markers: bool = True,
    frame_step: int = 1,
    colours: Mapping[str, str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Animated 3D skeleton of several sequences overlaid, with play buttons and a slider.

    Args:
        sequences: ``{name: q (T, C) rad / m, Motion, (time, q) or FKResult}``, equal T.
        scales: body scales for the ``q`` sequences (see :func:`skeleton_tracks`).
        time: (T,) s for slider labels and play speed; default the first Motion's time.
        show_markers: draw the model's markers too.
        frame_step: animate every ``frame_step``-th frame (>= 1).

    Returns:
        A figure with 2 traces per sequence (bones, joint centres) plus 1 with markers, one
        animation frame per shown time step, and a slider with one step per frame.
    """
    if int(frame_step) != frame_step or frame_step < 1:
        raise ValueError(f"frame_step must be a whole number >= 1, got {frame_step}")
    tracks = skeleton_tracks(model, sequences, scales=scales, time=time)
    palette = method_colours(tracks.names, colours)
    frames = list(range(0, tracks.n_frames, int(frame_step)))
    fig = frame_figure(
        tracks,
        0,
        show_markers=show_markers,
        colours=palette,
        title=title or f"Skeleton of {model.name}",
    )
    traces = list(range(len(fig.data)))
    fig.frames = [
        {"name": str(k), "data": _frame_xyz(tracks, k, show_markers), "traces": traces}
        for k in frames
    ]
    fig.update_layout(
        updatemenus=[_play_buttons(_frame_ms(tracks, int(frame_step)))],
        sliders=[_slider(tracks, frames)],
    )
    return fig


def _frame_ms(tracks: SkeletonTracks, step: int) -> int:
    """Animation step (ms): real time when the time is known, else 20 frames per second."""
    if tracks.time is None or len(tracks.time) < 2:
        return 50
    return max(MIN_FRAME_MS, int(round(1000 * float(np.median(np.diff(tracks.time))) * step)))


def _animate_args(duration: int) -> dict:
    return {
        "frame": {"duration": duration, "redraw": True},
        "transition": {"duration": 0},
        "mode": "immediate",
    }


def _play_buttons(duration: int) -> dict:
    play = {
        "label": "Play",
        "method": "animate",
        "args": [None, {**_animate_args(duration), "fromcurrent": True}],
    }
    pause = {"label": "Pause", "method": "animate", "args": [[None], _animate_args(0)]}
    return {
        "type": "buttons",
        "direction": "left",
        "buttons": [play, pause],
        "showactive": False,
        "x": 0.0,
        "y": 0.0,
        "xanchor": "left",
        "yanchor": "top",
        "pad": {"t": 10, "r": 10},
    }


def _slider(tracks: SkeletonTracks, frames: Sequence[int]) -> dict:
    timed = tracks.time is not None
    steps = [
        {
            "label": f"{tracks.time[k]:.2f}" if timed else str(k),
            "method": "animate",
            "args": [[str(k)], _animate_args(0)],
        }
        for k in frames
    ]
    prefix = "time (s): " if timed else "frame: "
    return {
        "active": 0,
        "steps": steps,
        "currentvalue": {"prefix": prefix},
        "x": 0.12,
        "len": 0.88,
        "y": 0.0,
        "yanchor": "top",
        "pad": {"t": 10},
    }


def pose_figure(
    model: KinematicModel,
    q: Any,
    *,
    scales: Any = None,
    spacing: float = 1.0,
    labels: Sequence[str] | None = None,
    show_markers: bool = False,
    colours: Mapping[str, str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Static skeleton of one pose ``q`` (C,) or of K poses (K, C) side by side.

    Args:
        q: coordinates (rad / m) in model order; pose ``k`` is shifted by ``k * spacing``
            (m) along Z (to the subject's right) so that poses do not overlap.
        scales: (B, 3) or (K, B, 3) body scale factors.
        labels: K legend names (default ``pose 1`` ...).
    """
    q = np.atleast_2d(_numpy(q))
    labels = list(labels) if labels is not None else [f"pose {k + 1}" for k in range(len(q))]
    if len(labels) != len(q):
        raise ValueError(f"{len(labels)} labels for {len(q)} poses; give one label per pose")
    tracks = skeleton_tracks(model, {"poses": q}, scales=scales)
    offset = np.arange(len(q))[:, None, None] * np.array([0.0, 0.0, spacing])
    joints, markers = tracks.joints["poses"] + offset, tracks.markers["poses"] + offset
    tracks = replace(
        tracks,
        joints={name: joints[k : k + 1] for k, name in enumerate(labels)},
        markers={name: markers[k : k + 1] for k, name in enumerate(labels)},
    )
    return frame_figure(
        tracks,
        0,
        show_markers=show_markers,
        colours=colours,
        title=title or f"Pose of {model.name}",
    )
