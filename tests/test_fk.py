"""Torch FK on every joint and function type, gradients, dtypes, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from osim_builders import all_joints_model, ground_constant_translation_model
from test_fk_opensim import assert_fk_close, random_poses

from biokin_nb.osim import UnsupportedModelError, forward_kinematics, load_model
from biokin_nb.osim._opensim import opensim
from biokin_nb.osim.functions import PiecewisePolynomial, PolynomialStack, from_opensim
from biokin_nb.osim.opensim_fk import opensim_forward_kinematics
from biokin_nb.osim.reader import from_opensim_model
from biokin_nb.osim.scaling import opensim_model, print_model, scale_opensim_model


@pytest.fixture(scope="module")
def all_joints_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "all_joints.osim"
    print_model(all_joints_model(), path)
    return path


def _compare_with_opensim(path, scaled: bool) -> None:
    model = load_model(path)
    q = random_poses(model, 50, seed=3)
    rng = np.random.default_rng(4)
    scales = rng.uniform(0.8, 1.2, (model.n_bodies, 3)) if scaled else model.ones_scales()
    ours = forward_kinematics(model, torch.tensor(q), torch.tensor(scales))
    reference = opensim_model(path)
    if scaled:
        scale_opensim_model(reference, scales)
    assert_fk_close(ours, opensim_forward_kinematics(reference, q, model.joint_names))


@pytest.mark.parametrize("scaled", [False, True])
def test_every_joint_type_matches_opensim(all_joints_file, scaled):
    _compare_with_opensim(all_joints_file, scaled)


@pytest.mark.parametrize("scaled", [False, True])
def test_constant_translation_from_ground_matches_opensim(tmp_path, scaled):
    path = tmp_path / "ground_constant.osim"
    print_model(ground_constant_translation_model(), path)
    _compare_with_opensim(path, scaled)


@pytest.mark.parametrize("model_name", ["Rajagopal2016", "ground_constant"])
@pytest.mark.parametrize("per_pose_scales", [False, True])
def test_no_grad_and_autograd_paths_agree(validation_dir, tmp_path, model_name, per_pose_scales):
    """Without autograd the FK writes into preallocated outputs; with it, it stacks
    (ground_constant: a root joint from ground and a ground-fixed marker)."""
    if model_name == "ground_constant":
        path = tmp_path / "ground_constant.osim"
        print_model(ground_constant_translation_model(), path)
    else:
        path = validation_dir / "rajagopal2016_walk/Rajagopal2016.osim"
    model = load_model(path)
    q = torch.tensor(random_poses(model, 7, seed=5))
    rng = np.random.default_rng(6)
    shape = (7, model.n_bodies, 3) if per_pose_scales else (model.n_bodies, 3)
    s = torch.tensor(rng.uniform(0.8, 1.2, shape))
    with torch.no_grad():
        plain = forward_kinematics(model, q, s)
    tracked = forward_kinematics(model, q.clone().requires_grad_(), s)
    assert tracked.markers.requires_grad and not plain.markers.requires_grad
    for field in ("rotations", "positions", "joint_centres", "coms", "markers"):
        torch.testing.assert_close(getattr(tracked, field).detach(), getattr(plain, field))


def test_polynomial_stack_matches_each_function():
    breaks, origins = np.array([0.0, 1.0]), np.array([-1.0, 0.0, 1.0])
    cubic = PiecewisePolynomial(breaks, origins, np.arange(12.0).reshape(3, 4) / 10)
    line = PiecewisePolynomial(breaks, origins, np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]]))
    x = torch.linspace(-2.0, 3.0, 23, dtype=torch.float64).reshape(23, 1)
    both = PolynomialStack.of([cubic, line])(x)
    assert both.shape == (2, 23, 1)
    for k, f in enumerate((cubic, line)):
        piece = np.searchsorted(breaks, x.numpy(), side="right")
        t = x.numpy() - origins[piece]
        expected = sum(f.coefs[piece, d] * t**d for d in range(f.coefs.shape[1]))
        np.testing.assert_allclose(both[k].numpy(), expected, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(f(x).numpy(), expected, rtol=1e-14, atol=1e-14)
    with pytest.raises(ValueError, match="same pieces"):
        PolynomialStack.of([cubic, PiecewisePolynomial.polynomial([1.0, 2.0])])


def test_natural_cubic_spline_matches_opensim(all_joints_file, tmp_path):
    text = all_joints_file.read_text()
    assert "<SimmSpline" in text
    path = tmp_path / "natural.osim"
    path.write_text(text.replace("SimmSpline", "NaturalCubicSpline"))
    model = load_model(path)
    kinds = {m.function.coefs.shape for j in model.joints for m in j.motions}
    assert (8, 4) in kinds  # the spline became 8 cubic pieces (7 knots)
    _compare_with_opensim(path, scaled=True)


def test_functions_match_opensim_calcvalue_including_extrapolation(validation_dir):
    osim = opensim()
    model = osim.Model(str(validation_dir / "rajagopal2016_walk/Rajagopal2016.osim"))
    checked = 0
    for joint in model.getJointSet():
        custom = osim.CustomJoint.safeDownCast(joint)
        if custom is None:
            continue
        for i in range(6):
            fn = custom.getSpatialTransform().getTransformAxis(i).get_function()
            ours = from_opensim(fn)
            x = np.linspace(-4.0, 4.0, 41)
            truth = [fn.calcValue(osim.Vector(1, float(v))) for v in x]
            np.testing.assert_allclose(ours.numpy(x), truth, rtol=1e-10, atol=1e-12)
            checked += 1
    assert checked >= 60


def test_gradcheck_coordinates_and_scales(all_joints_file):
    model = load_model(all_joints_file)
    q = torch.tensor(random_poses(model, 2, seed=5), requires_grad=True)
    s = torch.rand(2, model.n_bodies, 3, dtype=torch.float64) * 0.4 + 0.8
    s.requires_grad_(True)

    def fk(q, s):
        out = forward_kinematics(model, q, s)
        return out.markers, out.rotations, out.keypoints

    assert torch.autograd.gradcheck(fk, (q, s), eps=1e-6, atol=1e-7)


def test_gradcheck_real_model(validation_dir):
    model = load_model(validation_dir / "rajagopal2016_walk/Rajagopal2016.osim")
    q = torch.tensor(random_poses(model, 1, seed=6), requires_grad=True)
    s = torch.ones(model.n_bodies, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda q, s: forward_kinematics(model, q, s).markers, (q, s), eps=1e-6, atol=1e-7
    )


def test_batch_dims_and_float32(all_joints_file):
    model = load_model(all_joints_file)
    q64 = torch.tensor(random_poses(model, 6, seed=8))
    s64 = torch.rand(model.n_bodies, 3, dtype=torch.float64) * 0.4 + 0.8
    flat = forward_kinematics(model, q64, s64)
    nested = forward_kinematics(model, q64.reshape(2, 3, -1), s64)
    assert nested.markers.shape == (2, 3, len(model.markers), 3)
    assert nested.rotations.shape == (2, 3, model.n_bodies, 3, 3)
    assert nested.keypoints.shape == (2, 3, 2 * model.n_bodies, 3)
    torch.testing.assert_close(nested.markers.reshape(6, -1, 3), flat.markers)
    f32 = forward_kinematics(model, q64.float(), s64.float())
    assert f32.markers.dtype == torch.float32
    torch.testing.assert_close(f32.markers.double(), flat.markers, atol=1e-5, rtol=0)
    per_pose_scales = forward_kinematics(model, q64, s64.expand(6, -1, -1))
    torch.testing.assert_close(per_pose_scales.markers, flat.markers)


def test_single_pose_without_batch(all_joints_file):
    model = load_model(all_joints_file)
    out = forward_kinematics(model, torch.zeros(model.n_coordinates, dtype=torch.float64))
    assert out.positions.shape == (model.n_bodies, 3)


@pytest.mark.parametrize("grad", [False, True])
def test_empty_batch(all_joints_file, grad):
    model = load_model(all_joints_file)
    q = torch.zeros(2, 0, model.n_coordinates, dtype=torch.float64, requires_grad=grad)
    out = forward_kinematics(model, q)
    assert out.rotations.shape == (2, 0, model.n_bodies, 3, 3)
    assert out.keypoints.shape == (2, 0, 2 * model.n_bodies, 3)
    assert out.markers.shape == (2, 0, len(model.markers), 3)


# ---- bad input ---------------------------------------------------------------------------
def test_wrong_coordinate_shape_names_expected_shape(all_joints_file):
    model = load_model(all_joints_file)
    with pytest.raises(ValueError, match=rf"\(\.\.\., {model.n_coordinates}\).*got \(4, 3\)"):
        forward_kinematics(model, torch.zeros(4, 3))


def test_wrong_scale_shape(all_joints_file):
    model = load_model(all_joints_file)
    with pytest.raises(ValueError, match=r"scales must have shape"):
        forward_kinematics(model, torch.zeros(model.n_coordinates), torch.ones(3))


def test_nan_coordinates_are_named(all_joints_file):
    model = load_model(all_joints_file)
    q = torch.zeros(5, model.n_coordinates)
    q[2, 16] = float("nan")
    with pytest.raises(ValueError, match=r"NaN in coordinates \(c0\)"):
        forward_kinematics(model, q)


def test_unknown_names_suggest_close_matches(validation_dir):
    model = load_model(validation_dir / "rajagopal2016_walk/Rajagopal2016.osim")
    with pytest.raises(KeyError, match="knee_angle_r"):
        model.coordinate_index("knee_angel_r")
    with pytest.raises(KeyError, match="markers not in model.*NOPE"):
        model.marker_indices(["RASI", "NOPE"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no OpenSim model at"):
        load_model(tmp_path / "absent.osim")
    bad = tmp_path / "bad.osim"
    bad.write_text("<OpenSimDocument><Model name='x'><BodySet>")
    with pytest.raises(ValueError, match="OpenSim could not read"):
        load_model(bad)


def test_unsupported_joint_type_is_named():
    osim = opensim()
    model = osim.Model()
    body = osim.Body("slab", 1.0, osim.Vec3(0), osim.Inertia(0.1))
    model.addBody(body)
    zero = osim.Vec3(0)
    model.addJoint(osim.PlanarJoint("planar", model.getGround(), zero, zero, body, zero, zero))
    model.initSystem()
    with pytest.raises(UnsupportedModelError, match="'planar' is a PlanarJoint"):
        from_opensim_model(model)


def test_unsupported_function_type_is_named():
    with pytest.raises(UnsupportedModelError, match="unsupported OpenSim function type 'Sine'"):
        from_opensim(opensim().Sine(0.1, 2.0, 0.0))
