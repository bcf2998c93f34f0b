"""``ActionStyle``: how one subject performs actions (tempo, amplitude, hand, posture).

Draw one style per subject with :func:`random_style` and pass it to every clip of that
subject, so a subject keeps its manner across actions while subjects differ.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

Handedness = Literal["right", "left"]

# Allowed (low, high) for each numeric field: outside these the motions leave the ranges
# of motion or stop looking human.
_LIMITS = {
    "speed": (0.5, 1.6),
    "amplitude": (0.5, 1.5),
    "noise_deg": (0.0, 5.0),
    "trunk_lean_deg": (-10.0, 15.0),
    "knee_bend_deg": (0.0, 15.0),
    "arm_swing": (0.0, 2.0),
    "step_width": (0.5, 1.5),
}


@dataclass(frozen=True)
class ActionStyle:
    """A subject's manner of moving; every action reads the fields it can use.

    Attributes:
        speed: tempo factor (1 = typical adult); 1.2 moves 20 % faster (cadence, gestures).
        amplitude: range factor (1 = typical) on stride, swing, jump height, gesture size.
        handedness: the hand (and foot) that leads one-sided actions; "left" mirrors them.
        noise_deg: standard deviation (deg) of slow postural noise on the trunk and arms.
        trunk_lean_deg: constant forward lean of the trunk (deg; negative leans back).
        knee_bend_deg: mean knee flexion when standing (deg).
        arm_swing: factor on the arm swing of locomotion.
        step_width: factor on the lateral spacing of the feet in locomotion and stance.
    """

    speed: float = 1.0
    amplitude: float = 1.0
    handedness: Handedness = "right"
    noise_deg: float = 1.0
    trunk_lean_deg: float = 2.0
    knee_bend_deg: float = 4.0
    arm_swing: float = 1.0
    step_width: float = 1.0

    def __post_init__(self) -> None:
        if self.handedness not in ("right", "left"):
            raise ValueError(f"handedness must be 'right' or 'left'; got {self.handedness!r}")
        for f in fields(self):
            if f.name not in _LIMITS:
                continue
            low, high = _LIMITS[f.name]
            value = getattr(self, f.name)
            if not (np.isfinite(value) and low <= value <= high):
                raise ValueError(
                    f"ActionStyle.{f.name} = {value!r} is outside [{low}, {high}]; "
                    "pick a value inside (see random_style for typical spreads)"
                )


def random_style(rng: np.random.Generator) -> ActionStyle:
    """A plausible random subject style: tempo and amplitude +/- 20 %, 10 % left-handed,
    posture and noise varied within the ranges of :class:`ActionStyle`."""
    return ActionStyle(
        speed=float(rng.uniform(0.8, 1.2)),
        amplitude=float(rng.uniform(0.8, 1.2)),
        handedness="left" if rng.random() < 0.1 else "right",
        noise_deg=float(rng.uniform(0.5, 2.0)),
        trunk_lean_deg=float(np.clip(rng.normal(2.0, 3.0), -5.0, 10.0)),
        knee_bend_deg=float(rng.uniform(1.0, 8.0)),
        arm_swing=float(rng.uniform(0.6, 1.4)),
        step_width=float(rng.uniform(0.8, 1.25)),
    )
