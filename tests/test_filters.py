"""Known-answer tests for biokin_nb.ik.filters (zero-lag Butterworth, Pose2Sim style)."""

from __future__ import annotations

import numpy as np
import pytest

from biokin_nb.ik.filters import butterworth_lowpass, butterworth_min_length

RATE_HZ = 100.0
EDGE = 100  # samples left out at each end when measuring the steady state


def _fit_sine(y: np.ndarray, time: np.ndarray, freq_hz: float) -> tuple[float, float]:
    """Least-squares amplitude and phase (rad) of a sine of known frequency."""
    basis = np.stack([np.sin(2 * np.pi * freq_hz * time), np.cos(2 * np.pi * freq_hz * time)], 1)
    (s, c), *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(s, c)), float(np.arctan2(c, s))


def _sine(freq_hz: float, seconds: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    time = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    return time, np.sin(2 * np.pi * freq_hz * time)


def test_dc_passes_unchanged() -> None:
    x = np.full((200, 4, 3), 3.7)
    np.testing.assert_allclose(butterworth_lowpass(x, RATE_HZ), x, atol=1e-9)


def test_1hz_passes_without_lag() -> None:
    time, x = _sine(1.0)
    y = butterworth_lowpass(x, RATE_HZ, cutoff_hz=6.0)
    mid = slice(EDGE, -EDGE)
    amplitude, phase = _fit_sine(y[mid], time[mid], 1.0)
    assert abs(amplitude - 1.0) < 0.01
    assert abs(phase) < 1e-3  # rad: no phase lag
    assert np.max(np.abs(y[mid] - x[mid])) < 0.01


def test_30hz_is_attenuated_more_than_40db() -> None:
    _, x = _sine(30.0)
    y = butterworth_lowpass(x, RATE_HZ, cutoff_hz=6.0)
    mid = slice(EDGE, -EDGE)
    gain_db = 20 * np.log10(np.std(y[mid]) / np.std(x[mid]))
    assert gain_db < -40.0


def test_gain_at_cutoff_is_minus_6db_as_pose2sim() -> None:
    """Design cutoff uncorrected: two passes of a -3 dB gain give 0.5 at cutoff_hz."""
    time, x = _sine(6.0)
    y = butterworth_lowpass(x, RATE_HZ, cutoff_hz=6.0)
    mid = slice(EDGE, -EDGE)
    amplitude, _ = _fit_sine(y[mid], time[mid], 6.0)
    assert amplitude == pytest.approx(0.5, rel=1e-3)


def test_nan_gaps_preserved_and_bridged() -> None:
    time, x = _sine(1.0, seconds=3.0)
    markers = np.stack([x, 2 * x, -x], axis=1)[:, None, :].repeat(3, axis=1)  # (T, 3, 3)
    markers[50:60, 1, :] = np.nan  # interior gap
    markers[:5, 2, 0] = np.nan  # leading
    markers[-7:, 2, 0] = np.nan  # trailing
    markers[:, 0, 2] = np.nan  # never seen
    y = butterworth_lowpass(markers, RATE_HZ)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(markers))
    near_gap = np.r_[40:50, 60:70]
    np.testing.assert_allclose(y[near_gap, 1, 0], x[near_gap], atol=0.01)


def test_angles_and_axis() -> None:
    _, x = _sine(2.0, seconds=2.0)
    angles = np.stack([x, 0.5 * x + 0.1], axis=1)  # (T, C)
    along_0 = butterworth_lowpass(angles, RATE_HZ)
    along_1 = butterworth_lowpass(angles.T, RATE_HZ, axis=1)
    np.testing.assert_allclose(along_1, along_0.T, atol=1e-12)
    assert along_0.shape == angles.shape


def test_short_sequences_name_the_minimum_length() -> None:
    minimum = butterworth_min_length(4)
    assert minimum == 10
    butterworth_lowpass(np.zeros(minimum), RATE_HZ)
    with pytest.raises(ValueError, match=f"at least {minimum}"):
        butterworth_lowpass(np.zeros(minimum - 1), RATE_HZ)
    gappy = np.zeros((50, 2))
    gappy[5:, 1] = np.nan  # only 5 valid samples in that series
    with pytest.raises(ValueError, match=r"\(1,\).*at least 10"):
        butterworth_lowpass(gappy, RATE_HZ)


def test_bad_parameters() -> None:
    x = np.zeros(100)
    with pytest.raises(ValueError, match="Nyquist"):
        butterworth_lowpass(x, RATE_HZ, cutoff_hz=50.0)
    with pytest.raises(ValueError, match="rate_hz"):
        butterworth_lowpass(x, 0.0)
    with pytest.raises(ValueError, match="even"):
        butterworth_lowpass(x, RATE_HZ, order=3)
    with pytest.raises(ValueError, match="infinite"):
        butterworth_lowpass(np.r_[x, np.inf], RATE_HZ)
