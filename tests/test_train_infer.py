"""Training (both stages, resume), inference to OpenSim files, evaluation, bad input."""

from __future__ import annotations

import dataclasses
import math
import shutil

import numpy as np
import pytest

from biokin_nb.baseline import BaselineConfig
from biokin_nb.dataset import GenerateConfig, generate
from biokin_nb.evaluate import COLUMNS, evaluate, write_table
from biokin_nb.infer import InputError, infer_folder, load_network, read_two_view
from biokin_nb.net import CheckpointMismatchError
from biokin_nb.osim._opensim import opensim
from biokin_nb.render.video import write_video
from biokin_nb.train import TrainConfig, crop_intrinsics, net_preset, read_metrics, train

FRAMES = 12  # 0.2 s at 60 fps
TINY_NET = net_preset("tiny")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_dataset")
    config = GenerateConfig(
        subjects=2, clips_per_subject=1, size=(128, 96), duration_s=0.2, fit_iterations=3, seed=3
    )
    generate(root, config, progress=False)
    return root


def _config(dataset, out, **kwargs) -> TrainConfig:
    values = dict(stage1_epochs=1, stage2_epochs=1, window=8, stride=4, max_steps=1, lr=1e-3)
    return TrainConfig(root=str(dataset), out=str(out), net=TINY_NET, progress=False,
                       **{**values, **kwargs})  # fmt: skip


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train(_config(dataset, out)), out


def test_training_writes_checkpoints_and_metrics(run):
    result, out = run
    assert result.epochs_run == 2
    for name in ("last.pt", "stage1.pt", "final.pt", "metrics.jsonl"):
        assert (out / name).is_file()
    rows = read_metrics(out)
    assert [r["stage"] for r in rows] == [1, 2]
    for row in rows:
        assert all(math.isfinite(row[k]) for k in ("total", "position", "mask_bce"))
        assert 0.0 <= row["mask_iou"] <= 1.0


def test_resume_continues_after_the_last_epoch(run, dataset, tmp_path):
    _, out = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    result = train(_config(dataset, copy, stage2_epochs=2))
    assert result.epochs_run == 1
    assert [r["epoch"] for r in read_metrics(copy)] == [1, 2, 3]
    other = dataclasses.replace(TINY_NET, frame_feature=24)
    with pytest.raises(CheckpointMismatchError, match="frame_feature"):
        train(dataclasses.replace(_config(dataset, copy), net=other))


def test_stage3_trains_only_the_mask_refiner(run, dataset, tmp_path):
    import torch

    from biokin_nb.net.checkpoint import read_checkpoint
    from biokin_nb.train import checkpoint_stage

    _, out = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    before = read_checkpoint(copy / "final.pt")["state_dict"]
    result = train(_config(dataset, copy, stage3_epochs=1))
    assert result.epochs_run == 1 and checkpoint_stage(copy / "final.pt") == 3
    row = read_metrics(copy)[-1]
    assert row["stage"] == 3 and math.isfinite(row["mask_refine_bce"])
    after = read_checkpoint(copy / "final.pt")["state_dict"]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("mask_refiner.") for k in changed)
    plain = dataclasses.replace(TINY_NET, mask_refine=False)
    with pytest.raises(ValueError, match="mask_refine"):
        TrainConfig(root=str(dataset), net=plain, stage3_epochs=1)


def test_crop_intrinsics_keep_the_image_centre():
    import torch

    K = torch.tensor([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
    k = crop_intrinsics(K, 128, 96, 64)
    assert k[0, 2].item() == pytest.approx(31.5) and k[1, 2].item() == pytest.approx(31.5)
    assert k[0, 0].item() == pytest.approx(50.0)


def test_inference_writes_files_opensim_loads(run, dataset, tmp_path):
    _, out = run
    files = infer_folder(out / "final.pt", dataset / "clips", tmp_path / "pred")
    assert sorted(files) == ["s000_c00", "s001_c00"]
    osim = opensim()
    for clip in files.values():
        model = osim.Model(str(clip.osim))
        model.initSystem()
        storage = osim.Storage(str(clip.motion))
        assert storage.getSize() == FRAMES
        assert np.load(clip.keypoints).shape == (FRAMES, 44, 3)


def test_evaluation_table(run, dataset, tmp_path):
    _, out = run
    quick = BaselineConfig(max_iterations=5)  # a barely trained net: garbage keypoints
    table = evaluate(load_network(out / "final.pt"), dataset, "test", baseline_config=quick)
    assert tuple(table.columns) == COLUMNS
    assert list(table["method"]) == ["frame-only", "temporal", "baseline"]
    assert np.isfinite(table[list(COLUMNS[2:])].to_numpy()).all()
    path = write_table(table, tmp_path / "eval.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 4
    skipped = evaluate(load_network(out / "final.pt"), dataset, "test", baseline=False)
    assert list(skipped["method"]) == ["frame-only", "temporal"]


def test_untrained_network_baseline_is_finite(dataset):
    """Garbage heatmaps (peaks anywhere, low confidence) must not crash the multi-step
    baseline: rejected triangulations are missing points, none at all the default pose.
    (The evaluation table with a baseline row on a barely trained net: above.)"""
    import torch

    from biokin_nb.baseline import predict_baseline
    from biokin_nb.infer import generic_model
    from biokin_nb.net import KinematicsNet

    torch.manual_seed(0)
    net = KinematicsNet(TINY_NET, generic_model()).eval()
    clip = read_two_view(dataset / "clips" / "s000_c00")
    for threshold in (0.0, 0.999):  # every view used / none
        config = BaselineConfig(min_confidence=threshold, max_iterations=5)
        prediction = predict_baseline(net, clip, config)
        assert prediction.coordinates.shape == (FRAMES, net.kinematic_model.n_coordinates)
        assert np.isfinite(prediction.coordinates).all() and np.isfinite(prediction.scales).all()
        assert prediction.keypoints.shape == (FRAMES, 44, 3)
        assert prediction.masks.shape == (2, FRAMES, TINY_NET.image_size, TINY_NET.image_size)


@pytest.fixture
def clip_copy(dataset, tmp_path):
    folder = tmp_path / "clip"
    shutil.copytree(dataset / "clips" / "s001_c00", folder)
    return folder


def test_mismatched_frame_counts(clip_copy):
    frames = read_two_view(clip_copy).frames[1, :5]
    write_video(clip_copy / "view1.mp4", frames)
    with pytest.raises(InputError, match="12 frames but view1.mp4 has 5"):
        read_two_view(clip_copy)


def test_missing_cameras(clip_copy):
    (clip_copy / "cameras.json").unlink()
    with pytest.raises(InputError, match="no cameras.json"):
        read_two_view(clip_copy)


def test_empty_video(clip_copy):
    (clip_copy / "view0.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_two_view(clip_copy)


def test_checkpoint_from_another_config(run):
    _, out = run
    with pytest.raises(CheckpointMismatchError, match="image_size"):
        load_network(out / "final.pt", config=dataclasses.replace(TINY_NET, image_size=128))
