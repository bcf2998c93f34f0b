"""Symmetric positive definite block-banded systems over time, by block cyclic reduction.

Temporal IK's normal equations couple each frame's unknowns (an ``n x n`` block per frame)
to the same unknowns ``k`` frames away (``k <= order``, a scalar per frame pair times the
identity). Grouping ``order`` consecutive frames makes the matrix block *tri*diagonal with
blocks of size ``order * n``; block cyclic reduction then eliminates every other block
row at once, ``log2(T)`` times, so each step is one batched tensor operation (CPU or GPU)
instead of a loop over frames. It is Cholesky on an odd-even reordering of the matrix, and
as stable. A matrix that is not positive definite raises :class:`NotPositiveDefinite`.

On the CPU, :func:`factor` hands the same matrix to LAPACK's banded Cholesky instead
(SciPy's ``cholesky_banded``; frames in order, bandwidth ``order * n``): for IK's small
systems (a few hundred unknowns) one LAPACK call costs less than the tensor ops of the
reduction, whose overhead, not arithmetic, dominates on a CPU. Those calls run with
SciPy's BLAS on one thread: its worker threads, once woken, spin on the cores that
PyTorch's own threads need next, which made a temporal solve 2-5x slower and erratic
(gait2354, 73 frames, 2 cores: 90-350 ms against 47-53 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.linalg
import torch
from threadpoolctl import ThreadpoolController

Tensor = torch.Tensor


class NotPositiveDefinite(ValueError):
    """The system matrix is not (numerically) positive definite."""


@dataclass(frozen=True)
class _Level:
    chol_odd: Tensor  # (p, K, K) Cholesky factors of the eliminated (odd) diagonal blocks
    lower_odd: Tensor  # (p, K, K) their coupling to the block before (B)
    upper_odd: Tensor  # (p, K, K) and after (C)
    lower_even: Tensor  # (p+1, K, K)
    upper_even: Tensor  # (p+1, K, K)
    size: int  # blocks on this level before padding


@dataclass(frozen=True)
class BlockBandedFactor:
    """A factorized system; :meth:`solve` applies its inverse."""

    levels: tuple[_Level, ...]
    last: Tensor  # (1, K, K) Cholesky factor of the final single block
    group: int
    n_frames: int
    n: int

    def solve(self, rhs: Tensor) -> Tensor:
        """``A^-1 rhs`` for rhs (T, n, R)."""
        r = _group_rhs(rhs, self.group)
        stack = []
        for level in self.levels:
            dinv_r = torch.cholesky_solve(r[1::2], level.chol_odd)
            stack.append(dinv_r)
            m = len(level.lower_even)
            r = (
                r[0::2]
                - level.lower_even @ _shift(dinv_r, 0, m)
                - level.upper_even @ _shift(dinv_r, 1, m)
            )
        x = torch.cholesky_solve(r, self.last)
        for level, dinv_r in zip(reversed(self.levels), reversed(stack), strict=True):
            x = _back_substitute(level, dinv_r, x)
        return _ungroup(x, self.group, self.n_frames, self.n)


@dataclass(frozen=True)
class BandedCholesky:
    """A factorized system on the CPU: LAPACK's banded Cholesky, upper band storage."""

    band: np.ndarray  # (kd + 1, T * n)
    n_frames: int
    n: int

    def solve(self, rhs: Tensor) -> Tensor:
        """``A^-1 rhs`` for rhs (T, n, R)."""
        flat = rhs.reshape(self.n_frames * self.n, -1).numpy()
        with _one_blas_thread():
            x = scipy.linalg.cho_solve_banded((self.band, False), flat, check_finite=False)
        return torch.from_numpy(np.ascontiguousarray(x)).reshape(rhs.shape).to(rhs.dtype)


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _one_blas_thread():
    """A context in which the BLAS libraries loaded (SciPy's) use one thread."""
    return _blas_controller().limit(limits=1, user_api="blas")


