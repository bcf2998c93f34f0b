"""Baseline: KinePose's IK formulation, SciPy SLSQP frame by frame with range-of-motion bounds.

KinePose (Gildea et al., IMVIP 2022) fits a kinematic chain to a position-based 3D pose
by matching *link directions*, which leaves out segment lengths. For each frame ``t``::

    L_t(q) = mean_l angle(u_l(q), v_lt)

the mean absolute angle (rad) between the model's unit link directions ``u_l`` and the
observed ones ``v_lt``, over links ``l = (a, b)`` between named points (the direction from
``a`` to ``b``): local links (parent -> child along the chain) plus "global" root-to-point
vectors. It is minimized with ``scipy.optimize.minimize(method="SLSQP")`` under box bounds
(the model's ranges of motion for clamped coordinates), frame after frame, each frame
started from the previous frame's solution (``warm_start``).

Unknowns: the unlocked, independent coordinates, except translations of joints to ground:
a direction is blind to where the body is. Once the orientations are solved, those
translations are set so that the centroid of the model's points matches the centroid of
the observed ones in each frame (least squares over the translation axes). Couplers are
applied, locked coordinates keep their defaults. Points are evaluated with the project's
forward kinematics (:func:`biokin_nb.osim.forward_kinematics`, float64).

Gradients are forward differences, with SciPy's step rule. ``gradient="batched"``
(default) puts the ``n + 1`` poses of one gradient through one batched FK call, which costs
about as much as one pose; ``gradient="scipy"`` leaves them to SciPy, one FK call per pose,
which is what KinePose's code does (SciPy's ``minimize`` without ``jac``).
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.optimize
import torch

from biokin_nb.ik.solver import IKResult
from biokin_nb.osim.fk import apply_coupler_constraints, forward_kinematics
from biokin_nb.osim.model import GROUND, KinematicModel

Gradient = Literal["batched", "scipy"]
_MIN_LENGTH_M = 1e-9  # a link shorter than this is not observed
_FD_STEP = float(np.sqrt(np.finfo(np.float64).eps))  # SciPy's forward-difference step


@dataclass(frozen=True)
class _Frames:
    """The fixed parts of the problem: unknowns, bounds, links and observed directions."""

    model: KinematicModel
    base: torch.Tensor  # (C,) values of the coordinates that are not unknowns
    free: np.ndarray  # (n,) indices of the unknowns
    bounds: list[tuple[float | None, float | None]]
    point_index: torch.Tensor  # (P,) keypoint index of each named point
    links: np.ndarray  # (L, 2) indices into the named points
    observed: np.ndarray  # (T, L, 3) unit directions, NaN where unobserved


def solve_slsqp(
    model: KinematicModel,
    keypoints: np.ndarray,
    keypoint_names: Sequence[str],
    links: Sequence[tuple[str, str]],
    *,
    init: np.ndarray | None = None,
    warm_start: bool = True,
    max_iterations: int = 100,
    tolerance: float = 1e-6,
    gradient: Gradient = "batched",
    time: np.ndarray | None = None,
) -> IKResult:
    """KinePose's direction IK, solved with SciPy SLSQP frame by frame (module docstring).

    Args:
        model: the kinematic model.
        keypoints: (T, K, 3) observed positions (m), NaN where missing.
        keypoint_names: the ``K`` names: joint names (joint centres), ``<body>_com`` or
            markers of ``model``.
        links: pairs ``(a, b)`` of keypoint names; the direction from ``a`` to ``b`` is fitted.
        init: (C,) starting coordinates of the first frame (rad, m); default the defaults.
            Locked coordinates keep their defaults whatever ``init`` says.
        warm_start: start each frame from the previous frame's solution; False: every
            frame from ``init``.
        max_iterations: SLSQP iterations per frame (SciPy's default 100).
        tolerance: SLSQP's ``ftol`` on the objective (rad; SciPy's default 1e-6).
        gradient: forward differences in one batched FK call (``"batched"``) or SciPy's
            own, one FK call per unknown (``"scipy"``, as KinePose).
        time: (T,) s (default: frame index).

    Returns:
        An :class:`IKResult`: ``cost`` (T,) is the objective ``L_t`` (rad),
        ``marker_residuals`` (T, L) the angle of each link (rad), ``iterations`` the most
        any frame took, ``converged`` SLSQP's success flag per frame.

    Raises:
        KeyError: keypoint or link names the model (or ``keypoint_names``) lacks.
        ValueError: wrong shapes, no frames, nothing observed, or bad settings.
    """
    start = _time.perf_counter()
    if gradient not in ("batched", "scipy"):
        raise ValueError(f"gradient must be 'batched' or 'scipy', got {gradient!r}")
    if max_iterations < 1 or not tolerance > 0:
        raise ValueError("max_iterations must be >= 1 and tolerance > 0")
    problem = _problem(model, keypoints, keypoint_names, links, init)
    stamp = _time_stamps(time, problem.observed.shape[0])
    q, iterations, converged = _solve_frames(
        problem, warm_start, max_iterations, tolerance, gradient
    )
    q = _place_root(problem, q, np.asarray(keypoints, dtype=np.float64))
    angles = _link_angles(problem, q)
    return IKResult(
        time=stamp,
        q=q,
        coordinate_names=model.coordinate_names,
        marker_names=[f"{keypoint_names[a]}->{keypoint_names[b]}" for a, b in problem.links],
        marker_residuals=angles,
        cost=np.nanmean(angles, axis=1),
        iterations=iterations,
        wall_time_s=_time.perf_counter() - start,
        converged=converged,
        mode="frame",
    )


def marker_links(model: KinematicModel, names: Sequence[str]) -> list[tuple[str, str]]:
    """KinePose's links for markers: local and global, unique.

    Each body with observed markers has an anchor, its first marker in ``names``. Local
    links join the anchor of the nearest ancestor body with markers to a body's anchor,
    and a body's anchor to its other markers; global links join the root body's anchor
    (the first body in tree order that has markers) to every other marker.

    Raises:
        KeyError: names that are not markers of ``model``.
    """
    unknown = [n for n in names if n not in model.marker_names]
    if unknown:
        raise KeyError(f"not markers of model {model.name!r}: {', '.join(unknown)}")
    body_of = {m.name: m.body for m in model.markers}
    anchors: dict[int, str] = {}
    for name in names:
        anchors.setdefault(body_of[name], name)
    order = [j.child_body for j in model.joints if j.child_body in anchors]
    if not order:
        raise ValueError("give at least two markers on bodies of the model")
    links = []
    for body in order[1:]:
        parent = model.bodies[body].parent
        while parent != GROUND and parent not in anchors:
            parent = model.bodies[parent].parent
        if parent != GROUND:
            links.append((anchors[parent], anchors[body]))
    links += [(anchors[body_of[n]], n) for n in names if n != anchors[body_of[n]]]
    root = anchors[order[0]]
    links += [(root, n) for n in names if n != root]
    return list(dict.fromkeys(links))


# --------------------------------------------------------------------------- the problem


def _problem(
    model: KinematicModel,
    keypoints: np.ndarray,
    names: Sequence[str],
    links: Sequence[tuple[str, str]],
    init: np.ndarray | None,
) -> _Frames:
    data = np.asarray(keypoints, dtype=np.float64)
    if data.ndim != 3 or data.shape[-1] != 3 or data.shape[1] != len(names):
        raise ValueError(f"keypoints must have shape (T, K={len(names)}, 3) in m; got {data.shape}")
    if data.shape[0] == 0:
        raise ValueError("no frames to solve (T = 0)")
    pairs = _link_pairs(names, links)
    observed = _unit_directions(data, pairs)
    if np.isnan(observed).all():
        raise ValueError("no link is observed in any frame: nothing to fit (fill gaps first)")
    base = _initial(model, init)
    free = _unknowns(model)
    ranges = model.ranges
    clamped = np.array([c.clamped for c in model.coordinates])
    bounds = [(ranges[i, 0], ranges[i, 1]) if clamped[i] else (None, None) for i in free]
    for k, i in enumerate(free):  # start inside the bounds
        lo, hi = bounds[k]
        base[i] = np.clip(base[i], -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return _Frames(
        model=model,
        base=torch.as_tensor(base),
        free=free,
        bounds=bounds,
        point_index=torch.as_tensor(_point_indices(model, names)),
        links=pairs,
        observed=observed,
    )


def _link_pairs(names: Sequence[str], links: Sequence[tuple[str, str]]) -> np.ndarray:
    if len(links) == 0:
        raise ValueError("give links: pairs (a, b) of keypoint names")
    absent = sorted({n for pair in links for n in pair if n not in names})
    if absent:
        raise KeyError(f"link ends not among keypoint_names: {', '.join(absent)}")
    names = list(names)
    return np.array([[names.index(a), names.index(b)] for a, b in links])


def _unit_directions(points: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(T, L, 3) unit vectors from ``a`` to ``b``; NaN where missing or degenerate."""
    d = points[:, pairs[:, 1]] - points[:, pairs[:, 0]]
    length = np.linalg.norm(d, axis=-1, keepdims=True)
    return np.where(length > _MIN_LENGTH_M, d / np.where(length > 0, length, 1.0), np.nan)


