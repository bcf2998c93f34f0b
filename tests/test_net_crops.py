"""Person crop boxes: geometry against the crop cameras, augmentation, letterbox case."""

import torch

from biokin_nb.net.crops import boxes_from_crop_masks, crop, full_box, person_box, random_boxes
from biokin_nb.net.points import crop_intrinsics
from biokin_nb.train import crop_intrinsics as letterbox_intrinsics
from biokin_nb.train import net_input


def test_person_box_is_a_square_around_the_mask() -> None:
    mask = torch.zeros(3, 80, 100, dtype=torch.bool)
    mask[0, 10:30, 40:50] = True
    mask[2, 25:60, 45:48] = True  # union: rows 10..59, cols 40..49
    box = person_box(mask, 1.2)
    x0, y0, x1, y1 = box.tolist()
    assert x1 - x0 == y1 - y0 == 60  # ceil(1.2 * 50)
    assert x0 <= 40 and x1 >= 50 and y0 <= 10 and y1 >= 60
    assert torch.equal(
        person_box(torch.zeros(2, 80, 100, dtype=torch.bool), 1.2), full_box(100, 80)
    )


def test_crop_pixels_follow_the_crop_camera() -> None:
    image = torch.zeros(1, 80, 100)
    image[0, 20:22, 40:42] = 1.0  # a 2x2 block centred at pixel (40.5, 20.5)
    box = torch.tensor([10.0, -20.0, 74.0, 44.0])  # side 64 -> 32 px: factor 0.5
    out = crop(image, box, 32)[0]
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    centroid = torch.stack([(out * cols).sum(), (out * rows).sum()]) / out.sum()
    K = crop_intrinsics(torch.eye(3, dtype=torch.float64), box.double(), 32)
    expected = K @ torch.tensor([40.5, 20.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(centroid.double(), expected[:2], atol=1e-5, rtol=0)
    assert abs(float(out.sum()) - 1.0) < 1e-5  # 4 px of 1 -> one crop px of 1


def test_random_boxes_mix_full_views_and_person_boxes() -> None:
    masks = torch.zeros(2, 2, 4, 60, 90, dtype=torch.bool)
    masks[..., 10:50, 30:45] = True
    g = torch.Generator().manual_seed(0)
    full = random_boxes(masks, (1.1, 1.4), 0.05, 1.0, g)
    assert torch.equal(full, full_box(90, 60).expand(2, 2, 4))
    person = random_boxes(masks, (1.1, 1.4), 0.05, 0.0, g)
    sides = person[..., 2] - person[..., 0]
    assert torch.all((sides >= 44) & (sides <= 56)) and torch.equal(
        sides, person[..., 3] - person[..., 1]
    )


def test_default_net_input_is_the_letterbox() -> None:
    video = torch.rand(1, 2, 3, 3, 48, 64)
    K = torch.tensor([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]).expand(1, 2, 3, 3)
    R, t = torch.eye(3).expand(1, 2, 3, 3), torch.zeros(1, 2, 3)
    inputs = net_input(video, K, R, t, 32)
    torch.testing.assert_close(inputs.K[0, 0], letterbox_intrinsics(K, 64, 48, 32)[0])
    assert inputs.images.shape == (1, 3, 2, 3, 32, 32)
    assert torch.equal(inputs.boxes[0, 0], full_box(64, 48))


def test_boxes_from_crop_masks_find_the_person_in_the_full_view() -> None:
    height, width = 60, 90
    mask = torch.zeros(1, 2, height, width, dtype=torch.bool)
    mask[..., 10:50, 30:45] = True
    full = full_box(width, height)
    crop_masks = crop(mask.float(), full, 45) > 0.5  # (1, 2, 45, 45): half resolution
    box = boxes_from_crop_masks(crop_masks, full[None], 1.0, trim=0.0)[0]
    truth = person_box(mask[0], 1.0)
    assert torch.all((box - truth).abs() <= 2)  # within the crop's 2 px resolution


def test_untrained_mask_refiner_is_bilinear_upsampling_and_trains() -> None:
    import torch.nn.functional as F

    from biokin_nb.net.hourglass import MaskRefiner

    torch.manual_seed(0)
    refiner = MaskRefiner()
    images, coarse = torch.rand(2, 3, 3, 32, 32), torch.randn(2, 3, 8, 8)
    out = refiner(images, coarse)
    up = F.interpolate(coarse.flatten(0, 1)[:, None], size=(32, 32), mode="bilinear")
    torch.testing.assert_close(out, up[:, 0].reshape(2, 3, 32, 32))
    loss = F.binary_cross_entropy_with_logits(out, (images[:, :, 0] > 0.5).float())
    loss.backward()
    assert refiner.body[-1].weight.grad.abs().sum() > 0
