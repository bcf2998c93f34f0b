"""Fit the body mesh to a skeleton's motion: all frames at once, batched in torch.

Given a :class:`~biokin_nb.body.subject.Subject` and a coordinate sequence (T, C) of the
generic model, the skeleton's joint centres and markers come from the torch forward
kinematics with the subject's scales. The mesh is first posed from the skeleton's body
orientations (:func:`~biokin_nb.body.skeleton.pose_from_body_rotations`, the warm start),
then a small rotation per body and frame and a root offset per frame (and optionally the
shape, shared by all frames) are optimized with L-BFGS so that the mesh's regressed joint
centres and virtual markers follow the skeleton's. Only the vertices the regressor and the
markers read are skinned during the optimization.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from biokin_nb.body.frames import rotvec_to_matrix
from biokin_nb.body.model import BodyPose, require_body_model
from biokin_nb.body.registration import Registration
from biokin_nb.body.skeleton import pose_from_body_rotations, rest_skeleton
from biokin_nb.osim import forward_kinematics
from biokin_nb.osim.coordinates import Motion

if TYPE_CHECKING:
    from biokin_nb.body.subject import Subject


@dataclass
class FitConfig:
    """Settings of :func:`fit_motion`.

    Attributes:
        iterations: L-BFGS iterations (each up to 25 function evaluations).
        joint_weight, marker_weight: weights of the squared joint-centre and marker
            residuals (m^2).
        rotation_weight: weight of the squared body rotation corrections (rad^2).
        fit_shape: also fit the shape (one for all frames, kept inside its range).
        chunk_frames: frames solved together (frames are independent without
            ``fit_shape``; chunks bound the memory and keep L-BFGS converging per frame).
        dtype: computation dtype.
    """

    iterations: int = 30
    joint_weight: float = 1.0
    marker_weight: float = 1.0
    rotation_weight: float = 1e-4
    fit_shape: bool = False
    chunk_frames: int = 240
    dtype: torch.dtype = torch.float32


@dataclass
class FitResult:
    """The fitted mesh motion and its residuals against the skeleton (T frames).

    Attributes:
        time: (T,) s.
        coordinates: (T, C) the skeleton's coordinates (rad, m), the model's order.
        shape: (S,) the mesh shape (fitted when ``fit_shape``).
        pose: the mesh pose per frame (batch (T,)).
        mesh_joints, skeleton_joints: (T, J, 3) regressed and skeleton joint centres (m).
        mesh_markers, skeleton_markers: (T, M, 3) virtual and skeleton markers (m).
        skeleton_rotations: (T, B, 3, 3) the skeleton's body orientations.
        seconds: wall time of the optimization (s).
    """

    time: np.ndarray
    coordinates: np.ndarray
    shape: torch.Tensor
    pose: BodyPose
    mesh_joints: torch.Tensor
    skeleton_joints: torch.Tensor
    mesh_markers: torch.Tensor
    skeleton_markers: torch.Tensor
    skeleton_rotations: torch.Tensor
    seconds: float

    @property
    def joint_error_mm(self) -> np.ndarray:
        """(T, J) joint-centre residuals (mm)."""
        return _distance_mm(self.mesh_joints, self.skeleton_joints)

    @property
    def marker_error_mm(self) -> np.ndarray:
        """(T, M) marker residuals (mm)."""
        return _distance_mm(self.mesh_markers, self.skeleton_markers)

    @property
    def frame_joint_mm(self) -> np.ndarray:
        """(T,) mean joint-centre residual per frame (mm)."""
        return self.joint_error_mm.mean(1)

    @property
    def frame_marker_mm(self) -> np.ndarray:
        """(T,) mean marker residual per frame (mm)."""
        return self.marker_error_mm.mean(1)

    @property
    def frame_max_mm(self) -> np.ndarray:
        """(T,) largest single joint or marker residual per frame (mm)."""
        return np.maximum(self.joint_error_mm.max(1), self.marker_error_mm.max(1))

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / len(self.time)

    def summary(self) -> dict[str, float]:
        """Mean joint and marker residuals, the worst frame's means, the largest single
        residual (mm) and the time per frame (ms)."""
        return {
            "joint_mean_mm": float(self.joint_error_mm.mean()),
            "marker_mean_mm": float(self.marker_error_mm.mean()),
            "worst_frame_joint_mm": float(self.frame_joint_mm.max()),
            "worst_frame_marker_mm": float(self.frame_marker_mm.max()),
            "max_point_mm": float(self.frame_max_mm.max()),
            "ms_per_frame": self.ms_per_frame,
        }

    def vertices(self, reg: Registration, frames: slice | list[int] | None = None) -> torch.Tensor:
        """(T', V, 3) the fitted meshes of ``frames`` (default all)."""
        index = slice(None) if frames is None else frames
        pose = BodyPose(self.pose.rotations[index], self.pose.root[index])
        with torch.no_grad():
            return reg.body(self.shape, pose).vertices


def _distance_mm(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return ((a - b).norm(dim=-1) * 1000.0).detach().cpu().double().numpy()


def coordinates_of(reg: Registration, motion: Motion | np.ndarray | torch.Tensor) -> np.ndarray:
    """(T, C) coordinates in the generic model's order from a Motion or an array.

    Raises:
        KeyError: the motion's coordinates are not the model's (names the difference).
        ValueError: an array without C columns.
    """
    names = reg.model.coordinate_names
    if isinstance(motion, Motion):
        if list(motion.coordinate_names) != names:
            missing = [n for n in names if n not in motion.coordinate_names]
            extra = [n for n in motion.coordinate_names if n not in names]
            raise KeyError(
                f"the motion's coordinates are not those of model {reg.model.name!r} "
                f"(missing: {', '.join(missing) or 'none'}; not in the model: "
                f"{', '.join(extra) or 'none'}); read it for this model with "
                "read_motion(model, path, extra='ignore')"
            )
        return motion.q
    q = np.asarray(motion.detach().cpu() if isinstance(motion, torch.Tensor) else motion)
    if q.ndim != 2 or q.shape[1] != len(names):
        raise ValueError(
            f"coordinates must have shape (T, {len(names)}) for model {reg.model.name!r}; "
            f"got {q.shape}"
        )
    return q


def fit_motion(
    reg: Registration,
    subject: Subject,
    motion: Motion | np.ndarray | torch.Tensor,
    config: FitConfig | None = None,
) -> FitResult:
    """Fit the mesh of ``subject`` to the skeleton moving through ``motion``.

    Args:
        reg: the body model's registration.
        subject: a :class:`~biokin_nb.body.subject.Subject` (shape, scales, model).
        motion: a Motion of the generic model, or coordinates (T, C) in its order.
        config: optimization settings (default :class:`FitConfig`).
    """
    require_body_model(reg.body)
    config = config or FitConfig()
    q = torch.as_tensor(coordinates_of(reg, motion), dtype=torch.float64)
    times = motion.time if isinstance(motion, Motion) else np.arange(len(q), dtype=float)
    target = _skeleton_targets(reg, subject, q, config.dtype)
    step = len(q) if config.fit_shape else max(1, config.chunk_frames)
    start = time.perf_counter()
    parts = [
        _fit_chunk(reg, subject, target, slice(i, i + step), config) for i in range(0, len(q), step)
    ]
    seconds = time.perf_counter() - start
    return FitResult(
        time=np.asarray(times, dtype=float),
        coordinates=q.numpy(),
        shape=parts[0]["shape"],
        pose=BodyPose(
            torch.cat([p["pose"].rotations for p in parts]),
            torch.cat([p["pose"].root for p in parts]),
        ),
        mesh_joints=torch.cat([p["joints"] for p in parts]),
        skeleton_joints=target["joints"],
        mesh_markers=torch.cat([p["markers"] for p in parts]),
        skeleton_markers=target["markers"],
        skeleton_rotations=target["rotations"],
        seconds=seconds,
    )


def _fit_chunk(reg: Registration, subject: Subject, target: dict, frames: slice, config) -> dict:
    """Solve the frames ``frames`` of ``target``; their pose, shape, joints and markers."""
    problem = _Problem(reg, subject, {k: v[frames] for k, v in target.items()}, config)
    problem.solve()
    with torch.no_grad():
        pose, shape = problem.pose()
        joints, markers = problem.mesh_points(pose, shape)
    return {
        "pose": BodyPose(pose.rotations.detach(), pose.root.detach()),
        "shape": shape.detach(),
        "joints": joints,
        "markers": markers,
    }


def _skeleton_targets(reg: Registration, subject: Subject, q: torch.Tensor, dtype) -> dict:
    """Joint centres (T, J, 3), markers (T, M, 3) and body orientations (T, B, 3, 3)."""
    fk = forward_kinematics(subject.model, q, torch.as_tensor(subject.scales))
    names = reg.geom.joint_names
    hips = fk.joint_centres[:, [names.index("hip_r"), names.index("hip_l")]]
    return {
        "joints": fk.joint_centres.to(dtype),
        "markers": fk.markers.to(dtype),
        "rotations": fk.rotations.to(dtype),
        "midhip": hips.mean(1).to(dtype),
    }


class _Problem:
    """The optimization state: body corrections (T, B, 3), root offsets (T, 3), shape."""

    def __init__(
        self, reg: Registration, subject: Subject, target: dict, config: FitConfig
    ) -> None:
        self.reg, self.target, self.config = reg, target, config
        n_frames, n_bodies = target["rotations"].shape[:2]
        self.support = reg.support()
        self.reg_cols = torch.searchsorted(self.support, torch.as_tensor(reg.regressor.support))
        self.marker_cols = torch.searchsorted(self.support, torch.as_tensor(reg.markers.vertices))
        weights = torch.as_tensor(reg.regressor.weights[: reg.n_joints], dtype=config.dtype)
        self.joint_weights = weights
        self.correction = torch.zeros(n_frames, n_bodies, 3, dtype=config.dtype, requires_grad=True)
        self.offset = torch.zeros(n_frames, 3, dtype=config.dtype, requires_grad=True)
        shape = torch.as_tensor(subject.shape, dtype=config.dtype)
        lo, hi = (torch.as_tensor(reg.body.shape_ranges[:, i], dtype=config.dtype) for i in (0, 1))
        self.shape_lo, self.shape_span = lo, hi - lo
        unit = ((shape - lo) / self.shape_span).clamp(1e-3, 1 - 1e-3)
        self.shape_logit = torch.logit(unit).requires_grad_(config.fit_shape)
        self._rest = None if config.fit_shape else self._rest_skeleton(shape)

    def _shape(self) -> torch.Tensor:
        return self.shape_lo + self.shape_span * torch.sigmoid(self.shape_logit)

    def _rest_skeleton(self, shape: torch.Tensor):
        return rest_skeleton(self.reg.body, self.reg.rig, self.reg.geom, shape)

    def pose(self) -> tuple[BodyPose, torch.Tensor]:
        shape = self._shape()
        rest = self._rest if self._rest is not None else self._rest_skeleton(shape)
        rotations = rotvec_to_matrix(self.correction) @ self.target["rotations"]
        midhip = self.target["midhip"] + self.offset
        reg = self.reg
        return pose_from_body_rotations(reg.rig, reg.body, reg.geom, rest, rotations, midhip), shape

    def mesh_points(self, pose: BodyPose, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Regressed joint centres (T, J, 3) and virtual markers (T, M, 3) of a pose."""
        out = self.reg.body(shape, pose, vertex_ids=self.support)
        joints = self.joint_weights @ out.vertices[:, self.reg_cols]
        return joints, out.vertices[:, self.marker_cols]

    def loss(self) -> torch.Tensor:
        pose, shape = self.pose()
        joints, markers = self.mesh_points(pose, shape)
        c = self.config
        n = len(joints)
        value = c.joint_weight * (joints - self.target["joints"]).square().sum() / n
        if c.marker_weight > 0:
            value = value + c.marker_weight * (markers - self.target["markers"]).square().sum() / n
        return value + c.rotation_weight * self.correction.square().sum() / n

    def solve(self) -> None:
        params = [self.correction, self.offset] + (
            [self.shape_logit] if self.config.fit_shape else []
        )
        optimizer = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=self.config.iterations,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-10,
            tolerance_change=1e-12,
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            value = self.loss()
            value.backward()
            return value

        optimizer.step(closure)
