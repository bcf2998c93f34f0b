"""Inverse kinematics of a :class:`KinematicModel`: all frames at once, frame or temporal.

The problem is OpenSim's (``InverseKinematicsTool``). For each frame ``t``::

    cost_t(q) = sum_m w_m |x_m(q) - y_mt|^2 + sum_c w_c (q_c - target_ct)^2

over the *independent* coordinates: locked coordinates keep their default values, coupled
coordinates follow their couplers, clamped coordinates stay inside their ranges (box
bounds), and a marker that is NaN in a frame drops out of that frame. Units: m, rad; a
cost is in m^2 (a coordinate task weight on a rotation is in m^2 / rad^2).

Solver: Levenberg-Marquardt with the closed-form Jacobian of :mod:`biokin_nb.ik._kinematics`.
Far from a solution it takes Gauss-Newton steps (``J^T J``); once a frame's steps are small
it switches to Newton steps with the exact Hessian (``J^T J`` plus the second-order term,
also in closed form), which converge quadratically where Gauss-Newton only converges
linearly on IK's non-zero residuals (a ratio of 0.4 per iteration on gait2354's knees).
Bounds: a projected step that holds coordinates at an active bound (gradient outwards);
the start is moved 5% of the range inside the bounds (a start on a bound, e.g. elbow
flexion 0, lets the solver pin it there and twist the arm instead).

- ``mode="frame"``: every frame is its own problem with its own damping and stopping
  test; all frames are solved together in one batch (converged frames drop out). Frames
  without any observed point are interpolated from their neighbours.
- ``mode="temporal"``: one problem over the sequence (or overlapping windows) with
  ``smoothness`` ``lambda_v sum_t |x_t+1 - x_t|^2 + lambda_a sum_t |x_t+1 - 2 x_t + x_t-1|^2``
  on the unknowns (differences per frame, rad or m), started from frame IK (to a loose
  tolerance: it only has to find the basin). Its normal equations are block banded and
  solved by LAPACK's banded Cholesky on the CPU, by block cyclic reduction (batched) on
  other devices (:mod:`biokin_nb.ik._banded`).

Warm start (``warm_start=True``): OpenSim starts each frame from the previous frame's
solution, one frame after the other. Here every frame is first solved from ``init`` (cold,
in one batch); then, wherever the solution jumps between neighbouring frames (by more
than 0.1 rad or m), the frames of each run between jumps are re-solved from the solutions
just before and just after the run, and each keeps the lowest cost, until nothing jumps
or improves. A run stuck in a poor basin thereby inherits its neighbours' basin, in both
time directions, with every pass batched. ``warm_start=False`` is the cold start alone.

``objective="direction"`` (KinePose): residuals are differences of unit link directions
``(x_b - x_a) / |x_b - x_a|`` between the model and the observed points, free of segment
length (``links``: pairs of point names).
"""

from __future__ import annotations

import dataclasses
import time as _time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse
import torch

from biokin_nb.ik import _banded
from biokin_nb.ik import _kinematics as kin
from biokin_nb.osim.coordinates import Motion
from biokin_nb.osim.io import MarkerTrajectories
from biokin_nb.osim.model import KinematicModel

Tensor = torch.Tensor
CoordinateTasks = Mapping[str, tuple[float, float | np.ndarray]]
_SCALE_BOUNDS = (0.2, 5.0)
_JUMP = 0.1  # rad or m: a change between neighbouring frames that starts a new run
_MAX_WARM_ROUNDS = 20
_START_INSIDE = 0.05  # of a clamped coordinate's range: start off its bounds (a start on a
# bound, e.g. elbow flexion 0, lets Gauss-Newton pin it there and twist the arm instead)
_ROUNDING = 100  # relative cost changes below this many machine epsilons are rounding
_MIN_SHRINK = 0.1  # the damping falls at most tenfold per good step (Nielsen's rule: 1/3),
# so that a frame recovers fast from the large damping that rejected steps leave behind
_WARM_DAMPING = 1e-6  # initial Marquardt damping from a good start (the temporal stage); a
# large one shrinks the steps along poorly determined directions and slows convergence
_START_TOLERANCE = 1e-4  # rad or m: by default frame IK as the start of temporal IK stops
# here (``start_tolerance``). Looser starts suit short sequences (the KinePose benchmark,
# 30 frames: 0.3 rad, same MPJAS, 1.5x faster); on long real trials the coupled problem
# then needs more of its dearer iterations (Rajagopal walk, 238 frames: 2x slower).
_NEWTON_RADIUS = 0.05  # rad or m: a frame switches from Gauss-Newton to Newton after a step
# this small (Newton converges quadratically near a solution, Gauss-Newton only linearly on
# IK's non-zero residuals; far from one, Gauss-Newton's steps are the safer ones)


@dataclass
class IKResult:
    """Solution of an IK problem over ``T`` frames.

    Attributes:
        time: (T,) s.
        q: (T, C) every coordinate of the model (rad, m), couplers applied.
        coordinate_names: the ``C`` names, model order.
        marker_names: the ``M`` observed points (or links ``"a->b"`` for directions).
        marker_residuals: (T, M) distance model - observed (m); for the direction objective
            the angle between model and observed link (rad). NaN where not observed.
        cost: (T,) the per-frame IK cost (weighted squared marker errors plus coordinate
            tasks, m^2), without the smoothness term.
        iterations: Levenberg-Marquardt iterations (all passes, the largest per frame).
        wall_time_s: solve time in seconds.
        converged: (T,) whether each frame met the stopping test.
        scales: (B, 3) the scale factors used (solved ones with ``solve_scales``).
        mode: "frame" or "temporal".
    """

    time: np.ndarray
    q: np.ndarray
    coordinate_names: list[str]
    marker_names: list[str]
    marker_residuals: np.ndarray
    cost: np.ndarray
    iterations: int
    wall_time_s: float
    converged: np.ndarray
    scales: np.ndarray | None = None
    mode: str = "frame"

    def motion(self) -> Motion:
        """The coordinates as a :class:`Motion` (for ``write_motion``)."""
        return Motion(self.time, self.q, self.coordinate_names)


@dataclass(frozen=True)
class _Settings:
    max_iterations: int
    tolerance: float
    smoothness: tuple[float, float]
    start_tolerance: float = _START_TOLERANCE


