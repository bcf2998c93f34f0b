"""Acceptance 1 of issue 6: the network overfits one tiny clip on a CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from biokin_nb.net import KinematicsNet, NetConfig, kinematics_loss
from biokin_nb.net.toy import toy_clips
from biokin_nb.osim import load_model

REPO = Path(__file__).resolve().parents[1]
MAX_STEPS = 150


@pytest.mark.slow
def test_total_loss_falls_by_90_percent_on_one_clip():
    """cpu preset, full mode (temporal module on), one 4-frame two-view clip with fixed
    target angles and scales; Adam betas (0.5, 0.999) at lr 2e-3."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = load_model(REPO / "data" / "generic_model.osim")
        config = NetConfig.cpu()
        net = KinematicsNet(config, model)
        clip = toy_clips(config, model, clips=1, frames=4, seed=0)
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3, betas=(0.5, 0.999))
        history = []
        for _ in range(MAX_STEPS):
            out = net(clip.images, clip.K, clip.R, clip.t, clip.masks)
            loss = kinematics_loss(out, clip.target, net.layout, config.position_weight)
            optimizer.zero_grad()
            loss.total.backward()
            optimizer.step()
            history.append(loss.total.item())
            if history[-1] <= 0.1 * history[0]:
                break
    finally:
        torch.set_num_threads(threads)
    assert history[-1] <= 0.1 * history[0], [round(v, 3) for v in history[::10]]
