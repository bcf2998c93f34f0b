"""Point sampling inside both silhouettes, crop cameras, and point features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biokin_nb.net.points import (
    crop_intrinsics,
    point_features,
    project,
    sample_points,
    select_evenly,
    subject_centre,
)
from biokin_nb.net.toy import toy_cameras

SIZE = 64


def cameras(frames: int = 1):
    K, R, t = toy_cameras(SIZE)
    return K.expand(frames, -1, -1, -1), R.expand(frames, -1, -1, -1), t.expand(frames, -1, -1)


def box_masks(frames: int = 1) -> torch.Tensor:
    """(F, 2, H, W): an L-shaped silhouette in view 0 and a shorter bar in view 1 (both
    cameras are at the same height and distance, so image rows are about world heights)."""
    m = torch.zeros(frames, 2, SIZE, SIZE, dtype=torch.bool)
    m[:, 0, 10:50, 28:36] = True
    m[:, 0, 42:50, 28:48] = True
    m[:, 1, 12:36, 26:34] = True
    return m


def on_mask(points: torch.Tensor, masks: torch.Tensor, K, R, t) -> torch.Tensor:
    """(F, V, N) bool, computed directly: K (R X + t), divide, round, look up."""
    cam = torch.einsum("fvij,fnj->fvni", R, points) + t[:, :, None]
    pix = torch.einsum("fvij,fvnj->fvni", K, cam)
    u = (pix[..., 0] / pix[..., 2]).round().long()
    v = (pix[..., 1] / pix[..., 2]).round().long()
    inside = (u >= 0) & (u < SIZE) & (v >= 0) & (v < SIZE) & (cam[..., 2] > 0)
    f, view, _ = torch.meshgrid(*(torch.arange(n) for n in u.shape), indexing="ij")
    return inside & masks[f, view, v.clamp(0, SIZE - 1), u.clamp(0, SIZE - 1)]


def test_points_lie_inside_both_masks():
    masks, (K, R, t) = box_masks(2), cameras(2)
    pts = sample_points(masks, K, R, t, n_points=100, ray_stride=2)
    assert pts.points.shape == (2, 100, 3) and (pts.n_kept >= 100).all()
    assert on_mask(pts.points, masks, K, R, t).all()
    # candidates below view 1's bar (the lower L, its foot included) are dropped
    pix, _ = project(pts.points[:, None], K, R, t)
    assert (pix[:, 0, :, 1] < 39).all() and (pix[:, 0, :, 0] < 37).all()
    torch.testing.assert_close(pts.centred.mean(1), torch.zeros(2, 3), atol=0.03, rtol=0)


def test_sampling_is_deterministic_and_spread():
    masks, (K, R, t) = box_masks(), cameras()
    a = sample_points(masks, K, R, t, n_points=64)
    b = sample_points(masks, K, R, t, n_points=64)
    torch.testing.assert_close(a.points, b.points)
    assert len(torch.unique(a.points[0], dim=0)) == 64


def test_depth_candidates_stay_near_the_subject():
    """Each point comes from some view's ray, within the half range of the centre's depth."""
    masks, (K, R, t) = box_masks(), cameras()
    pts = sample_points(masks, K, R, t, n_points=64, depth_half_range_m=0.5)
    centre = subject_centre(masks, K, R, t)
    _, depth = project(pts.points[:, None], K, R, t)  # (1, V, N)
    _, centre_depth = project(centre[:, None, None], K, R, t)  # (1, V, 1)
    assert ((depth - centre_depth).abs().min(dim=1).values <= 0.5 + 1e-4).all()
    assert np.allclose(centre[0].numpy(), [0.0, 0.9, 0.0], atol=0.3)


def test_few_candidates_repeat_and_none_fall_back_to_the_centre():
    masks, (K, R, t) = box_masks(2), cameras(2)
    masks[0] = False
    masks[0, :, 30:32, 31:33] = True  # a tiny blob around the image centre in both views
    masks[1] = False  # nothing at all
    pts = sample_points(masks, K, R, t, n_points=50, ray_stride=1)
    assert 0 < pts.n_kept[0] < 50 and pts.n_kept[1] == 0
    assert len(torch.unique(pts.points[0], dim=0)) == pts.n_kept[0]
    assert on_mask(pts.points[:1], masks[:1], K[:1], R[:1], t[:1]).all()
    assert (pts.points[1] == pts.centre[1]).all()


def test_select_evenly():
    valid = torch.tensor([[1, 0, 1, 1, 0, 1, 1, 1], [0, 0, 0, 1, 0, 0, 1, 0]], dtype=torch.bool)
    idx, n = select_evenly(valid, 3)
    assert n.tolist() == [6, 2]
    assert idx[0].tolist() == [0, 3, 6] and idx[1].tolist() == [3, 6, 3]


def test_crop_intrinsics_match_cropping_the_pixels():
    K = torch.tensor([[900.0, 0.0, 639.5], [0.0, 900.0, 359.5], [0.0, 0.0, 1.0]])
    box = torch.tensor([400.0, 100.0, 800.0, 600.0])  # 400 x 500 px, resized to 128
    Kc = crop_intrinsics(K, box, 128)
    X = torch.tensor([[[0.3, -0.2, 4.0], [-0.1, 0.4, 3.0]]])
    R, t = torch.eye(3)[None], torch.zeros(1, 3)
    full, _ = project(X, K[None], R, t)
    crop, _ = project(X, Kc[None], R, t)
    scale = torch.tensor([128 / 400, 128 / 500])
    torch.testing.assert_close(crop, (full + 0.5 - box[:2]) * scale - 0.5)


def test_point_features_sample_where_points_project():
    """Maps holding each cell's own image coordinates return the point's projection."""
    masks, (K, R, t) = box_masks(), cameras()
    pts = sample_points(masks, K, R, t, n_points=32)
    h = SIZE // 4
    centres = (torch.arange(h) + 0.5) * 4 - 0.5  # image pixel of each feature cell's centre
    u_map, v_map = centres.expand(h, h), centres[:, None].expand(h, h)
    maps = torch.stack([u_map, v_map])[None, None].expand(1, 2, 2, h, h)
    feats = point_features(pts, maps, K, R, t, (SIZE, SIZE))
    assert feats.shape == (1, 32, 3 + 2 * 2)
    torch.testing.assert_close(feats[..., :3], pts.centred)
    pix, _ = project(pts.points[:, None], K, R, t)  # (1, V, N, 2)
    torch.testing.assert_close(feats[..., 3:].reshape(1, 32, 2, 2), pix.transpose(1, 2))


def test_point_features_take_gradients_to_the_maps():
    masks, (K, R, t) = box_masks(), cameras()
    pts = sample_points(masks, K, R, t, n_points=8)
    maps = torch.rand(1, 2, 3, 16, 16, requires_grad=True)
    point_features(pts, maps, K, R, t, (SIZE, SIZE)).sum().backward()
    assert maps.grad.abs().sum() > 0


def test_bad_camera_shapes_are_named():
    masks, (K, R, t) = box_masks(), cameras()
    with pytest.raises(ValueError, match="t must have shape \\(1, 2, 3\\)"):
        sample_points(masks, K, R, t[:, :1], n_points=8)
