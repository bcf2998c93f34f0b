"""A torch ``Dataset`` of T-frame windows of the synthetic clips.

Each item is a dict of tensors (torch's default collate batches dicts; V = 2 views,
frontal first):

    ``video``        (V, T, 3, H, W) float32 in [0, 1]
    ``mask``         (V, T, H, W) bool person masks
    ``K``, ``R``     (V, 3, 3) float64 intrinsics and world -> camera rotations
    ``t``            (V, 3) float64 translations (m), OpenCV convention
    ``coordinates``  (T, C) float64 ground-truth coordinates (rad, m), the model's order
    ``scales``       (22, 3) float64 segment scale factors
    ``keypoints``    (T, 44, 3) float64 joint centres then mass centres (m)
    ``clip``, ``start``  int64 index of the clip in the index table, first frame
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from biokin_nb.dataset.format import SPLITS, read_clip, read_index
from biokin_nb.osim import load_model
from biokin_nb.osim.model import KinematicModel


class ClipWindows(Dataset):
    """Windows of ``window`` frames, every ``stride`` frames, of a split's clips.

    Args:
        root: the dataset folder.
        split: "train", "val", "test" or None (all clips).
        window: frames per item (> 0); clips shorter than it give no item.
        stride: frames between window starts (default: ``window``).
        model: the generic model (default: ``data/generic_model.osim``).
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = "train",
        window: int = 64,
        stride: int | None = None,
        model: KinematicModel | None = None,
    ) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)} or None; got {split!r}")
        stride = window if stride is None else stride
        if window <= 0 or stride <= 0:
            raise ValueError(f"window and stride must be positive; got {window}, {stride}")
        if model is None:
            from biokin_nb.body.registration import GENERIC_MODEL

            model = load_model(GENERIC_MODEL)
        self.root, self.window, self.model = Path(root), int(window), model
        rows = [r for r in read_index(root) if split is None or r["split"] == split]
        self.rows = rows
        self.items = [
            (i, start)
            for i, row in enumerate(rows)
            for start in range(0, row["frames"] - self.window + 1, stride)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip_index, start = self.items[index]
        clip = read_clip(self.root / "clips" / self.rows[clip_index]["clip"], self.model)
        frames = slice(start, start + self.window)
        video = np.stack([clip.video(v, frames) for v in range(2)])
        cams = clip.cameras
        return {
            "video": torch.from_numpy(video).permute(0, 1, 4, 2, 3).float() / 255.0,
            "mask": torch.from_numpy(clip.masks()[:, frames]),
            "K": torch.tensor(np.stack([c.K for c in cams])),
            "R": torch.tensor(np.stack([c.R for c in cams])),
            "t": torch.tensor(np.stack([c.t for c in cams])),
            "coordinates": torch.from_numpy(clip.motion.q[frames].copy()),
            "scales": torch.from_numpy(clip.scales),
            "keypoints": torch.from_numpy(clip.keypoints[frames].copy()),
            "clip": torch.tensor(clip_index),
            "start": torch.tensor(start),
        }