def _initial(model: KinematicModel, init: np.ndarray | None) -> np.ndarray:
    """(C,) ``init`` (default: the defaults) with locked coordinates at their defaults."""
    q0 = model.defaults.copy() if init is None else np.array(init, dtype=np.float64)
    if q0.shape != (model.n_coordinates,) or not np.all(np.isfinite(q0)):
        raise ValueError(
            f"init must be ({model.n_coordinates},) finite coordinates; got {q0.shape}"
        )
    return np.where(model.locked, model.defaults, q0)


def _unknowns(model: KinematicModel) -> np.ndarray:
    """Unlocked independent coordinates, less translations of joints to ground."""
    to_ground = {j.name for j in model.joints if j.parent_body == GROUND}
    keep = [
        i
        for i, c in enumerate(model.coordinates)
        if not c.locked
        and not model.dependent[i]
        and not (c.motion == "translational" and c.joint in to_ground)
    ]
    if not keep:
        raise ValueError(f"model {model.name!r} has no unlocked coordinate to solve")
    return np.array(keep)


def _point_indices(model: KinematicModel, names: Sequence[str]) -> list[int]:
    """Index of each name among the model's keypoints, then markers (after them)."""
    keypoints, markers = model.keypoint_names, model.marker_names
    unknown = [n for n in names if n not in keypoints and n not in markers]
    if unknown:
        raise KeyError(
            f"points not in model {model.name!r}: {', '.join(unknown)} (give joint names, "
            "'<body>_com' or marker names)"
        )
    return [
        keypoints.index(n) if n in keypoints else len(keypoints) + markers.index(n) for n in names
    ]


