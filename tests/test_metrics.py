"""Known-answer tests for biokin_nb.metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from biokin_nb import metrics as m

RNG_SEED = 7


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def _similarity_copy(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A different random rotation, scale and translation for every frame of (..., K, 3)."""
    lead = points.shape[:-2]
    rot = Rotation.random(int(np.prod(lead)), random_state=rng).as_matrix().reshape(*lead, 3, 3)
    scale = rng.uniform(0.5, 2.0, size=lead)
    shift = rng.normal(size=(*lead, 3))
    return scale[..., None, None] * points @ np.swapaxes(rot, -1, -2) + shift[..., None, :]


# ----------------------------------------------------------------------------- MAE


def test_mae_wraps_periodic_coordinates() -> None:
    pred = np.deg2rad([[179.0, 179.0]])
    true = np.deg2rad([[-179.0, -179.0]])
    mae = m.mae_deg(pred, true, periodic=np.array([True, False]))
    np.testing.assert_allclose(mae, [2.0, 358.0], atol=1e-9)


def test_mae_known_values_nan_and_batch() -> None:
    true = np.zeros((2, 3, 2))  # batch 2, T 3, C 2
    pred = np.deg2rad(np.array([[[1, 10], [-3, np.nan], [2, 10]], [[0, -10], [4, 10], [2, 10]]]))
    np.testing.assert_allclose(m.mae_deg(pred, true), [2.0, 10.0], atol=1e-9)


def test_mae_errors() -> None:
    with pytest.raises(ValueError, match=r"\(4, 2\).*\(4, 3\)"):
        m.mae_deg(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="periodic"):
        m.mae_deg(np.zeros((4, 2)), np.zeros((4, 2)), periodic=np.array([True]))


# ----------------------------------------------------------------------------- positions


def test_similarity_copy_has_zero_pa_mpjpe_but_not_mpjpe(rng: np.random.Generator) -> None:
    true = rng.normal(scale=0.3, size=(2, 5, 12, 3))
    pred = _similarity_copy(true, rng)
    np.testing.assert_allclose(m.procrustes_align(pred, true), true, atol=1e-12)
    assert m.pa_mpjpe_mm(pred, true) < 1e-9
    assert m.mpjpe_mm(pred, true) > 100.0


def test_procrustes_never_reflects(rng: np.random.Generator) -> None:
    true = rng.normal(scale=0.3, size=(12, 3))  # chiral: a mirror image cannot be rotated onto it
    mirrored = true * np.array([-1.0, 1.0, 1.0])
    assert m.pa_mpjpe_mm(mirrored, true) > 10.0


def test_mpjpe_constant_offset_and_root(rng: np.random.Generator) -> None:
    true = rng.normal(size=(4, 6, 3))
    pred = true + np.array([0.03, 0.04, 0.0])  # 50 mm everywhere
    assert m.mpjpe_mm(pred, true) == pytest.approx(50.0, abs=1e-9)
    assert m.mpjpe_mm(pred, true, root=0) == pytest.approx(0.0, abs=1e-9)
    one_joint = true.copy()
    one_joint[:, 2] += [0.0, 0.012, 0.0]  # 12 mm on one joint of 6
    assert m.mpjpe_mm(one_joint, true, root=0) == pytest.approx(2.0, abs=1e-9)
    with pytest.raises(ValueError, match="root"):
        m.mpjpe_mm(pred, true, root=6)


def test_position_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(6, 3\)"):
        m.pa_mpjpe_mm(np.zeros((5, 3)), np.zeros((6, 3)))
    with pytest.raises(ValueError, match="3"):
        m.procrustes_align(np.zeros((5, 2)), np.zeros((5, 2)))


# ----------------------------------------------------------------------------- velocities


def test_pa_mpjve_rigidly_shifted_constant_velocity_is_zero(rng: np.random.Generator) -> None:
    fps = 60.0
    time = np.arange(20) / fps
    base = rng.normal(scale=0.3, size=(8, 3))
    true = base + time[:, None, None] * np.array([1.2, 0.0, -0.4])  # (T, K, 3)
    rot = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    pred = true @ rot.T + np.array([0.5, 1.0, -2.0])
    assert m.pa_mpjve_mm_s(pred, true, fps) < 1e-9
    assert m.pa_mpjve_mm_s(_similarity_copy(true, rng), true, fps) < 1e-9


def test_pa_mpjve_known_drift(rng: np.random.Generator) -> None:
    """Out-of-plane drift of a planar cross, invisible to the alignment: error = speed."""
    fps, speed = 50.0, 0.2  # m/s
    cross = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])
    side = np.array([1.0, 1.0, -1.0, -1.0])  # sum 0, sum side_k * x_k = 0: optimum is identity
    time = np.arange(30) / fps
    true = cross - speed * time[:, None, None] * side[None, :, None] * np.array([0, 0, 1.0])
    pred = _similarity_copy(np.broadcast_to(cross, true.shape), rng)
    assert m.pa_mpjve_mm_s(pred, true, fps) == pytest.approx(speed * 1000.0, rel=1e-9)


def test_pa_mpjve_errors() -> None:
    x = np.zeros((3, 4, 3))
    with pytest.raises(ValueError, match="fps"):
        m.pa_mpjve_mm_s(x, x, 0.0)
    with pytest.raises(ValueError, match="2 frames"):
        m.pa_mpjve_mm_s(x[:1], x[:1], 30.0)


# ----------------------------------------------------------------------------- orientations


