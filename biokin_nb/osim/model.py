"""``KinematicModel``: the kinematic content of an OpenSim model, free of OpenSim.

Everything the forward kinematics needs, as numpy arrays in SI units (m, rad, kg):
bodies, joints as sequences of axis motions, frames, coordinates, couplers and markers.
Read one from a ``.osim`` with :func:`biokin_nb.osim.load_model`.

Scaling (OpenSim's ``Model::scale`` semantics): a point fixed in a body, given in the body
frame, scales elementwise with that body's three scale factors ``s``. Every point therefore
carries a (3, 3) matrix ``M`` with ``p(s) = M @ s`` (``M = diag(p)`` for a point given
directly in the body frame; offset frames on offset frames compose). A CustomJoint's
translation along unit axis ``a`` is multiplied by ``a . s_parent``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from biokin_nb.osim.functions import PiecewisePolynomial

MotionType = Literal["rotational", "translational", "coupled"]
GROUND = -1


def _unknown(kind: str, name: str, known: list[str]) -> KeyError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return KeyError(f"unknown {kind} {name!r}{hint} (the model has {len(known)} {kind}s)")


@dataclass(frozen=True)
class Coordinate:
    """A generalized coordinate (rad or m)."""

    name: str
    joint: str
    motion: MotionType
    range: tuple[float, float]
    default: float
    locked: bool
    clamped: bool


@dataclass(frozen=True)
class Body:
    """A rigid body; ``parent`` is a body index or ``GROUND``; ``com`` in m, body frame."""

    name: str
    parent: int
    joint: int
    mass: float
    com: np.ndarray


@dataclass(frozen=True)
class FixedFrame:
    """A frame fixed in ``body`` (index or ``GROUND``): ``R`` (3, 3), origin ``M @ s`` (m)."""

    body: int
    rotation: np.ndarray
    origin_by_scale: np.ndarray


@dataclass(frozen=True)
class AxisMotion:
    """Rotation about, or translation along, unit ``axis`` (expressed in the joint's parent
    frame after the preceding rotations for rotations, in the parent frame for translations)
    by ``function(q[coordinate])``; ``coordinate`` is -1 for a constant. ``scales``: the
    translation is multiplied by ``axis . s_parent`` when the model is scaled (CustomJoint)."""

    kind: Literal["rotation", "translation"]
    axis: np.ndarray
    coordinate: int
    function: PiecewisePolynomial
    scales: bool = False


@dataclass(frozen=True)
class Joint:
    """A joint: ``X_G_child = X_G_parent X_parent_P X_PC(q) inv(X_child_C)``."""

    name: str
    kind: str
    parent_body: int
    child_body: int
    parent_frame: FixedFrame
    child_frame: FixedFrame
    motions: tuple[AxisMotion, ...]


@dataclass(frozen=True)
class Coupler:
    """``q[dependent] = function(q[independent])`` (a CoordinateCouplerConstraint)."""

    name: str
    dependent: int
    independent: int
    function: PiecewisePolynomial


@dataclass(frozen=True)
class Marker:
    """A marker fixed in ``body`` at ``origin_by_scale @ s`` (m, body frame)."""

    name: str
    body: int
    origin_by_scale: np.ndarray


@dataclass(frozen=True)
class KinematicModel:
    """Bodies, joints (in topological order, parents first), coordinates and markers.

    Keypoints are the joint centres (origin of each joint's child frame, one per body)
    followed by the body mass centres: ``2 * n_bodies`` points named ``<joint>`` and
    ``<body>_com``.
    """

    name: str
    bodies: tuple[Body, ...]
    joints: tuple[Joint, ...]
    coordinates: tuple[Coordinate, ...]
    markers: tuple[Marker, ...]
    couplers: tuple[Coupler, ...]
    source: Path | None = None
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    # ---- names and indices -------------------------------------------------------------
    @property
    def body_names(self) -> list[str]:
        return [b.name for b in self.bodies]

    @property
    def coordinate_names(self) -> list[str]:
        return [c.name for c in self.coordinates]

    @property
    def marker_names(self) -> list[str]:
        return [m.name for m in self.markers]

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def keypoint_names(self) -> list[str]:
        return self.joint_names + [f"{b.name}_com" for b in self.bodies]

    @property
    def n_coordinates(self) -> int:
        return len(self.coordinates)

    @property
    def n_bodies(self) -> int:
        return len(self.bodies)

    def coordinate_index(self, name: str) -> int:
        return self._index("coordinate", name, self.coordinate_names)

    def body_index(self, name: str) -> int:
        return self._index("body", name, self.body_names)

    def marker_index(self, name: str) -> int:
        return self._index("marker", name, self.marker_names)

    def marker_indices(self, names: list[str]) -> list[int]:
        """Indices of ``names``; one KeyError listing every marker the model lacks."""
        missing = [n for n in names if n not in self.marker_names]
        if missing:
            raise KeyError(
                f"markers not in model {self.name!r}: {', '.join(missing)} "
                f"(the model has {', '.join(self.marker_names)})"
            )
        return [self.marker_names.index(n) for n in names]

    def _index(self, kind: str, name: str, names: list[str]) -> int:
        try:
            return names.index(name)
        except ValueError:
            raise _unknown(kind, name, names) from None

    # ---- coordinate properties ---------------------------------------------------------
    @property
    def ranges(self) -> np.ndarray:
        """(C, 2) lower and upper bounds (rad or m)."""
        return np.array([c.range for c in self.coordinates], dtype=np.float64)

    @property
    def defaults(self) -> np.ndarray:
        """(C,) default values (rad or m)."""
        return np.array([c.default for c in self.coordinates], dtype=np.float64)

    @property
    def locked(self) -> np.ndarray:
        """(C,) bool."""
        return np.array([c.locked for c in self.coordinates])

    @property
    def dependent(self) -> np.ndarray:
        """(C,) bool: coordinates set by a coupler from another coordinate."""
        mask = np.zeros(self.n_coordinates, dtype=bool)
        mask[[c.dependent for c in self.couplers]] = True
        return mask

    @property
    def rotational(self) -> np.ndarray:
        """(C,) bool: rotational coordinates (rad), the ones ``.mot`` files hold in degrees."""
        return np.array([c.motion == "rotational" for c in self.coordinates])

    @property
    def translational(self) -> np.ndarray:
        """(C,) bool: translational coordinates (m)."""
        return np.array([c.motion == "translational" for c in self.coordinates])

    def ones_scales(self) -> np.ndarray:
        """(B, 3) unit scale factors."""
        return np.ones((self.n_bodies, 3))

    def scales_from_dict(self, factors: dict[str, np.ndarray | list[float]]) -> np.ndarray:
        """(B, 3) scale factors from ``{body name: (3,)}``; bodies not named get 1."""
        out = self.ones_scales()
        for name, f in factors.items():
            out[self.body_index(name)] = np.asarray(f, dtype=np.float64)
        return out

    def coordinate_table(self, free: list[str] | tuple[str, ...] | None = None):
        """A pandas DataFrame, one row per coordinate: joint, motion type, range and default
        (deg for rotational, m otherwise), locked, coupled, and free (``free`` names; default:
        the unclamped rotational coordinates)."""
        import pandas as pd

        dependent = self.dependent
        rows = []
        for i, c in enumerate(self.coordinates):
            factor = 180.0 / np.pi if c.motion != "translational" else 1.0
            unit = "m" if c.motion == "translational" else "deg"
            unclamped_rotation = c.motion == "rotational" and not c.clamped
            is_free = (c.name in free) if free is not None else unclamped_rotation
            rows.append(
                {
                    "coordinate": c.name,
                    "joint": c.joint,
                    "type": c.motion,
                    "unit": unit,
                    "min": c.range[0] * factor,
                    "max": c.range[1] * factor,
                    "default": c.default * factor,
                    "free": is_free,
                    "locked": c.locked,
                    "coupled": bool(dependent[i]),
                }
            )
        return pd.DataFrame(rows)

    def pose(self, values: dict[str, float] | None = None, *, degrees: bool = True) -> np.ndarray:
        """(C,) the default pose with ``values`` set by coordinate name (rotational ones in
        degrees when ``degrees``) and coupled coordinates left for the FK to set."""
        q = self.defaults.copy()
        for name, value in (values or {}).items():
            i = self.coordinate_index(name)
            q[i] = (
                np.deg2rad(value)
                if degrees and self.coordinates[i].motion == "rotational"
                else value
            )
        return q
