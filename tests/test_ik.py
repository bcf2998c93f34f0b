"""Inverse kinematics: agreement with OpenSim's converged IK on real trials, known answers,
the kinematics behind the solver, setup files, the OpenSim baseline, the CLI, bad input."""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from osim_builders import all_joints_model

from biokin_nb.cli import main as cli_main
from biokin_nb.ik import (
    IKResult,
    _banded,
    ik_cost,
    read_ik_setup,
    run_opensim_ik,
    select_time_range,
    solve_ik,
)
from biokin_nb.ik import _kinematics as kin
from biokin_nb.osim import apply_coupler_constraints, forward_kinematics, load_model
from biokin_nb.osim._opensim import opensim
from biokin_nb.osim.coordinates import Motion, read_motion
from biokin_nb.osim.io import MarkerTrajectories
from biokin_nb.osim.scaling import print_model

# Real trials: (setup xml, model, OpenSim 4.6 IK at accuracy 1e-9), in ../shared/validation.
TRIALS = {
    "gait2354": (
        "gait2354_walk/subject01_Setup_IK.xml",
        "gait2354_walk/subject01_simbody.osim",
        "gait2354_walk/generated_opensim4.6/subject01_walk1_ik_os46_acc1e-9.mot",
    ),
    "rajagopal2016": (
        "rajagopal2016_walk/IK/ik_setup_walk.xml",
        "rajagopal2016_walk/generated_opensim4.6/subject_scaled_walk.osim",
        "rajagopal2016_walk/generated_opensim4.6/ik_output_walk_acc1e-9.mot",
    ),
    "subject_walk_scaled": (
        "rajagopal_walk_opensim-core/generated_opensim4.6/ik_setup_minimal.xml",
        "rajagopal_walk_opensim-core/subject_walk_scaled.osim",
        "rajagopal_walk_opensim-core/generated_opensim4.6/subject_walk_scaled_ik_acc1e-9.mot",
    ),
}
POORLY_OBSERVED = ("pro_sup", "arm_rot", "elbow")  # per the validation MANIFEST


@dataclass
class Trial:
    name: str
    model: object
    markers: MarkerTrajectories
    weights: dict[str, float]
    tasks: dict
    reference: Motion
    reference_cost: np.ndarray


