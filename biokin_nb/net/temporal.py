"""Restormer-style transformer U-Net over time.

The frame features of a clip form a (D x T x 1) map; with a width of one, every 2D
operation of Restormer reduces to its 1D counterpart over time, so the module works on
``(B, C, T)`` tensors with ``Conv1d``. Blocks: MDTA (multi-Dconv head transposed attention:
attention between channels, per head, after 1x1 and depthwise 3-tap convolutions, with
L2-normalized queries and keys and a learned temperature) and GDFN (gated depthwise
feed-forward network). Levels are joined by temporal-only down-sampling (a 3-tap conv, then
``r`` consecutive frames folded into channels) and its mirror image for up-sampling; the
decoder concatenates the encoder's features of the same level and reduces them with a 1x1
conv. There is no skip from the input to the output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from biokin_nb.net.config import NetConfig


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of (B, C, T)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention on (B, C, T): a (C/h x C/h) map per head."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.depthwise = nn.Conv1d(3 * channels, 3 * channels, 3, padding=1, groups=3 * channels)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, length = x.shape
        q, k, v = self.depthwise(self.qkv(x)).reshape(b, 3, self.heads, -1, length).unbind(1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.temperature, dim=-1)
        return self.out((attn @ v).reshape(b, c, length))


class GDFN(nn.Module):
    """Gated depthwise feed-forward network on (B, C, T)."""

    def __init__(self, channels: int, expansion: float) -> None:
        super().__init__()
        hidden = max(int(channels * expansion), 1)
        self.proj_in = nn.Conv1d(channels, 2 * hidden, 1)
        self.depthwise = nn.Conv1d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden)
        self.proj_out = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.depthwise(self.proj_in(x)).chunk(2, dim=1)
        return self.proj_out(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    """Pre-norm residual MDTA then GDFN."""

    def __init__(self, channels: int, heads: int, expansion: float) -> None:
        super().__init__()
        self.norm1, self.attn = ChannelNorm(channels), MDTA(channels, heads)
        self.norm2, self.ffn = ChannelNorm(channels), GDFN(channels, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def fold_time(x: torch.Tensor, r: int) -> torch.Tensor:
    """(B, C, T) -> (B, C * r, T / r): each group of ``r`` frames becomes channels."""
    b, c, length = x.shape
    return x.reshape(b, c, length // r, r).transpose(2, 3).reshape(b, c * r, length // r)


def unfold_time(x: torch.Tensor, r: int) -> torch.Tensor:
    """(B, C * r, T) -> (B, C, T * r): the inverse of :func:`fold_time`."""
    b, cr, length = x.shape
    return x.reshape(b, cr // r, r, length).transpose(2, 3).reshape(b, cr // r, length * r)


class Downsample(nn.Module):
    """(B, c_in, T) -> (B, c_out, T / r)."""

    def __init__(self, c_in: int, c_out: int, r: int) -> None:
        super().__init__()
        self.r = r
        self.conv = nn.Conv1d(c_in, c_out // r, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fold_time(self.conv(x), self.r)


class Upsample(nn.Module):
    """(B, c_in, T) -> (B, c_out, T * r)."""

    def __init__(self, c_in: int, c_out: int, r: int) -> None:
        super().__init__()
        self.r = r
        self.conv = nn.Conv1d(c_in, c_out * r, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unfold_time(self.conv(x), self.r)


def _blocks(n: int, channels: int, heads: int, expansion: float) -> nn.Sequential:
    return nn.Sequential(*(TransformerBlock(channels, heads, expansion) for _ in range(n)))


class TemporalUNet(nn.Module):
    """(B, T, D) frame features -> (B, T, D), any T (padded inside to a multiple of the
    product of the down-sampling factors by repeating the last frame)."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        ch, blocks, heads = config.temporal_channels, config.temporal_blocks, config.temporal_heads
        factors, e, d = config.temporal_factors, config.ffn_expansion, config.frame_feature
        self.multiple = config.time_multiple
        self.embed = nn.Conv1d(d, ch[0], 3, padding=1)
        self.encoders = nn.ModuleList(
            _blocks(blocks[i], ch[i], heads[i], e) for i in range(len(factors))
        )
        self.downs = nn.ModuleList(Downsample(ch[i], ch[i + 1], r) for i, r in enumerate(factors))
        self.bottleneck = _blocks(blocks[-1], ch[-1], heads[-1], e)
        self.ups = nn.ModuleList(Upsample(ch[i + 1], ch[i], r) for i, r in enumerate(factors))
        self.reduce = nn.ModuleList(nn.Conv1d(2 * ch[i], ch[i], 1) for i in range(len(factors)))
        self.decoders = nn.ModuleList(
            _blocks(blocks[i], ch[i], heads[i], e) for i in range(len(factors))
        )
        self.output = nn.Conv1d(ch[0], d, 3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        length = features.shape[1]
        x = self.embed(_pad_time(features.transpose(1, 2), self.multiple))
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for i in reversed(range(len(self.ups))):
            x = self.reduce[i](torch.cat([self.ups[i](x), skips[i]], dim=1))
            x = self.decoders[i](x)
        return self.output(x)[..., :length].transpose(1, 2)


def _pad_time(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """(B, C, T) -> (B, C, T') with T' the next multiple of ``multiple`` (last frame repeated)."""
    extra = -x.shape[-1] % multiple
    return F.pad(x, (0, extra), mode="replicate") if extra else x