@dataclass
class _Problem:
    """Tensors of one IK problem (``N`` frames, ``P`` points, ``n`` unknowns)."""

    plan: kin.Plan
    points: kin.PointSet
    base: Tensor  # (C,) values of the fixed coordinates
    free: Tensor  # (n,) indices of the unknowns
    lower: Tensor  # (n,)
    upper: Tensor  # (n,)
    observed: Tensor  # (N, P, 3), 0 where missing
    sqrt_w: Tensor  # (N, P), 0 where missing
    task_index: Tensor  # (Kc,)
    task_sqrt_w: Tensor  # (Kc,)
    task_target: Tensor  # (N, Kc)
    scales: Tensor | None  # (B, 3)
    links: Tensor | None  # (L, 2) point indices, direction objective
    link_sqrt_w: Tensor | None  # (N, L)
    link_observed: Tensor | None  # (N, L, 3) unit directions

    def frames(self, idx: Tensor) -> _Problem:
        """The same problem restricted to frames ``idx``."""
        pick = {
            "observed": self.observed,
            "sqrt_w": self.sqrt_w,
            "task_target": self.task_target,
            "link_sqrt_w": self.link_sqrt_w,
            "link_observed": self.link_observed,
        }
        out = {k: None if v is None else v.index_select(0, idx) for k, v in pick.items()}
        return _Problem(**{**self.__dict__, **out})


# --------------------------------------------------------------------------- public API


def solve_ik(
    model: KinematicModel,
    markers: MarkerTrajectories | np.ndarray | Tensor,
    *,
    marker_names: Sequence[str] | None = None,
    weights: Mapping[str, float] | Sequence[float] | np.ndarray | None = None,
    coordinate_tasks: CoordinateTasks | None = None,
    scales: np.ndarray | None = None,
    solve_scales: bool = False,
    mode: Literal["frame", "temporal"] = "frame",
    smoothness: float | tuple[float, float] = 1e-3,
    window: int | None = None,
    overlap: int | None = None,
    init: np.ndarray | None = None,
    warm_start: bool = True,
    max_iterations: int = 100,
    tolerance: float = 1e-8,
    start_tolerance: float = _START_TOLERANCE,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    objective: Literal["position", "direction"] = "position",
    links: Sequence[tuple[str, str]] | None = None,
    time: np.ndarray | None = None,
) -> IKResult:
    """Coordinates of ``model`` that best fit observed marker (or keypoint) trajectories.

    Args:
        model: the kinematic model (scaled, or scaled by ``scales``).
        markers: a :class:`MarkerTrajectories` (``.trc``), or positions (T, M, 3) in m with
            NaN where missing; their names in ``marker_names``.
        marker_names: names of the columns of an array (model markers, joint names for
            joint centres, ``<body>_com``); with trajectories, the subset to use.
        weights: ``{name: weight}`` (only these points are used, OpenSim's IK tasks; zero
            drops a point), or (M,) weights in ``marker_names`` order; default 1 each.
        coordinate_tasks: ``{coordinate: (weight, target)}``, target in rad / m, a number
            or (T,) values; pulls the coordinate towards the target.
        scales: (B, 3) body scale factors of the model (default 1); the initial guess with
            ``solve_scales``.
        solve_scales: also solve the scale factors, shared over frames (with a weak prior
            1e-4 m^2 per unit^2 towards ``scales``, which keeps unobserved ones put).
        mode: ``"frame"`` (each frame alone) or ``"temporal"`` (with ``smoothness``).
        smoothness: temporal weight ``lambda_v`` on squared first differences of the
            unknowns (per frame), or ``(lambda_v, lambda_a)`` with second differences.
        window: temporal mode only: solve overlapping windows of this many frames
            (blended linearly in the overlaps) instead of the whole sequence at once.
        overlap: frames shared by consecutive windows (default ``window // 4``).
        init: (C,) or (T, C) initial coordinates (default: the model's defaults).
        warm_start: re-solve frames from their neighbours' solutions (module docstring);
            False: every frame from ``init`` only (cold start).
        max_iterations: Levenberg-Marquardt iterations per pass.
        tolerance: a frame (temporal: the sequence) stops when no unknown moves by more
            than this (rad or m) or the cost falls by less than ``tolerance**2`` relative.
        start_tolerance: temporal (and scale) IK start from frame IK run to this looser
            tolerance (rad or m); it only has to find the basin.
        device: torch device of the computation ("cpu", "cuda", "mps").
        dtype: torch.float64 (default) or torch.float32.
        objective: ``"position"`` or ``"direction"`` (unit link directions, ``links``).
        links: pairs of point names whose directions are fitted (direction objective).
        time: (T,) s for an array input (default: frame index).

    Raises:
        KeyError: names the model (or the marker data) lacks, listed.
        ValueError: wrong shapes, all-NaN markers, negative smoothness, too few frames
            for temporal IK, or bad settings.
    """
    start = _time.perf_counter()
    settings = _check_settings(
        mode, smoothness, window, overlap, max_iterations, tolerance, start_tolerance
    )
    if solve_scales and objective != "position":
        raise ValueError(
            "solve_scales needs objective='position': link directions do not depend on "
            "segment lengths"
        )
    names, observed, stamp = _observations(model, markers, marker_names, weights, time)
    w = _weights(names, weights)
    observed, w, names = _drop_unweighted(observed, w, names)
    _check_frames(observed, mode)
    problem = _build_problem(
        model, names, observed, w, coordinate_tasks, scales, objective, links, device, dtype
    )
    x0 = _initial_unknowns(model, problem, init, observed.shape[0])
    # The solver's many small tensor ops run without autograd bookkeeping (a fifth of its
    # time); model constants are built outside (kin.plan), results leave as numpy.
    with torch.inference_mode():
        if mode == "temporal" or solve_scales:
            x, s, iters, conv = _solve_sequence(
                problem, x0, settings, mode, window, overlap, warm_start, solve_scales
            )
            problem.scales = s
        else:
            x, iters, conv = _solve_frames_warm(problem, x0, settings, warm_start)
            x = _fill_unobserved(problem, x)
        return _result(model, problem, x, names, stamp, iters, conv, mode, objective, links, start)


