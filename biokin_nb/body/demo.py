"""Short demonstration motions of the generic model for the body layer (bench, notebook).

- :func:`walking_motion`: the first seconds of a real ``.mot`` (e.g. Rajagopal 2016's IK of
  a walking trial), read by coordinate name and resampled.
- :func:`squat_motion`: a procedural squat: hip, knee and ankle flexion (and a little
  lumbar flexion and arm flexion) following ``(1 - cos) / 2`` within the model's ranges,
  the pelvis lowered and shifted so that the ankles stay where they stand.

Both return a :class:`~biokin_nb.osim.coordinates.Motion` of the model (rad, m).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from biokin_nb.osim import KinematicModel, forward_kinematics
from biokin_nb.osim.coordinates import Motion, read_motion

# Peak angles of the squat (deg) at depth 1, clipped to the model's ranges.
SQUAT_PEAK_DEG = {
    "hip_flexion": 95.0,
    "knee_angle": 110.0,
    "ankle_angle": 25.0,
    "lumbar_extension": -15.0,
    "arm_flex": 60.0,
}


def resample(motion: Motion, rate: float, seconds: float | None = None) -> Motion:
    """``motion`` linearly resampled at ``rate`` (Hz) from its start, cut to ``seconds``."""
    end = motion.time[-1] if seconds is None else min(motion.time[-1], motion.time[0] + seconds)
    time = np.arange(motion.time[0], end + 1e-9, 1.0 / rate)
    q = np.stack(
        [np.interp(time, motion.time, motion.q[:, i]) for i in range(motion.q.shape[1])], 1
    )
    return Motion(time, q, list(motion.coordinate_names))


def walking_motion(
    model: KinematicModel, path: str | Path, seconds: float = 2.0, rate: float = 60.0
) -> Motion:
    """The first ``seconds`` of the ``.mot`` at ``path`` for ``model``, at ``rate`` Hz.

    Columns the model lacks are dropped; coordinates the file lacks keep their defaults.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        motion = read_motion(model, path, extra="ignore")
    return resample(motion, rate, seconds)


def squat_motion(
    model: KinematicModel,
    seconds: float = 2.0,
    rate: float = 60.0,
    depth: float = 1.0,
    scales: np.ndarray | None = None,
) -> Motion:
    """One squat down and up over ``seconds`` at ``rate`` Hz (``depth`` 0..1 of the peak).

    Args:
        model: the generic model (Rajagopal coordinate names).
        scales: (B, 3) the subject's scales, used to keep the ankles in place.
    """
    time = np.arange(0.0, seconds + 1e-9, 1.0 / rate)
    phase = 0.5 * (1.0 - np.cos(2.0 * np.pi * time / seconds))
    q = np.tile(model.defaults, (len(time), 1))
    for name, peak in SQUAT_PEAK_DEG.items():
        for coordinate in _sided(model, name):
            i = model.coordinate_index(coordinate)
            lo, hi = model.ranges[i]
            q[:, i] = np.clip(np.radians(peak) * depth * phase, lo, hi)
    q = _keep_ankles_in_place(model, q, scales)
    return Motion(time, q, model.coordinate_names)


def _sided(model: KinematicModel, base: str) -> list[str]:
    names = [n for n in (f"{base}_r", f"{base}_l", base) if n in model.coordinate_names]
    if not names:
        raise KeyError(f"model {model.name!r} has no coordinate {base!r} (or its sides)")
    return names


def _keep_ankles_in_place(model: KinematicModel, q: np.ndarray, scales) -> np.ndarray:
    """Shift pelvis_tx / pelvis_ty so the mean ankle centre stays at its first position."""
    s = None if scales is None else torch.as_tensor(scales)
    fk = forward_kinematics(model, torch.as_tensor(q), s)
    names = model.joint_names
    ankles = fk.joint_centres[:, [names.index("ankle_r"), names.index("ankle_l")]].mean(1).numpy()
    shift = ankles - ankles[:1]
    q = q.copy()
    for axis, name in ((0, "pelvis_tx"), (1, "pelvis_ty")):
        q[:, model.coordinate_index(name)] -= shift[:, axis]
    return q