def test_mpjas_30_deg_on_all_bodies(rng: np.random.Generator) -> None:
    rot_true = Rotation.random(10 * 4, random_state=rng).as_matrix().reshape(10, 4, 3, 3)
    delta = Rotation.from_rotvec(np.deg2rad(30.0) * np.array([1.0, 2.0, -2.0]) / 3.0).as_matrix()
    rot_pred = rot_true @ delta  # each body turned 30 deg about a body-fixed axis
    assert m.mpjas_deg(rot_pred, rot_true) == pytest.approx(30.0, abs=1e-9)


def test_mpjas_root_rotation_global_vs_local(rng: np.random.Generator) -> None:
    parents = [-1, 0, 1, 0]
    rot_true = Rotation.random(6 * 4, random_state=rng).as_matrix().reshape(6, 4, 3, 3)
    turn = Rotation.from_rotvec(np.deg2rad(30.0) * np.array([0.0, 1.0, 0.0])).as_matrix()
    rot_pred = turn @ rot_true  # only the root joint is off: the whole tree turns with it
    glob = m.mpjas_per_body_deg(rot_pred, rot_true, parents, mode="global")
    local = m.mpjas_per_body_deg(rot_pred, rot_true, parents, mode="local")
    np.testing.assert_allclose(glob, 30.0, atol=1e-9)
    np.testing.assert_allclose(local, [30.0, 0.0, 0.0, 0.0], atol=1e-9)
    assert m.mpjas_deg(rot_pred, rot_true, parents, mode="local") == pytest.approx(7.5, abs=1e-9)


def test_rotation_angle_is_accurate_near_zero_and_pi() -> None:
    for angle in (1e-9, 1e-4, np.pi - 1e-7, np.pi):
        rot = Rotation.from_rotvec(angle * np.array([0.6, 0.0, 0.8])).as_matrix()
        assert m.rotation_angle(rot) == pytest.approx(angle, rel=1e-6)


def test_mpjas_errors() -> None:
    rot = np.broadcast_to(np.eye(3), (2, 3, 3, 3))
    with pytest.raises(ValueError, match="global, local"):
        m.mpjas_deg(rot, rot, mode="relative")
    with pytest.raises(ValueError, match="parents"):
        m.mpjas_deg(rot, rot, mode="local")
    with pytest.raises(ValueError, match="invalid"):
        m.mpjas_deg(rot, rot, parents=[-1, 1, 0], mode="local")


# ----------------------------------------------------------------------------- markers


def test_marker_rmse_nan_and_weights_by_hand() -> None:
    true = np.zeros((2, 3, 3))
    pred = np.zeros((2, 3, 3))
    pred[0, 0] = [0.006, 0.008, 0.0]  # 10 mm
    pred[0, 1] = [0.0, 0.0, 0.02]  # 20 mm
    pred[0, 2] = np.nan  # missing
    pred[1, 0] = [0.03, 0.0, 0.0]  # 30 mm
    true[1, 1] = np.nan  # missing
    pred[1, 2] = [0.0, 0.024, 0.032]  # 40 mm
    weights = np.array([1.0, 2.0, 3.0])
    frame0 = np.sqrt((1 * 10**2 + 2 * 20**2) / (1 + 2))
    frame1 = np.sqrt((1 * 30**2 + 3 * 40**2) / (1 + 3))
    overall = np.sqrt((1 * 10**2 + 2 * 20**2 + 1 * 30**2 + 3 * 40**2) / (1 + 2 + 1 + 3))
    per_frame = m.marker_rmse_per_frame_mm(pred, true, weights)
    np.testing.assert_allclose(per_frame, [frame0, frame1], rtol=1e-12)
    assert m.marker_rmse_mm(pred, true, weights) == pytest.approx(overall, rel=1e-12)
    unweighted = np.sqrt((10**2 + 20**2 + 30**2 + 40**2) / 4)
    assert m.marker_rmse_mm(pred, true) == pytest.approx(unweighted, rel=1e-12)


def test_marker_rmse_empty_frame_and_bad_weights() -> None:
    pred = np.zeros((2, 2, 3))
    pred[1] = np.nan
    per_frame = m.marker_rmse_per_frame_mm(pred, np.zeros((2, 2, 3)))
    assert per_frame[0] == 0.0 and np.isnan(per_frame[1])
    with pytest.raises(ValueError, match="weights"):
        m.marker_rmse_mm(pred, pred, weights=[1.0, -1.0])


# ----------------------------------------------------------------------------- torch, summary


def test_torch_tensors_give_numpy_results(rng: np.random.Generator) -> None:
    true = rng.normal(scale=0.3, size=(5, 8, 3))
    pred = true + rng.normal(scale=0.01, size=true.shape)
    pred_t = torch.tensor(pred, requires_grad=True)
    assert m.pa_mpjpe_mm(pred_t, torch.tensor(true)) == pytest.approx(m.pa_mpjpe_mm(pred, true))
    assert m.mpjpe_mm(pred_t.float(), true) == pytest.approx(m.mpjpe_mm(pred, true), rel=1e-5)
    coords = torch.zeros(4, 3)
    assert isinstance(m.mae_deg(coords, coords + 0.1), np.ndarray)
    rot = torch.eye(3).expand(2, 3, 3, 3)
    assert m.mpjas_deg(rot, rot) == pytest.approx(0.0, abs=1e-6)


def test_summarize(rng: np.random.Generator) -> None:
    coords = np.zeros((10, 2))
    keypoints = rng.normal(size=(10, 5, 3))
    result = m.summarize(coords + np.deg2rad(3.0), coords, keypoints, keypoints, fps=30.0)
    assert result.mae_deg == pytest.approx(3.0)
    assert result.pa_mpjpe_mm == pytest.approx(0.0, abs=1e-9)
    assert result.pa_mpjve_mm_s == pytest.approx(0.0, abs=1e-9)
