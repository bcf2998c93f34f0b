"""``Draft``: an action's coordinate trajectories by name, before it meets a model.

Values are in degrees for rotational coordinates and metres for translations (the units a
``.mot`` file shows), keyed by the generic model's coordinate names (Rajagopal 2016).
A coordinate a draft does not name stays at the model default. Coupled coordinates
(``knee_angle_*_beta``) are set by the model's couplers when the draft becomes ``q``.

Mirroring (left/right swap) follows the generic model's symmetry: the left side is the
mirror image of the right in the sagittal XY plane, so a left coordinate means the same
anatomical motion as its right twin; swapping sides negates the pelvis list, rotation and
``pelvis_tz`` and the lumbar bending and rotation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from biokin_nb.motion.curves import keyframes, ramp
from biokin_nb.motion.style import ActionStyle
from biokin_nb.osim.model import KinematicModel

Pose = dict[str, float]

MIRROR_NEGATED = (
    "pelvis_list",
    "pelvis_rotation",
    "pelvis_tz",
    "lumbar_bending",
    "lumbar_rotation",
)


@dataclass
class Draft:
    """Trajectories of an action on the time grid ``time`` (T,) s.

    Attributes:
        time: (T,) s.
        values: coordinate name -> (T,) deg (rotational) or m (translational).
        flight: (T,) bool, frames where neither foot touches the floor (jumps, running).
    """

    time: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)
    flight: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.flight is None:
            self.flight = np.zeros(len(self.time), dtype=bool)

    def get(self, name: str) -> np.ndarray:
        """(T,) the trajectory of ``name`` (zeros when not set)."""
        return self.values.get(name, np.zeros(len(self.time)))

    def add(self, name: str, values: np.ndarray | float) -> None:
        """Add ``values`` (T,) or a constant to coordinate ``name``."""
        self.values[name] = self.get(name) + values

    def add_all(self, tracks: dict[str, np.ndarray]) -> None:
        """Add each of ``tracks`` (name -> (T,) or constant) to its coordinate."""
        for name, values in tracks.items():
            self.add(name, values)


def mirror_name(name: str) -> str:
    """``hip_flexion_r`` <-> ``hip_flexion_l`` (also ``knee_angle_r_beta``); others as is."""
    for a, b in (("_r", "_l"), ("_l", "_r")):
        if name.endswith(a):
            return name[: -len(a)] + b
        if name.endswith(a + "_beta"):
            return name[: -len(a) - 5] + b + "_beta"
    return name


def mirror_pose(pose: Pose) -> Pose:
    """The left/right mirror image of a pose (see the module docstring)."""
    return {mirror_name(k): (-v if k in MIRROR_NEGATED else v) for k, v in pose.items()}


def mirror(draft: Draft) -> Draft:
    """The left/right mirror image of a draft (the same action done with the other side)."""
    values = {
        mirror_name(k): (-v if k in MIRROR_NEGATED else v.copy()) for k, v in draft.values.items()
    }
    return Draft(draft.time, values, draft.flight.copy())


def pace(rng: np.random.Generator, style: ActionStyle, base: float) -> float:
    """A duration: ``base`` s at the style's speed, jittered by +/-20 %."""
    return base * rng.uniform(0.8, 1.2) / style.speed


def jitter(pose: Pose, rng: np.random.Generator, deg: float = 3.0) -> Pose:
    """``pose`` with N(0, ``deg``) added to every value."""
    return {k: v + rng.normal(0.0, deg) for k, v in pose.items()}


def scaled(pose: Pose, rest: Pose, gain: float) -> Pose:
    """``rest + gain * (pose - rest)`` for the coordinates of ``pose``."""
    return {k: rest.get(k, 0.0) + gain * (v - rest.get(k, 0.0)) for k, v in pose.items()}