def factor(
    blocks: Tensor, couplings: tuple[Tensor, ...], free: Tensor
) -> BlockBandedFactor | BandedCholesky:
    """Factorize ``blockdiag(blocks) + sum_k offdiag_k(couplings[k-1]) (x) I``.

    Args:
        blocks: (T, n, n) symmetric diagonal blocks (already masked and damped).
        couplings: per offset ``k = 1..order`` the (T-k,) weights between frames t and t+k.
        free: (T, n) False for unknowns held fixed (their couplings are dropped).

    Raises:
        NotPositiveDefinite: a pivot block is not positive definite.
    """
    if blocks.device.type == "cpu":
        return banded_cholesky(blocks, couplings, free)
    return cyclic_reduction(blocks, couplings, free)


def banded_cholesky(blocks: Tensor, couplings: tuple[Tensor, ...], free: Tensor) -> BandedCholesky:
    """:func:`factor` by LAPACK's banded Cholesky (CPU tensors)."""
    n_frames, n = free.shape
    order = len(couplings)
    kd, rows, cols, a, b, coupled = _band_layout(n_frames, n, order)
    values = blocks.numpy()
    band = np.zeros((kd + 1, n_frames * n), dtype=values.dtype)
    band[rows, cols] = values[:, a, b]
    f = free.numpy()
    for k, (w, (r, c)) in enumerate(zip(couplings, coupled, strict=True), start=1):
        band[r, c] = (w.numpy()[:, None] * f[:-k] * f[k:]).ravel()
    try:
        with _one_blas_thread():
            chol = scipy.linalg.cholesky_banded(band, lower=False, check_finite=False)
    except np.linalg.LinAlgError:
        raise NotPositiveDefinite("the temporal IK system is not positive definite") from None
    return BandedCholesky(chol, n_frames, n)


@lru_cache(maxsize=32)
def _band_layout(n_frames: int, n: int, order: int) -> tuple:
    """Where entries go in upper band storage (``band[kd + i - j, j] = A[i, j]``): the
    bandwidth ``kd``; the diagonal blocks' upper triangles (rows, cols and their (a, b)
    within a block); per coupling offset ``k``, the (rows, cols) of frame t's unknowns
    against frame t+k's."""
    kd = order * n if order else n - 1
    a, b = np.triu_indices(n)
    frames = np.arange(n_frames)[:, None]
    rows = np.broadcast_to(kd + a - b, (n_frames, len(a)))
    cols = frames * n + b
    coupled = []
    for k in range(1, order + 1):
        c = (np.arange(n_frames - k)[:, None] + k) * n + np.arange(n)
        coupled.append((np.full(c.shape, kd - k * n).ravel(), c.ravel()))
    return kd, rows, cols, a, b, tuple(coupled)


def cyclic_reduction(
    blocks: Tensor, couplings: tuple[Tensor, ...], free: Tensor
) -> BlockBandedFactor:
    """:func:`factor` by block cyclic reduction (batched tensor ops, any device)."""
    group = max(len(couplings), 1)
    diag, upper = _group_matrix(blocks, couplings, free, group)
    lower = torch.cat([torch.zeros_like(upper[:1]), upper[:-1].mT])  # B_s = C_{s-1}^T
    levels = []
    while diag.shape[0] > 1:
        level, (diag, lower, upper) = _reduce(diag, lower, upper)
        levels.append(level)
    return BlockBandedFactor(tuple(levels), _cholesky(diag), group, *blocks.shape[:2])


def _cholesky(a: Tensor) -> Tensor:
    chol, info = torch.linalg.cholesky_ex(a)
    if bool((info > 0).any()):
        raise NotPositiveDefinite("the temporal IK system is not positive definite")
    return chol


def _reduce(diag: Tensor, lower: Tensor, upper: Tensor) -> tuple[_Level, tuple[Tensor, ...]]:
    """Eliminate the odd blocks: the even blocks' system and what back-substitution needs."""
    size = diag.shape[0]
    chol = _cholesky(diag[1::2])
    dinv_lower = torch.cholesky_solve(lower[1::2], chol)
    dinv_upper = torch.cholesky_solve(upper[1::2], chol)
    lo_e, up_e = lower[0::2], upper[0::2]
    m = len(lo_e)
    new_diag = diag[0::2] - lo_e @ _shift(dinv_upper, 0, m) - up_e @ _shift(dinv_lower, 1, m)
    new_lower = -lo_e @ _shift(dinv_lower, 0, m)
    new_upper = -up_e @ _shift(dinv_upper, 1, m)
    level = _Level(chol, lower[1::2], upper[1::2], lo_e, up_e, size)
    return level, (new_diag, new_lower, new_upper)


