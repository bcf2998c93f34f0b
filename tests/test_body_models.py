"""Body models: Anny loads offline, ground-frame axes and units, posing, shape validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biokin_nb.body import AnnyBody, BodyPose, ShapeRangeError, load_body
from biokin_nb.body.frames import (
    ANNY_TO_GROUND,
    points_from_ground,
    points_to_ground,
    rotation_aligning,
    rotations_from_ground,
    rotvec_to_matrix,
)
from biokin_nb.body.lbs import ancestor_matrix


@pytest.fixture(scope="module")
def anny() -> AnnyBody:
    return AnnyBody(dtype=torch.float64)


def check_axes(body: AnnyBody, shape) -> None:
    """Head above feet, front facing +X, the right side at +Z, metres."""
    out = body(shape)
    v = out.vertices
    height = v[..., 1].amax(-1) - v[..., 1].amin(-1)
    assert ((height > 1.4) & (height < 2.1)).all(), height
    assert v[..., 1].amin(-1).abs().max() < 1e-5  # standing on the floor y = 0
    head = body.bone_index("head")
    feet = [body.bone_index(f"foot.{side}") for side in "RL"]
    toes = [body.bone_index(f"toe1-1.{side}") for side in "RL"]
    j = out.joints
    assert (j[..., head, 1] > j[..., feet, 1].max(-1).values + 1.0).all()
    assert (j[..., toes, 0] > j[..., feet, 0] + 0.05).all()  # toes ahead of the ankles: +X
    assert (j[..., feet[0], 2] > j[..., feet[1], 2]).all()  # right foot at +Z


def test_anny_loads_offline_in_the_ground_frame(anny):
    assert anny.n_vertices == 13718 and anny.n_bones == 104
    assert anny.faces.shape[1] == 3 and int(anny.faces.max()) < anny.n_vertices
    check_axes(anny, None)
    check_axes(anny, anny.sample_shapes(6, torch.Generator().manual_seed(0)))


def test_posing_matches_annys_own_world_orient_pipeline(anny):
    shapes = anny.sample_shapes(2, torch.Generator().manual_seed(1))
    rot = rotvec_to_matrix(0.4 * torch.randn(2, anny.n_bones, 3, dtype=torch.float64))
    root = torch.randn(2, 3, dtype=torch.float64)
    ours = anny(shapes, BodyPose(rot, root))
    m = anny.anny
    kwargs = {n: shapes[:, i] for i, n in enumerate(anny.shape_names)}
    rest = m.get_rest_model(m.get_phenotype_blendshape_coefficients(**kwargs))
    rest_poses = rest["rest_bone_poses"].clone()
    rest_poses[..., :3, 3] = points_from_ground(anny.rest(shapes)["heads"], ANNY_TO_GROUND)
    deltas = torch.zeros(2, anny.n_bones, 4, 4, dtype=torch.float64)
    deltas[..., 3, 3] = 1.0
    deltas[..., :3, :3] = rotations_from_ground(rot, ANNY_TO_GROUND) @ rest_poses[..., :3, :3]
    deltas[:, 0, :3, 3] = points_from_ground(root, ANNY_TO_GROUND)
    transforms, poses = m.get_bone_transforms(
        deltas, rest_poses, pose_parameterization="world-orient"
    )
    vertices = m.get_skinned_vertices(rest["rest_vertices"], transforms)
    torch.testing.assert_close(points_to_ground(vertices, ANNY_TO_GROUND), ours.vertices)
    torch.testing.assert_close(points_to_ground(poses[..., :3, 3], ANNY_TO_GROUND), ours.joints)


def test_subset_skinning_and_gradients(anny):
    shape = anny.default_shape()
    rot = rotvec_to_matrix(0.3 * torch.randn(3, anny.n_bones, 3, dtype=torch.float64))
    pose = BodyPose(rot.requires_grad_(), anny.rest_pose(shape).root.expand(3, 3))
    ids = torch.arange(0, anny.n_vertices, 97)
    full, part = anny(shape, pose).vertices, anny(shape, pose, vertex_ids=ids).vertices
    torch.testing.assert_close(full[:, ids], part)
    part.sum().backward()
    assert rot.grad is not None and rot.grad.abs().sum() > 0


def test_rest_pose_is_annys_rest_mesh_and_knees_follow_the_skin(anny):
    for height in (0.0, 0.5, 1.0):
        out = anny({"height": height})
        j, v = out.joints, out.vertices
        knee = j[anny.bone_index("lowerleg01.R")]
        ring = v[(v[:, 1] - knee[1]).abs() < 0.015]
        # the re-seated knee stays within 1 cm of the knee's skin ring height at any height
        assert abs(float(ring[:, 1].mean() - knee[1])) < 0.01


def test_shape_errors_name_the_parameter_and_its_range(anny):
    with pytest.raises(ShapeRangeError, match=r"'height' = 1\.3 is outside its range \[0, 1\]"):
        anny({"height": 1.3})
    bad = anny.default_shape().clone()
    bad[1] = -0.2
    with pytest.raises(ShapeRangeError, match="'age'"):
        anny(bad)
    with pytest.raises(KeyError, match="unknown anny shape parameter.*'stature'"):
        anny({"stature": 0.5})
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 6\)"):
        anny(torch.zeros(4))


def test_wrong_model_type_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown body model 'smpl'.*'anny'.*'smplx'"):
        load_body("smpl")


def test_rotation_helpers():
    rv = torch.randn(20, 3, dtype=torch.float64)
    r = rotvec_to_matrix(rv)
    torch.testing.assert_close(
        r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(20, 3, 3)
    )
    assert torch.linalg.det(r).sub(1).abs().max() < 1e-12
    a, b = torch.randn(2, 5, 3, dtype=torch.float64)
    rotated = ((r[:5] @ a[..., None])[..., 0], (r[:5] @ b[..., None])[..., 0])
    torch.testing.assert_close(rotation_aligning((a, b), rotated), r[:5])
    anc = ancestor_matrix([-1, 0, 1, 0])
    np.testing.assert_array_equal(
        anc.numpy(), [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 1]]
    )
