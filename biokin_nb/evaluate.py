"""Evaluation of a trained network on a dataset split, as Lin et al.'s Tables 1 and 3.

For every clip of the split the network predicts the whole clip twice, frame-only (stage 1
behaviour, the temporal module skipped) and temporal; the multi-step ``baseline`` (as
Pose2Sim / OpenCap: the network's keypoint heatmaps -> weighted triangulation -> temporal IK
with segment scales, :func:`biokin_nb.baseline.predict_baseline`) predicts it a third time
unless skipped. Against the ground truth every method is scored by

    mae_deg         mean absolute error of the 36 predicted coordinates (deg; free ones wrapped)
    pa_mpjpe_mm     Procrustes-aligned mean per-joint position error of the 44 keypoints (mm)
    pa_mpjve_mm_s   Procrustes-aligned mean per-joint velocity error (mm/s)
    mask_iou        IoU of the predicted masks against the true ones (in the person crops)

Keypoints on both sides come from the project FK, pelvis-relative, with the predicted or
true coordinates and scales. Metrics are means over clips (equal weight per clip).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biokin_nb.baseline import BaselineConfig, predict_baseline
from biokin_nb.dataset import read_clip, read_index
from biokin_nb.infer import (
    ChunkEncoding,
    Prediction,
    TwoViewClip,
    encode_chunks,
    predict,
    read_two_view,
)
from biokin_nb.metrics import mae_deg, pa_mpjpe_mm, pa_mpjve_mm_s
from biokin_nb.net import KinematicsNet
from biokin_nb.net.crops import crop
from biokin_nb.osim import root_relative_keypoints
from biokin_nb.train import mask_iou

MODES = {"frame-only": False, "temporal": True}
BASELINE = "baseline"
COLUMNS = ("method", "clips", "mae_deg", "pa_mpjpe_mm", "pa_mpjve_mm_s", "mask_iou")


def clip_scores(net: KinematicsNet, prediction: Prediction, folder: Path) -> dict[str, float]:
    """The four metrics of one clip's ``prediction`` against the clip in ``folder``."""
    model = net.kinematic_model
    clip = read_clip(folder, model)
    layout = net.layout
    predicted = list(layout.predicted)
    periodic = np.isin(predicted, layout.free)
    true_q = clip.motion.q
    mae = mae_deg(prediction.coordinates[:, predicted], true_q[:, predicted], periodic)
    kp = root_relative_keypoints(model, torch.tensor(true_q), torch.tensor(clip.scales)).numpy()
    return {
        "mae_deg": float(np.nanmean(mae)),
        "pa_mpjpe_mm": pa_mpjpe_mm(prediction.keypoints, kp),
        "pa_mpjve_mm_s": pa_mpjve_mm_s(prediction.keypoints, kp, prediction.fps),
        "mask_iou": mask_iou(torch.from_numpy(prediction.masks), _true_masks(clip, prediction)),
    }


def _true_masks(clip, prediction: Prediction) -> torch.Tensor:
    """(V, T, H, H) bool true masks cut out of the prediction's crop boxes."""
    size = prediction.masks.shape[-1]
    masks = torch.from_numpy(clip.masks()).float()  # (V, T, H_img, W_img)
    boxes = torch.from_numpy(prediction.boxes)
    crops = [
        [crop(masks[v, i][None], boxes[v, i], size)[0] for i in range(masks.shape[1])]
        for v in range(masks.shape[0])
    ]
    return torch.stack([torch.stack(c) for c in crops]) > 0.5


def evaluate(
    net: KinematicsNet,
    root: str | Path,
    split: str = "test",
    baseline: bool = True,
    baseline_config: BaselineConfig | None = None,
) -> pd.DataFrame:
    """The table (columns ``COLUMNS``, one row per method: ``MODES``, then ``BASELINE``
    unless ``baseline`` is False) of ``net`` on ``split`` of the dataset at ``root``.

    Raises:
        ValueError: the split has no clip.
    """
    rows = [r for r in read_index(root) if r["split"] == split]
    if not rows:
        raise ValueError(f"no {split!r} clip in {root}; generate more subjects or pick a split")
    net.eval()
    methods = [*MODES, BASELINE] if baseline else list(MODES)
    scores: dict[str, list[dict]] = {method: [] for method in methods}
    for row in rows:
        folder = Path(root) / "clips" / row["clip"]
        clip = read_two_view(folder)
        chunks = list(encode_chunks(net, clip))  # one encoding shared by every method
        for method in methods:
            prediction = _predict(net, clip, method, baseline_config, chunks)
            scores[method].append(clip_scores(net, prediction, folder))
    table = [
        {"method": method, "clips": len(s), **pd.DataFrame(s).mean().to_dict()}
        for method, s in scores.items()
    ]
    return pd.DataFrame(table, columns=list(COLUMNS))


def _predict(
    net: KinematicsNet,
    clip: TwoViewClip,
    method: str,
    config: BaselineConfig | None,
    chunks: list[ChunkEncoding],
) -> Prediction:
    """One clip's prediction by ``method`` (a key of ``MODES`` or ``BASELINE``) from the
    clip's encoded ``chunks``."""
    if method == BASELINE:
        return predict_baseline(net, clip, config, chunks)
    return predict(net, clip, MODES[method], chunks=chunks)


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the evaluation table as CSV (creating the folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.4f")
    return path
