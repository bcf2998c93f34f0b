"""The procedural action library: ``make_action(model, name, duration_s)`` -> ``Motion``.

Actions follow the ODAH list of Lin et al. (2024) (the BMLmovi actions): locomotion
(walking, jogging, running, sideways stepping), jumps (jumping jacks, vertical jumps),
kicking, sitting down, upper-body gestures done standing, and freestyle (a random sequence
of the others, cross-faded). Each is generated at ``fps`` (60 by default) for the generic
model's coordinates (Rajagopal 2016 names), clipped to the model's ranges of motion, and
put on the floor by :func:`biokin_nb.motion.contact.ground_contact` (feet on y = 0, stance
feet not sliding, ballistic flights). Per-subject variation comes from
:class:`~biokin_nb.motion.style.ActionStyle`; per-clip variation from the random generator
(timing, poses, targets, noise, start point).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from functools import partial

import numpy as np

from biokin_nb.motion import gait, gestures, whole_body
from biokin_nb.motion.contact import ground_contact
from biokin_nb.motion.curves import minimum_jerk
from biokin_nb.motion.draft import Draft, mirror, to_coordinates
from biokin_nb.motion.style import ActionStyle, random_style
from biokin_nb.osim.coordinates import Motion
from biokin_nb.osim.model import KinematicModel

Generator = Callable[[np.ndarray, ActionStyle, np.random.Generator], Draft]

ACTIONS: tuple[str, ...] = (
    "walking",
    "jogging",
    "running",
    "jumping",
    "sideways_stepping",
    "scratching_head",
    "throwing_catching",
    "hand_clapping",
    "checking_watch",
    "sitting_down",
    "hand_waving",
    "crossing_arms",
    "stretching",
    "kicking",
    "phone_talking",
    "taking_photos",
    "pointing",
    "vertical_jumping",
    "freestyle",
)
LOCOMOTION = ("walking", "jogging", "running")

GENERATORS: dict[str, Generator] = {
    **{name: partial(gait.gait, name) for name in LOCOMOTION},
    "sideways_stepping": gait.sideways,
    "jumping": whole_body.jumping,
    "vertical_jumping": whole_body.vertical_jumping,
    "kicking": whole_body.kicking,
    "sitting_down": whole_body.sitting_down,
    **{name: partial(gestures.gesture, name) for name in gestures.GESTURES},
}


def action_name(name: str) -> str:
    """The library name of ``name`` ("Hand waving", "hand-waving" -> "hand_waving").

    Raises:
        ValueError: not an action; the message lists the valid names.
    """
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in ACTIONS:
        raise ValueError(f"unknown action {name!r}; valid actions: {', '.join(ACTIONS)}")
    return key


def make_action(
    model: KinematicModel,
    name: str,
    duration_s: float,
    *,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    style: ActionStyle | None = None,
    fps: float = 60.0,
    scales: np.ndarray | None = None,
) -> Motion:
    """A clip of action ``name`` for ``model``.

    Args:
        model: a model with the generic model's coordinates and foot markers
            (``data/generic_model.osim`` or a scaled copy).
        name: one of ``ACTIONS`` (case, spaces and hyphens are forgiven).
        duration_s: clip length (s); the clip has ``round(duration_s * fps)`` frames
            (at least 1) at times ``arange(T) / fps``.
        seed, rng: randomness of the clip (give one; neither: a fresh random clip).
        style: the subject's manner (None: drawn from the random generator with
            :func:`~biokin_nb.motion.style.random_style`). Pass the same style to every
            clip of one subject.
        fps: frame rate (Hz).
        scales: (B, 3) the subject's body scale factors, for the ground contact.

    Returns:
        Motion with ``time`` (T,) s and ``q`` (T, C) rad / m in the model's coordinate
        order, inside the model's ranges of motion.

    Raises:
        ValueError: unknown action (lists the valid ones), ``duration_s`` or ``fps`` not
            positive, or both ``seed`` and ``rng`` given.
        KeyError: the model lacks coordinates or foot markers the library needs.
    """
    key = action_name(name)
    _check_positive("duration_s", duration_s)
    _check_positive("fps", fps)
    if seed is not None and rng is not None:
        raise ValueError("give either seed or rng, not both")
    rng = rng if rng is not None else np.random.default_rng(seed)
    style = style if style is not None else random_style(rng)
    t = np.arange(max(1, int(round(duration_s * fps)))) / fps
    draft = freestyle(t, style, rng) if key == "freestyle" else GENERATORS[key](t, style, rng)
    if style.handedness == "left":
        draft = mirror(draft)
    q = to_coordinates(model, draft)
    motion = Motion(t, q, list(model.coordinate_names))
    return ground_contact(model, motion, flight=draft.flight, scales=scales)


def _check_positive(label: str, value: float) -> None:
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (number and np.isfinite(value) and value > 0):
        raise ValueError(f"{label} must be a positive number; got {value!r}")


def freestyle(
    t: np.ndarray, style: ActionStyle, rng: np.random.Generator, fade_s: float = 0.6
) -> Draft:
    """A random sequence of the other actions, 2.5 to 5 s each, cross-faded over ``fade_s``.

    Each segment continues the heading the previous one ended with (the body keeps
    facing the same way), and flights are dropped inside the cross-fades.
    """
    bounds = _segments(float(t[-1] - t[0]) + (t[1] - t[0] if len(t) > 1 else 0.0), rng)
    names = rng.choice([a for a in ACTIONS if a != "freestyle"], size=len(bounds) - 1)
    draft, heading = Draft(t), 0.0
    for (start, end), name in zip(zip(bounds[:-1], bounds[1:], strict=True), names, strict=True):
        start, end = t[0] + start, t[0] + end
        mask = (t >= start - fade_s / 2) & (t < end + fade_s / 2)
        part = _segment(str(name), t[mask], style, rng, heading)
        weight = _window(t[mask], start, end, fade_s, first=start <= t[0], last=end >= t[-1])
        for key, values in part.values.items():
            draft.values.setdefault(key, np.zeros(len(t)))[mask] += weight * values
        draft.flight[mask] |= part.flight & (weight >= 1.0)
        heading = float(part.get("pelvis_rotation")[-1])
    return draft


def _segments(total: float, rng: np.random.Generator) -> np.ndarray:
    """Segment boundaries (s) from 0 to ``total``: pieces of 2.5 to 5 s."""
    edges = [0.0]
    while total - edges[-1] > 5.0:
        edges.append(edges[-1] + rng.uniform(2.5, 5.0))
    if total - edges[-1] < 2.5 and len(edges) > 1:
        edges.pop()
    return np.array([*edges, total])


def _segment(
    name: str, t: np.ndarray, style: ActionStyle, rng: np.random.Generator, heading: float
) -> Draft:
    """One freestyle segment, turned to start at ``heading`` (deg)."""
    if name in LOCOMOTION:
        return gait.gait(name, t, style, rng, heading=heading)
    part = GENERATORS[name](t, style, rng)
    part.add("pelvis_rotation", heading)
    return part


def _window(
    t: np.ndarray, start: float, end: float, fade: float, *, first: bool, last: bool
) -> np.ndarray:
    """(T,) cross-fade weight: rises over ``start +/- fade/2``, falls over ``end +/- fade/2``
    (minimum jerk; no rise for the first segment, no fall for the last). Adjacent windows
    sum to 1."""
    rise = np.ones(len(t)) if first else minimum_jerk((t - start + fade / 2) / fade)
    fall = np.ones(len(t)) if last else 1.0 - minimum_jerk((t - end + fade / 2) / fade)
    return rise * fall
