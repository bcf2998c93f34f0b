"""The multi-step baseline end to end: oracle heatmaps -> triangulation -> temporal IK."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biokin_nb.baseline import (
    BaselineConfig,
    HeatmapChunk,
    keypoints_prediction,
    oracle_heatmaps,
    oracle_prediction,
    triangulate_heatmaps,
)
from biokin_nb.infer import generic_model
from biokin_nb.metrics import mae_deg, pa_mpjpe_mm
from biokin_nb.motion import make_action
from biokin_nb.net.layout import CoordinateLayout
from biokin_nb.osim import forward_kinematics
from biokin_nb.osim.generic import FREE_COORDINATES
from biokin_nb.render.cameras import paper_cameras
from biokin_nb.train import net_preset

CROP = net_preset("tiny").image_size  # 64 px crops: 16 px heatmaps
FPS = 60.0


@pytest.fixture(scope="module")
def scene():
    """A 0.5 s walk of a scaled generic model seen by the paper's two cameras (128 x 96)."""
    model = generic_model()
    rng = np.random.default_rng(4)
    scales = np.repeat(rng.uniform(0.9, 1.1, (model.n_bodies, 1)), 3, axis=1)
    motion = make_action(model, "walking", 0.5, seed=4, scales=scales)
    q = torch.tensor(motion.q)
    keypoints = forward_kinematics(model, q, torch.tensor(scales)).keypoints.numpy()
    centre = keypoints[:, 0].mean(axis=0)
    cameras = paper_cameras(rng, centre, (128, 96), points=keypoints)
    return model, motion.q, scales, keypoints, list(cameras)


def test_oracle_heatmaps_triangulate_to_the_true_keypoints(scene):
    _, _, _, keypoints, cameras = scene
    points = triangulate_heatmaps(oracle_heatmaps(keypoints, cameras, CROP), cameras, 0.1)
    assert points.shape == keypoints.shape
    assert np.abs(points - keypoints).max() < 1e-6


def test_oracle_pipeline_recovers_coordinates_and_scales(scene):
    model, q_true, scales, keypoints, cameras = scene
    prediction = oracle_prediction(model, keypoints, cameras, FPS, CROP)
    layout = CoordinateLayout.build(model, FREE_COORDINATES)
    predicted = list(layout.predicted)
    assert np.all(prediction.coordinates[:, list(layout.translations)] == 0.0)
    periodic = np.isin(predicted, layout.free)
    mae = np.nanmean(mae_deg(prediction.coordinates[:, predicted], q_true[:, predicted], periodic))
    q = q_true.copy()
    q[:, list(layout.translations)] = 0.0
    true_kp = forward_kinematics(model, torch.tensor(q), torch.tensor(scales)).keypoints.numpy()
    true_kp = true_kp - true_kp[:, :1]
    pa_mm = pa_mpjpe_mm(prediction.keypoints, true_kp)
    print(f"oracle pipeline: MAE {mae:.3f} deg, PA-MPJPE {pa_mm:.3f} mm, "
          f"scale error {np.abs(prediction.scales - scales).mean():.4f}")  # fmt: skip
    assert mae < 0.5 and pa_mm < 1.0
    assert np.abs(prediction.scales - scales).mean() < 0.05
    assert prediction.masks.shape == (2, len(q_true), CROP, CROP)


def test_missing_views_and_frames_leave_nan_then_ik_fills(scene):
    model, _, _, keypoints, cameras = scene
    maps = list(oracle_heatmaps(keypoints, cameras, CROP, chunk=8))
    maps[0].maps[1, :, :5] = 0.0  # sagittal view loses 5 keypoints in the first 8 frames
    maps[1].maps[:, 2] = 0.0  # frame 10: nothing seen
    points = triangulate_heatmaps(maps, cameras, 0.1)
    assert np.isnan(points[:8, :5]).all() and np.isnan(points[10]).all()
    assert np.isfinite(points[:8, 5:]).all()
    blank = [HeatmapChunk(np.zeros_like(m.maps), m.boxes) for m in maps]
    config = BaselineConfig()
    masks = np.zeros((2, len(keypoints), CROP, CROP), dtype=bool)
    boxes = np.zeros((2, len(keypoints), 4))
    for source in (points, triangulate_heatmaps(blank, cameras, 0.1)):
        prediction = keypoints_prediction(model, source, masks, boxes, FPS, config)
        assert np.isfinite(prediction.coordinates).all() and np.isfinite(prediction.keypoints).all()
