"""The torch FK agrees with OpenSim's own FK to floating-point precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FK_REFERENCES, REPO, VALIDATION_MODELS

from biokin_nb.osim import apply_coupler_constraints, forward_kinematics, load_model
from biokin_nb.osim.opensim_fk import opensim_forward_kinematics
from biokin_nb.osim.scaling import opensim_model, scale_opensim_model, write_scaled_osim

N_POSES = 100
TOL_M = 1e-6
TOL_RAD = 1e-6
MODELS = {**VALIDATION_MODELS, "generic": None}


def _path(name: str, validation_dir):
    return (
        REPO / "data" / "generic_model.osim" if name == "generic" else validation_dir / MODELS[name]
    )


@pytest.fixture(params=list(MODELS))
def model_path(request, validation_dir):
    return _path(request.param, validation_dir)


def random_poses(model, n: int, seed: int = 0) -> np.ndarray:
    """(n, C) uniform in each coordinate's range (wide ranges clipped to +-pi / +-1 m)."""
    rng = np.random.default_rng(seed)
    lo, hi = model.ranges.T
    limit = np.where(model.rotational, np.pi, 1.0)
    lo, hi = np.maximum(lo, -limit), np.minimum(hi, limit)
    q = rng.uniform(lo, hi, size=(n, model.n_coordinates))
    return apply_coupler_constraints(model, torch.tensor(q)).numpy()


def rotation_angle_error(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Angle (rad) of R1^T R2, robust near 0."""
    d = np.swapaxes(r1, -1, -2) @ r2
    skew = np.stack(
        [d[..., 2, 1] - d[..., 1, 2], d[..., 0, 2] - d[..., 2, 0], d[..., 1, 0] - d[..., 0, 1]], -1
    )
    return np.arctan2(np.linalg.norm(skew, axis=-1) / 2, (np.trace(d, axis1=-2, axis2=-1) - 1) / 2)


def assert_fk_close(ours, ref) -> None:
    for field in ("positions", "joint_centres", "coms", "markers"):
        err = np.abs(getattr(ours, field).numpy() - getattr(ref, field))
        assert err.size == 0 or err.max() <= TOL_M, f"{field}: max error {err.max():.2e} m"
    ang = rotation_angle_error(ours.rotations.numpy(), ref.rotations)
    assert ang.max() <= TOL_RAD, f"rotations: max error {ang.max():.2e} rad"


def test_every_model_loads(model_path):
    model = load_model(model_path)
    assert model.n_bodies >= 12 and model.n_coordinates >= 23
    assert len(model.keypoint_names) == 2 * model.n_bodies


def test_fk_matches_opensim_on_random_scaled_poses(model_path):
    model = load_model(model_path)
    q = random_poses(model, N_POSES)
    scales = np.random.default_rng(1).uniform(0.8, 1.2, size=(model.n_bodies, 3))
    ours = forward_kinematics(model, torch.tensor(q), torch.tensor(scales))
    reference = scale_opensim_model(opensim_model(model_path), scales)
    assert_fk_close(ours, opensim_forward_kinematics(reference, q, model.joint_names))
    unscaled = forward_kinematics(model, torch.tensor(q))
    assert (unscaled.positions - ours.positions).abs().max() > 1e-3  # the scaling did act


@pytest.mark.parametrize("name", list(FK_REFERENCES))
def test_fk_matches_opensim_along_real_ik_solutions(name, validation_dir):
    osim_file, npz_file = FK_REFERENCES[name]
    model = load_model(validation_dir / osim_file)
    ref = np.load(validation_dir / npz_file)
    assert list(ref["coordinate_names"]) == model.coordinate_names
    assert list(ref["body_names"]) == model.body_names
    ours = forward_kinematics(model, torch.tensor(ref["q"]), apply_couplers=False)
    markers = model.marker_indices(list(ref["marker_names"]))
    assert np.abs(ours.positions.numpy() - ref["body_pos"]).max() <= TOL_M
    assert np.abs(ours.markers.numpy()[:, markers] - ref["marker_pos"]).max() <= TOL_M
    assert rotation_angle_error(ours.rotations.numpy(), ref["body_rot"]).max() <= TOL_RAD


def test_written_scaled_osim_loads_in_opensim_and_matches_our_fk(validation_dir, tmp_path):
    source = validation_dir / MODELS["rajagopal2016"]
    model = load_model(source)
    scales = np.random.default_rng(2).uniform(0.8, 1.2, size=(model.n_bodies, 3))
    out = write_scaled_osim(source, scales, tmp_path / "subject.osim", name="subject")
    written = load_model(out)  # OpenSim reads it (load_model goes through opensim.Model)
    assert written.name == "subject"
    q = torch.tensor(random_poses(model, 20, seed=9))
    ours = forward_kinematics(model, q, torch.tensor(scales))
    theirs = opensim_forward_kinematics(opensim_model(out), q.numpy(), written.joint_names)
    assert_fk_close(ours, theirs)
    again = forward_kinematics(written, q)  # our FK of the written file, unscaled
    torch.testing.assert_close(again.markers, ours.markers, atol=1e-9, rtol=0)
    torch.testing.assert_close(again.rotations, ours.rotations, atol=1e-9, rtol=0)
