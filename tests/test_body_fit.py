"""Mesh fitting to a skeleton's motion: residuals on short sequences, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biokin_nb.body import (
    FitConfig,
    fit_motion,
    fit_scenes,
    load_registration,
    skeleton_from_shape,
    squat_motion,
    walking_motion,
)
from biokin_nb.body.demo import resample
from biokin_nb.osim.coordinates import Motion

WALK = "rajagopal2016_walk/generated_opensim4.6/ik_output_walk_acc1e-9.mot"


@pytest.fixture(scope="module")
def reg():
    return load_registration("anny")


@pytest.fixture(scope="module")
def subject(reg):
    return skeleton_from_shape(reg, {"height": 0.3, "weight": 0.7, "gender": 0.8})


def check(result) -> None:
    s = result.summary()
    print({k: round(v, 2) for k, v in s.items()})
    assert s["joint_mean_mm"] <= 15.0 and s["marker_mean_mm"] <= 20.0
    assert s["worst_frame_joint_mm"] <= 40.0 and s["worst_frame_marker_mm"] <= 40.0
    assert s["max_point_mm"] <= 40.0


def test_fit_a_short_squat(reg, subject):
    squat = resample(squat_motion(reg.model, seconds=2.0, scales=subject.scales), rate=3.0)
    result = fit_motion(reg, subject, squat, FitConfig(iterations=20, chunk_frames=3))
    assert len(result.time) == 7 and result.pose.rotations.shape == (7, reg.body.n_bones, 3, 3)
    check(result)
    scene = fit_scenes(reg, subject, result, [3])[0]
    assert scene.vertices.shape == (reg.body.n_vertices, 3)
    assert scene.segments.shape == (21, 2) and scene.joints.shape == (22, 3)
    np.testing.assert_allclose(scene.q, squat.q[3])
    from biokin_nb.viz.scene import skeleton_scene

    plotter = skeleton_scene(
        scene.model, scene.q, mesh=(scene.vertices, scene.faces), scales=scene.scales
    )
    plotter.close()


def test_fit_a_few_walking_frames(reg, subject, validation_dir):
    walk = walking_motion(reg.model, validation_dir / WALK, seconds=1.0, rate=5.0)
    check(fit_motion(reg, subject, walk, FitConfig(iterations=20)))


def test_fitting_the_shape_too_stays_in_range(reg, subject):
    q = torch.tensor(reg.model.defaults)[None]
    result = fit_motion(reg, subject, q, FitConfig(iterations=5, fit_shape=True))
    lo, hi = reg.body.shape_ranges.T
    assert (result.shape.numpy() >= lo).all() and (result.shape.numpy() <= hi).all()
    assert result.joint_error_mm.mean() <= 15.0


def test_a_coordinate_sequence_the_model_does_not_have(reg, subject):
    names = reg.model.coordinate_names
    wrong = Motion(np.zeros(2), np.zeros((2, 3)), ["hip_flexion_r", "knee_angle_r", "pelvis_yaw"])
    with pytest.raises(KeyError, match=r"missing: .*pelvis_tilt.*not in the model: pelvis_yaw"):
        fit_motion(reg, subject, wrong)
    with pytest.raises(ValueError, match=rf"shape \(T, {len(names)}\)"):
        fit_motion(reg, subject, np.zeros((4, 7)))


def test_a_wrong_body_model_is_one_clear_error(reg, subject):
    import dataclasses

    fake = dataclasses.replace(reg, body="anny")
    with pytest.raises(TypeError, match="expected a BodyModel"):
        fit_motion(fake, subject, np.tile(reg.model.defaults, (1, 1)))
