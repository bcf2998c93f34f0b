"""Zero-lag Butterworth low-pass filtering of markers and joint angles, as Pose2Sim does.

Convention (Pose2Sim's, kept so results compare): ``order`` is the order of the whole
zero-lag filter. ``scipy.signal.filtfilt`` runs the filter forward then backward, which
doubles the order and squares the gain, so each pass is designed with ``order // 2``.
``cutoff_hz`` is the design cutoff of each pass and is not corrected for the two passes:
the combined gain at ``cutoff_hz`` is 0.5 (-6 dB), not 1/sqrt(2) (-3 dB).

Time runs along one axis (``axis``, default 0): markers ``(T, M, 3)`` in m, angles
``(T, C)`` in rad, or any other layout; every other index is filtered independently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import signal

__all__ = ["butterworth_lowpass", "butterworth_min_length"]


def _design(rate_hz: float, cutoff_hz: float, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Numerator ``b`` and denominator ``a`` of one pass (order ``order // 2``)."""
    if not np.isfinite(rate_hz) or rate_hz <= 0:
        raise ValueError(f"rate_hz must be a positive sampling rate in Hz, got {rate_hz}")
    nyquist = 0.5 * rate_hz
    if not 0 < cutoff_hz < nyquist:
        raise ValueError(
            f"cutoff_hz must lie in (0, Nyquist = rate_hz / 2 = {nyquist:g} Hz), got {cutoff_hz}: "
            "lower the cutoff or use a higher sampling rate"
        )
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 2 or order % 2:
        raise ValueError(
            f"order must be an even integer >= 2 (filtfilt doubles the design order), got {order}"
        )
    b, a = signal.butter(order // 2, cutoff_hz, btype="low", fs=rate_hz)
    return b, a


def butterworth_min_length(order: int = 4) -> int:
    """Fewest samples :func:`butterworth_lowpass` can filter: filtfilt's padlen + 1."""
    return 3 * (order // 2 + 1) + 1


def _filter_with_gaps(
    col: np.ndarray, b: np.ndarray, a: np.ndarray, min_len: int, where: str
) -> np.ndarray:
    """Filter one series ``(T,)`` holding NaN: bridge interior gaps, filter, restore NaN."""
    missing = np.isnan(col)
    known = np.flatnonzero(~missing)
    out = np.full_like(col, np.nan)
    if known.size == 0:
        return out
    first, last = known[0], known[-1]
    span = last - first + 1
    if span < min_len:
        raise ValueError(
            f"the series {where} has only {span} samples between its first and last valid value; "
            f"the filter needs at least {min_len}: drop that series or lower the order"
        )
    bridged = np.interp(np.arange(first, last + 1), known, col[known])
    out[first : last + 1] = signal.filtfilt(b, a, bridged)
    out[missing] = np.nan
    return out


def butterworth_lowpass(
    x: Any,
    rate_hz: float,
    cutoff_hz: float = 6.0,
    order: int = 4,
    axis: int = 0,
) -> np.ndarray:
    """Zero-lag Butterworth low-pass filter along the time axis (Pose2Sim's defaults).

    NaN gaps: inside a series, gaps are bridged by linear interpolation for filtering
    only, and the NaN is put back afterwards; leading and trailing NaN stay NaN and are
    not filtered over. An all-NaN series stays all NaN.

    Args:
        x: samples with time along ``axis``, e.g. markers ``(T, M, 3)`` in m or angles
            ``(T, C)`` in rad (units pass through unchanged); NaN marks missing samples.
        rate_hz: sampling rate in Hz.
        cutoff_hz: design cutoff in Hz of each pass, in ``(0, rate_hz / 2)``; see the
            module docstring for the -6 dB gain this gives at the cutoff.
        order: order of the combined zero-lag filter (even; each pass has ``order // 2``).
        axis: the time axis.

    Returns:
        Filtered float64 array, the shape of ``x``.

    Raises:
        ValueError: bad rate, cutoff or order; fewer samples than
            :func:`butterworth_min_length`; infinite values.
    """
    b, a = _design(rate_hz, cutoff_hz, order)
    data = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    min_len = butterworth_min_length(order)
    if data.shape[0] < min_len:
        raise ValueError(
            f"{data.shape[0]} samples along axis {axis} are too few: a Butterworth filter of "
            f"order {order} needs at least {min_len} (filtfilt's padding)"
        )
    if np.isinf(data).any():
        raise ValueError("x holds infinite values: replace them with NaN to mark them missing")
    flat = data.reshape(data.shape[0], -1)
    out = np.empty_like(flat)
    gappy = np.isnan(flat).any(axis=0)
    if (~gappy).any():
        out[:, ~gappy] = signal.filtfilt(b, a, flat[:, ~gappy], axis=0)
    for j in np.flatnonzero(gappy):
        index = tuple(int(i) for i in np.unravel_index(j, data.shape[1:]))
        where = f"at index {index}" if index else "x"
        out[:, j] = _filter_with_gaps(flat[:, j], b, a, min_len, where)
    return np.moveaxis(out.reshape(data.shape), 0, axis)