def _back_substitute(level: _Level, dinv_r: Tensor, x_even: Tensor) -> Tensor:
    """All blocks from the even ones: ``x_j = D_j^-1 (r_j - B_j x_j-1 - C_j x_j+1)``."""
    after = (
        x_even[1:]
        if len(x_even) > len(dinv_r)
        else torch.cat([x_even[1:], torch.zeros_like(x_even[:1])])
    )
    coupled = level.lower_odd @ x_even[: len(dinv_r)] + level.upper_odd @ after
    x_odd = dinv_r - torch.cholesky_solve(coupled, level.chol_odd)
    out = torch.empty(
        x_even.shape[0] + x_odd.shape[0],
        *x_even.shape[1:],
        dtype=x_even.dtype,
        device=x_even.device,
    )
    out[0::2], out[1::2] = x_even, x_odd
    return out[: level.size]


def _shift(odd: Tensor, offset: int, n_even: int | None = None) -> Tensor:
    """Odd-block quantities aligned with the even blocks: the odd block before (offset 0)
    or after (offset 1) each even block, zero where there is none."""
    zero = torch.zeros_like(odd[:1])
    padded = torch.cat([zero, odd, zero])
    n_even = odd.shape[0] + 1 if n_even is None else n_even
    return padded[offset : offset + n_even]


def _group_matrix(
    blocks: Tensor, couplings: tuple[Tensor, ...], free: Tensor, group: int
) -> tuple[Tensor, Tensor]:
    """Block tridiagonal form with ``group`` frames per block: diagonal and upper blocks
    (groups, group * n, group * n); padding frames are decoupled identities."""
    n_frames, n = free.shape
    size = -(-n_frames // group) * group
    pad = size - n_frames
    eye = torch.eye(n, dtype=blocks.dtype, device=blocks.device)
    a = torch.cat([blocks, eye.expand(pad, n, n)]) if pad else blocks
    f = torch.cat([free, free.new_zeros(pad, n)]).to(blocks.dtype)
    weights = [torch.cat([w, w.new_zeros(size - len(w))]) for w in couplings]

    def coupling(k: int, first: Tensor) -> Tensor:
        """(len(first), n, n) coupling of frames ``first`` and ``first + k``."""
        if not 1 <= k <= len(weights):
            return blocks.new_zeros(len(first), n, n)
        w = weights[k - 1][first].unsqueeze(-1) * f[first] * f[(first + k).clamp_max(size - 1)]
        return torch.diag_embed(w)

    starts = torch.arange(0, size, group, device=blocks.device)
    diag = [[None] * group for _ in range(group)]
    upper = [[None] * group for _ in range(group)]
    for i in range(group):
        for j in range(group):
            lo = min(i, j)
            diag[i][j] = a[starts + i] if i == j else coupling(abs(i - j), starts + lo)
            upper[i][j] = coupling(group + j - i, starts + i)
    return _assemble(diag), _assemble(upper)


def _assemble(grid: list[list[Tensor]]) -> Tensor:
    """(m, g*n, g*n) from a g x g grid of (m, n, n) blocks."""
    return torch.cat([torch.cat(row, dim=-1) for row in grid], dim=-2)


def _group_rhs(rhs: Tensor, group: int) -> Tensor:
    n_frames, n, n_rhs = rhs.shape
    pad = -(-n_frames // group) * group - n_frames
    if pad:
        rhs = torch.cat([rhs, rhs.new_zeros(pad, n, n_rhs)])
    return rhs.reshape(-1, group * n, n_rhs)


def _ungroup(x: Tensor, group: int, n_frames: int, n: int) -> Tensor:
    return x.reshape(-1, n, x.shape[-1])[:n_frames]
