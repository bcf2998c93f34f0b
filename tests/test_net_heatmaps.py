"""Keypoint heatmaps: map geometry, targets and loss (known answers)."""

import torch

from biokin_nb.baseline import peak_readout
from biokin_nb.net.heatmaps import (
    gaussian_heatmaps,
    heatmap_loss,
    keypoint_heatmap_pixels,
    resize_intrinsics,
)
from biokin_nb.render.cameras import Camera, intrinsics
from biokin_nb.train import crop_intrinsics


def _camera() -> Camera:
    K = intrinsics(33.0, 36.0, (320, 240))
    return Camera.look_at(
        torch.tensor([3.0, 1.1, 0.5]).numpy(),
        torch.tensor([0.0, 1.0, 0.0]).numpy(),
        K,
        (320, 240),
        "frontal",
    )


def test_resized_crop_intrinsics_equal_the_smaller_crop() -> None:
    camera = _camera()
    K = torch.tensor(camera.K)
    crop = crop_intrinsics(K, camera.width, camera.height, 128)
    torch.testing.assert_close(
        resize_intrinsics(crop, 0.25), crop_intrinsics(K, camera.width, camera.height, 32)
    )


def test_targets_at_projected_keypoints_have_zero_loss_and_read_back() -> None:
    camera = _camera()
    K = crop_intrinsics(torch.tensor(camera.K), camera.width, camera.height, 128)
    R, t = torch.tensor(camera.R), torch.tensor(camera.t)
    points = torch.tensor(
        [[[[0.1, 1.2, -0.2], [-0.2, 0.4, 0.1], [0.0, 1.0, 0.0]]]], dtype=torch.float64
    )
    pixels = keypoint_heatmap_pixels(points, K, R, t)  # (1, 1, 1, 3, 2)
    maps = gaussian_heatmaps(pixels, (32, 32), sigma=1.0)
    peaks = peak_readout(maps.numpy())
    torch.testing.assert_close(torch.tensor(peaks.pixels), pixels, atol=1e-5, rtol=0)
    stacked = maps[None].clone().requires_grad_(True)  # one stack
    assert float(heatmap_loss(stacked, points, K, R, t, sigma=1.0).detach()) < 1e-12
    shifted = heatmap_loss(torch.roll(stacked, 2, dims=-1), points, K, R, t, sigma=1.0)
    assert float(shifted.detach()) > 1e-4
    (grad,) = torch.autograd.grad(shifted, stacked)
    assert grad.abs().sum() > 0
