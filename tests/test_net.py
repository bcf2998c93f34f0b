"""The network: config presets, shapes for both presets, heads, gradients, checkpoints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from biokin_nb.net import (
    CheckpointMismatchError,
    KinematicsNet,
    NetConfig,
    Target,
    kinematics_loss,
    load_checkpoint,
    network_from_checkpoint,
    save_checkpoint,
)
from biokin_nb.net.toy import ToyClips, toy_clips
from biokin_nb.osim import load_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: small convolutions run several times faster on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model():
    return load_model(REPO / "data" / "generic_model.osim")


def tiny(**changes) -> NetConfig:
    """The cpu preset shrunk further for fast tests."""
    base = dict(image_size=64, hourglass_depth=2, n_points=32, sequence_length=8)
    return dataclasses.replace(NetConfig.cpu(), **(base | changes))


def run(net: KinematicsNet, clips: ToyClips, **kwargs):
    return net(clips.images, clips.K, clips.R, clips.t, clips.masks, **kwargs)


# ---- config ------------------------------------------------------------------------------
def test_paper_preset_sizes():
    c = NetConfig.paper()
    assert (c.hourglass_stacks, c.hourglass_channels, c.image_size) == (4, 256, 256)
    assert (c.n_points, c.point_input, c.point_hidden, c.point_feature) == (
        500,
        1027,
        (512, 512),
        32,
    )
    assert (c.frame_hidden, c.frame_feature, c.sequence_length) == ((128, 128), 102, 64)
    assert c.temporal_channels == (48, 96, 384) and c.temporal_blocks == (2, 4, 6)
    assert c.temporal_heads == (1, 2, 4) and c.temporal_factors == (2, 4)
    assert len(c.free_coordinates) == 9 and c.position_weight == 100.0


def test_config_round_trips_through_json():
    for c in (NetConfig.paper(), NetConfig.cpu(), tiny(shared_views=False)):
        assert NetConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_config_errors_name_the_problem():
    with pytest.raises(KeyError, match="unknown NetConfig fields stacks"):
        NetConfig.from_dict({"stacks": 3})
    with pytest.raises(
        ValueError, match="temporal_channels\\[2\\] = 66 must be divisible by the down"
    ):
        dataclasses.replace(NetConfig.cpu(), temporal_channels=(16, 32, 66))
    with pytest.raises(ValueError, match="sequence_length 12 must be a multiple of 8"):
        dataclasses.replace(NetConfig.cpu(), sequence_length=12)
    with pytest.raises(ValueError, match="2\\*\\*hourglass_depth"):
        dataclasses.replace(NetConfig.cpu(), hourglass_depth=6)


# ---- shapes ------------------------------------------------------------------------------
def test_layout_predicts_36_coordinates(model):
    net = KinematicsNet(tiny(), model)
    layout = net.layout
    assert len(layout.predicted) == 36 and len(layout.free) == 9 and len(layout.constrained) == 25
    assert (
        "pelvis_tx" not in layout.predicted_names and "knee_angle_r_beta" in layout.predicted_names
    )
    assert layout.n_outputs == 43


@pytest.mark.parametrize("frame_only", [True, False])
def test_cpu_preset_shapes(model, frame_only):
    config = NetConfig.cpu()
    net = KinematicsNet(config, model)
    clips = toy_clips(config, model, clips=2, frames=3)
    with torch.no_grad():
        out = run(net, clips, frame_only=frame_only)
    h = config.feature_size
    assert out.angles.shape == (2, 3, 36) and out.coordinates.shape == (2, 3, 39)
    assert out.free_cos_sin.shape == (2, 3, 9, 2) and out.constrained.shape == (2, 3, 25)
    assert out.scales.shape == (2, 22, 3)
    torch.testing.assert_close(out.free_cos_sin.norm(dim=-1), torch.ones(2, 3, 9))
    enc = out.encoding
    assert enc.features.shape == (2, 3, config.frame_feature)
    assert enc.maps.heatmaps.shape == (2, 2, 3, 2, 44, h, h)
    assert enc.maps.mask_logits.shape == (2, 2, 3, 2, h, h)
    assert enc.points.points.shape == (2, 3, config.n_points, 3)
    assert (enc.points.n_kept > config.n_points).all()
    names = model.coordinate_names
    beta, knee = names.index("knee_angle_r_beta"), names.index("knee_angle_r")
    torch.testing.assert_close(out.coordinates[..., beta], out.coordinates[..., knee])
    assert (out.coordinates[..., [names.index(f"pelvis_t{a}") for a in "xyz"]] == 0).all()


def test_paper_preset_builds_and_runs_one_frame(model):
    config = NetConfig.paper()
    net = KinematicsNet(config, model)
    n_params = sum(p.numel() for p in net.parameters())
    assert 20e6 < n_params < 40e6
    assert net.point_mlp[0].in_features == 1027 and net.frame_mlp[0].in_features == 16000
    clips = toy_clips(config, model, clips=1, frames=1)
    with torch.no_grad():
        out = run(net, clips)
    assert out.angles.shape == (1, 1, 36) and out.scales.shape == (1, 22, 3)
    assert out.encoding.features.shape == (1, 1, 102)
    assert out.encoding.maps.features.shape == (1, 1, 2, 512, 64, 64)


def test_separate_view_weights_and_no_heads(model):
    config = tiny(shared_views=False, heatmap_head=False, mask_head=False)
    net = KinematicsNet(config, model)
    assert len(net.views.hourglasses) == 2
    clips = toy_clips(config, model, frames=2)
    with torch.no_grad():
        out = run(net, clips, frame_only=True)
    assert out.encoding.maps.heatmaps is None and out.encoding.maps.mask_logits is None
    assert out.encoding.maps.features.shape == (1, 2, 2, config.feature_channels, 16, 16)
    with pytest.raises(ValueError, match="no mask head: pass masks"):
        net(clips.images, clips.K, clips.R, clips.t)


def test_masks_from_the_mask_head_when_none_given(model):
    config = tiny()
    net = KinematicsNet(config, model)
    clips = toy_clips(config, model, frames=2)
    with torch.no_grad():
        net.views.hourglasses[0].heads[-1].bias[-1] = 50.0  # the mask head says "person"
        out = net(clips.images, clips.K, clips.R, clips.t)
    assert out.angles.shape == (1, 2, 36)
    assert (out.encoding.points.n_kept > 0).all()


def test_autocast_keeps_geometry_and_heads_in_float32(model):
    config = tiny()
    net = KinematicsNet(config, model)
    clips = toy_clips(config, model, frames=2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = run(net, clips)
        loss = kinematics_loss(out, clips.target, net.layout)
    assert out.encoding.maps.features.dtype == torch.bfloat16
    assert out.coordinates.dtype == out.scales.dtype == loss.total.dtype == torch.float32
    assert out.encoding.points.points.dtype == torch.float32


def test_cameras_broadcast_and_bad_shapes_are_named(model):
    config = tiny()
    net = KinematicsNet(config, model)
    clips = toy_clips(config, model, frames=2)
    K, R, t = clips.K[0, 0], clips.R[0, 0], clips.t[0, 0]  # (V, 3, 3): one rig for all frames
    with torch.no_grad():
        a = net(clips.images, K, R, t, clips.masks).angles
        b = run(net, clips).angles
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="images must have shape"):
        net(clips.images[:, :, :1], K, R, t, clips.masks)
    with pytest.raises(ValueError, match="K must broadcast"):
        net(clips.images, K[:, :2], R, t, clips.masks)


def test_gradients_reach_every_parameter(model):
    config = tiny(n_points=16)
    net = KinematicsNet(config, model)
    clips = toy_clips(config, model, frames=2)
    out = run(net, clips)
    maps = out.encoding.maps
    loss = kinematics_loss(out, clips.target, net.layout).total
    torch.nn.init.normal_(net.mask_refiner.body[-1].weight, std=0.01)  # zero at init
    refined = net.mask_logits(clips.images, maps)  # the refiner: stage 3 only
    (loss + maps.heatmaps.square().mean() + maps.mask_logits.mean() + refined.mean()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_frame_only_leaves_the_temporal_module_out(model):
    config = tiny()
    net = KinematicsNet(config, model)
    clips = toy_clips(config, model, frames=2)
    kinematics_loss(run(net, clips, frame_only=True), clips.target, net.layout).total.backward()
    assert all(p.grad is None for p in net.temporal.parameters())
    assert all(p.grad is not None for p in net.point_mlp.parameters())


# ---- checkpoints -------------------------------------------------------------------------
def test_checkpoint_round_trip(model, tmp_path):
    config = tiny()
    net = KinematicsNet(config, model)
    clips = toy_clips(config, model, frames=2)
    path = save_checkpoint(net, tmp_path / "net.pt", extra={"epoch": 3})
    other = KinematicsNet(config, model)
    assert load_checkpoint(other, path) == {"epoch": 3}
    rebuilt = network_from_checkpoint(path, model)
    with torch.no_grad():
        expected = run(net, clips).angles
        torch.testing.assert_close(run(other, clips).angles, expected)
        torch.testing.assert_close(run(rebuilt, clips).angles, expected)


def test_checkpoint_from_another_config_is_one_clear_error(model, tmp_path):
    path = save_checkpoint(KinematicsNet(tiny(), model), tmp_path / "net.pt")
    other = KinematicsNet(tiny(n_points=16), model)
    with pytest.raises(CheckpointMismatchError, match="n_points: checkpoint 32, network 16.*"):
        load_checkpoint(other, path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="junk.pt is not a readable"):
        load_checkpoint(other, tmp_path / "junk.pt")


def test_target_shape_mismatch_is_named(model):
    config = tiny()
    net = KinematicsNet(config, model)
    clips = toy_clips(config, model, frames=2)
    with torch.no_grad():
        out = run(net, clips, frame_only=True)
    bad = Target(clips.target.coordinates[:, :1], clips.target.scales)
    with pytest.raises(ValueError, match="target shapes"):
        kinematics_loss(out, bad, net.layout)
    assert np.isfinite(kinematics_loss(out, clips.target, net.layout).total.item())
