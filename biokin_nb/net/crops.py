"""Square person crops of the full views: boxes, cropping, and the boxes' augmentation.

A box is ``(x0, y0, x1, y1)`` in pixel-edge coordinates of the full image (pixel ``i``
covers ``[i, i + 1)``), square, integer, and may reach outside the image (zero padding).
The network sees every view through a box resized to ``size`` x ``size`` px; its camera is
:func:`biokin_nb.net.points.crop_intrinsics` of the box. Two kinds of box:

- the *full* box: the centred square around the whole image (a letterbox);
- a *person* box: the square around the union of a person mask over a window of frames,
  ``scale`` times its longer side. Training draws the scale and a centre jitter at random
  and shows a fraction of windows in full boxes, so one mask head finds the person in the
  full view (inference pass 1) and segments it in the person crop (pass 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def full_box(width: int, height: int) -> torch.Tensor:
    """(4,) the centred square box around a (width, height) image (a letterbox)."""
    side = max(width, height)
    x0, y0 = -((side - width) // 2), -((side - height) // 2)
    return torch.tensor([x0, y0, x0 + side, y0 + side], dtype=torch.float64)


def person_box(
    mask: torch.Tensor, scale: float, shift: tuple[float, float] = (0.0, 0.0)
) -> torch.Tensor:
    """(4,) the square box around the union of ``mask`` (T, H, W) bool over its frames:
    side ``scale`` times the union's longer side, centre moved by ``shift`` (fractions of the
    side); the full box when the mask is empty."""
    height, width = mask.shape[-2:]
    rows = torch.nonzero(mask.any(dim=(0, 2)))
    cols = torch.nonzero(mask.any(dim=(0, 1)))
    if not len(rows):
        return full_box(width, height)
    return square_box(
        (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1), scale, shift
    )


def square_box(
    bounds: tuple[float, float, float, float], scale: float, shift: tuple[float, float]
) -> torch.Tensor:
    """(4,) integer square box around ``bounds`` (x0, y0, x1, y1): side ``scale`` times the
    longer side (at least 8 px), centre moved by ``shift`` times the side."""
    x0, y0, x1, y1 = bounds
    side = max(8, math.ceil(scale * max(x1 - x0, y1 - y0)))
    cx = 0.5 * (x0 + x1) + shift[0] * side
    cy = 0.5 * (y0 + y1) + shift[1] * side
    left, top = round(cx - side / 2), round(cy - side / 2)
    return torch.tensor([left, top, left + side, top + side], dtype=torch.float64)


def crop(images: torch.Tensor, box: torch.Tensor, size: int) -> torch.Tensor:
    """(..., C, H, W) float images -> (..., C, size, size): the ``box`` (4,) cut out (zero
    outside the image) and resized (bilinear, antialiased)."""
    h, w = images.shape[-2:]
    x0, y0, x1, y1 = (int(v) for v in box.tolist())
    inner = images[..., max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    pad = (max(-x0, 0), max(x1 - w, 0), max(-y0, 0), max(y1 - h, 0))
    lead = images.shape[:-3]
    flat = inner.reshape(-1, *inner.shape[-3:])
    if any(pad):
        flat = F.pad(flat, pad)
    if flat.shape[-1] == 0 or flat.shape[-2] == 0:  # box entirely outside the image
        flat = flat.new_zeros(flat.shape[0], flat.shape[1], y1 - y0, x1 - x0)
    out = F.interpolate(flat, size=(size, size), mode="bilinear", antialias=True)
    return out.reshape(*lead, images.shape[-3], size, size)


def random_boxes(
    masks: torch.Tensor,
    scale_range: tuple[float, float],
    jitter: float,
    full_fraction: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(S, V, 4) training boxes of masks (S, V, T, H, W): per clip and view the full box with
    probability ``full_fraction``, else a person box of a scale drawn uniformly from
    ``scale_range`` with a centre shift uniform in +-``jitter`` (fractions of the side)."""
    s, v = masks.shape[:2]
    height, width = masks.shape[-2:]
    draws = torch.rand(s, v, 4, generator=generator, dtype=torch.float64)
    boxes = torch.empty(s, v, 4, dtype=torch.float64)
    lo, hi = scale_range
    for i in range(s):
        for j in range(v):
            u = draws[i, j]
            if u[0] < full_fraction:
                boxes[i, j] = full_box(width, height)
                continue
            shift = (float(u[2] * 2 - 1) * jitter, float(u[3] * 2 - 1) * jitter)
            boxes[i, j] = person_box(masks[i, j], lo + float(u[1]) * (hi - lo), shift)
    return boxes


def boxes_from_crop_masks(
    masks: torch.Tensor, boxes: torch.Tensor, scale: float, trim: float = 0.005
) -> torch.Tensor:
    """Person boxes (V, 4) in the full images from masks (V, T, h, h) bool predicted in the
    crops ``boxes`` (V, 4): the square of ``scale`` times the longer side of the masks'
    pixels over the T frames, their extent taken between the ``trim`` and ``1 - trim``
    quantiles (stray pixels ignored); a view with no mask pixel keeps its box."""
    out = boxes.clone().to(torch.float64)
    size = masks.shape[-1]
    for v in range(masks.shape[0]):
        rows, cols = torch.nonzero(masks[v], as_tuple=True)[1:]
        if not len(rows):
            continue
        x0, y0, x1, y1 = boxes[v].tolist()
        step = (x1 - x0) / size  # image px per crop px (square boxes)
        q = torch.tensor([trim, 1.0 - trim], dtype=torch.float64)
        c_lo, c_hi = torch.quantile(cols.double(), q).tolist()
        r_lo, r_hi = torch.quantile(rows.double(), q).tolist()
        bounds = (
            x0 + c_lo * step,
            y0 + r_lo * step,
            x0 + (c_hi + 1) * step,
            y0 + (r_hi + 1) * step,
        )
        out[v] = square_box(bounds, scale, (0.0, 0.0))
    return out
