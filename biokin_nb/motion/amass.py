"""AMASS -> coordinates of the generic model: the posed SMPL-X mesh, virtual markers, IK.

:func:`convert_amass` turns an :class:`~biokin_nb.motion.sources.AmassSequence` into a
:class:`~biokin_nb.osim.coordinates.Motion` in four steps:

1. **Calibration.** The sequence's body shape (its ``betas``) is posed like the generic
   model's default posture (as :func:`biokin_nb.body.markers.default_pose_mesh` does);
   that gives the segment scale factors of the body (the body layer's skeleton from
   landmarks) and the virtual markers' positions at the default posture, which become the
   markers of a calibrated copy of the model (so that marker IK has no systematic marker
   offsets). Each hand gets two more points, SMPL-X's index and little finger base joints:
   the generic marker set has one marker per hand, too few for the forearm's pronation.
2. **Posing.** Per frame, AMASS's local axis-angle rotations are chained down the SMPL-X
   tree into world rotations, carried from AMASS's world (Z up, metres) into OpenSim's
   ground (Y up, X forward; by default turned about the vertical so that the subject
   faces +X at the first frame) and handed to the body layer's SMPL-X backend, which
   returns the virtual markers ``(T, M + 4, 3)``.
3. **IK.** Temporal marker IK of the calibrated, scaled model
   (:func:`biokin_nb.ik.solve_ik`), every coordinate but the pelvis's kept in its range
   (the shoulders' nominal ranges too: of the two Euler-angle solutions of a raised arm
   they keep the anatomical one), started from the default posture moved and turned with
   the pelvis markers, the radius markers down-weighted (SMPL-X's forearm skin does not
   follow pronation: :func:`marker_weights`).
4. **Resampling** to the dataset rate (60 fps).

Only SMPL-X sequences are supported: the body layer has no SMPL+H backend (AMASS also
ships SMPL-X versions of its datasets). The SMPL-X files are the user's (licensed):
``model_path`` or ``$SMPLX_MODEL_DIR``, as for :class:`biokin_nb.body.SmplxBody`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from biokin_nb.osim import forward_kinematics
from biokin_nb.osim.coordinates import Motion
from biokin_nb.osim.model import KinematicModel, Marker

if TYPE_CHECKING:
    from biokin_nb.body import SmplxBody
    from biokin_nb.ik import IKResult
    from biokin_nb.motion.sources import AmassSequence

# x_ground = AMASS_TO_GROUND @ x_amass: X stays, AMASS's Z (up) becomes Y, AMASS's Y -> -Z.
AMASS_TO_GROUND = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
_CHUNK = 64  # frames posed per forward pass of the mesh
FOREARM_WEIGHT = 0.2  # IK weight of the radius markers (see marker_weights)
# Extra hand points: SMPL-X joint -> the generic body it moves with.
HAND_JOINTS = (
    ("right_index1", "hand_r"),
    ("right_pinky1", "hand_r"),
    ("left_index1", "hand_l"),
    ("left_pinky1", "hand_l"),
)


@dataclass
class AmassConversion:
    """An AMASS sequence as coordinates of the generic model.

    Attributes:
        motion: the coordinates, resampled to the requested rate (``time`` (T,) s from 0,
            ``q`` (T, C) rad / m, model order).
        scales: (B, 3) body scale factors of the sequence's body shape.
        model: the model the IK used: the generic model with its markers moved onto the
            body's virtual markers (scale with ``scales``).
        markers: (N, M + 4, 3) the virtual markers and hand points IK fitted (ground,
            m), at the IK frames, in ``model.marker_names`` order.
        ik: the IK result at the IK frames (every ``stride``-th source frame).
        stride: source frames per IK frame.
    """

    motion: Motion
    scales: np.ndarray
    model: KinematicModel
    markers: np.ndarray
    ik: IKResult
    stride: int

    @property
    def marker_rmse_mm(self) -> np.ndarray:
        """(N,) root mean square marker residual per IK frame (mm)."""
        return 1000.0 * np.sqrt(np.nanmean(self.ik.marker_residuals**2, axis=1))


def convert_amass(
    sequence: AmassSequence,
    model: KinematicModel,
    *,
    fps: float = 60.0,
    model_path: str | Path | None = None,
    heading: Literal["first_frame", "keep"] = "first_frame",
    recentre: bool = True,
    smoothness: float = 1e-3,
    max_iterations: int = 50,
) -> AmassConversion:
    """Coordinates of the generic ``model`` following an AMASS SMPL-X ``sequence``.

    Args:
        sequence: the AMASS motion (:func:`~biokin_nb.motion.sources.read_amass`).
        model: the generic model (its markers are the virtual markers' names).
        fps: output rate (Hz); IK runs on every ``max(1, floor(source fps / fps))``-th
            source frame and the result is resampled to ``fps``.
        model_path: the SMPL-X folder or file (default ``$SMPLX_MODEL_DIR``). The file
            of the sequence's gender is used, else the neutral one (with a warning).
        heading: "first_frame" turns the motion about the vertical so that the pelvis
            faces +X at the first frame; "keep" keeps AMASS's horizontal axes (X stays X).
        recentre: move the motion horizontally so the first frame's pelvis is above the
            origin (the height is kept: AMASS's floor is z = 0).
        smoothness: temporal IK weight on squared first differences (see ``solve_ik``).
        max_iterations: Levenberg-Marquardt iterations of the IK.

    Raises:
        ValueError: an SMPL+H sequence (no SMPL+H backend), a model the body layer cannot
            lay into the mesh (not the generic model's joints), bad ``fps`` or ``heading``.
        FileNotFoundError: no SMPL-X model file (the message says where it looked).
    """
    from biokin_nb.ik import solve_ik

    _check_arguments(sequence, fps, heading)
    body = _smplx_body(model_path, sequence.gender, len(sequence.betas))
    shape = _shape(body, sequence.betas)
    calibrated, scales, point_ids = calibrate(body, model, shape)
    stride = max(1, int(np.floor(sequence.fps / fps + 1e-9)))
    frames = np.arange(0, sequence.n_frames, stride)
    markers = posed_markers(body, shape, sequence, frames, point_ids, heading, recentre)
    ik = solve_ik(
        _clamp_joints(calibrated),
        markers,
        marker_names=calibrated.marker_names,
        weights=marker_weights(calibrated),
        scales=scales,
        mode="temporal" if len(frames) >= 2 else "frame",
        smoothness=smoothness,
        max_iterations=max_iterations,
        time=frames / sequence.fps,
        init=initial_guess(calibrated, scales, markers),
    )
    bounded = _clamp_joints(model)
    q = _within_ranges(bounded, ik.q)
    motion = Motion(ik.time - ik.time[0], q, list(model.coordinate_names))
    if len(frames) >= 2:
        from biokin_nb.motion.sources import resample

        motion = resample(motion, fps, rotational=model.rotational)
        motion.q = _within_ranges(bounded, motion.q)
    return AmassConversion(motion, scales, calibrated, markers, ik, stride)


def _check_arguments(sequence: AmassSequence, fps: float, heading: str) -> None:
    if sequence.model_type != "smplx":
        source = f" ({sequence.source})" if sequence.source else ""
        raise ValueError(
            f"the AMASS sequence{source} holds SMPL+H parameters; biokin_nb poses SMPL-X "
            "meshes only (no SMPL+H backend). Use the SMPL-X release of the same AMASS "
            "dataset (AMASS offers 'SMPL-X N' / 'SMPL-X G' downloads of every subset)."
        )
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive; got {fps!r}")
    if heading not in ("first_frame", "keep"):
        raise ValueError(f"heading must be 'first_frame' or 'keep'; got {heading!r}")


def _smplx_body(model_path: str | Path | None, gender: str, n_betas: int) -> SmplxBody:
    """The SMPL-X body of ``gender``, else the neutral one (warned)."""
    from biokin_nb.body import SmplxBody

    kwargs = {"model_path": model_path, "num_betas": n_betas, "dtype": torch.float64}
    try:
        return SmplxBody(gender=gender, **kwargs)
    except FileNotFoundError:
        if gender == "neutral":
            raise
        body = SmplxBody(gender="neutral", **kwargs)
        warnings.warn(
            f"no {gender} SMPL-X model next to {body.path}; posing the {gender} AMASS "
            "sequence with the neutral model",
            stacklevel=3,
        )
        return body


def _shape(body: SmplxBody, betas: np.ndarray) -> torch.Tensor:
    """(S,) the body's shape coefficients from AMASS ``betas`` (cut or zero-padded)."""
    shape = torch.zeros(len(body.shape_names), dtype=torch.float64)
    n = min(len(shape), len(betas))
    shape[:n] = torch.as_tensor(betas[:n])
    return shape


def calibrate(
    body: SmplxBody, model: KinematicModel, shape: torch.Tensor
) -> tuple[KinematicModel, np.ndarray, np.ndarray]:
    """The model's markers placed on the body of ``shape`` (S,) at the default posture.

    Besides the generic markers (one mesh vertex each), each hand gets two points at
    SMPL-X's index and little finger base joints (``HAND_JOINTS``): the generic set has one
    marker per hand, which leaves the forearm's pronation unobserved.

    Returns:
        The calibrated model (the generic markers, then the hand points, with locations
        per unit scale), the (B, 3) scale factors and the (M + H,) mesh point ids: vertex
        indices of the generic markers, then SMPL-X joint indices of the hand points.
    """
    from biokin_nb.body.markers import build_marker_table
    from biokin_nb.body.rig import rig_for
    from biokin_nb.body.skeleton import (
        generic_geometry,
        pose_from_body_rotations,
        rest_skeleton,
        target_keypoints,
    )

    geom = generic_geometry(model)
    rig = rig_for(body.kind, body.bone_names)
    table = build_marker_table(body, rig, geom)
    joint_ids = [body.bone_index(name) for name, _ in HAND_JOINTS]
    with torch.no_grad():
        rest = rest_skeleton(body, rig, geom, shape)
        eye = torch.eye(3, dtype=body.dtype).expand(len(geom.body_names), 3, 3)
        pose = pose_from_body_rotations(rig, body, geom, rest, eye, rest.landmarks["midhip"])
        out = body.forward(shape, pose)
        keypoints = target_keypoints(rig, body, geom, rest, out).double()
    scales = rest.scales.double().numpy()
    fk = forward_kinematics(model, torch.tensor(model.defaults), torch.tensor(scales))
    n_joints = len(geom.joint_names)
    offset = (keypoints[:n_joints] - fk.keypoints[:n_joints]).mean(0)
    points = torch.cat(
        [out.vertices[torch.as_tensor(table.vertices)], out.joints[joint_ids]]
    ).double()
    bodies = np.concatenate(
        [geom.marker_body, [model.body_names.index(b) for _, b in HAND_JOINTS]]
    ).astype(np.int64)
    index = torch.as_tensor(bodies)
    local = fk.rotations[index].transpose(-1, -2) @ (
        points - offset - fk.positions[index]
    ).unsqueeze(-1)
    per_scale = local.squeeze(-1).numpy() / scales[bodies]
    names = list(model.marker_names) + [f"smplx_{name}" for name, _ in HAND_JOINTS]
    placed = tuple(
        Marker(n, int(b), np.diag(p)) for n, b, p in zip(names, bodies, per_scale, strict=True)
    )
    ids = np.concatenate([table.vertices, joint_ids]).astype(np.int64)
    return dataclasses.replace(model, markers=placed, _cache={}), scales, ids


def world_rotations(sequence: AmassSequence, frames: np.ndarray, parents) -> torch.Tensor:
    """(N, 55, 3, 3) SMPL-X joint rotations in AMASS's world at ``frames`` (N,)."""
    from biokin_nb.body.frames import rotvec_to_matrix

    poses = torch.as_tensor(sequence.poses[frames]).reshape(len(frames), -1, 3)
    local = rotvec_to_matrix(poses)
    world = [local[:, 0]]
    for joint in range(1, local.shape[1]):
        world.append(world[parents[joint]] @ local[:, joint])
    return torch.stack(world, dim=1)


def ground_transform(first_root: torch.Tensor, heading: str) -> torch.Tensor:
    """(3, 3) AMASS world -> ground: Z up becomes Y up; with ``heading="first_frame"``
    also turned about Y so that the first frame's root (3, 3) faces +X."""
    axes = torch.as_tensor(AMASS_TO_GROUND)
    if heading == "keep":
        return axes
    facing = axes @ first_root @ torch.tensor([0.0, 0.0, 1.0], dtype=axes.dtype)
    yaw = torch.atan2(-facing[2], facing[0])  # facing = (cos, ., -sin) of yaw
    c, s = torch.cos(-yaw), torch.sin(-yaw)
    turn = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=axes.dtype)
    return turn @ axes


def posed_markers(
    body: SmplxBody,
    shape: torch.Tensor,
    sequence: AmassSequence,
    frames: np.ndarray,
    point_ids: np.ndarray,
    heading: str = "first_frame",
    recentre: bool = True,
) -> np.ndarray:
    """(N, M + H, 3) virtual markers (ground, m) of the mesh posed by ``sequence`` at
    ``frames``: ``point_ids`` are M vertex indices then the H = len(``HAND_JOINTS``) SMPL-X
    joint indices of :func:`calibrate`.

    A SMPL-X world rotation ``W`` (AMASS axes) becomes ``A W C^T`` in the body layer's
    ground convention (``A`` AMASS -> ground, ``C`` SMPL-X native -> ground), and the
    root joint sits at ``A (J_0 + trans)``, as AMASS's own SMPL-X forward pass puts it.
    """
    from biokin_nb.body import BodyPose
    from biokin_nb.body.frames import SMPLX_TO_GROUND

    world = world_rotations(sequence, frames, body.bone_parents)
    to_ground = ground_transform(world[0, 0], heading)
    native = torch.tensor(SMPLX_TO_GROUND, dtype=torch.float64)
    rotations = to_ground @ world @ native.T
    with torch.no_grad():
        rest_root = body.rest(shape)["joints"][0, 0].double()
    roots = (torch.as_tensor(sequence.trans[frames]) + rest_root) @ to_ground.T
    if recentre:
        roots[:, [0, 2]] -= roots[0, [0, 2]].clone()
    ids = torch.as_tensor(point_ids[: len(point_ids) - len(HAND_JOINTS)], dtype=torch.long)
    joints = torch.as_tensor(point_ids[len(ids) :], dtype=torch.long)
    out = []
    with torch.no_grad():
        for start in range(0, len(frames), _CHUNK):
            part = slice(start, start + _CHUNK)
            pose = BodyPose(rotations[part].to(body.dtype), roots[part].to(body.dtype))
            posed = body.forward(shape, pose, vertex_ids=ids)
            out.append(torch.cat([posed.vertices, posed.joints[:, joints]], 1).double())
    return torch.cat(out).numpy()


def marker_weights(model: KinematicModel) -> np.ndarray:
    """(M,) IK weights: 1, but ``FOREARM_WEIGHT`` for the radius markers. SMPL-X has no
    forearm twist bone: its forearm skin follows the elbow, not the pronation, so the
    radius markers on it pull the pronation towards zero; the hand points carry it."""
    radius = [model.body_names.index(b) for b in ("radius_r", "radius_l")]
    return np.array([FOREARM_WEIGHT if m.body in radius else 1.0 for m in model.markers])


def initial_guess(model: KinematicModel, scales: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """(N, C) IK start: the default posture carried by the pelvis markers' rigid motion.

    Per frame, the pelvis translation and heading (``pelvis_rotation``, about Y) that best
    map the pelvis markers of the default posture onto the observed ones (least squares in
    the horizontal plane); without this, a body far from the origin or facing backwards
    can send the IK to a mirrored local minimum.
    """
    names = model.coordinate_names
    q = np.tile(model.defaults, (len(markers), 1))
    pelvis = [i for i, m in enumerate(model.markers) if m.body == 0]
    if len(pelvis) < 2 or not {"pelvis_rotation", "pelvis_tx"} <= set(names):
        return q
    fk = forward_kinematics(model, torch.tensor(model.defaults), torch.as_tensor(scales))
    rest = fk.markers[pelvis].numpy()
    observed = markers[:, pelvis]
    rest_c = rest.mean(0)
    a = rest[:, [0, 2]] - rest_c[[0, 2]]
    b = observed[:, :, [0, 2]] - observed[:, :, [0, 2]].mean(1, keepdims=True)
    # R_y(yaw) maps (x, z) to (x cos + z sin, -x sin + z cos): maximise the alignment.
    cross = np.einsum("k,nk->n", a[:, 1], b[..., 0]) - np.einsum("k,nk->n", a[:, 0], b[..., 1])
    dot = np.einsum("k,nk->n", a[:, 0], b[..., 0]) + np.einsum("k,nk->n", a[:, 1], b[..., 1])
    yaw = np.arctan2(cross, dot)
    origin = fk.positions[0].numpy()
    c, s = np.cos(yaw), np.sin(yaw)
    d = rest_c - origin  # pelvis origin -> marker centroid at the default posture
    offset = np.stack([c * d[0] + s * d[2], np.full_like(c, d[1]), -s * d[0] + c * d[2]], 1)
    q[:, names.index("pelvis_rotation")] = yaw
    for axis, name in enumerate(("pelvis_tx", "pelvis_ty", "pelvis_tz")):
        q[:, names.index(name)] += observed.mean(1)[:, axis] - offset[:, axis] - origin[axis]
    return q


def _clamp_joints(model: KinematicModel) -> KinematicModel:
    """``model`` with every coordinate but the pelvis's (the free body's pose) clamped to
    its range for IK: the shoulders' nominal ranges pick, of the two Euler-angle solutions
    of a raised arm, the anatomical one (free, the IK can settle in the other)."""
    coordinates = tuple(
        c
        if c.clamped or c.joint == model.coordinates[0].joint
        else dataclasses.replace(c, clamped=True)
        for c in model.coordinates
    )
    return dataclasses.replace(model, coordinates=coordinates, _cache={})


def _within_ranges(model: KinematicModel, q: np.ndarray) -> np.ndarray:
    """``q`` (T, C) with clamped coordinates clipped into their ranges (IK keeps them
    inside up to round-off; resampling can overshoot)."""
    clamped = np.array([c.clamped for c in model.coordinates])
    low = np.where(clamped, model.ranges[:, 0], -np.inf)
    high = np.where(clamped, model.ranges[:, 1], np.inf)
    return np.clip(q, low, high)