def ik_cost(
    model: KinematicModel,
    q: np.ndarray,
    markers: MarkerTrajectories | np.ndarray,
    *,
    marker_names: Sequence[str] | None = None,
    weights: Mapping[str, float] | Sequence[float] | np.ndarray | None = None,
    coordinate_tasks: CoordinateTasks | None = None,
    scales: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """OpenSim's IK cost of given coordinates (e.g. another solver's result).

    Args:
        q: (T, C) coordinates (rad, m); coupled ones are recomputed from their couplers.
        markers, marker_names, weights, coordinate_tasks, scales: as in :func:`solve_ik`.

    Returns:
        The per-frame cost (T,) in m^2 and the marker distances (T, M) in m (NaN missing).
    """
    names, observed, _ = _observations(model, markers, marker_names, weights, None)
    w = _weights(names, weights)
    observed, w, names = _drop_unweighted(observed, w, names)
    problem = _build_problem(
        model,
        names,
        observed,
        w,
        coordinate_tasks,
        scales,
        "position",
        None,
        "cpu",
        torch.float64,
    )
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (observed.shape[0], model.n_coordinates):
        raise ValueError(
            f"q must have shape (T, C) = ({observed.shape[0]}, {model.n_coordinates}); "
            f"got {q.shape}"
        )
    x = torch.as_tensor(q)[:, problem.free]
    cost, residuals = _frame_costs(problem, x)
    return cost.numpy(), residuals.numpy()


# --------------------------------------------------------------------------- inputs


def _check_settings(
    mode: str,
    smoothness: float | tuple[float, float],
    window: int | None,
    overlap: int | None,
    max_iterations: int,
    tolerance: float,
    start_tolerance: float = _START_TOLERANCE,
) -> _Settings:
    if mode not in ("frame", "temporal"):
        raise ValueError(f"mode must be 'frame' or 'temporal', got {mode!r}")
    pair = (smoothness, 0.0) if np.isscalar(smoothness) else tuple(smoothness)
    if len(pair) != 2 or not all(np.isfinite(v) and v >= 0 for v in pair):
        raise ValueError(
            f"smoothness must be a weight lambda >= 0 or (lambda_velocity, "
            f"lambda_acceleration) >= 0, got {smoothness!r}"
        )
    if mode == "temporal" and pair == (0.0, 0.0):
        raise ValueError("temporal IK needs smoothness > 0; use mode='frame' for none")
    if window is not None and mode != "temporal":
        raise ValueError("window applies to mode='temporal' only")
    if window is not None and (window < 3 or (overlap is not None and not 0 < overlap < window)):
        raise ValueError(f"need window >= 3 and 0 < overlap < window; got {window}, {overlap}")
    if max_iterations < 1 or not tolerance > 0 or not start_tolerance > 0:
        raise ValueError("max_iterations must be >= 1, tolerance and start_tolerance > 0")
    lam = (float(pair[0]), float(pair[1]))
    return _Settings(int(max_iterations), float(tolerance), lam, float(start_tolerance))


def _observations(
    model: KinematicModel,
    markers: MarkerTrajectories | np.ndarray | Tensor,
    marker_names: Sequence[str] | None,
    weights: object,
    time: np.ndarray | None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Point names, observed positions (T, M, 3) m and times (T,)."""
    if isinstance(markers, MarkerTrajectories):
        names = _trajectory_names(model, markers, marker_names, weights)
        cols = [markers.names.index(n) for n in names]
        return names, markers.positions[:, cols], markers.time
    data = np.asarray(markers.detach().cpu() if isinstance(markers, Tensor) else markers)
    data = data.astype(np.float64)
    if data.ndim != 3 or data.shape[-1] != 3:
        raise ValueError(f"markers must have shape (T, M, 3) in m; got {data.shape}")
    if marker_names is None:
        if data.shape[1] != len(model.marker_names):
            raise ValueError(
                f"give marker_names for the {data.shape[1]} columns (the model has "
                f"{len(model.marker_names)} markers)"
            )
        marker_names = model.marker_names
    if len(marker_names) != data.shape[1]:
        raise ValueError(f"{len(marker_names)} marker_names for {data.shape[1]} columns")
    stamp = np.arange(data.shape[0], dtype=np.float64) if time is None else np.asarray(time)
    if stamp.shape != (data.shape[0],):
        raise ValueError(f"time must have shape ({data.shape[0]},); got {stamp.shape}")
    return list(marker_names), data, stamp


def _trajectory_names(
    model: KinematicModel,
    markers: MarkerTrajectories,
    marker_names: Sequence[str] | None,
    weights: object,
) -> list[str]:
    """Which columns of a ``.trc`` to fit: the names asked for, or those weighted, or all
    that the model has (others are ignored with a warning, as OpenSim ignores them)."""
    if marker_names is not None:
        absent = [n for n in marker_names if n not in markers.names]
        if absent:
            raise KeyError(
                f"markers not in the marker data: {', '.join(absent)} (the data has "
                f"{', '.join(markers.names)}); drop them from marker_names"
            )
        return list(marker_names)
    if isinstance(weights, Mapping):  # OpenSim skips tasks whose marker has no data
        _check_model_has(model, list(weights))
        absent = [n for n in weights if n not in markers.names]
        if absent:
            warnings.warn(
                f"weighted markers without data are not fitted: {', '.join(absent)}",
                stacklevel=3,
            )
        return [n for n in weights if n in markers.names]
    known = set(model.marker_names) | set(model.keypoint_names)
    unused = [n for n in markers.names if n not in known]
    if unused:
        warnings.warn(
            f"markers in the data that model {model.name!r} lacks are ignored: {', '.join(unused)}",
            stacklevel=3,
        )
    names = [n for n in markers.names if n in known]
    if not names:
        raise KeyError(f"no marker of the data is in model {model.name!r}")
    return names


def _check_model_has(model: KinematicModel, names: list[str]) -> None:
    """KeyError listing the names that are neither markers nor keypoints of ``model``."""
    known = set(model.marker_names) | set(model.keypoint_names)
    missing = [n for n in names if n not in known]
    if missing:
        raise KeyError(
            f"markers not in model {model.name!r}: {', '.join(missing)} (the model has "
            f"{', '.join(model.marker_names) or 'no markers'})"
        )


def _weights(names: list[str], weights: object) -> np.ndarray:
    if weights is None:
        return np.ones(len(names))
    if isinstance(weights, Mapping):
        w = np.array([float(weights[n]) for n in names])
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (len(names),):
            raise ValueError(f"weights must have {len(names)} values, got {w.shape[0]}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("marker weights must be finite and >= 0")
    return w


def _drop_unweighted(
    observed: np.ndarray, w: np.ndarray, names: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    keep = w > 0
    if not keep.any():
        raise ValueError("every marker weight is zero: nothing to fit")
    return observed[:, keep], w[keep], [n for n, k in zip(names, keep, strict=True) if k]


def _check_frames(observed: np.ndarray, mode: str) -> None:
    n_frames = observed.shape[0]
    if n_frames == 0:
        raise ValueError("no frames to solve (T = 0): check the time range and the marker file")
    if mode == "temporal" and n_frames < 2:
        raise ValueError(f"temporal IK needs at least 2 frames, got {n_frames}; use mode='frame'")
    if np.isnan(observed).all():
        raise ValueError("every marker is NaN in every frame: nothing to fit (fill gaps first)")


def _build_problem(
    model: KinematicModel,
    names: list[str],
    observed: np.ndarray,
    w: np.ndarray,
    tasks: CoordinateTasks | None,
    scales: np.ndarray | None,
    objective: str,
    links: Sequence[tuple[str, str]] | None,
    device: str | torch.device,
    dtype: torch.dtype,
) -> _Problem:
    def t(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)

    points = kin.point_set(model, names, dtype, device)
    missing = np.isnan(observed).any(-1)
    sqrt_w = np.where(missing, 0.0, np.sqrt(w))
    free = np.flatnonzero(~model.locked & ~model.dependent)
    clamped = np.array([c.clamped for c in model.coordinates])[free]
    lower = np.where(clamped, model.ranges[free, 0], -np.inf)
    upper = np.where(clamped, model.ranges[free, 1], np.inf)
    index, task_w, target = _coordinate_tasks(model, tasks, observed.shape[0])
    problem = _Problem(
        plan=kin.plan(model, dtype, device),
        points=points,
        base=t(model.defaults),
        free=torch.as_tensor(free, device=device),
        lower=t(lower),
        upper=t(upper),
        observed=t(np.nan_to_num(observed)),
        sqrt_w=t(sqrt_w),
        task_index=torch.as_tensor(index, dtype=torch.long, device=device),
        task_sqrt_w=t(np.sqrt(task_w)),
        task_target=t(target),
        scales=None if scales is None else t(_check_scales(model, scales)),
        links=None,
        link_sqrt_w=None,
        link_observed=None,
    )
    if objective == "direction":
        _add_links(problem, names, observed, w, links)
    elif objective != "position":
        raise ValueError(f"objective must be 'position' or 'direction', got {objective!r}")
    return problem


def _check_scales(model: KinematicModel, scales: np.ndarray) -> np.ndarray:
    s = np.asarray(scales, dtype=np.float64)
    if s.shape != (model.n_bodies, 3) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"scales must be ({model.n_bodies}, 3) positive factors; got {s.shape}")
    return s


def _coordinate_tasks(
    model: KinematicModel, tasks: CoordinateTasks | None, n_frames: int
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Indices, weights (Kc,) and targets (T, Kc) of the coordinate tasks."""
    tasks = dict(tasks or {})
    index = [model.coordinate_index(name) for name in tasks]  # KeyError: did you mean
    weights = np.array([float(w) for w, _ in tasks.values()])
    targets = np.zeros((n_frames, len(tasks)))
    for k, (name, (_, value)) in enumerate(tasks.items()):
        v = np.asarray(value, dtype=np.float64)
        if v.shape not in ((), (n_frames,)) or not np.all(np.isfinite(v)):
            raise ValueError(
                f"coordinate task {name!r}: target must be a finite number or ({n_frames},) "
                f"values (rad / m); got shape {v.shape}"
            )
        targets[:, k] = v
    if np.any(~np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("coordinate task weights must be finite and >= 0")
    return index, weights, targets


def _add_links(
    problem: _Problem,
    names: list[str],
    observed: np.ndarray,
    w: np.ndarray,
    links: Sequence[tuple[str, str]] | None,
) -> None:
    """Link indices, weights (mean of the end weights) and observed unit directions."""
    if not links:
        raise ValueError("objective='direction' needs links: pairs of point names")
    absent = sorted({n for pair in links for n in pair if n not in names})
    if absent:
        raise KeyError(f"link ends not among the observed points: {', '.join(absent)}")
    pairs = np.array([[names.index(a), names.index(b)] for a, b in links])
    d = observed[:, pairs[:, 1]] - observed[:, pairs[:, 0]]
    length = np.linalg.norm(d, axis=-1)
    ok = np.isfinite(length) & (length > 1e-9)
    u = np.where(ok[..., None], d / np.where(ok, length, 1.0)[..., None], 0.0)
    link_w = np.where(ok, np.sqrt(0.5 * (w[pairs[:, 0]] + w[pairs[:, 1]])), 0.0)
    ref = problem.observed
    problem.links = torch.as_tensor(pairs, device=ref.device)
    problem.link_sqrt_w = torch.as_tensor(link_w, dtype=ref.dtype, device=ref.device)
    problem.link_observed = torch.as_tensor(u, dtype=ref.dtype, device=ref.device)


def _initial_unknowns(
    model: KinematicModel, problem: _Problem, init: np.ndarray | None, n_frames: int
) -> Tensor:
    q0 = model.defaults if init is None else np.asarray(init, dtype=np.float64)
    if q0.shape not in ((model.n_coordinates,), (n_frames, model.n_coordinates)):
        raise ValueError(
            f"init must have shape (C,) or (T, C) = ({n_frames}, {model.n_coordinates}); "
            f"got {q0.shape}"
        )
    if not np.all(np.isfinite(q0)):
        raise ValueError("init must be finite")
    x = torch.as_tensor(np.broadcast_to(q0, (n_frames, model.n_coordinates)).copy())
    x = x.to(problem.base)[:, problem.free]
    margin = _START_INSIDE * torch.nan_to_num(problem.upper - problem.lower, posinf=0.0)
    return torch.clamp(x, problem.lower + margin, problem.upper - margin)


# --------------------------------------------------------------------------- residuals


@dataclass
class _Linear:
    """The IK cost of ``N`` frames linearized at ``x`` (cost = ``|r|^2``).

    ``grad`` (N, n) is ``J^T r``, ``hess_gn`` (N, n, n) ``J^T J`` and ``hess`` the exact
    Hessian of ``0.5 |r|^2`` where known (position objective), else ``hess_gn``. With scale
    unknowns: ``cross`` (N, n, S) ``J^T J_s``, ``hess_s`` (N, S, S), ``grad_s`` (N, S).
    """

    cost: Tensor
    grad: Tensor
    hess: Tensor
    hess_gn: Tensor
    cross: Tensor | None = None
    hess_s: Tensor | None = None
    grad_s: Tensor | None = None

    def where(self, keep_new: Tensor, new: _Linear) -> _Linear:
        """Per frame: ``new`` where ``keep_new`` (N,) else self."""
        out = {}
        for name, old in self.__dict__.items():
            fresh = getattr(new, name)
            if old is None:
                out[name] = None
                continue
            mask = keep_new.view(-1, *([1] * (old.ndim - 1)))
            out[name] = torch.where(mask, fresh, old)
        return _Linear(**out)

    def select(self, keep: Tensor) -> _Linear:
        return _Linear(**{k: None if v is None else v[keep] for k, v in self.__dict__.items()})


def _linearize(pb: _Problem, x: Tensor, newton: bool = True, scales: bool = False) -> _Linear:
    """Cost, gradient and Hessians of the IK cost at ``x`` (N, n)."""
    q, dq = kin.full_coordinates(pb.plan, pb.base, pb.free, x)
    k = kin.evaluate(pb.plan, pb.points, pb.free, q, dq, pb.scales, scale_jacobian=scales)
    if pb.links is None:
        w = pb.sqrt_w.unsqueeze(-1)
        r_pts = (k.points - pb.observed) * w  # (N, P, 3)
        j_pts = (k.jacobian * w.unsqueeze(-1)).flatten(1, 2)
    else:
        r_pts, j_pts = _direction_residuals(pb, k)
        newton = False
    r_task = (q.index_select(1, pb.task_index) - pb.task_target) * pb.task_sqrt_w
    j_task = k.coordinate_jacobian.index_select(1, pb.task_index) * pb.task_sqrt_w[:, None]
    r_flat = r_pts.flatten(1)
    jt, jt_task = j_pts.transpose(1, 2), j_task.transpose(1, 2)
    grad = (jt @ r_flat.unsqueeze(-1) + jt_task @ r_task.unsqueeze(-1)).squeeze(-1)
    hess_gn = jt @ j_pts + jt_task @ j_task
    hess = hess_gn
    if newton:
        task_grad = torch.zeros_like(q).index_add_(1, pb.task_index, r_task * pb.task_sqrt_w)
        extra = kin.second_order(pb.plan, pb.points, pb.free, k, r_pts * w, task_grad)
        hess = hess_gn + extra
    lin = _Linear((r_flat * r_flat).sum(1) + (r_task * r_task).sum(1), grad, hess, hess_gn)
    if scales:
        js = (k.scale_jacobian * pb.sqrt_w[..., None, None]).flatten(1, 2)  # (N, 3P, S)
        jp = j_pts
        lin.cross = jp.transpose(1, 2) @ js
        lin.hess_s = js.transpose(1, 2) @ js
        lin.grad_s = (js.transpose(1, 2) @ r_pts.flatten(1).unsqueeze(-1)).squeeze(-1)
    return lin


def _direction_residuals(pb: _Problem, k: kin.PointKinematics) -> tuple[Tensor, Tensor]:
    """Weighted unit-direction residuals (N, L, 3) and their Jacobian (N, 3L, n)."""
    a, b = pb.links[:, 0], pb.links[:, 1]
    d = k.points.index_select(1, b) - k.points.index_select(1, a)  # (N, L, 3)
    length = d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    u = d / length
    w = pb.link_sqrt_w.unsqueeze(-1)
    r = (u - pb.link_observed) * w
    proj = torch.eye(3, dtype=u.dtype, device=u.device) - u.unsqueeze(-1) * u.unsqueeze(-2)
    dd = k.jacobian.index_select(1, b) - k.jacobian.index_select(1, a)  # (N, L, 3, n)
    jac = (proj / length.unsqueeze(-1)) @ dd * w.unsqueeze(-1)
    return r, jac.flatten(1, 2)


def _frame_costs(pb: _Problem, x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-frame cost (N,) and per-point residual sizes (N, P) (NaN where unobserved): the
    distance (m), or for the direction objective the angle between the links (rad)."""
    q, dq = kin.full_coordinates(pb.plan, pb.base, pb.free, x)
    k = kin.evaluate(pb.plan, pb.points, pb.free, q, dq, pb.scales, jacobian=False)
    r_task = (q.index_select(1, pb.task_index) - pb.task_target) * pb.task_sqrt_w
    if pb.links is None:
        error = k.points - pb.observed
        cost = (error * error * pb.sqrt_w.unsqueeze(-1) ** 2).sum((1, 2))
        size, seen = error.norm(dim=-1), pb.sqrt_w > 0
    else:
        a, b = pb.links[:, 0], pb.links[:, 1]
        u = torch.nn.functional.normalize(k.points[:, b] - k.points[:, a], dim=-1)
        cost = (((u - pb.link_observed) * pb.link_sqrt_w.unsqueeze(-1)) ** 2).sum((1, 2))
        sin = torch.linalg.cross(u, pb.link_observed, dim=-1).norm(dim=-1)
        size = torch.atan2(sin, (u * pb.link_observed).sum(-1))
        seen = pb.link_sqrt_w > 0
    return cost + (r_task * r_task).sum(1), torch.where(seen, size, torch.nan)


# --------------------------------------------------------------------------- frame mode


def _free_mask(pb: _Problem, x: Tensor, grad: Tensor) -> Tensor:
    """(N, n) False for unknowns held at a bound their descent direction leaves."""
    at_lower = (x <= pb.lower) & (grad > 0)
    at_upper = (x >= pb.upper) & (grad < 0)
    return ~(at_lower | at_upper)


def _damping(hess_gn: Tensor, mu: Tensor) -> Tensor:
    """(N, n) Marquardt damping ``mu diag(J^T J)``, floored so that the system stays regular."""
    diag = hess_gn.diagonal(dim1=-2, dim2=-1)
    floor = 1e-9 * diag.mean(-1, keepdim=True).clamp_min(1e-30)
    return mu.unsqueeze(-1) * torch.maximum(diag, floor) + floor


def _damped_step(lin: _Linear, mu: Tensor, free: Tensor, newton: Tensor) -> tuple[Tensor, Tensor]:
    """Solve ``(H + mu D) dx = -g`` per frame on the free unknowns.

    Uses the exact Hessian for the frames marked ``newton`` (N,) where ``H + mu D`` is
    positive definite, else Gauss-Newton's. Returns the step (N, n) and the Hessian used.
    """
    damp = torch.diag_embed(torch.where(free, _damping(lin.hess_gn, mu), 1.0))
    pair = free.unsqueeze(-1) & free.unsqueeze(-2)
    used = torch.where(newton[:, None, None], lin.hess, lin.hess_gn)
    chol, info = torch.linalg.cholesky_ex(torch.where(pair, used, 0.0) + damp)
    if bool((info > 0).any()):
        used = torch.where((info > 0)[:, None, None], lin.hess_gn, used)
        chol, _ = torch.linalg.cholesky_ex(torch.where(pair, used, 0.0) + damp)
    rhs = torch.where(free, -lin.grad, 0.0).unsqueeze(-1)
    return torch.nan_to_num(torch.cholesky_solve(rhs, chol).squeeze(-1)), used


@dataclass
class _Damping:
    """Per-frame Levenberg-Marquardt state: damping ``mu`` and its growth ``nu``, whether the
    frame takes Newton steps yet, and ``reach``, a step scale that shrinks when a step that
    ran into a bound was rejected (more damping barely shortens a step cut at a bound)."""

    mu: Tensor
    nu: Tensor
    newton: Tensor
    reach: Tensor

    @staticmethod
    def start(n_frames: int, like: Tensor) -> _Damping:
        ones = torch.ones(n_frames, dtype=like.dtype, device=like.device)
        no = torch.zeros(n_frames, dtype=torch.bool, device=like.device)
        return _Damping(1e-3 * ones, 2.0 * ones, no, ones)

    def select(self, keep: Tensor) -> _Damping:
        return _Damping(self.mu[keep], self.nu[keep], self.newton[keep], self.reach[keep])

    def update(self, rho: Tensor, accept: Tensor, step: Tensor, clipped: Tensor) -> None:
        shrink = torch.clamp(1 - (2 * rho - 1) ** 3, min=_MIN_SHRINK)
        self.mu = torch.where(accept, self.mu * shrink, self.mu * self.nu).clamp(1e-12, 1e12)
        self.nu = torch.where(accept, torch.full_like(self.nu, 2.0), self.nu * 2)
        self.newton |= accept & (step.abs().amax(-1) < _NEWTON_RADIUS)
        self.reach = torch.where(
            accept, torch.ones_like(self.reach), self.reach * torch.where(clipped, 0.25, 1.0)
        )


def _solve_frames(
    pb: _Problem, x: Tensor, settings: _Settings
) -> tuple[Tensor, Tensor, int, Tensor]:
    """Batched Levenberg-Marquardt, each frame alone; returns x, cost, iterations, converged.

    Converged frames drop out of the batch.
    """
    x, cost = x.clone(), x.new_zeros(x.shape[0])
    converged = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    active = torch.arange(x.shape[0], device=x.device)
    state, sub, lin = _Damping.start(x.shape[0], x), pb, _linearize(pb, x, newton=False)
    iterations = 0
    for iterations in range(1, settings.max_iterations + 1):  # noqa: B007
        xa = x.index_select(0, active)
        step, used = _damped_step(lin, state.mu, _free_mask(sub, xa, lin.grad), state.newton)
        wanted = xa + step * state.reach.unsqueeze(-1)
        x_new = torch.clamp(wanted, sub.lower, sub.upper)
        step = x_new - xa
        close = state.newton | (step.abs().amax(-1) < _NEWTON_RADIUS)
        new = _linearize(sub, x_new, newton=bool(close.any()))
        quad = (step.unsqueeze(1) @ used @ step.unsqueeze(2)).flatten()
        predicted = -(2 * (lin.grad * step).sum(1) + quad)
        rho = (lin.cost - new.cost) / predicted.clamp_min(1e-300)
        accept = (new.cost < lin.cost) & (predicted > 0)
        done = _frame_converged(step, lin.cost, new.cost, accept, predicted, settings.tolerance)
        state.update(rho, accept, step, (x_new != wanted).any(-1))
        x[active] = torch.where(accept[:, None], x_new, xa)
        lin = lin.where(accept, new)
        cost[active], converged[active] = lin.cost, done
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = ~done
            active, lin, state = active[keep], lin.select(keep), state.select(keep)
            sub = pb.frames(active)
    return x, cost, iterations, converged


def _frame_converged(
    step: Tensor, cost: Tensor, cost_new: Tensor, accept: Tensor, predicted: Tensor, tol: float
) -> Tensor:
    """(N,) the step is below ``tol``, or the cost cannot fall further: an accepted step
    gained less than ``tol**2`` relative, or the model predicts less than rounding."""
    scale = cost.clamp_min(1e-30)
    small_step = step.abs().amax(-1) <= tol
    small_gain = accept & ((cost - cost_new).abs() <= tol * tol * scale)
    rounding = _ROUNDING * torch.finfo(cost.dtype).eps * scale
    return small_step | small_gain | (predicted.abs() <= rounding)


def _solve_frames_warm(
    pb: _Problem, x0: Tensor, settings: _Settings, warm_start: bool
) -> tuple[Tensor, int, Tensor]:
    """Cold solve; then, while the solution jumps between neighbouring frames, re-solve the
    frames of each run between jumps from the solutions next to the run and keep what
    lowers their cost (see the module docstring)."""
    x, cost, iterations, converged = _solve_frames(pb, x0, settings)
    if not warm_start or x.shape[0] < 2:
        return x, iterations, converged
    tried: set[tuple[int, int]] = set()
    for _ in range(_MAX_WARM_ROUNDS):
        frames, sources = _run_candidates(x, tried)
        if len(frames) == 0:
            break
        x_try, cost_try, its, conv_try = _solve_frames(pb.frames(frames), x[sources], settings)
        iterations += its
        x, cost, converged, improved = _keep_better(
            x, cost, converged, frames, x_try, cost_try, conv_try
        )
        if not improved:
            break
    return x, iterations, converged


def _fill_unobserved(pb: _Problem, x: Tensor) -> Tensor:
    """Frames without any observed point take values interpolated linearly in frame index
    between the nearest observed frames (held at the ends)."""
    weights = pb.sqrt_w if pb.links is None else pb.link_sqrt_w
    seen = (weights > 0).any(1)
    if bool(seen.all()) or not bool(seen.any()):
        return x
    frames = torch.arange(len(x), dtype=x.dtype, device=x.device)
    known = torch.nonzero(seen).flatten()
    right = torch.searchsorted(known, torch.arange(len(x), device=x.device)).clamp(
        1, max(len(known) - 1, 1)
    )
    left = right - 1 if len(known) > 1 else right * 0
    t0, t1 = frames[known[left]], frames[known[right]]
    alpha = ((frames - t0) / (t1 - t0).clamp_min(1.0)).clamp(0.0, 1.0).unsqueeze(-1)
    filled = x[known[left]] * (1 - alpha) + x[known[right]] * alpha
    return torch.where(seen.unsqueeze(-1), x, filled)


def _run_candidates(x: Tensor, tried: set[tuple[int, int]]) -> tuple[Tensor, Tensor]:
    """Frames to re-solve and the frame whose solution starts each.

    The sequence is cut where the solution jumps (by more than ``_JUMP`` rad or m and ten
    times the median change between frames); every frame of a run is paired with the
    solution just before the run and the one just after it. Pairs ``(frame, source)`` in
    ``tried`` are skipped (and added).
    """
    change = (x[1:] - x[:-1]).abs().amax(-1)  # (T-1,)
    jumps = torch.nonzero(change > max(_JUMP, 10 * float(change.median()))).flatten() + 1
    if len(jumps) == 0:
        return x.new_zeros(0, dtype=torch.long), x.new_zeros(0, dtype=torch.long)
    edges = [0, *jumps.tolist(), x.shape[0]]
    frames, sources = [], []
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        for source in (start - 1, stop):
            if 0 <= source < x.shape[0]:
                new = [(f, source) for f in range(start, stop) if (f, source) not in tried]
                tried.update(new)
                frames += [f for f, _ in new]
                sources += [source] * len(new)
    as_long = {"dtype": torch.long, "device": x.device}
    return torch.tensor(frames, **as_long), torch.tensor(sources, **as_long)


def _keep_better(
    x: Tensor,
    cost: Tensor,
    converged: Tensor,
    frames: Tensor,
    x_try: Tensor,
    cost_try: Tensor,
    conv_try: Tensor,
) -> tuple[Tensor, Tensor, Tensor, bool]:
    """Take each re-solved frame's best result where it beats the current one."""
    better = cost_try < cost[frames] * (1 - 1e-9)
    if not better.any():
        return x, cost, converged, False
    order = torch.argsort(cost_try[better], descending=True)  # the lowest is written last
    pick = torch.nonzero(better).flatten()[order]
    x, cost, converged = x.clone(), cost.clone(), converged.clone()
    x[frames[pick]] = x_try[pick]
    cost[frames[pick]] = cost_try[pick]
    converged[frames[pick]] = conv_try[pick]
    return x, cost, converged, True


# --------------------------------------------------------------------------- temporal mode


def _solve_sequence(
    pb: _Problem,
    x0: Tensor,
    settings: _Settings,
    mode: str,
    window: int | None,
    overlap: int | None,
    warm_start: bool,
    solve_scales: bool,
) -> tuple[Tensor, Tensor | None, int, Tensor]:
    """Temporal (and/or scale) IK: frame IK (to a loose tolerance) for a start, then one
    coupled problem."""
    loose = max(settings.tolerance, settings.start_tolerance)
    start = dataclasses.replace(settings, tolerance=loose)
    x, iterations, _ = _solve_frames_warm(pb, x0, start, warm_start)
    if mode == "frame":  # scales only: frames coupled through the shared scales
        segments, frames = [(0, x.shape[0])], torch.arange(x.shape[0], device=x.device)
        lam = (0.0, 0.0)
    else:
        segments, frames = _windows(x.shape[0], window, overlap, x.device)
        lam = settings.smoothness
    sub = pb.frames(frames)
    smooth = _Smoothness.build(segments, lam, x.dtype, x.device)
    x_w, s, its, conv = _solve_coupled(sub, x[frames], smooth, settings, solve_scales)
    x = _blend(x_w, segments, frames, x.shape[0])
    return x, s, iterations + its, torch.full((x.shape[0],), conv, device=x.device)


def _windows(
    n_frames: int, window: int | None, overlap: int | None, device: torch.device
) -> tuple[list[tuple[int, int]], Tensor]:
    """Segments (start in the stacked frames, length) and the frame index of each row."""
    if window is None or window >= n_frames:
        return [(0, n_frames)], torch.arange(n_frames, device=device)
    overlap = window // 4 if overlap is None else overlap
    hop = window - max(overlap, 1)
    starts = list(range(0, n_frames - window, hop)) + [n_frames - window]
    frames = torch.cat([torch.arange(s, s + window, device=device) for s in starts])
    return [(k * window, window) for k in range(len(starts))], frames


def _blend(x: Tensor, segments: list[tuple[int, int]], frames: Tensor, n_frames: int) -> Tensor:
    """Average window solutions per frame with weights rising towards each window's middle."""
    if len(segments) == 1:
        return x
    weight = torch.cat([_ramp(length, x) for _, length in segments])
    total = x.new_zeros(n_frames, x.shape[1]).index_add_(0, frames, x * weight[:, None])
    norm = x.new_zeros(n_frames).index_add_(0, frames, weight)
    return total / norm[:, None]


def _ramp(length: int, like: Tensor) -> Tensor:
    t = torch.arange(length, dtype=like.dtype, device=like.device)
    return torch.minimum(t + 1, length - t)


@dataclass(frozen=True)
class _Smoothness:
    """``L = lambda_v D1^T D1 + lambda_a D2^T D2`` (N x N, banded) over stacked segments."""

    bands: tuple[Tensor, ...]  # diagonals 0, 1 (and 2): (N,), (N-1,), (N-2,)

    @staticmethod
    def build(
        segments: list[tuple[int, int]],
        lam: tuple[float, float],
        dtype: torch.dtype,
        device: torch.device,
    ) -> _Smoothness:
        n = sum(length for _, length in segments)
        segment = np.repeat(np.arange(len(segments)), [length for _, length in segments])
        total = scipy.sparse.csr_matrix((n, n))
        for order, weight in ((1, lam[0]), (2, lam[1])):
            if weight == 0 or n <= order:
                continue
            stencil = [[-1.0, 1.0], [1.0, -2.0, 1.0]][order - 1]
            diff = scipy.sparse.diags(stencil, list(range(order + 1)), shape=(n - order, n))
            diff = diff.tocsr()[segment[:-order] == segment[order:]]  # not across windows
            total = total + weight * (diff.T @ diff)
        used = 3 if lam[1] > 0 else 2
        return _Smoothness(
            tuple(
                torch.as_tensor(total.diagonal(k), dtype=dtype, device=device) for k in range(used)
            )
        )

    @property
    def order(self) -> int:
        return len(self.bands) - 1

    def apply(self, x: Tensor) -> Tensor:
        """``L @ x`` for x (N, n)."""
        out = self.bands[0][:, None] * x
        for k in range(1, len(self.bands)):
            out[:-k] += self.bands[k][:, None] * x[k:]
            out[k:] += self.bands[k][:, None] * x[:-k]
        return out


_SCALE_PRIOR = 1e-4  # m^2 per unit^2 of scale change: keeps unobserved scales put


@dataclass
class _Sequence:
    """The coupled problem linearized: per-frame terms, smoothness and scale blocks summed."""

    lin: _Linear
    grad: Tensor  # (N, n) J^T r + L x
    total: Tensor  # the whole cost: data + smoothness (+ scale prior)
    hess_s: Tensor | None = None  # (S, S)
    grad_s: Tensor | None = None  # (S,)


def _solve_coupled(
    pb: _Problem, x: Tensor, smooth: _Smoothness, settings: _Settings, solve_scales: bool
) -> tuple[Tensor, Tensor | None, int, bool]:
    """Levenberg-Marquardt on the whole sequence: data + smoothness (+ shared scales)."""
    s0 = pb.scales if pb.scales is not None else x.new_ones(pb.plan.n_bodies, 3)
    scales = s0.clone() if solve_scales else pb.scales
    mu, nu = _WARM_DAMPING, 2.0
    state = _sequence_state(pb, x, scales, s0, smooth, solve_scales)
    for iterations in range(1, settings.max_iterations + 1):
        dx, ds, used = _coupled_step(pb, x, state, smooth, mu)
        x_new = torch.clamp(x + dx, pb.lower, pb.upper)
        dx, s_new = x_new - x, scales
        if ds is not None:
            s_new = torch.clamp(scales + ds.view_as(scales), *_SCALE_BOUNDS)
            ds = (s_new - scales).flatten()
        new = _sequence_state(pb, x_new, s_new, s0, smooth, solve_scales)
        predicted = _predicted_decrease(state, used, dx, ds, smooth)
        gain = float(state.total - new.total)
        accept = gain > 0 and predicted > 0
        if accept:
            x, scales, state = x_new, s_new, new
            mu, nu = mu * max(_MIN_SHRINK, 1 - (2 * gain / predicted - 1) ** 3), 2.0
        else:
            mu, nu = mu * nu, nu * 2
        moved = max(float(dx.abs().max()), 0.0 if ds is None else float(ds.abs().max()))
        scale = max(float(state.total), 1e-30)
        small_gain = accept and abs(gain) <= settings.tolerance**2 * scale
        rounding = _ROUNDING * torch.finfo(x.dtype).eps * scale
        if moved <= settings.tolerance or small_gain or abs(predicted) <= rounding:
            return x, scales, iterations, True
    return x, scales, settings.max_iterations, False


def _sequence_state(
    pb: _Problem,
    x: Tensor,
    scales: Tensor | None,
    s0: Tensor,
    smooth: _Smoothness,
    solve_scales: bool,
) -> _Sequence:
    """The coupled problem's cost, gradient and Hessian blocks at ``x`` (and ``scales``)."""
    lin = _linearize(_Problem(**{**pb.__dict__, "scales": scales}), x, scales=solve_scales)
    lx = smooth.apply(x)
    state = _Sequence(lin, lin.grad + lx, lin.cost.sum() + (x * lx).sum())
    if solve_scales:
        ds = (scales - s0).flatten()
        eye = torch.eye(len(ds), dtype=x.dtype, device=x.device)
        state.hess_s = lin.hess_s.sum(0) + _SCALE_PRIOR * eye
        state.grad_s = lin.grad_s.sum(0) + _SCALE_PRIOR * ds
        state.total = state.total + _SCALE_PRIOR * (ds * ds).sum()
    return state


def _predicted_decrease(
    state: _Sequence, hess: Tensor, dx: Tensor, ds: Tensor | None, smooth: _Smoothness
) -> float:
    """Decrease of the quadratic model of the whole cost for the step (dx, ds)."""
    hdx = (hess @ dx.unsqueeze(-1)).squeeze(-1) + smooth.apply(dx)
    quad = (dx * hdx).sum()
    lin = (state.grad * dx).sum()
    if ds is not None:
        cross = (dx.unsqueeze(1) @ state.lin.cross).squeeze(1).sum(0)
        quad = quad + 2 * (cross * ds).sum() + ds @ state.hess_s @ ds
        lin = lin + (state.grad_s * ds).sum()
    return float(-(2 * lin + quad))


def _coupled_step(
    pb: _Problem, x: Tensor, state: _Sequence, smooth: _Smoothness, mu: float
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Damped Newton step of the coupled problem (banded Cholesky; Schur complement on the
    scales). Falls back to Gauss-Newton blocks where the exact ones are not positive
    definite. Returns dx (N, n), ds (S,) or None, and the per-frame Hessian used."""
    lin = state.lin
    free = _free_mask(pb, x, state.grad)
    damp = _damping(lin.hess_gn, torch.full_like(lin.cost, mu))
    used = lin.hess
    try:
        system = _factor_system(used, damp, smooth, free)
    except _banded.NotPositiveDefinite:
        used = lin.hess_gn
        system = _factor_system(used, damp, smooth, free)
    rhs = torch.where(free, -state.grad, 0.0)
    if lin.cross is None:
        return system.solve(rhs.unsqueeze(-1)).squeeze(-1), None, used
    cross = torch.where(free[..., None], lin.cross, 0.0)  # (N, n, S)
    hess_s = state.hess_s + mu * torch.diag(state.hess_s.diagonal())
    inv_cross = system.solve(cross)  # (N, n, S)
    schur = hess_s - torch.einsum("nis,nit->st", cross, inv_cross)
    inv_rhs = system.solve(rhs.unsqueeze(-1)).squeeze(-1)
    rhs_s = -state.grad_s - torch.einsum("nis,ni->s", cross, inv_rhs)
    ds = torch.linalg.solve(schur, rhs_s)
    dx = system.solve((rhs - (cross @ ds)).unsqueeze(-1)).squeeze(-1)
    return dx, ds, used


def _factor_system(
    hess: Tensor, damp: Tensor, smooth: _Smoothness, free: Tensor
) -> _banded.BlockBandedFactor:
    """Factor ``blockdiag(H_t + diag(damp_t)) + L (x) I`` with the fixed unknowns decoupled.

    Raises:
        _banded.NotPositiveDefinite: the matrix is not positive definite.
    """
    pair = free.unsqueeze(-1) & free.unsqueeze(-2)
    diag = smooth.bands[0][:, None] + damp
    blocks = torch.where(pair, hess, 0.0) + torch.diag_embed(torch.where(free, diag, 1.0))
    return _banded.factor(blocks, smooth.bands[1:], free)


# --------------------------------------------------------------------------- result


def _result(
    model: KinematicModel,
    pb: _Problem,
    x: Tensor,
    names: list[str],
    stamp: np.ndarray,
    iterations: int,
    converged: Tensor,
    mode: str,
    objective: str,
    links: Sequence[tuple[str, str]] | None,
    start: float,
) -> IKResult:
    cost, residuals = _frame_costs(pb, x)
    q, _ = kin.full_coordinates(pb.plan, pb.base, pb.free, x)
    labels = names if objective == "position" else [f"{a}->{b}" for a, b in links]
    scales = None if pb.scales is None else pb.scales.detach().cpu().double().numpy()
    return IKResult(
        time=np.asarray(stamp, dtype=np.float64).copy(),
        q=q.detach().cpu().double().numpy(),
        coordinate_names=model.coordinate_names,
        marker_names=list(labels),
        marker_residuals=residuals.detach().cpu().double().numpy(),
        cost=cost.detach().cpu().double().numpy(),
        iterations=int(iterations),
        wall_time_s=_time.perf_counter() - start,
        converged=converged.detach().cpu().numpy().astype(bool),
        scales=scales,
        mode=mode,
    )


__all__ = ["IKResult", "ik_cost", "solve_ik"]
