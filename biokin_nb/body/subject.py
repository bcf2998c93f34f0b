"""Skeleton from body shape (as OSSO does): a body shape in, a scaled generic model out.

:func:`skeleton_from_shape` regresses the joint centres of the rest mesh, turns the
lengths of its primary segments into per-body scale factors of the generic model
(:func:`biokin_nb.body.skeleton.segment_scales`), then places the model's markers on the
mesh's virtual markers (the mesh fitted to the scaled model's default pose), as OpenSim's
marker placer does after scaling: the subject model carries the mesh's markers.
:func:`write_subject_osim` writes the subject ``.osim`` with OpenSim's own ``Model::scale``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from biokin_nb.body.fit import FitConfig, fit_motion
from biokin_nb.body.registration import Registration
from biokin_nb.body.scene import skeleton_segments
from biokin_nb.body.skeleton import (
    JOINT_LANDMARK,
    foot_extremes,
    foot_skin_vertices,
    segment_scales,
)
from biokin_nb.osim import KinematicModel, forward_kinematics
from biokin_nb.osim._opensim import opensim
from biokin_nb.osim.model import Marker
from biokin_nb.osim.scaling import opensim_model, print_model, scale_opensim_model


@dataclass
class Subject:
    """A body shape with its subject-specific skeleton.

    Attributes:
        backend: the body model kind.
        shape: (S,) shape parameters.
        scales: (B, 3) scale factors of the generic model's bodies.
        model: the generic KinematicModel with the subject's markers placed on the mesh
            (use it with ``scales`` in :func:`biokin_nb.osim.forward_kinematics`).
        marker_locations: (M, 3) marker positions in their (scaled) body frames (m).
        rest_joints: (J, 3) joint centres regressed on the rest mesh (ground, m).
        height: standing height of the rest mesh (m).
    """

    backend: str
    shape: torch.Tensor
    scales: np.ndarray
    model: KinematicModel
    marker_locations: np.ndarray
    rest_joints: np.ndarray
    height: float


@dataclass(frozen=True)
class RestMesh:
    """A shape's rest mesh as :func:`skeleton_from_shape` reads it.

    Attributes:
        vertices: (V, 3) rest-pose vertices (ground, m).
        joints: (J, 3) joint centres regressed from them.
        height: standing height (m).
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    height: float


def rest_mesh(reg: Registration, shape: torch.Tensor) -> RestMesh:
    """The rest mesh of ``shape`` (S,) and its regressed joint centres."""
    with torch.no_grad():
        out = reg.body(shape)
        keypoints = reg.regressor(out.vertices)
    height = float(out.vertices[..., 1].max() - out.vertices[..., 1].min())
    return RestMesh(out.vertices, keypoints[..., : reg.n_joints, :], height)


def scales_from_joints(
    reg: Registration, joints: torch.Tensor, vertices: torch.Tensor
) -> torch.Tensor:
    """(..., B, 3) scale factors from joint centres (..., J, 3) (primary segment lengths)
    and rest-mesh vertices (..., V, 3) (the foot's skin extremes)."""
    names = reg.geom.joint_names
    lm = {JOINT_LANDMARK[n]: joints[..., i, :] for i, n in enumerate(names) if n in JOINT_LANDMARK}
    lm["midhip"] = 0.5 * (lm["hip_r"] + lm["hip_l"])
    lm["midshoulder"] = 0.5 * (lm["shoulder_r"] + lm["shoulder_l"])
    skin = foot_skin_vertices(reg.body, reg.rig, reg.geom)
    lm |= foot_extremes(lm, {k: vertices[..., ids, :] for k, ids in skin.items()})
    return segment_scales(reg.geom, lm)


def skeleton_from_shape(
    reg: Registration, shape: torch.Tensor | dict[str, float] | None = None
) -> Subject:
    """The subject skeleton of a body shape (see the module docstring).

    Args:
        reg: the body model's registration.
        shape: (S,) shape parameters, a ``{name: value}`` dict, or None (default shape).
    """
    shape = reg.body.shape_tensor(shape)
    if shape.ndim != 1:
        raise ValueError(f"one shape at a time: expected (S,), got {tuple(shape.shape)}")
    mesh = rest_mesh(reg, shape)
    scales = scales_from_joints(reg, mesh.joints.double(), mesh.vertices.double()).numpy()
    subject = Subject(
        reg.body.kind, shape, scales, reg.model, np.zeros(0), mesh.joints.numpy(), mesh.height
    )
    q = torch.tensor(reg.model.defaults)
    static = fit_motion(reg, subject, q[None], FitConfig(marker_weight=0.0, iterations=30))
    return place_markers(reg, subject, q, static.mesh_markers[0])


def place_markers(
    reg: Registration, subject: Subject, q: torch.Tensor, markers: torch.Tensor
) -> Subject:
    """``subject`` with its model's markers moved onto mesh markers (M, 3) (ground, m) of a
    static frame in which the skeleton has coordinates ``q`` (C,)."""
    model = reg.model
    fk = forward_kinematics(model, q.double(), torch.tensor(subject.scales))
    body = torch.as_tensor(reg.geom.marker_body)
    offset = markers.double() - fk.positions[body]
    local = (fk.rotations[body].transpose(-1, -2) @ offset.unsqueeze(-1)).squeeze(-1).numpy()
    per_scale = local / subject.scales[reg.geom.marker_body]
    placed = tuple(
        Marker(m.name, m.body, np.diag(p)) for m, p in zip(model.markers, per_scale, strict=True)
    )
    new_model = dataclasses.replace(model, markers=placed, _cache={})
    return dataclasses.replace(subject, model=new_model, marker_locations=local)


def write_subject_osim(
    reg: Registration, subject: Subject, path: str | Path, name: str | None = None
) -> Path:
    """Write the subject's scaled model, with its placed markers, as ``.osim`` (atomic).

    The generic model is scaled by OpenSim's ``Model::scale``; the markers are then set to
    ``subject.marker_locations`` in their bodies.
    """
    osim_model = scale_opensim_model(opensim_model(reg.model_path), subject.scales)
    if name:
        osim_model.setName(name)
    markers = osim_model.updMarkerSet()
    for i, location in enumerate(subject.marker_locations):
        marker = markers.get(i)
        vec = opensim().Vec3(*map(float, location))
        marker.set_location(vec)
    osim_model.finalizeConnections()
    return print_model(osim_model, path)


def segment_length_errors_mm(
    reg: Registration, subject: Subject, model: KinematicModel | None = None
) -> np.ndarray:
    """(S,) |length in the scaled model - length between the mesh's regressed joints| (mm).

    Segments join each joint centre to the joint at its parent body's origin, except the
    patellofemoral joints (the patella slides along the femur with the knee angle: not a
    rigid segment). ``model`` is the model to measure (default: the generic model with
    ``subject.scales``; pass a loaded subject ``.osim`` to check the written file).
    """
    if model is None:
        model, scales = reg.model, torch.as_tensor(subject.scales)
    else:
        scales = None
    fk = forward_kinematics(model, torch.tensor(model.defaults), scales)
    joints = fk.joint_centres.numpy()
    pairs = skeleton_segments(reg)
    names = reg.geom.joint_names
    pairs = pairs[[not names[j].startswith("patellofemoral") for j in pairs[:, 1]]]
    skeleton = np.linalg.norm(joints[pairs[:, 0]] - joints[pairs[:, 1]], axis=1)
    mesh = np.linalg.norm(
        subject.rest_joints[pairs[:, 0]] - subject.rest_joints[pairs[:, 1]], axis=1
    )
    return np.abs(skeleton - mesh) * 1000.0