@pytest.fixture(scope="module", params=list(TRIALS))
def trial(request, validation_dir) -> Trial:
    setup_file, model_file, reference_file = TRIALS[request.param]
    setup = read_ik_setup(validation_dir / setup_file)
    model = load_model(validation_dir / model_file)
    markers = setup.load_markers()
    weights = setup.marker_weights(model)
    tasks = setup.coordinate_targets(model, markers.time)
    reference = read_motion(model, validation_dir / reference_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tasks for markers the trial lacks (OpenSim skips)
        cost, _ = ik_cost(model, reference.q, markers, weights=weights, coordinate_tasks=tasks)
    return Trial(request.param, model, markers, weights, tasks, reference, cost)


def _solve(trial: Trial, **kwargs) -> IKResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return solve_ik(
            trial.model,
            trial.markers,
            weights=trial.weights,
            coordinate_tasks=trial.tasks,
            **kwargs,
        )


def _rms_deg_per_coordinate(model, q: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """RMS difference (deg) of the rotational coordinates that IK solves for."""
    solved = model.rotational & ~model.locked & ~model.dependent
    rms = np.rad2deg(np.sqrt(np.mean((q - reference) ** 2, axis=0)))
    return {n: float(r) for n, r, s in zip(model.coordinate_names, rms, solved, strict=True) if s}


def _report(trial: Trial, result: IKResult, label: str) -> tuple[float, float]:
    rms = _rms_deg_per_coordinate(trial.model, result.q, trial.reference.q)
    ratio = float(result.cost.sum() / trial.reference_cost.sum())
    print(
        f"\n{trial.name} {label}: mean RMS {np.mean(list(rms.values())):.4f} deg, "
        f"cost ratio {ratio:.6f}, {result.wall_time_s:.2f} s, {result.iterations} iterations"
    )
    for name, value in sorted(rms.items(), key=lambda kv: -kv[1]):
        poor = " (poorly observed)" if name.startswith(POORLY_OBSERVED) else ""
        print(f"  {name:20s} {value:8.4f} deg{poor}")
    return float(np.mean(list(rms.values()))), ratio


def _assert_constraints_hold(model, q: np.ndarray) -> None:
    lo, hi = model.ranges.T
    clamped = np.array([c.clamped for c in model.coordinates])
    assert np.all(q[:, clamped] >= lo[clamped] - 1e-12)
    assert np.all(q[:, clamped] <= hi[clamped] + 1e-12)
    np.testing.assert_array_equal(
        q[:, model.locked], np.broadcast_to(model.defaults[model.locked], q[:, model.locked].shape)
    )
    coupled = apply_coupler_constraints(model, torch.tensor(q)).numpy()
    np.testing.assert_allclose(q, coupled, atol=1e-14)


# --------------------------------------------------------------------------- real trials


def test_frame_ik_matches_opensim_converged_ik(trial):
    result = _solve(trial, mode="frame")
    rms, ratio = _report(trial, result, "frame")
    assert rms <= 1.0
    assert ratio <= 1.01
    assert result.converged.all()
    _assert_constraints_hold(trial.model, result.q)
    np.testing.assert_allclose(result.time, trial.reference.time)


def test_temporal_ik_with_small_lambda_matches_opensim(trial):
    result = _solve(trial, mode="temporal", smoothness=1e-3)
    rms, ratio = _report(trial, result, "temporal lambda=1e-3")
    assert rms <= 1.0
    assert ratio <= 1.01
    _assert_constraints_hold(trial.model, result.q)


def test_result_reports_residuals_of_the_fitted_markers(trial):
    result = _solve(trial)
    assert result.q.shape == (len(trial.markers.time), trial.model.n_coordinates)
    assert result.marker_residuals.shape == (len(result.time), len(result.marker_names))
    assert set(result.marker_names) <= set(trial.weights)
    weights = np.array([trial.weights[n] for n in result.marker_names])
    marker_cost = np.nansum(weights * result.marker_residuals**2, axis=1)
    assert np.all(marker_cost <= result.cost + 1e-12)
    assert result.motion().coordinate_names == trial.model.coordinate_names


# --------------------------------------------------------------------------- known answers


@pytest.fixture(scope="module")
def rajagopal(validation_dir):
    return load_model(validation_dir / TRIALS["rajagopal2016"][1])


def _smooth_motion(model, n_frames: int, seed: int = 0) -> np.ndarray:
    """(T, C) poses moving at constant velocity between two random poses inside the ranges
    (couplers applied)."""
    rng = np.random.default_rng(seed)
    free = ~model.locked & ~model.dependent
    span = np.where(model.rotational, 0.4, 0.05)[free]
    lo, hi = model.ranges[free].T
    start, end = (
        np.clip(model.defaults[free] + rng.uniform(-1, 1, free.sum()) * span, lo + 0.05, hi - 0.05)
        for _ in range(2)
    )
    q = np.tile(model.defaults, (n_frames, 1))
    q[:, free] = start + (end - start) * np.linspace(0, 1, n_frames)[:, None]
    return apply_coupler_constraints(model, torch.tensor(q)).numpy()


def test_recovers_known_coordinates_from_exact_markers(rajagopal):
    q = _smooth_motion(rajagopal, 12)
    markers = forward_kinematics(rajagopal, torch.tensor(q)).markers.numpy()
    result = solve_ik(rajagopal, markers, warm_start=False)
    np.testing.assert_allclose(result.q, q, atol=1e-6)
    assert result.cost.max() < 1e-16


def test_nan_markers_are_skipped_frame_and_temporal(rajagopal):
    q = _smooth_motion(rajagopal, 10, seed=1)
    markers = forward_kinematics(rajagopal, torch.tensor(q)).markers.numpy()
    gaps = ["R.TH1", "L.SH2", "R.Heel", "L.Shoulder"]  # each body keeps other markers
    idx = [rajagopal.marker_index(n) for n in gaps]
    markers[2:7, idx] = np.nan
    markers[5, idx[0]] = 99.0  # a wild value would show up if a gap were used...
    markers[5, idx[0]] = np.nan  # ...but it is a gap again
    result = solve_ik(rajagopal, markers)
    np.testing.assert_allclose(result.q, q, atol=1e-6)
    assert np.isnan(result.marker_residuals[2:7, idx]).all()
    assert np.isfinite(np.delete(result.marker_residuals, idx, axis=1)).all()
    temporal = solve_ik(rajagopal, markers, mode="temporal", smoothness=1e-8)
    np.testing.assert_allclose(temporal.q, q, atol=1e-4)


def test_frames_without_markers_are_interpolated(rajagopal):
    q = _smooth_motion(rajagopal, 6, seed=2)
    markers = forward_kinematics(rajagopal, torch.tensor(q)).markers.numpy()
    markers[2] = np.nan
    result = solve_ik(rajagopal, markers)
    np.testing.assert_allclose(result.q[2], 0.5 * (q[1] + q[3]), atol=1e-3)
    assert np.isnan(result.marker_residuals[2]).all()


def test_float32_and_cold_start(rajagopal):
    q = _smooth_motion(rajagopal, 5, seed=3)
    markers = forward_kinematics(rajagopal, torch.tensor(q)).markers.numpy()
    result = solve_ik(rajagopal, markers, dtype=torch.float32, warm_start=False)
    np.testing.assert_allclose(result.q, q, atol=1e-3)
    assert result.converged.all() and result.iterations < 30  # stops at float32 rounding
    temporal = solve_ik(
        rajagopal, markers, dtype=torch.float32, mode="temporal", smoothness=(0.0, 1e-3)
    )
    np.testing.assert_allclose(temporal.q, q, atol=1e-3)


def test_coordinate_tasks_pull_towards_targets(rajagopal):
    q = _smooth_motion(rajagopal, 4, seed=4)
    markers = forward_kinematics(rajagopal, torch.tensor(q)).markers.numpy()
    target = q[:, rajagopal.coordinate_index("lumbar_bending")] + 0.2
    loose = solve_ik(rajagopal, markers, coordinate_tasks={"lumbar_bending": (1e-4, target)})
    tight = solve_ik(rajagopal, markers, coordinate_tasks={"lumbar_bending": (1e4, target)})
    col = rajagopal.coordinate_index("lumbar_bending")
    assert np.abs(loose.q[:, col] - q[:, col]).max() < 0.01
    assert np.abs(tight.q[:, col] - target).max() < 0.01


def test_temporal_windows_recover_a_constant_velocity_motion(rajagopal):
    q = _smooth_motion(rajagopal, 30, seed=5)  # linear in time: no acceleration to penalize
    markers = forward_kinematics(rajagopal, torch.tensor(q)).markers.numpy()
    whole = solve_ik(rajagopal, markers, mode="temporal", smoothness=(0.0, 1e-2))
    windows = solve_ik(
        rajagopal, markers, mode="temporal", smoothness=(0.0, 1e-2), window=12, overlap=4
    )
    np.testing.assert_allclose(whole.q, q, atol=1e-6)
    np.testing.assert_allclose(windows.q, q, atol=1e-6)


def test_temporal_smoothness_smooths(rajagopal):
    q = _smooth_motion(rajagopal, 20, seed=6)
    markers = forward_kinematics(rajagopal, torch.tensor(q)).markers.numpy()
    markers = markers + np.random.default_rng(1).normal(0, 0.005, markers.shape)
    frame = solve_ik(rajagopal, markers)
    smooth = solve_ik(rajagopal, markers, mode="temporal", smoothness=1.0)

    def roughness(x: np.ndarray) -> float:
        return float(np.abs(np.diff(x, 2, axis=0)).mean())

    assert roughness(smooth.q) < 0.5 * roughness(frame.q)
    assert smooth.cost.sum() > frame.cost.sum()  # smoothness costs some marker fit


def test_solves_scale_factors_shared_over_frames(rajagopal):
    q = _smooth_motion(rajagopal, 6, seed=7)
    scales = rajagopal.ones_scales()
    scales[rajagopal.body_index("pelvis")] = [1.05, 0.95, 1.1]
    scales[rajagopal.body_index("femur_r")] = [1.0, 1.08, 1.0]
    fk = forward_kinematics(rajagopal, torch.tensor(q), torch.tensor(scales))
    result = solve_ik(rajagopal, fk.markers.numpy(), solve_scales=True)
    for body in ("pelvis", "femur_r"):
        i = rajagopal.body_index(body)
        np.testing.assert_allclose(result.scales[i], scales[i], atol=1e-3)
    assert result.cost.max() < 1e-8


def test_direction_objective_ignores_segment_lengths(rajagopal):
    q = _smooth_motion(rajagopal, 5, seed=8)
    fk = forward_kinematics(rajagopal, torch.tensor(q))
    names = rajagopal.keypoint_names
    parent_joint = {j.child_body: j.name for j in rajagopal.joints}
    links = [(parent_joint[j.parent_body], j.name) for j in rajagopal.joints if j.parent_body >= 0]
    centre = fk.keypoints[:, :1]
    observed = (centre + 1.15 * (fk.keypoints - centre)).numpy()  # every segment 15% longer
    result = solve_ik(rajagopal, observed, marker_names=names, objective="direction", links=links)
    assert result.cost.max() < 1e-20
    assert result.marker_names == [f"{a}->{b}" for a, b in links]
    assert np.nanmax(result.marker_residuals) < 1e-8


# --------------------------------------------------------------------------- kinematics


@pytest.fixture(scope="module")
def all_joints(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "all_joints.osim"
    print_model(all_joints_model(), path)
    return load_model(path)


@pytest.fixture(params=["all_joints", "rajagopal"])
def any_model(request, all_joints, rajagopal):
    return {"all_joints": all_joints, "rajagopal": rajagopal}[request.param]


def _random_state(model, n: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    lo, hi = model.ranges.T
    q = torch.tensor(rng.uniform(np.maximum(lo, -1.5), np.minimum(hi, 1.5), (n, len(lo))))
    scales = torch.tensor(rng.uniform(0.8, 1.2, (model.n_bodies, 3)))
    names = model.marker_names + model.keypoint_names
    points = kin.point_set(model, names, torch.float64, "cpu")
    plan = kin.plan(model, torch.float64, "cpu")
    free = torch.tensor(np.flatnonzero(~model.dependent))
    return q, scales, points, plan, free


def test_point_kinematics_match_forward_kinematics(any_model):
    q, scales, points, plan, free = _random_state(any_model)
    full, dq = kin.full_coordinates(plan, torch.tensor(any_model.defaults), free, q[:, free])
    ours = kin.evaluate(plan, points, free, full, dq, scales)
    ref = forward_kinematics(any_model, q, scales)
    np.testing.assert_allclose(ours.q, apply_coupler_constraints(any_model, q), atol=1e-15)
    expected = torch.cat([ref.markers, ref.keypoints], dim=-2)
    np.testing.assert_allclose(ours.points, expected, atol=1e-13)


def test_jacobians_match_finite_differences(any_model):
    q, scales, points, plan, free = _random_state(any_model, n=2, seed=1)
    base = torch.tensor(any_model.defaults)
    x = q[:, free]

    def points_at(x_: torch.Tensor, s_: torch.Tensor) -> torch.Tensor:
        full, dq = kin.full_coordinates(plan, base, free, x_)
        return kin.evaluate(plan, points, free, full, dq, s_, jacobian=False).points

    full, dq = kin.full_coordinates(plan, base, free, x)
    k = kin.evaluate(plan, points, free, full, dq, scales, scale_jacobian=True)
    h = 1e-6
    for i in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, i] = h
        fd = (points_at(x + e, scales) - points_at(x - e, scales)) / (2 * h)
        np.testing.assert_allclose(k.jacobian[..., i], fd, atol=1e-7)
    for i in range(0, 3 * any_model.n_bodies, 5):
        e = torch.zeros(3 * any_model.n_bodies, dtype=torch.float64)
        e[i] = h
        fd = (points_at(x, scales + e.view(-1, 3)) - points_at(x, scales - e.view(-1, 3))) / (2 * h)
        np.testing.assert_allclose(k.scale_jacobian[..., i], fd, atol=1e-7)


def test_second_order_term_completes_the_hessian(any_model):
    q, scales, points, plan, free = _random_state(any_model, n=2, seed=2)
    base = torch.tensor(any_model.defaults)
    rng = np.random.default_rng(3)
    observed = torch.tensor(rng.normal(0, 0.3, (2, len(points.body), 3)))
    task_w = torch.tensor(rng.uniform(0, 1, any_model.n_coordinates))
    target = torch.tensor(rng.normal(0, 0.3, any_model.n_coordinates))

    def gradient(x: torch.Tensor, with_hessian: bool = False):
        full, dq = kin.full_coordinates(plan, base, free, x)
        k = kin.evaluate(plan, points, free, full, dq, scales)
        r, jac = (k.points - observed).flatten(1), k.jacobian.flatten(1, 2)
        r_c, j_c = full - target, k.coordinate_jacobian
        grad = (jac.mT @ r[..., None] + j_c.mT @ (task_w * r_c)[..., None]).squeeze(-1)
        if not with_hessian:
            return grad
        extra = kin.second_order(plan, points, free, k, k.points - observed, task_w * r_c)
        return grad, jac.mT @ jac + j_c.mT @ (task_w[:, None] * j_c) + extra

    x = q[:, free]
    _, hessian = gradient(x, with_hessian=True)
    h = 1e-6
    for i in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, i] = h
        fd = (gradient(x + e) - gradient(x - e)) / (2 * h)
        np.testing.assert_allclose(hessian[..., i], fd, atol=1e-6 * (1 + fd.abs().max()))


@pytest.mark.parametrize("order, n_frames, n", [(1, 30, 6), (2, 7, 4), (1, 2, 3), (2, 5, 1)])
def test_block_banded_solvers_match_a_dense_solve(order, n_frames, n):
    """Temporal IK's normal equations: LAPACK's banded Cholesky (CPU) and block cyclic
    reduction (any device) both solve the assembled matrix."""
    rng = np.random.default_rng(order * 100 + n_frames)
    m = rng.normal(size=(n_frames, n, n))
    blocks = torch.tensor(m @ m.transpose(0, 2, 1) + n * np.eye(n))
    free = torch.tensor(rng.uniform(size=(n_frames, n)) > 0.2)
    weights = [rng.uniform(-0.5, 0.5, n_frames - k) for k in range(1, order + 1)]
    dense = np.zeros((n_frames * n, n_frames * n))
    for t in range(n_frames):
        dense[t * n : (t + 1) * n, t * n : (t + 1) * n] = blocks[t]
    for k, w in enumerate(weights, start=1):
        for t in range(n_frames - k):
            i, j = t * n + np.arange(n), (t + k) * n + np.arange(n)
            dense[i, j] = dense[j, i] = w[t] * (free[t] & free[t + k]).numpy()
    rhs = torch.tensor(rng.normal(size=(n_frames, n, 2)))
    truth = np.linalg.solve(dense, rhs.reshape(-1, 2).numpy()).reshape(n_frames, n, 2)
    couplings = tuple(torch.tensor(w) for w in weights)
    for solver in (_banded.banded_cholesky, _banded.cyclic_reduction):
        x = solver(blocks, couplings, free).solve(rhs)
        np.testing.assert_allclose(x.numpy(), truth, atol=1e-12)
        with pytest.raises(_banded.NotPositiveDefinite):
            solver(-blocks, couplings, free)


def test_solver_constants_stay_ordinary_tensors(rajagopal):
    """IK runs in inference mode; its cached constants must not become inference tensors
    (autograd elsewhere would refuse them)."""
    model = dataclasses.replace(rajagopal, _cache={})
    q = torch.tensor(model.defaults)[None].repeat(3, 1)
    markers = forward_kinematics(model, q).markers.numpy()
    solve_ik(model, markers, marker_names=model.marker_names, mode="temporal")
    plan = kin.plan(model, torch.float64, "cpu")  # the one solve_ik built and cached
    maps = [vars(u) for u in plan.cache.values()]
    cached = [t for d in [vars(plan), *maps] for t in d.values() if torch.is_tensor(t)]
    assert maps and cached and not any(t.is_inference() for t in cached)
    q_grad = q.clone().requires_grad_()
    forward_kinematics(model, q_grad).markers.sum().backward()
    assert q_grad.grad is not None


# --------------------------------------------------------------------------- setup files


def test_reads_an_opensim_ik_setup(validation_dir):
    setup = read_ik_setup(validation_dir / TRIALS["gait2354"][0])
    assert setup.model_file == (validation_dir / TRIALS["gait2354"][1]).resolve()
    assert setup.marker_file.name == "subject01_walk1.trc"
    assert setup.time_range == (0.4, 1.6)
    assert setup.accuracy == 1e-5 and setup.constraint_weight == 20
    assert len(setup.marker_tasks) == 31 and len(setup.coordinate_tasks) == 4
    model = setup.load_model()
    weights = setup.marker_weights(model)
    assert weights["R.ASIS"] == 10 and weights["Top.Head"] == 0.1
    targets = setup.coordinate_targets(model, np.zeros(3))
    subtalar = model.defaults[model.coordinate_index("subtalar_angle_r")]
    assert targets["subtalar_angle_r"] == (1000.0, subtalar)
    markers = setup.load_markers()
    assert len(markers.time) == 73 and markers.time[0] == pytest.approx(0.4)


def test_setup_reads_apply_flags_and_infinite_constraint_weight(validation_dir):
    setup = read_ik_setup(validation_dir / TRIALS["rajagopal2016"][0])
    assert setup.constraint_weight == float("inf")
    off = {t.name for t in setup.marker_tasks if not t.apply}
    assert {"R.Biceps", "R.MElbow", "R_HJC"} <= off
    model = load_model(validation_dir / TRIALS["rajagopal2016"][1])
    assert not off & set(setup.marker_weights(model))


def test_setup_coordinate_task_value_types(validation_dir, tmp_path):
    from biokin_nb.osim.coordinates import write_motion

    model_file = validation_dir / TRIALS["gait2354"][1]
    model = load_model(model_file)
    q = np.tile(model.defaults, (3, 1))
    q[:, model.coordinate_index("mtp_angle_r")] = [0.1, 0.2, 0.3]
    write_motion(
        model, Motion(np.array([0.0, 1.0, 2.0]), q, model.coordinate_names), tmp_path / "coords.mot"
    )
    source = (validation_dir / TRIALS["gait2354"][0]).read_text()
    text = source.replace("subject01_simbody.osim", str(model_file))
    text = text.replace(
        "<coordinate_file></coordinate_file>", "<coordinate_file>coords.mot</coordinate_file>"
    )
    for name, body in (
        ("mtp_angle_r", "<weight>1000</weight><value_type>from_file</value_type>"),
        (
            "mtp_angle_l",
            "<weight>1000</weight><value_type>manual_value</value_type><value>0.25</value>",
        ),
    ):
        task = f'<IKCoordinateTask name="{name}">'
        text = re.sub(
            f"{task}.*?</IKCoordinateTask>", f"{task}{body}</IKCoordinateTask>", text, flags=re.S
        )
    (tmp_path / "setup.xml").write_text(text)
    setup = read_ik_setup(tmp_path / "setup.xml")
    targets = setup.coordinate_targets(model, np.array([0.5, 1.5]))
    np.testing.assert_allclose(targets["mtp_angle_r"][1], [0.15, 0.25])
    assert targets["mtp_angle_l"] == (1000.0, 0.25)


def test_setup_naming_unknown_coordinate_is_an_error(validation_dir, tmp_path):
    source = validation_dir / TRIALS["gait2354"][0]
    text = source.read_text().replace('"subtalar_angle_r"', '"subtalar_angel_r"')
    text = text.replace("subject01_simbody.osim", str(validation_dir / TRIALS["gait2354"][1]))
    bad = tmp_path / "setup.xml"
    bad.write_text(text)
    setup = read_ik_setup(bad)
    with pytest.raises(KeyError, match=r"subtalar_angel_r.*did you mean subtalar_angle_r"):
        setup.coordinate_targets(setup.load_model(), np.zeros(2))


def test_setup_naming_unknown_marker_is_an_error(validation_dir, tmp_path):
    source = validation_dir / TRIALS["gait2354"][0]
    bad = tmp_path / "setup.xml"
    bad.write_text(source.read_text().replace('"R.ASIS"', '"R.ASSIS"'))
    model = load_model(validation_dir / TRIALS["gait2354"][1])
    with pytest.raises(KeyError, match=r"R\.ASSIS.*did you mean R\.ASIS"):
        read_ik_setup(bad).marker_weights(model)


def test_setup_missing_files_are_named(tmp_path, validation_dir):
    with pytest.raises(FileNotFoundError, match="no IK setup"):
        read_ik_setup(tmp_path / "nope.xml")
    setup = read_ik_setup(validation_dir / TRIALS["rajagopal2016"][0])
    with pytest.raises(FileNotFoundError, match="model_file .*subject_scaled_walk.osim"):
        setup.load_model()  # the setup points at ../Scale/, which the data set lacks
    with pytest.raises(FileNotFoundError, match="marker_file"):
        setup.load_markers(tmp_path / "none.trc")
    wrong = tmp_path / "other.xml"
    wrong.write_text("<OpenSimDocument><ScaleTool/></OpenSimDocument>")
    with pytest.raises(ValueError, match="InverseKinematicsTool"):
        read_ik_setup(wrong)


def test_time_range_outside_the_data_is_an_error(validation_dir):
    markers = read_ik_setup(validation_dir / TRIALS["gait2354"][0]).load_markers()
    with pytest.raises(ValueError, match="no marker frame in the time range"):
        select_time_range(markers, (10.0, 11.0))


# --------------------------------------------------------------------------- bad input


def test_bad_input_errors_name_the_problem(rajagopal):
    q = _smooth_motion(rajagopal, 3)
    markers = forward_kinematics(rajagopal, torch.tensor(q)).markers.numpy()
    names = rajagopal.marker_names
    with pytest.raises(KeyError, match="Bogus.Marker"):
        solve_ik(rajagopal, markers, marker_names=names[:-1] + ["Bogus.Marker"])
    with pytest.raises(ValueError, match="NaN in every frame"):
        solve_ik(rajagopal, np.full_like(markers, np.nan))
    with pytest.raises(ValueError, match="T = 0"):
        solve_ik(rajagopal, markers[:0])
    with pytest.raises(ValueError, match="at least 2 frames"):
        solve_ik(rajagopal, markers[:1], mode="temporal")
    with pytest.raises(ValueError, match="lambda >= 0"):
        solve_ik(rajagopal, markers, mode="temporal", smoothness=-1.0)
    with pytest.raises(ValueError, match=r"\(T, M, 3\)"):
        solve_ik(rajagopal, markers[..., :2])
    with pytest.raises(KeyError, match="did you mean lumbar_bending"):
        solve_ik(rajagopal, markers, coordinate_tasks={"lumbar_bendin": (1.0, 0.0)})
    with pytest.raises(ValueError, match="mode"):
        solve_ik(rajagopal, markers, mode="sequence")


def test_weighted_markers_the_model_lacks_are_named(rajagopal):
    q = _smooth_motion(rajagopal, 2)
    markers = forward_kinematics(rajagopal, torch.tensor(q)).markers.numpy()
    trajectories = MarkerTrajectories(np.arange(2.0), rajagopal.marker_names, markers, 100.0)
    with pytest.raises(KeyError, match="markers not in model .*Nope"):
        solve_ik(rajagopal, trajectories, weights={"R.ASIS": 1.0, "Nope": 2.0})


# --------------------------------------------------------------------------- baselines, CLI


def test_opensim_tool_wrapper_reproduces_opensim(validation_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup = read_ik_setup(validation_dir / TRIALS["gait2354"][0])
    model = setup.load_model()
    result = run_opensim_ik(model, setup.marker_file, setup=setup, accuracy=1e-9)
    reference = read_motion(model, validation_dir / TRIALS["gait2354"][2])
    np.testing.assert_allclose(result.q, reference.q, atol=1e-5)
    assert result.wall_time_s > 0 and result.cost.shape == (73,)
    assert list(tmp_path.iterdir()) == []  # headless: no opensim.log, no results here


def test_cli_writes_a_mot_that_opensim_reads(validation_dir, tmp_path):
    setup_file, model_file, reference_file = (validation_dir / p for p in TRIALS["gait2354"])
    out = tmp_path / "walk_ik.mot"
    status = cli_main(
        [
            "ik",
            str(model_file),
            str(setup_file.parent / "subject01_walk1.trc"),
            "--setup",
            str(setup_file),
            "--temporal",
            "1e-4",
            "-o",
            str(out),
        ]
    )
    assert status == 0
    table = opensim().TimeSeriesTable(str(out))
    assert table.getNumRows() == 73
    model = load_model(model_file)
    ours, reference = read_motion(model, out), read_motion(model, reference_file)
    rms = _rms_deg_per_coordinate(model, ours.q, reference.q)
    assert np.mean(list(rms.values())) < 1.0


def test_cli_reports_bad_input(validation_dir, tmp_path, capsys):
    model_file = validation_dir / TRIALS["gait2354"][1]
    status = cli_main(["ik", str(model_file), str(tmp_path / "no.trc"), "-o", str(tmp_path / "o")])
    assert status == 2
    assert re.search(r"error: .*no\.trc", capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_cli_without_setup_fits_every_shared_marker(validation_dir, tmp_path):
    model_file = validation_dir / TRIALS["gait2354"][1]
    trc = validation_dir / "gait2354_walk/subject01_walk1.trc"
    out = tmp_path / "all.mot"
    with pytest.warns(UserWarning, match="ignored"):
        assert cli_main(["ik", str(model_file), str(trc), "-o", str(out)]) == 0
    assert out.is_file()


def test_warm_start_re_solves_each_run_from_its_neighbours():
    from biokin_nb.ik.solver import _keep_better, _run_candidates

    x = torch.zeros(8, 2, dtype=torch.float64)
    x[3:6, 0] = 2.0  # frames 3..5 sit in another basin
    frames, sources = _run_candidates(x, set())
    pairs = set(zip(frames.tolist(), sources.tolist(), strict=True))
    assert {(3, 2), (4, 2), (5, 2), (3, 6), (4, 6), (5, 6), (2, 3), (6, 5)} <= pairs
    assert not _run_candidates(x, {*pairs})[0].numel()  # tried pairs are not tried again
    cost = torch.ones(8, dtype=torch.float64)
    tried_x = torch.full((len(frames), 2), 7.0, dtype=torch.float64)
    tried_cost = torch.where(frames == 4, 0.5, 2.0).to(torch.float64)
    done = torch.ones(len(frames), dtype=torch.bool)
    new_x, new_cost, _, improved = _keep_better(
        x, cost, torch.zeros(8, dtype=torch.bool), frames, tried_x, tried_cost, done
    )
    assert improved and new_cost[4] == 0.5 and new_x[4, 0] == 7.0
    assert torch.equal(new_x[torch.arange(8) != 4], x[torch.arange(8) != 4])
