"""Ground contact: keep the feet on the floor (y = 0) and stop stance feet from sliding.

Each foot is represented by four sole points fixed in its bodies, found from the generic
model's foot markers projected straight down onto the floor in the default pose (where
the feet stand flat on y = 0): heel (``RHEE``, calcaneus), fifth and second metatarsal
heads (``R5MH``, ``RTOE``, calcaneus) and hallux tip (``RHLX``, toes); likewise on the left.
They scale with their bodies' scale factors like markers.

:func:`ground_contact` only moves the pelvis translation (``pelvis_tx/ty/tz``, ground
axes), which translates every body, so one forward-kinematics pass suffices:

- vertical: outside flight phases the lowest sole point is put on the floor; during a
  flight phase the pelvis follows a ballistic parabola (gravity 9.81 m/s^2) between the
  take-off and landing heights, and never lets a foot below the floor;
- horizontal: between consecutive frames, the pelvis moves so that the contact point of the
  lower foot (a soft-min weighting of its sole points by height) keeps its ground
  position; inside flight phases the horizontal velocity is interpolated linearly.

:func:`contact_metrics` measures the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from biokin_nb.osim.coordinates import Motion
from biokin_nb.osim.fk import forward_kinematics
from biokin_nb.osim.model import KinematicModel

GRAVITY = 9.81
SOLE_MARKERS = (("RHEE", "R5MH", "RTOE", "RHLX"), ("LHEE", "L5MH", "LTOE", "LHLX"))
PELVIS_TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")


@dataclass(frozen=True)
class SolePoints:
    """Sole points of both feet: ``local[f, k]`` (3,) m in the frame of body ``bodies[f][k]``
    at unit scale; foot 0 is the right, 1 the left; ``names[f][k]`` the source markers."""

    names: tuple[tuple[str, ...], ...]
    bodies: tuple[tuple[int, ...], ...]
    local: np.ndarray


def sole_points(
    model: KinematicModel, markers: tuple[tuple[str, ...], ...] = SOLE_MARKERS
) -> SolePoints:
    """The sole points of ``model``: its foot markers dropped to the floor at the default pose.

    Raises:
        KeyError: the model lacks one of ``markers`` (it names the missing ones).
    """
    idx = [model.marker_indices(list(foot)) for foot in markers]
    fk = forward_kinematics(model, torch.as_tensor(model.defaults))
    bodies, local = [], np.zeros((2, len(markers[0]), 3))
    for f, foot in enumerate(idx):
        row = []
        for k, i in enumerate(foot):
            marker = model.markers[i]
            rot = fk.rotations[marker.body].numpy()
            height = fk.markers[i, 1].item()
            local[f, k] = marker.origin_by_scale.sum(axis=1) - rot.T @ np.array([0, height, 0])
            row.append(marker.body)
        bodies.append(tuple(row))
    return SolePoints(tuple(tuple(f) for f in markers), tuple(bodies), local)


def sole_positions(
    model: KinematicModel,
    q: np.ndarray,
    scales: np.ndarray | None = None,
    points: SolePoints | None = None,
) -> np.ndarray:
    """(T, 2, K, 3) ground positions (m) of the sole points at coordinates ``q`` (T, C).

    Args:
        scales: (B, 3) body scale factors of the subject (None: unscaled).
    """
    points = points or sole_points(model)
    scales = model.ones_scales() if scales is None else np.asarray(scales, dtype=np.float64)
    fk = forward_kinematics(model, torch.as_tensor(q, dtype=torch.float64), torch.as_tensor(scales))
    rot, pos = fk.rotations.numpy(), fk.positions.numpy()
    out = np.zeros((len(q), *points.local.shape))
    for f, bodies in enumerate(points.bodies):
        for k, b in enumerate(bodies):
            local = points.local[f, k] * scales[b]
            out[:, f, k] = pos[:, b] + rot[:, b] @ local
    return out


def ground_contact(
    model: KinematicModel,
    motion: Motion,
    *,
    flight: np.ndarray | None = None,
    scales: np.ndarray | None = None,
    pin: bool = True,
    recentre: bool = True,
    softness: float = 0.004,
) -> Motion:
    """A copy of ``motion`` whose pelvis translation puts the feet on the floor.

    Args:
        model: the model the motion drives (needs the sole markers, see :func:`sole_points`).
        motion: (T, C) coordinates; its pelvis translation is replaced.
        flight: (T,) bool frames allowed to leave the floor (jump flights); None: none.
        scales: (B, 3) the subject's body scale factors (None: unscaled).
        pin: move ``pelvis_tx`` / ``pelvis_tz`` so the stance foot does not slide (else keep
            the motion's horizontal translation).
        recentre: with ``pin``, shift the horizontal path so that the range of the pelvis
            positions is centred on the origin.
        softness: height scale (m) of the soft-min weighting of a foot's sole points.

    Raises:
        ValueError: the motion's coordinates are not the model's (in order), or ``flight``
            does not have one value per frame.
    """
    names = model.coordinate_names
    if motion.coordinate_names != names:
        raise ValueError("the motion's coordinates are not the model's, in the model's order")
    it = [names.index(n) for n in PELVIS_TRANSLATIONS]
    q = motion.q.copy()
    flight = np.zeros(len(q), dtype=bool) if flight is None else np.asarray(flight, dtype=bool)
    if flight.shape != (len(q),):
        raise ValueError(f"flight must have shape ({len(q)},); got {flight.shape}")
    origin = q.copy()
    origin[:, it] = 0.0
    sole = sole_positions(model, origin, scales)
    height, airborne = _vertical(sole, flight, motion.time)
    q[:, it[1]] = height
    if pin:
        shift = _horizontal(sole, airborne, softness)
        q[:, it[0]], q[:, it[2]] = shift[:, 0], shift[:, 1]
    if recentre and pin:
        for i in (it[0], it[2]):
            q[:, i] -= 0.5 * (q[:, i].min() + q[:, i].max())
    return Motion(motion.time.copy(), q, list(motion.coordinate_names))


def _vertical(
    sole: np.ndarray, flight: np.ndarray, time: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(T,) pelvis heights (lowest sole point on the floor, ballistic in flight) and (T,)
    bool the frames actually off the floor (more than 1 mm up)."""
    floor = -sole[..., 1].reshape(len(sole), -1).min(axis=1)
    height = floor.copy()
    for start, end in _runs(flight):
        if start == 0 or end == len(flight):
            continue  # an unfinished flight at a clip edge stays on the floor
        t0, t1 = time[start - 1], time[end]
        s = (time[start:end] - t0) / (t1 - t0)
        line = floor[start - 1] + s * (floor[end] - floor[start - 1])
        arc = 0.5 * GRAVITY * (time[start:end] - t0) * (t1 - time[start:end])
        height[start:end] = np.maximum(line + arc, floor[start:end])
    return height, height > floor + 1e-3


def _horizontal(sole: np.ndarray, flight: np.ndarray, softness: float) -> np.ndarray:
    """(T, 2) pelvis (x, z) that keeps the lower foot's contact point still."""
    n = len(sole)
    step = np.zeros((max(n - 1, 0), 2))
    for t in range(n - 1):
        if flight[t] and flight[t + 1]:
            step[t] = np.nan  # in the air: filled in below
            continue
        ref = t + 1 if flight[t] else t  # the frame of the pair that touches the floor
        heights = sole[ref, :, :, 1]
        foot = int(np.argmin(heights.min(axis=1)))
        w = np.exp(-(heights[foot] - heights[foot].min()) / softness)
        w /= w.sum()
        moved = sole[t + 1, foot, :, :] - sole[t, foot, :, :]
        step[t] = -(w @ moved)[[0, 2]]
    step = _fill_gaps(step)
    return np.vstack([np.zeros((1, 2)), np.cumsum(step, axis=0)])[:n]


def _fill_gaps(step: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN rows (constant at the edges; zeros if all NaN)."""
    good = ~np.isnan(step[:, 0])
    if good.all() or not good.any():
        return np.nan_to_num(step)
    idx = np.arange(len(step))
    return np.stack([np.interp(idx, idx[good], step[good, j]) for j in range(2)], axis=1)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a (T,) bool mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


@dataclass
class ContactReport:
    """Per-frame ground contact of a motion (T frames at ``rate`` Hz).

    Attributes:
        lowest: (T,) height (m) of the lowest sole point of either foot.
        foot: (T,) 0 (right) or 1 (left): the foot owning that point.
        stance: (T,) bool: the lowest foot stands on the floor: its lowest point is within
            ``near_floor`` m of y = 0 and moves vertically slower than ``max_lift`` m/s
            (which tells a foot in flight just above the floor from one standing on it).
        slide: (T,) horizontal speed (m/s) of the stance foot's lowest sole point, that
            same point measured from frame t to t + 1 (NaN outside stance and at the end).
        other_slide: (T,) the same for the other foot where it also touches the floor
            (within ``touching`` m: double support), NaN elsewhere.
        rate: Hz.
    """

    lowest: np.ndarray
    foot: np.ndarray
    stance: np.ndarray
    slide: np.ndarray
    other_slide: np.ndarray
    rate: float

    @property
    def min_height(self) -> float:
        """Lowest sole point over the clip (m); negative means the floor was pierced."""
        return float(self.lowest.min())

    @property
    def max_stance_height(self) -> float:
        """Largest height of the stance foot above the floor during stance (m)."""
        return float(np.abs(self.lowest[self.stance]).max()) if self.stance.any() else 0.0

    def slide_quantile(self, q: float = 1.0, *, other: bool = False) -> float:
        """Quantile ``q`` of the sliding speed (m/s) over stance frames (``other``: of the
        other foot over double-support frames); 0 when there are none."""
        values = self.other_slide if other else self.slide
        values = values[np.isfinite(values)]
        return float(np.quantile(values, q)) if len(values) else 0.0


def contact_metrics(
    model: KinematicModel,
    motion: Motion,
    scales: np.ndarray | None = None,
    *,
    near_floor: float = 0.01,
    max_lift: float = 0.1,
    touching: float = 0.003,
) -> ContactReport:
    """Measure how ``motion`` meets the floor (see :class:`ContactReport`).

    Args:
        scales: (B, 3) the subject's body scale factors (None: unscaled).
        near_floor: stance height tolerance (m).
        max_lift: largest vertical speed (m/s) of a stance foot's lowest point.
        touching: height (m) under which the other foot counts as on the floor too.
    """
    sole = sole_positions(model, motion.q, scales)
    heights = sole[..., 1]  # (T, 2, K)
    per_foot = heights.min(axis=2)
    foot = per_foot.argmin(axis=1)
    lowest = per_foot.min(axis=1)
    rate = motion.rate or 60.0
    lift = np.abs(_point_velocity(sole, heights, foot, rate)[:, 1])
    stance = (lowest < near_floor) & (lift < max_lift)
    slide = np.where(stance, _horizontal_speed(sole, heights, foot, rate), np.nan)
    other = 1 - foot
    double = per_foot[np.arange(len(foot)), other] < touching
    other_slide = np.where(double, _horizontal_speed(sole, heights, other, rate), np.nan)
    return ContactReport(lowest, foot, stance, slide, other_slide, rate)


def _point_velocity(sole, heights, foot, rate) -> np.ndarray:
    """(T, 3) velocity (m/s) of each frame's lowest sole point of ``foot`` (T,), the same
    point followed from frame t to t + 1 (NaN on the last frame)."""
    n = len(sole)
    out = np.full((n, 3), np.nan)
    t = np.arange(n - 1)
    k = heights[t, foot[t]].argmin(axis=1)
    out[t] = (sole[t + 1, foot[t], k] - sole[t, foot[t], k]) * rate
    return out


def _horizontal_speed(sole, heights, foot, rate) -> np.ndarray:
    """(T,) horizontal speed (m/s) of each frame's lowest sole point of ``foot``."""
    v = _point_velocity(sole, heights, foot, rate)
    return np.hypot(v[:, 0], v[:, 2])
