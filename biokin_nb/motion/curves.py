"""Smooth curves for procedural motion: minimum-jerk keyframes, periodic splines, noise.

Time is in seconds, phase in cycles (``[0, 1)`` is one cycle); values are whatever unit the
caller uses (the action library works in degrees, see :mod:`biokin_nb.motion.draft`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator
from scipy.ndimage import gaussian_filter1d


def minimum_jerk(s: np.ndarray | float) -> np.ndarray:
    """The minimum-jerk profile ``10 s^3 - 15 s^4 + 6 s^5`` of ``s`` clipped to [0, 1].

    Goes from 0 to 1 with zero velocity and acceleration at both ends (Flash & Hogan 1985).
    """
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    return s**3 * (10.0 - 15.0 * s + 6.0 * s**2)


def keyframes(
    times: Sequence[float], values: np.ndarray, t: np.ndarray, *, through: bool = False
) -> np.ndarray:
    """Motion through keyframes, held before the first and after the last.

    Args:
        times: (K,) strictly increasing keyframe times (s).
        values: (K, D) the values at the keyframes.
        t: (T,) evaluation times (s).
        through: False: point-to-point, each segment along :func:`minimum_jerk` (zero
            velocity at every keyframe: reach, hold, move on). True: a shape-preserving
            cubic (PCHIP) through the keyframes, which keeps moving through them (for
            ballistic actions such as jumps and kicks).

    Returns:
        (T, D) values at ``t``.
    """
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(len(times), -1)
    if len(times) == 1:
        return np.repeat(values, len(t), axis=0)
    if np.any(np.diff(times) <= 0):
        raise ValueError(f"keyframe times must increase strictly; got {times}")
    if through:
        return PchipInterpolator(times, values, axis=0)(np.clip(t, times[0], times[-1]))
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    s = minimum_jerk((t - times[i]) / (times[i + 1] - times[i]))
    return values[i] + (values[i + 1] - values[i]) * s[:, None]


def cyclic(phases: Sequence[float], values: Sequence[float], phase: np.ndarray) -> np.ndarray:
    """A periodic cubic spline through ``(phases, values)``, period 1, evaluated at ``phase``.

    Args:
        phases: (K,) increasing knots in [0, 1); the curve closes smoothly from the last knot
            back to the first (plus one period).
        values: (K,) values at the knots.
        phase: (...) any phases (cycles); wrapped into [0, 1).
    """
    x = np.append(np.asarray(phases, dtype=np.float64), phases[0] + 1.0)
    y = np.append(np.asarray(values, dtype=np.float64), values[0])
    spline = CubicSpline(x, y, bc_type="periodic")
    return spline(np.mod(np.asarray(phase) - x[0], 1.0) + x[0])


def smooth_noise(
    rng: np.random.Generator, n: int, dims: int, rate: float, cutoff_hz: float = 0.5
) -> np.ndarray:
    """(n, dims) band-limited Gaussian noise with unit standard deviation per sample.

    White noise smoothed by a Gaussian kernel of standard deviation
    ``rate / (2 pi cutoff_hz)`` samples (the -3 dB frequency is about ``cutoff_hz``),
    rescaled by the kernel's variance reduction so the expected variance is 1 whatever ``n``.
    """
    sigma = max(rate / (2.0 * np.pi * cutoff_hz), 1e-6)
    white = rng.standard_normal((n, dims))
    gain = np.sqrt(2.0 * np.sqrt(np.pi) * sigma) if sigma > 1.0 else 1.0
    return gaussian_filter1d(white, sigma, axis=0, mode="reflect") * gain


def ramp(t: np.ndarray, start: float, end: float, fade: float) -> np.ndarray:
    """(T,) a window that rises from 0 to 1 over ``[start, start + fade]`` and falls back to
    0 over ``[end - fade, end]`` along minimum-jerk profiles (0 outside ``[start, end]``)."""
    fade = max(min(fade, 0.5 * (end - start)), 1e-9)
    return minimum_jerk((t - start) / fade) * minimum_jerk((end - t) / fade)