def _time_stamps(time: np.ndarray | None, n_frames: int) -> np.ndarray:
    if time is None:
        return np.arange(n_frames, dtype=np.float64)
    stamp = np.asarray(time, dtype=np.float64)
    if stamp.shape != (n_frames,):
        raise ValueError(f"time must have shape ({n_frames},) in s; got {stamp.shape}")
    return stamp


def _solve_frames(
    problem: _Frames, warm_start: bool, max_iterations: int, tolerance: float, gradient: Gradient
) -> tuple[np.ndarray, int, np.ndarray]:
    """SLSQP frame after frame: coordinates (T, C), the most iterations any frame took and
    SciPy's success flag per frame (T,)."""
    start = problem.base[problem.free].numpy()
    x, q, iterations, converged = start.copy(), [], 0, []
    for t in range(problem.observed.shape[0]):
        res = _solve_frame(
            problem, t, x if warm_start else start, max_iterations, tolerance, gradient
        )
        x = res.x
        q.append(_coordinates(problem, torch.as_tensor(x)).numpy())
        iterations = max(iterations, int(res.nit))
        converged.append(bool(res.success))
    return np.stack(q), iterations, np.array(converged)


def _place_root(problem: _Frames, q: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(T, C) ``q`` with the translations of joints to ground moved so that the model's
    point centroid meets the observed one (over the points seen in each frame)."""
    movers = _root_translations(problem.model)
    if len(movers) == 0:
        return q
    seen = ~np.isnan(observed).any(-1)  # (T, P)
    with torch.no_grad():
        q_t = torch.as_tensor(q)
        base = _points(problem, q_t).numpy()
        axes = []
        for i in movers:  # motion of every point per unit of each translation
            moved = q_t.clone()
            moved[:, i] += 1.0
            axes.append((_points(problem, moved).numpy() - base)[:, 0])
    gap = np.where(seen[..., None], np.nan_to_num(observed) - base, 0.0).sum(1)
    gap /= np.maximum(seen.sum(1), 1)[:, None]  # (T, 3)
    matrix = np.stack(axes, axis=-1)  # (T, 3, K)
    shift = np.stack(
        [np.linalg.lstsq(a, g, rcond=None)[0] for a, g in zip(matrix, gap, strict=True)]
    )
    out = q.copy()
    out[:, movers] += shift
    return out


def _root_translations(model: KinematicModel) -> np.ndarray:
    to_ground = {j.name for j in model.joints if j.parent_body == GROUND}
    return np.array(
        [
            i
            for i, c in enumerate(model.coordinates)
            if c.motion == "translational" and c.joint in to_ground and not c.locked
        ],
        dtype=int,
    )


# --------------------------------------------------------------------------- objective


def _coordinates(problem: _Frames, x: torch.Tensor) -> torch.Tensor:
    """(..., C) all coordinates, couplers applied, from the unknowns (..., n)."""
    q = problem.base.expand(*x.shape[:-1], -1).clone()
    q[..., problem.free] = x
    return apply_coupler_constraints(problem.model, q)


def _points(problem: _Frames, q: torch.Tensor) -> torch.Tensor:
    """(..., P, 3) the model's named points (m) at coordinates ``q`` (..., C)."""
    fk = forward_kinematics(problem.model, q)
    return torch.cat([fk.keypoints, fk.markers], dim=-2)[..., problem.point_index, :]


def _directions(problem: _Frames, q: torch.Tensor) -> torch.Tensor:
    """(..., L, 3) unit model link directions at coordinates ``q`` (..., C)."""
    points = _points(problem, q)
    d = points[..., problem.links[:, 1], :] - points[..., problem.links[:, 0], :]
    return d / d.norm(dim=-1, keepdim=True).clamp_min(_MIN_LENGTH_M)


def _link_angles(problem: _Frames, q: np.ndarray) -> np.ndarray:
    """(T, L) angle (rad) between model and observed link directions, NaN where unobserved."""
    with torch.no_grad():
        u = _directions(problem, torch.as_tensor(q, dtype=torch.float64)).numpy()
    return _angle(u, problem.observed)


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle (rad) between unit vectors (..., 3): ``atan2(|u x v|, u . v)``."""
    return np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), (u * v).sum(-1))


def _mean_angles(problem: _Frames, seen: np.ndarray, v: torch.Tensor, x: np.ndarray) -> np.ndarray:
    """(N,) the objective (mean link angle, rad) at ``N`` poses of the unknowns (N, n)."""
    with torch.no_grad():
        u = _directions(problem, _coordinates(problem, torch.as_tensor(x)))[:, seen]
        sin = torch.linalg.cross(u, v.expand_as(u)).norm(dim=-1)
        return torch.atan2(sin, (u * v).sum(-1)).mean(-1).numpy()


def _objective(problem: _Frames, t: int, gradient: Gradient) -> Callable:
    """Frame ``t``'s objective: ``x -> L_t(x)`` (``"scipy"``), or ``x -> (L_t(x), its
    forward differences)`` with all ``n + 1`` poses in one FK call (``"batched"``)."""
    v = problem.observed[t]
    seen = ~np.isnan(v).any(-1)
    v_t = torch.as_tensor(v[seen])
    upper = np.array([np.inf if hi is None else hi for _, hi in problem.bounds])

    def value(x: np.ndarray) -> float:
        return float(_mean_angles(problem, seen, v_t, x[None])[0])

    def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        step = _FD_STEP * np.maximum(1.0, np.abs(x))
        step = np.where(x + step > upper, -step, step)
        f = _mean_angles(problem, seen, v_t, np.vstack([x, x + np.diag(step)]))
        return float(f[0]), (f[1:] - f[0]) / step

    return value if gradient == "scipy" else value_and_gradient


def _solve_frame(
    problem: _Frames,
    t: int,
    x0: np.ndarray,
    max_iterations: int,
    tolerance: float,
    gradient: Gradient,
) -> scipy.optimize.OptimizeResult:
    return scipy.optimize.minimize(
        _objective(problem, t, gradient),
        x0,
        jac=gradient == "batched",
        method="SLSQP",
        bounds=problem.bounds,
        options={"maxiter": max_iterations, "ftol": tolerance},
    )


__all__ = ["marker_links", "solve_slsqp"]
