"""Committed Anny tables (markers, joint regressor) and the skeleton from body shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biokin_nb.body import load_registration, skeleton_from_shape, write_subject_osim
from biokin_nb.body.markers import build_marker_table, read_marker_table
from biokin_nb.body.registration import marker_table_path
from biokin_nb.body.regressor import (
    fit_keypoint,
    load_regressor,
    regressor_errors_mm,
    sample_training_data,
    save_regressor,
)
from biokin_nb.body.skeleton import pose_from_body_rotations, rest_skeleton, target_keypoints
from biokin_nb.body.subject import segment_length_errors_mm
from biokin_nb.osim import forward_kinematics, load_model
from biokin_nb.osim._opensim import opensim


@pytest.fixture(scope="module")
def reg():
    return load_registration("anny")


def test_committed_marker_table_matches_the_generic_model_and_regenerates(reg):
    table = read_marker_table(marker_table_path("anny"), "anny")
    assert list(table.names) == reg.model.marker_names
    assert table.vertices.min() >= 0 and table.vertices.max() < reg.body.n_vertices
    rebuilt = build_marker_table(reg.body, reg.rig, reg.geom)
    np.testing.assert_array_equal(rebuilt.vertices, table.vertices)


def test_regressor_is_sparse_convex_and_round_trips(reg, tmp_path):
    w = reg.regressor.weights
    assert w.shape == (44, len(reg.regressor.support)) and (w >= 0).all()
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-9)
    assert (w > 0).sum(1).max() <= 48
    again = load_regressor(save_regressor(reg.regressor, tmp_path / "r.npz"), "anny")
    np.testing.assert_allclose(again.weights, w)
    np.testing.assert_array_equal(again.support, reg.regressor.support)
    with pytest.raises(ValueError, match="regressor of anny, not smplx"):
        load_regressor(tmp_path / "r.npz", "smplx")
    with pytest.raises(FileNotFoundError, match="python -m biokin_nb.body.regressor"):
        load_regressor(tmp_path / "none.npz", "anny")


def test_fit_keypoint_recovers_a_known_convex_combination():
    rng = np.random.default_rng(0)
    vertices = rng.normal(size=(40, 30, 3))
    truth = np.zeros(30)
    truth[[3, 7, 11]] = [0.2, 0.5, 0.3]
    target = np.einsum("nvd,v->nd", vertices, truth)
    idx, w = fit_keypoint(vertices, target, np.arange(30), max_vertices=5)
    np.testing.assert_allclose(np.einsum("nvd,v->nd", vertices[:, idx], w), target, atol=1e-6)


def test_regressor_error_on_held_out_shapes_and_poses(reg):
    test = sample_training_data(reg.body, reg.rig, reg.geom, 8, 2, seed=99)
    err = regressor_errors_mm(reg.regressor, test)[:, : reg.n_joints]
    print(f"held-out joint error mean {err.mean():.2f} mm, p95 {np.percentile(err, 95):.2f} mm")
    assert err.mean() <= 10.0


def _default_pose(reg, shape=None):
    """The generic model scaled into the rest mesh of ``shape`` at its default pose, and the
    mesh posed by the same body orientations: (FK, rest skeleton, posed mesh)."""
    skel = rest_skeleton(reg.body, reg.rig, reg.geom, shape)
    q = torch.tensor(reg.model.defaults)
    fk = forward_kinematics(reg.model, q, skel.scales.double())
    names = reg.geom.joint_names
    midhip = fk.joint_centres[[names.index("hip_r"), names.index("hip_l")]].mean(0)
    eye = torch.eye(3).expand(len(reg.geom.body_names), 3, 3)
    pose = pose_from_body_rotations(reg.rig, reg.body, reg.geom, skel, eye, midhip.float())
    return fk, skel, reg.body(shape, pose)


def test_targets_match_the_scaled_generic_model_at_its_default_pose(reg):
    rest = reg.body.rest_pose()
    assert torch.allclose(rest.rotations, torch.eye(3).expand_as(rest.rotations))
    fk, skel, out = _default_pose(reg)
    targets = target_keypoints(reg.rig, reg.body, reg.geom, skel, out).double()
    err = (targets - fk.keypoints).norm(dim=-1) * 1000
    assert err.max() < 10.0  # only the torso pivot differs: spine bone vs the back joint
    foot = [i for i, n in enumerate(reg.geom.keypoint_names) if _is_foot(n)]
    assert err[foot].max() < 0.01  # mm: the scaled ankle-subtalar-mtp chain is exact


def _is_foot(name: str) -> bool:
    return name.split("_")[0] in ("ankle", "subtalar", "mtp", "talus", "calcn", "toes")


def _winding_numbers(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P,) generalized winding numbers of ``points`` (P, 3) for a closed triangle mesh:
    1 inside, 0 outside (Jacobson et al. 2013: solid angles of the triangles / 4 pi)."""
    a, b, c = (vertices[faces[:, k]][None] - points[:, None] for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    dot = lambda x, y: np.einsum("pfi,pfi->pf", x, y)  # noqa: E731
    den = la * lb * lc + dot(a, b) * lc + dot(b, c) * la + dot(c, a) * lb
    return np.arctan2(det, den).sum(1) / (2 * np.pi)


def test_foot_keypoints_lie_inside_the_skin(reg):
    """The foot's scales (talus by the heel, toes by their length) keep the subtalar centres
    and the foot's mass centres inside the rest mesh, for shapes across the sampling range."""
    shapes = reg.body.sample_shapes(4, torch.Generator().manual_seed(5))
    faces = reg.body.faces.numpy()
    foot = [i for i, n in enumerate(reg.geom.keypoint_names) if _is_foot(n)]
    for shape in [None, *shapes]:
        fk, _, out = _default_pose(reg, shape)
        points = fk.keypoints[foot].numpy()
        winding = _winding_numbers(points, out.vertices.double().numpy(), faces)
        names = [reg.geom.keypoint_names[i] for i in foot]
        assert np.all(winding > 0.5), dict(zip(names, winding.round(2), strict=True))


def test_skeleton_from_shape_agrees_with_the_mesh_and_osim_loads(reg, tmp_path):
    shapes = reg.body.sample_shapes(2, torch.Generator().manual_seed(77))  # held out
    for shape in shapes:
        subject = skeleton_from_shape(reg, shape)
        err = segment_length_errors_mm(reg, subject)
        assert err.mean() <= 5.0, err
        assert 1.4 < subject.height < 2.1
    path = write_subject_osim(reg, subject, tmp_path / "subject.osim", "test_subject")
    model = opensim().Model(str(path))
    state = model.initSystem()
    assert model.getName() == "test_subject" and model.getMarkerSet().getSize() == 44
    assert state is not None
    loaded = load_model(path)
    assert segment_length_errors_mm(reg, subject, loaded).mean() <= 5.0
    a = forward_kinematics(
        subject.model, torch.tensor(loaded.defaults), torch.tensor(subject.scales)
    )
    b = forward_kinematics(loaded, torch.tensor(loaded.defaults))
    torch.testing.assert_close(a.markers, b.markers)
    torch.testing.assert_close(a.joint_centres, b.joint_centres)
