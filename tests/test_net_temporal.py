"""The temporal transformer U-Net: lengths, temporal-only resampling, no input skip."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from biokin_nb.net import NetConfig
from biokin_nb.net.temporal import (
    MDTA,
    Downsample,
    TemporalUNet,
    Upsample,
    fold_time,
    unfold_time,
)


@pytest.fixture
def unet() -> TemporalUNet:
    torch.manual_seed(0)
    return TemporalUNet(NetConfig.cpu())


@pytest.mark.parametrize("length", [16, 13, 1, 40])
def test_output_has_the_input_length(unet, length):
    x = torch.randn(2, length, NetConfig.cpu().frame_feature)
    assert unet(x).shape == x.shape


def test_levels_downsample_time_only(unet):
    """Bottleneck at T / 8 with the last level's channels; decoder back at T."""
    seen = {}
    unet.bottleneck.register_forward_hook(lambda m, i, o: seen.update(bottleneck=o.shape))
    unet.decoders[0].register_forward_hook(lambda m, i, o: seen.update(top=o.shape))
    unet(torch.randn(3, 16, 32))
    assert seen["bottleneck"] == (3, 64, 2) and seen["top"] == (3, 16, 16)


def test_fold_and_unfold_are_inverse_and_keep_frames_together():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    folded = fold_time(x, 4)
    assert folded.shape == (2, 12, 2)
    torch.testing.assert_close(folded[0, :4, 0], x[0, 0, :4])  # frames 0..3 of channel 0
    torch.testing.assert_close(unfold_time(folded, 4), x)


def test_down_and_up_sampling_shapes():
    x = torch.randn(2, 32, 16)
    down = Downsample(32, 64, 4)(x)
    assert down.shape == (2, 64, 4)
    assert Upsample(64, 32, 4)(down).shape == (2, 32, 16)


def test_no_skip_from_input_to_output(unet):
    with torch.no_grad():
        unet.output.weight.zero_()
        unet.output.bias.zero_()
    assert unet(torch.randn(1, 16, 32)).abs().max() == 0


def test_transposed_attention_is_over_channels():
    """MDTA's cost is linear in T: its attention maps are (C/h x C/h) per head."""
    attn = MDTA(16, heads=4)
    captured = {}
    attn.out.register_forward_pre_hook(lambda m, i: captured.update(x=i[0].shape))
    assert attn(torch.randn(2, 16, 100)).shape == (2, 16, 100)
    assert captured["x"] == (2, 16, 100)


def test_paper_sizes_per_level():
    config = NetConfig.paper()
    unet = TemporalUNet(config)
    assert [len(e) for e in unet.encoders] == [2, 4] and len(unet.bottleneck) == 6
    assert [b.attn.heads for b in unet.bottleneck] == [4] * 6
    assert unet.embed.out_channels == 48 and unet.bottleneck[0].norm1.norm.normalized_shape == (
        384,
    )
    assert unet(torch.randn(1, 64, 102)).shape == (1, 64, 102)
    with pytest.raises(ValueError, match="temporal_factors needs 2 entries"):
        dataclasses.replace(config, temporal_factors=(2,))