def to_coordinates(model: KinematicModel, draft: Draft) -> np.ndarray:
    """(T, C) model coordinates (rad, m) of ``draft``, clipped to the model's ranges;
    coupled coordinates (``knee_angle_*_beta``) follow their couplers.

    Raises:
        KeyError: the draft names coordinates the model lacks (the action library drives
            the generic model's coordinate set, Rajagopal 2016 names).
    """
    names = model.coordinate_names
    missing = sorted(set(draft.values) - set(names))
    if missing:
        raise KeyError(
            f"model {model.name!r} lacks coordinates the action drives: {', '.join(missing)}; "
            "use the generic model (data/generic_model.osim) or one with Rajagopal 2016 names"
        )
    q = np.tile(model.defaults, (len(draft.time), 1))
    rotational = model.rotational
    for name, values in draft.values.items():
        i = names.index(name)
        q[:, i] = np.deg2rad(values) if rotational[i] else values
    ranges = model.ranges
    q = np.clip(q, ranges[:, 0], ranges[:, 1])
    for coupler in model.couplers:
        q[:, coupler.dependent] = coupler.function.numpy(q[:, coupler.independent])
    return q


class KeySequence:
    """Builds point-to-point keyframed trajectories: poses reached with minimum-jerk moves,
    held, and optionally overlaid with oscillations (scratching, waving, clapping).

    Poses are partial dicts (deg / m); a coordinate a pose does not name takes its ``rest``
    value (:meth:`to`) or keeps its current value (:meth:`adjust`).
    """

    def __init__(self, rest: Pose, start: float = 0.0) -> None:
        self.rest = dict(rest)
        self.knots: list[tuple[float, Pose]] = [(start, dict(rest))]
        self.wiggles: list[tuple[str, float, float, float, float]] = []

    @property
    def now(self) -> float:
        """Time (s) of the last keyframe."""
        return self.knots[-1][0]

    @property
    def current(self) -> Pose:
        return self.knots[-1][1]

    def to(self, pose: Pose, duration: float) -> KeySequence:
        """Move to ``rest`` updated with ``pose`` over ``duration`` s."""
        return self._append({**self.rest, **pose}, duration)

    def adjust(self, pose: Pose, duration: float) -> KeySequence:
        """Move to the current pose updated with ``pose`` over ``duration`` s."""
        return self._append({**self.current, **pose}, duration)

    def hold(self, duration: float) -> KeySequence:
        """Stay in the current pose for ``duration`` s."""
        return self._append(dict(self.current), duration)

    def wiggle(self, duration: float, **waves: tuple[float, float]) -> KeySequence:
        """Hold for ``duration`` s while each named coordinate oscillates sinusoidally:
        ``name=(amplitude_deg, frequency_hz)``, faded in and out over 0.2 s."""
        for name, (amplitude, frequency) in waves.items():
            self.wiggles.append((name, amplitude, frequency, self.now, self.now + duration))
        return self.hold(duration)

    def _append(self, pose: Pose, duration: float) -> KeySequence:
        self.knots.append((self.now + max(duration, 1e-3), pose))
        return self

    def evaluate(self, t: np.ndarray, *, through: bool = False) -> dict[str, np.ndarray]:
        """name -> (T,) trajectories on the times ``t`` (s); ``through``: pass through the
        keyframes without stopping (see :func:`biokin_nb.motion.curves.keyframes`)."""
        names = sorted({k for _, pose in self.knots for k in pose})
        times = [k[0] for k in self.knots]
        table = np.array(
            [[pose.get(n, self.rest.get(n, 0.0)) for n in names] for _, pose in self.knots]
        )
        values = keyframes(times, table, t, through=through)
        out = {n: values[:, i] for i, n in enumerate(names)}
        for name, amplitude, frequency, t0, t1 in self.wiggles:
            wave = amplitude * np.sin(2.0 * np.pi * frequency * (t - t0))
            out[name] = out.get(name, np.zeros(len(t))) + wave * ramp(t, t0, t1, 0.2)
        return out
