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
from biokin_nb.body.skeleton import pose_from_body_rotations, target_keypoints
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


def test_targets_match_the_scaled_generic_model_at_its_default_pose(reg):
    rest = reg.body.rest_pose()
    from biokin_nb.body.skeleton import rest_skeleton

    skel = rest_skeleton(reg.body, reg.rig, reg.geom)
    q = torch.tensor(reg.model.defaults)
    fk = forward_kinematics(reg.model, q, skel.scales.double())
    names = reg.geom.joint_names
    midhip = fk.joint_centres[[names.index("hip_r"), names.index("hip_l")]].mean(0)
    eye = torch.eye(3).expand(len(reg.geom.body_names), 3, 3)
    pose = pose_from_body_rotations(reg.rig, reg.body, reg.geom, skel, eye, midhip.float())
    out = reg.body(None, pose)
    assert torch.allclose(rest.rotations, eye[:1].expand_as(rest.rotations))
    targets = target_keypoints(reg.rig, reg.body, reg.geom, skel, out).double()
    err = (targets - fk.keypoints).norm(dim=-1) * 1000
    assert err.max() < 10.0  # only the torso pivot differs: spine bone vs the back joint


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
