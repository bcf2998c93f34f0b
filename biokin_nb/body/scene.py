"""Drawable data: a mesh with the skeleton inside it, for figures (ground frame, m).

:func:`subject_scene` poses a subject's mesh like its skeleton at coordinates ``q``;
:func:`fit_scenes` takes frames of a :class:`~biokin_nb.body.fit.FitResult`. Both return
:class:`BodySkeletonScene` objects of numpy arrays that plotting code draws directly: the
mesh (semi-transparent), the skeleton's joint centres joined by its bone segments, and both
marker sets. They also carry what :func:`biokin_nb.viz.scene.skeleton_scene` takes::

    skeleton_scene(s.model, s.q, mesh=(s.vertices, s.faces), scales=s.scales)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from biokin_nb.body.fit import FitConfig, FitResult, fit_motion
from biokin_nb.body.registration import Registration
from biokin_nb.osim import KinematicModel

if TYPE_CHECKING:
    from biokin_nb.body.subject import Subject


@dataclass
class BodySkeletonScene:
    """One posed body and its skeleton.

    Attributes:
        vertices: (V, 3) mesh vertices; faces: (F, 3) triangles.
        joints: (J, 3) the skeleton's joint centres (forward kinematics of the subject).
        joint_names: (J,) names, the generic model's joint order.
        segments: (S, 2) pairs of joint indices to draw as bones.
        mesh_joints: (J, 3) joint centres regressed from the mesh.
        mesh_markers, skeleton_markers: (M, 3) virtual markers and the model's markers.
        marker_names: (M,) names.
        model: the subject's KinematicModel (markers placed on the mesh).
        q: (C,) the skeleton's coordinates; scales: (B, 3) the subject's scale factors.
    """

    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray
    joint_names: list[str]
    segments: np.ndarray
    mesh_joints: np.ndarray
    mesh_markers: np.ndarray
    skeleton_markers: np.ndarray
    marker_names: list[str]
    model: KinematicModel
    q: np.ndarray
    scales: np.ndarray


def skeleton_segments(reg: Registration) -> np.ndarray:
    """(S, 2) joint index pairs: each joint to the joint at its parent body's origin."""
    geom = reg.geom
    origin_joint = {int(c): j for j, c in enumerate(geom.joint_child)}
    pairs = [(origin_joint[int(p)], j) for j, p in enumerate(geom.joint_parent) if p >= 0]
    return np.array(pairs, dtype=np.int64)


def fit_scenes(
    reg: Registration, subject: Subject, result: FitResult, frames: list[int] | None = None
) -> list[BodySkeletonScene]:
    """A :class:`BodySkeletonScene` per frame index of ``result`` (default: all), the fit of
    ``subject``'s mesh to its skeleton."""
    frames = list(range(len(result.time))) if frames is None else list(frames)
    vertices = result.vertices(reg, frames).detach().double().numpy()
    faces = reg.body.faces.cpu().numpy()
    segments = skeleton_segments(reg)

    def arr(t: torch.Tensor, i: int) -> np.ndarray:
        return t[i].detach().double().cpu().numpy()

    return [
        BodySkeletonScene(
            vertices=vertices[k],
            faces=faces,
            joints=arr(result.skeleton_joints, i),
            joint_names=list(reg.geom.joint_names),
            segments=segments,
            mesh_joints=arr(result.mesh_joints, i),
            mesh_markers=arr(result.mesh_markers, i),
            skeleton_markers=arr(result.skeleton_markers, i),
            marker_names=list(reg.model.marker_names),
            model=subject.model,
            q=result.coordinates[i],
            scales=np.asarray(subject.scales),
        )
        for k, i in enumerate(frames)
    ]


def subject_scene(
    reg: Registration, subject: Subject, q: np.ndarray | None = None
) -> BodySkeletonScene:
    """The subject's mesh fitted to its skeleton at coordinates ``q`` (C,) (default pose)."""
    q = reg.model.defaults if q is None else np.asarray(q, dtype=float)
    result = fit_motion(reg, subject, torch.as_tensor(q)[None], FitConfig(iterations=20))
    return fit_scenes(reg, subject, result, [0])[0]
