"""Multi-step baseline geometry: sub-pixel peaks and weighted DLT (known answers)."""

import numpy as np
import pytest
import torch

from biokin_nb.baseline import peak_readout, triangulate_weighted
from biokin_nb.net.heatmaps import gaussian_heatmaps
from biokin_nb.render.cameras import Camera, intrinsics


def _cameras() -> list[Camera]:
    K = intrinsics(33.0, 36.0, (320, 240))
    target = np.array([0.0, 1.0, 0.0])
    return [
        Camera.look_at(np.array([3.0, 1.1, 0.0]), target, K, (320, 240), "frontal"),
        Camera.look_at(np.array([0.0, 1.1, 3.0]), target, K, (320, 240), "sagittal"),
    ]


def test_peak_of_gaussian_is_subpixel_exact() -> None:
    ys, xs = np.mgrid[0:32, 0:40]
    centres = np.array([[12.3, 17.8], [25.61, 4.27]])  # (x, y)
    maps = np.stack(
        [0.8 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5**2)) for x, y in centres]
    )
    peaks = peak_readout(maps)
    np.testing.assert_allclose(peaks.pixels, centres, atol=1e-6)
    assert peaks.confidence.shape == (2,) and np.all(peaks.confidence > 0.7)


def test_exactly_projected_points_triangulate_exactly() -> None:
    cameras = _cameras()
    rng = np.random.default_rng(0)
    points = rng.uniform([-0.3, 0.2, -0.3], [0.3, 1.8, 0.3], size=(5, 7, 3))
    pixels = np.stack([c.project(points) for c in cameras])
    weights = rng.uniform(0.2, 1.0, size=pixels.shape[:-1])
    np.testing.assert_allclose(triangulate_weighted(cameras, pixels, weights), points, atol=1e-9)


def test_views_without_confidence_leave_nan() -> None:
    cameras = _cameras()
    pixels = np.stack([c.project(np.array([[0.0, 1.0, 0.0]])) for c in cameras])
    out = triangulate_weighted(cameras, pixels, np.array([[1.0], [0.0]]))
    assert np.all(np.isnan(out))
    with pytest.raises(ValueError, match="confidence"):
        triangulate_weighted(cameras, pixels, np.ones(3))


def test_heatmap_targets_read_back_to_their_pixels() -> None:
    pixels = np.array([[[5.25, 9.75], [30.6, 2.4]], [[np.nan, np.nan], [16.0, 16.0]]])
    maps = gaussian_heatmaps(torch.tensor(pixels), (24, 40), sigma=1.2).numpy()
    assert maps.shape == (2, 2, 24, 40)
    assert not maps[1, 0].any()
    peaks = peak_readout(maps)
    np.testing.assert_allclose(
        peaks.pixels[[0, 0, 1], [0, 1, 1]], pixels[[0, 0, 1], [0, 1, 1]], atol=1e-6
    )


def test_heatmap_pixels_map_back_to_image_pixels() -> None:
    from biokin_nb.baseline import heatmap_to_image
    from biokin_nb.net.crops import full_box
    from biokin_nb.train import crop_intrinsics

    camera = _cameras()[0]
    points = np.array([[0.1, 1.2, -0.2], [-0.2, 0.4, 0.1]])
    K_crop = crop_intrinsics(torch.tensor(camera.K), camera.width, camera.height, 64).numpy()
    cam = camera.to_camera(points) @ K_crop.T
    in_heatmap = cam[:, :2] / cam[:, 2:]
    box = full_box(camera.width, camera.height).numpy()
    back = heatmap_to_image(in_heatmap, 64, box)
    np.testing.assert_allclose(back, camera.project(points), atol=1e-9)


def test_person_box_heatmap_pixels_map_back_to_image_pixels() -> None:
    from biokin_nb.baseline import heatmap_to_image
    from biokin_nb.net.heatmaps import resize_intrinsics
    from biokin_nb.net.points import crop_intrinsics as box_intrinsics

    camera = _cameras()[1]
    points = np.array([[0.1, 1.2, -0.2], [-0.2, 0.4, 0.1]])
    box = np.array([97.0, 20.0, 217.0, 140.0])  # a 120 px person box
    K_crop = box_intrinsics(torch.tensor(camera.K), torch.tensor(box), 64)
    K_map = resize_intrinsics(K_crop, 0.25).numpy()  # the 16 px heatmap of the 64 px crop
    cam = camera.to_camera(points) @ K_map.T
    back = heatmap_to_image(cam[:, :2] / cam[:, 2:], 16, box)
    np.testing.assert_allclose(back, camera.project(points), atol=1e-9)
