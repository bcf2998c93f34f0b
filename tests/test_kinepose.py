"""The KinePose-style benchmark: sequence generator, scoring, SLSQP baseline, temporal IK."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from biokin_nb.ik import kinepose as kp
from biokin_nb.ik.slsqp import marker_links, solve_slsqp
from biokin_nb.osim.fk import forward_kinematics
from biokin_nb.osim.reader import load_model


@pytest.fixture(scope="module")
def model():
    return kp.kinepose_model()


@pytest.fixture(scope="module")
def dataset(model):
    return kp.kinepose_dataset(model, per_cell=1, noise_mm=5.0, seed=7)


def _index(model, names):
    return [model.coordinate_index(n) for n in names]


# --------------------------------------------------------------------------- generator


def test_the_model_locks_the_end_joints_and_bounds_the_rest(model):
    locked = {c.name for c in model.coordinates if c.locked}
    assert locked == set(kp.HELD_COORDINATES)
    root = model.joints[0].name
    assert all(c.clamped for c in model.coordinates if c.joint != root)
    assert not model.coordinates[model.coordinate_index("pelvis_rotation")].clamped


def test_dataset_has_kinepose_cells(dataset):
    assert len(dataset) == len(kp.SPEEDS) * len(kp.CONDITIONS)
    assert {(s.speed, s.condition) for s in dataset} == {
        (s, c) for s in kp.SPEEDS for c in kp.CONDITIONS
    }
    for seq in dataset:
        assert seq.n_frames == kp.N_FRAMES == 30
        assert seq.q.shape == (30, 39)
        assert seq.keypoints.shape == seq.keypoints_true.shape == (30, 14, 3)
        assert seq.keypoint_names == list(kp.KEYPOINTS)


def test_largest_change_per_frame_is_the_speed(model, dataset):
    rotational = model.rotational & ~model.dependent
    for seq in dataset:
        step = np.abs(np.diff(seq.q[:, rotational], axis=0)).max()
        assert step == pytest.approx(kp.SPEEDS[seq.speed], rel=1e-9), seq.name
        translation = seq.q[:, ~model.rotational & ~model.dependent]
        assert np.ptp(translation, axis=0).max() == 0.0


def test_straight_phases_have_straight_knees_and_elbows(model, dataset):
    limbs = _index(model, kp.STRAIGHTENED)
    straight = kp.straight_mask()
    assert straight.sum() == 3 + 6 + 3 and straight[:3].all() and straight[12:18].all()
    for seq in dataset:
        angles = seq.q[:, limbs]
        if seq.condition == "straight":
            assert np.array_equal(seq.straight, straight)
            assert np.all(angles[straight] == 0.0)
            assert np.all(angles[~straight] > 0.0)
        else:
            assert not seq.straight.any()
            assert np.all(angles >= np.radians(10.0) - 1e-12)


def test_sequences_stay_in_range_and_hold_the_end_joints(model, dataset):
    held = _index(model, kp.HELD_COORDINATES)
    for seq in dataset:
        assert np.all(seq.q >= model.ranges[:, 0]) and np.all(seq.q <= model.ranges[:, 1])
        assert np.all(seq.q[:, held] == 0.0)


def test_keypoints_are_joint_centres_plus_noise_of_the_stated_size(model, dataset):
    seq = dataset[0]
    with torch.no_grad():
        fk = forward_kinematics(model, torch.as_tensor(seq.q))
    index = [model.joint_names.index(n) for n in kp.KEYPOINTS]
    np.testing.assert_allclose(seq.keypoints_true, fk.joint_centres[:, index].numpy())
    noise = np.concatenate([(s.keypoints - s.keypoints_true).ravel() for s in dataset])
    assert noise.std() * 1000 == pytest.approx(5.0, rel=0.05)
    assert abs(noise.mean()) * 1000 < 0.2


def test_generator_is_seeded(model):
    a = kp.generate_sequence(model, "fast", "bent", noise_mm=0.0, seed=3)
    b = kp.generate_sequence(model, "fast", "bent", noise_mm=0.0, seed=3)
    c = kp.generate_sequence(model, "fast", "bent", noise_mm=0.0, seed=4)
    np.testing.assert_array_equal(a.q, b.q)
    assert np.array_equal(a.keypoints, a.keypoints_true)
    assert not np.allclose(a.q, c.q)


def test_generator_rejects_bad_input(model):
    with pytest.raises(ValueError, match="speed must be one of"):
        kp.generate_sequence(model, "sprint", "bent")
    with pytest.raises(ValueError, match="noise_mm"):
        kp.generate_sequence(model, "slow", "bent", noise_mm=-1.0)


def test_links_are_kinepose_local_plus_global():
    local, root, both = (kp.kinepose_links(k) for k in ("local", "global", "both"))
    assert len(local) == len(root) == 13
    assert len(both) == len(set(both)) == 23
    assert all(a in kp.KEYPOINTS and b in kp.KEYPOINTS for a, b in both)
    assert all(a == "ground_pelvis" for a, _ in root)


# --------------------------------------------------------------------------- scoring


def test_joint_errors_known_answer(model, dataset):
    seq = dataset[0]
    assert np.all(kp.joint_errors(model, seq.q, seq.q).local_deg < 1e-6)
    twisted = seq.q.copy()
    twisted[:, model.coordinate_index("hip_rotation_r")] += np.radians(7.0)
    errors = kp.joint_errors(model, twisted, seq.q)
    local = dict(zip(kp.SCORED_JOINTS, errors.local_deg, strict=True))
    glob = dict(zip(kp.SCORED_JOINTS, errors.global_deg, strict=True))
    assert local["hip_r"] == pytest.approx(7.0, abs=1e-6)
    assert local["knee_r"] == pytest.approx(0.0, abs=1e-6)  # relative to the femur
    assert glob["knee_r"] == pytest.approx(7.0, abs=1e-6)  # the tibia turns with it
    assert sum(local.values()) == pytest.approx(7.0, abs=1e-5)


def test_coordinate_errors_wrap(model, dataset):
    seq = dataset[0]
    q = seq.q.copy()
    q[:, model.coordinate_index("pelvis_rotation")] += 2 * np.pi + 0.1
    err = kp.coordinate_errors(model, q, seq.q)
    np.testing.assert_allclose(err[:, model.coordinate_index("pelvis_rotation")], 0.1)


def test_report_tables_average_sequences_then_methods():
    rows = []
    for k, (speed, condition) in enumerate([("slow", "bent"), ("fast", "straight")]):
        for method, base in (
            ("frame_cold", 5.0),
            ("frame_warm", 4.0),
            ("temporal", 1.0),
            ("slsqp", 2.0),
        ):
            if method == "slsqp" and k == 1:
                continue
            for joint in kp.SCORED_JOINTS:
                value = base * (k + 1) * (2.0 if joint in kp.LOWER_LIMB_JOINTS else 1.0)
                rows.append(
                    {
                        "sequence": f"{speed}_{condition}_0",
                        "speed": speed,
                        "condition": condition,
                        "method": method,
                        "joint": joint,
                        "local_deg": value,
                        "global_deg": value,
                    }
                )
    timing = pd.DataFrame(
        {
            "sequence": ["slow_bent_0"] * 3,
            "method": ["frame_warm", "temporal", "slsqp"],
            "frames": [30, 30, 30],
            "seconds": [0.03, 0.06, 60.0],
        }
    )
    report = kp.KineposeReport(kp.KineposeConfig(), pd.DataFrame(rows), timing, {}, [])
    table = report.table()
    per_joint = (6 * 1 + 4 * 2) / 10  # mean over the 10 joints, 4 lower-limb ones doubled
    assert table.loc["temporal", "slow bent"] == pytest.approx(per_joint)
    assert table.loc["temporal", "fast straight"] == pytest.approx(2 * per_joint)
    assert table.loc["temporal", "overall"] == pytest.approx(1.5 * per_joint)
    assert table.loc["temporal", "lower limbs"] == pytest.approx(3.0)
    figures = report.figures()
    assert figures["mpjas_deg"]["slsqp"] == pytest.approx(2 * per_joint)
    assert figures["speedup_vs_slsqp"] == pytest.approx(1000.0)
    assert figures["mpjas_on_slsqp_subset_deg"]["temporal"] == pytest.approx(per_joint)
    assert figures["targets"]["temporal_beats_frame_on_straight"]


# --------------------------------------------------------------------------- solvers


def test_slsqp_recovers_a_noise_free_sequence(model):
    seq = kp.generate_sequence(model, "medium", "bent", noise_mm=0.0, seed=11)
    frames = 2
    result = solve_slsqp(model, seq.keypoints[:frames], seq.keypoint_names, kp.kinepose_links())
    assert result.q.shape == (frames, model.n_coordinates)
    assert result.marker_residuals.shape == (frames, 23)
    assert np.degrees(result.cost).max() < 0.05
    assert kp.joint_errors(model, result.q, seq.q[:frames]).local_deg.mean() < 0.2
    root = _index(model, ["pelvis_tx", "pelvis_ty", "pelvis_tz"])  # placed after the fit
    np.testing.assert_allclose(result.q[:, root], seq.q[:frames, root], atol=2e-3)
    lo, hi = model.ranges.T
    clamped = np.array([c.clamped for c in model.coordinates])
    assert np.all((result.q >= lo) | ~clamped) and np.all((result.q <= hi) | ~clamped)


def test_slsqp_rejects_bad_input(model):
    points = np.zeros((2, 14, 3))
    names = list(kp.KEYPOINTS)
    with pytest.raises(KeyError, match="nose"):
        solve_slsqp(model, points, names, [("ground_pelvis", "nose")])
    with pytest.raises(ValueError, match=r"\(T, K=14, 3\)"):
        solve_slsqp(model, points[:, :3], names, kp.kinepose_links())
    with pytest.raises(ValueError, match="gradient"):
        solve_slsqp(model, points, names, kp.kinepose_links(), gradient="exact")
    with pytest.raises(ValueError, match="no link is observed"):
        solve_slsqp(model, np.full((2, 14, 3), np.nan), names, kp.kinepose_links())


def test_marker_links_join_anchors_along_the_tree():
    generic = load_model(kp.GENERIC_MODEL)
    # pelvis: RASI, LASI; femur_r: RTHI, RKNE; tibia_r: RTIB, RANK; calcn_r (via talus): RHEE
    names = ["RASI", "LASI", "RTHI", "RKNE", "RTIB", "RANK", "RHEE"]
    local = {("RASI", "RTHI"), ("RTHI", "RTIB"), ("RTIB", "RHEE")}  # anchor to anchor
    local |= {("RASI", "LASI"), ("RTHI", "RKNE"), ("RTIB", "RANK")}  # anchor to its body
    root = {("RASI", n) for n in names[1:]}
    links = marker_links(generic, names)
    assert len(links) == len(set(links)) and set(links) == local | root
    with pytest.raises(KeyError, match="NOSE"):
        marker_links(generic, ["RASI", "NOSE"])


def test_temporal_ik_resolves_the_twist_of_straight_limbs(model):
    seq = kp.generate_sequence(model, "medium", "straight", noise_mm=0.0, seed=5)
    config = kp.KineposeConfig()
    error = {
        m: kp.joint_errors(model, kp.solve_method(model, seq, m, config).q, seq.q).local_deg
        for m in ("frame_warm", "temporal")
    }
    hip = [kp.SCORED_JOINTS.index(j) for j in ("hip_r", "hip_l")]
    assert error["temporal"].mean() < 0.5 * error["frame_warm"].mean()
    assert error["temporal"][hip].mean() < error["frame_warm"][hip].mean()


def test_opensim_model_has_a_marker_on_every_keypoint(model, tmp_path):
    path = kp.write_opensim_model(tmp_path / "kinepose.osim")
    written = load_model(path)
    assert [c.locked for c in written.coordinates] == [c.locked for c in model.coordinates]
    q = kp.generate_sequence(model, "fast", "bent", noise_mm=0.0, seed=1).q[:2]
    with torch.no_grad():
        fk = forward_kinematics(written, torch.as_tensor(q))
    names = [kp.KEYPOINT_MARKER.format(n) for n in kp.KEYPOINTS]
    markers = fk.markers[:, written.marker_indices(names)].numpy()
    np.testing.assert_allclose(markers, kp.keypoint_positions(model, q), atol=1e-12)
