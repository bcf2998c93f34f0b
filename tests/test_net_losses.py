"""Loss known answers: zero at the truth, range violation, unit-circle periodicity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from biokin_nb.net import CoordinateLayout, NetConfig, NetOutput, Target, kinematics_loss
from biokin_nb.net.losses import pelvis_relative_keypoints, range_violation
from biokin_nb.net.toy import toy_coordinates
from biokin_nb.osim import load_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def layout() -> CoordinateLayout:
    model = load_model(REPO / "data" / "generic_model.osim")
    return CoordinateLayout.build(model, NetConfig.cpu().free_coordinates)


@pytest.fixture(scope="module")
def truth(layout) -> Target:
    q = toy_coordinates(layout.model, clips=2, frames=5, seed=1)
    scales = 1 + 0.1 * torch.rand(
        2, layout.model.n_bodies, 3, generator=torch.Generator().manual_seed(0)
    )
    return Target(q, scales)


def loss_of(layout, q, scales, truth):
    return kinematics_loss(NetOutput.from_coordinates(layout, q, scales), truth, layout)


def test_zero_when_the_prediction_is_the_truth(layout, truth):
    terms = loss_of(layout, truth.coordinates, truth.scales, truth)
    for name, value in terms.as_floats().items():
        assert value == pytest.approx(0.0, abs=1e-6), name


def test_pelvis_translation_does_not_count(layout, truth):
    q = truth.coordinates.clone()
    q[..., list(layout.translations)] += torch.tensor([0.4, -0.2, 1.0])
    assert loss_of(layout, q, truth.scales, truth).total.item() == pytest.approx(0.0, abs=1e-6)


def test_range_violation_zero_inside_positive_outside():
    ranges = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    inside = torch.tensor([[0.0, -1.0], [1.9, 0.3]])
    assert (range_violation(inside, ranges) == 0).all()
    outside = torch.tensor([[-0.1, 1.5], [2.3, -1.2]])
    out = range_violation(outside, ranges)
    assert (out > 0).all()
    # L1 of the (cos, sin) difference to the violated limit: -0.1 vs 0
    assert out[0, 0].item() == pytest.approx(abs(np.cos(-0.1) - 1) + abs(np.sin(-0.1)), rel=1e-5)
    assert range_violation(torch.tensor([[-0.3, 1.5]]), ranges)[0, 0] > out[0, 0]


def test_bio_term_counts_only_out_of_range_angles(layout, truth):
    q = truth.coordinates.clone()
    knee = layout.model.coordinate_index("knee_angle_r")
    q[0, 0, knee] = -0.2  # range 0..140 deg
    terms = loss_of(layout, q, truth.scales, truth)
    n_constrained = 2 * 5 * len(layout.constrained)
    expected = (abs(np.cos(-0.2) - 1) + abs(np.sin(-0.2))) / n_constrained
    assert terms.bio.item() == pytest.approx(expected, rel=1e-4)


def test_unit_circle_loss_is_periodic(layout, truth):
    """pelvis_rotation 179 deg against -179 deg costs little; 0 against 180 a lot."""
    i = layout.model.coordinate_index("pelvis_rotation")
    q_true, q_pred = truth.coordinates.clone(), truth.coordinates.clone()
    q_true[..., i], q_pred[..., i] = np.radians(-179.0), np.radians(179.0)
    near = loss_of(layout, q_pred, truth.scales, Target(q_true, truth.scales))
    q_pred[..., i] = 0.0
    q_true[..., i] = np.pi
    far = loss_of(layout, q_pred, truth.scales, Target(q_true, truth.scales))
    per_pair = (0 + 2 * np.sin(np.radians(1.0))) / 2  # (|d cos| + |d sin|) / 2
    assert near.angle_free.item() == pytest.approx(per_pair / 9, rel=1e-3)
    assert far.angle_free.item() == pytest.approx(1.0 / 9, rel=1e-3)
    assert near.position.item() < 0.01 < far.position.item()


def test_scale_and_position_known_answers(layout, truth):
    """At the default pose keypoints are linear in the scales: doubling them doubles the
    pelvis-relative keypoints, so L_pos = mean |keypoints at unit scale|."""
    q = torch.zeros_like(truth.coordinates)
    ones = torch.ones_like(truth.scales)
    terms = loss_of(layout, q, 2 * ones, Target(q, ones))
    kp = pelvis_relative_keypoints(layout, q, ones)
    assert terms.scale.item() == pytest.approx(1.0)
    assert terms.position.item() == pytest.approx(kp.abs().mean().item(), rel=1e-5)
    total = terms.angle + terms.scale + terms.bio + 100 * terms.position
    assert terms.total.item() == pytest.approx(total.item(), rel=1e-6)


def test_constrained_l1_in_radians(layout, truth):
    q = truth.coordinates.clone()
    q[..., list(layout.constrained)] += 0.01
    terms = loss_of(layout, q, truth.scales, truth)
    assert terms.angle_constrained.item() == pytest.approx(0.01, rel=1e-3)
    assert terms.angle_free.item() == pytest.approx(0.0, abs=1e-7)
