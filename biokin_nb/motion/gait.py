"""Locomotion: walking, jogging and running gait cycles, and sideways stepping.

A gait pattern holds right-leg joint curves over one stride (phase 0 = right foot strike,
values in deg), periodic cubic splines through knots whose shape follows the gait
literature: walking after Winter (2009) / Perry (1992) sagittal curves, checked against
the Rajagopal (2016) walking trial in ../shared/validation (hip +27 deg at heel strike to
-16 deg at 51 %, knee loading flexion ~18 deg and swing peak ~66 deg, ankle dorsiflexion
~15 deg before and plantarflexion ~-15 deg after toe-off); jogging and running after
Novacheck (1998) (stance 38 % and 33 %, swing knee flexion ~88 and ~108 deg, flight
phases). The left leg runs half a stride behind. Arms swing against the ipsilateral leg;
the pelvis tilts, lists and rotates and the trunk counter-rotates. In mid-stance the ankle
keeps the foot flat; in turns the stance hip absorbs part of the heading change.

The clip goes out and back along the X axis: straight stretches joined by turns of about
180 deg nearly on the spot (short steps), chosen so that ``pelvis_rotation`` stays within
+/-180 deg and the path stays near its start (see :func:`_heading`). Forward progression
is not prescribed here: the ground contact step (:mod:`biokin_nb.motion.contact`) moves
the pelvis so that the stance foot does not slide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biokin_nb.motion.curves import cyclic, minimum_jerk, ramp
from biokin_nb.motion.draft import Draft
from biokin_nb.motion.standing import posture_noise
from biokin_nb.motion.style import ActionStyle

Knots = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class GaitPattern:
    """One stride of a gait, right leg (phase 0 = right foot strike).

    Attributes:
        stride_s: stride duration (s) at style speed 1.
        duty: stance fraction of the stride; below 0.5 the gait has flight phases.
        legs: coordinate stem (``hip_flexion``) -> (phases, deg) knots of the right leg.
        arm_flex, elbow: (mean, amplitude) deg of the arm swing.
        arm_add: shoulder adduction (deg, negative: arms held away from the body).
        pelvis_tilt, pelvis_list, pelvis_rotation: (mean, amplitude) deg; tilt oscillates
            twice a stride, list and rotation once.
        lumbar_extension: mean deg (negative leans forward).
        straight_m: (low, high) length (m) of the straight stretches before a turn.
        turn_s: duration (s) of a 180 deg turn at style speed 1.
        flat: (start, end) phases of the foot-flat part of the stance.
    """

    stride_s: float
    duty: float
    legs: dict[str, Knots]
    arm_flex: tuple[float, float]
    elbow: tuple[float, float]
    arm_add: float
    pelvis_tilt: tuple[float, float]
    pelvis_list: tuple[float, float]
    pelvis_rotation: tuple[float, float]
    lumbar_extension: float
    straight_m: tuple[float, float]
    turn_s: float
    flat: tuple[float, float]


WALK = GaitPattern(
    stride_s=1.08,
    duty=0.60,
    legs={
        "hip_flexion": (
            (0.0, 0.10, 0.20, 0.30, 0.40, 0.51, 0.57, 0.63, 0.71, 0.80, 0.90),
            (27.0, 24.0, 13.0, 0.0, -10.0, -16.0, -12.0, -1.0, 13.0, 24.0, 26.0),
        ),
        "knee_angle": (
            (0.0, 0.07, 0.15, 0.25, 0.38, 0.48, 0.53, 0.58, 0.63, 0.71, 0.78, 0.86, 0.94),
            (3.0, 12.0, 18.0, 12.0, 5.0, 9.0, 17.0, 34.0, 54.0, 66.0, 63.0, 40.0, 4.0),
        ),
        "ankle_angle": (
            (0.0, 0.05, 0.12, 0.25, 0.40, 0.48, 0.53, 0.58, 0.63, 0.68, 0.74, 0.82, 0.90),
            (1.0, -4.0, 1.0, 8.0, 13.0, 16.0, 12.0, 0.0, -15.0, -5.0, 5.0, 7.0, 5.0),
        ),
        "mtp_angle": (
            (0.0, 0.38, 0.50, 0.57, 0.62, 0.67, 0.75),
            (0.0, 0.0, -18.0, -28.0, -16.0, -3.0, 0.0),
        ),
        "hip_adduction": (
            (0.0, 0.12, 0.25, 0.40, 0.55, 0.68, 0.82),
            (2.0, 6.0, 5.0, 3.0, -2.0, -5.0, -1.0),
        ),
        "hip_rotation": ((0.0, 0.30, 0.60, 0.80), (-2.0, 2.0, 4.0, -3.0)),
        "subtalar_angle": ((0.0, 0.10, 0.40, 0.60, 0.85), (2.0, -3.0, 0.0, 4.0, 2.0)),
    },
    arm_flex=(2.0, 16.0),
    elbow=(18.0, 8.0),
    arm_add=-8.0,
    pelvis_tilt=(0.0, 1.5),
    pelvis_list=(0.0, 4.0),
    pelvis_rotation=(0.0, 4.0),
    lumbar_extension=-2.0,
    straight_m=(1.5, 3.0),
    turn_s=1.6,
    flat=(0.04, 0.47),
)

JOG = GaitPattern(
    stride_s=0.78,
    duty=0.38,
    legs={
        "hip_flexion": (
            (0.0, 0.12, 0.25, 0.38, 0.46, 0.58, 0.70, 0.82, 0.92),
            (32.0, 25.0, 12.0, -4.0, -7.0, 5.0, 24.0, 38.0, 37.0),
        ),
        "knee_angle": (
            (0.0, 0.13, 0.26, 0.35, 0.45, 0.55, 0.65, 0.73, 0.83, 0.93),
            (16.0, 36.0, 24.0, 20.0, 40.0, 68.0, 86.0, 86.0, 58.0, 22.0),
        ),
        "ankle_angle": (
            (0.0, 0.10, 0.22, 0.34, 0.42, 0.52, 0.68, 0.85),
            (3.0, 16.0, 13.0, -8.0, -20.0, -12.0, 4.0, 6.0),
        ),
        "mtp_angle": ((0.0, 0.26, 0.36, 0.44, 0.55), (0.0, -8.0, -25.0, -8.0, 0.0)),
        "hip_adduction": ((0.0, 0.15, 0.35, 0.55, 0.80), (3.0, 7.0, 3.0, -5.0, -2.0)),
        "hip_rotation": ((0.0, 0.30, 0.60, 0.80), (-2.0, 2.0, 4.0, -3.0)),
        "subtalar_angle": ((0.0, 0.10, 0.35, 0.60), (2.0, -4.0, 0.0, 3.0)),
    },
    arm_flex=(0.0, 25.0),
    elbow=(75.0, 12.0),
    arm_add=-10.0,
    pelvis_tilt=(-5.0, 2.5),
    pelvis_list=(0.0, 5.0),
    pelvis_rotation=(0.0, 6.0),
    lumbar_extension=-5.0,
    straight_m=(2.0, 3.0),
    turn_s=1.4,
    flat=(0.03, 0.26),
)

RUN = GaitPattern(
    stride_s=0.70,
    duty=0.33,
    legs={
        "hip_flexion": (
            (0.0, 0.12, 0.24, 0.34, 0.42, 0.55, 0.68, 0.80, 0.90),
            (36.0, 27.0, 11.0, -5.0, -10.0, 6.0, 32.0, 47.0, 44.0),
        ),
        "knee_angle": (
            (0.0, 0.12, 0.25, 0.36, 0.48, 0.60, 0.70, 0.80, 0.92),
            (20.0, 40.0, 26.0, 20.0, 55.0, 100.0, 108.0, 75.0, 26.0),
        ),
        "ankle_angle": (
            (0.0, 0.10, 0.20, 0.30, 0.38, 0.48, 0.65, 0.85),
            (4.0, 18.0, 14.0, -8.0, -22.0, -14.0, 4.0, 7.0),
        ),
        "mtp_angle": ((0.0, 0.22, 0.31, 0.40, 0.50), (0.0, -8.0, -28.0, -8.0, 0.0)),
        "hip_adduction": ((0.0, 0.14, 0.32, 0.52, 0.80), (4.0, 8.0, 3.0, -5.0, -2.0)),
        "hip_rotation": ((0.0, 0.30, 0.60, 0.80), (-3.0, 2.0, 5.0, -3.0)),
        "subtalar_angle": ((0.0, 0.10, 0.30, 0.60), (2.0, -5.0, 0.0, 3.0)),
    },
    arm_flex=(-5.0, 32.0),
    elbow=(85.0, 15.0),
    arm_add=-12.0,
    pelvis_tilt=(-7.0, 3.0),
    pelvis_list=(0.0, 5.0),
    pelvis_rotation=(0.0, 7.0),
    lumbar_extension=-8.0,
    straight_m=(2.0, 3.0),
    turn_s=1.4,
    flat=(0.03, 0.2),
)

PATTERNS = {"walking": WALK, "jogging": JOG, "running": RUN}
# Typical progression speed (m/s) at style speed 1, used only to time the turns.
NOMINAL_SPEED = {"walking": 1.25, "jogging": 2.3, "running": 3.0}


def gait(
    kind: str,
    t: np.ndarray,
    style: ActionStyle,
    rng: np.random.Generator,
    heading: float | None = None,
) -> Draft:
    """A draft of ``kind`` ("walking", "jogging", "running") over times ``t`` (s).

    ``heading``: start facing about this way (deg about Y; the nearest leg heading of
    :func:`_heading` is used); None: a random leg.
    """
    pattern = PATTERNS[kind]
    speed = NOMINAL_SPEED[kind] * style.speed
    heading, stride_scale = _heading(t, pattern, speed, style, rng, heading)
    cadence = style.speed / pattern.stride_s
    phase = rng.random() + cadence * (t - t[0])
    draft = Draft(t)
    for side, shift in (("r", 0.0), ("l", 0.5)):
        _leg(draft, pattern, phase + shift, side, style, stride_scale)
        _arm(draft, pattern, phase + shift, side, style)
    _pelvis_and_trunk(draft, pattern, phase, heading, style)
    for side, shift in (("r", 0.0), ("l", 0.5)):
        _flat_stance(draft, pattern, phase + shift, side)
        _pivot(draft, pattern, phase + shift, side)
    draft.add_all(posture_noise(t, style, rng, legs=0.3))
    draft.flight = _flight(phase, pattern.duty)
    return draft


def _leg(draft, pattern, phase, side, style, stride_scale) -> None:
    for stem, (phases, values) in pattern.legs.items():
        curve = cyclic(phases, values, phase)
        mean = float(np.mean(cyclic(phases, values, np.linspace(0, 1, 101)[:-1])))
        gain = style.amplitude * (stride_scale if stem == "hip_flexion" else 1.0)
        if stem == "knee_angle":
            gain = np.clip(style.amplitude, 0.9, 1.1)
        draft.add(f"{stem}_{side}", mean + gain * (curve - mean))
    draft.add(f"hip_adduction_{side}", -3.0 * (style.step_width - 1.0) / 0.25)


def _flat_stance(draft: Draft, pattern: GaitPattern, phase: np.ndarray, side: str) -> None:
    """Set the ankle so the foot is flat on the floor during mid-stance (after the
    loading response until heel rise): ``ankle = knee - hip_flexion - pelvis_tilt``."""
    lo, hi = pattern.flat
    p = np.mod(phase, 1.0)
    window = ramp(p, lo, hi, 0.3 * (hi - lo))
    flat = (
        draft.get(f"knee_angle_{side}")
        - draft.get(f"hip_flexion_{side}")
        - draft.get("pelvis_tilt")
    )
    ankle = draft.get(f"ankle_angle_{side}")
    draft.values[f"ankle_angle_{side}"] = ankle + window * (flat - ankle)


def _arm(draft, pattern, phase, side, style) -> None:
    swing = -np.cos(2 * np.pi * (phase - 0.05))
    draft.add(
        f"arm_flex_{side}", pattern.arm_flex[0] + style.arm_swing * pattern.arm_flex[1] * swing
    )
    draft.add(f"elbow_flex_{side}", pattern.elbow[0] + pattern.elbow[1] * swing)
    draft.add(f"arm_add_{side}", pattern.arm_add)
    draft.add(f"pro_sup_{side}", 80.0)


def _pelvis_and_trunk(draft, pattern, phase, heading, style) -> None:
    two_pi = 2 * np.pi
    rotation = pattern.pelvis_rotation[1] * style.amplitude * np.cos(two_pi * phase)
    listing = -pattern.pelvis_list[1] * np.cos(two_pi * (phase - 0.22))
    tilt_wave = -np.cos(4 * np.pi * phase)  # most anterior (negative) at each foot strike
    draft.add("pelvis_tilt", pattern.pelvis_tilt[0] + pattern.pelvis_tilt[1] * tilt_wave)
    draft.add("pelvis_list", listing)
    draft.add("pelvis_rotation", heading + rotation)
    draft.add("lumbar_rotation", -1.3 * rotation)
    draft.add("lumbar_bending", -0.5 * listing)
    draft.add("lumbar_extension", pattern.lumbar_extension - style.trunk_lean_deg)


def _pivot(draft: Draft, pattern: GaitPattern, phase: np.ndarray, side: str) -> None:
    """Turn with the hips: while a foot is on the floor its hip rotation takes up 60 % of
    the heading change since foot strike (at most 30 deg), so that the stance foot does
    not spin on the floor in the turns; the swing phase unwinds it (minimum jerk)."""
    heading = draft.get("pelvis_rotation")
    stride = np.floor(phase).astype(int)
    p = phase - stride
    comp = np.zeros(len(phase))
    for k in np.unique(stride):
        rows = np.flatnonzero(stride == k)
        first = rows[0] if p[rows[0]] < 0.05 else rows[0] - 1  # the strike frame
        change = heading[rows] - heading[max(first, 0)]
        stance = np.clip(change * 0.6, -30.0, 30.0)
        at_off = np.interp(pattern.duty, p[rows], stance)
        unwind = at_off * (1.0 - minimum_jerk((p[rows] - pattern.duty) / (1.0 - pattern.duty)))
        comp[rows] = np.where(p[rows] < pattern.duty, stance, unwind)
    sign = -1.0 if side == "r" else 1.0
    draft.add(f"hip_rotation_{side}", sign * comp)


def _flight(phase: np.ndarray, duty: float) -> np.ndarray:
    """(T,) bool: neither foot in stance (right stance: phase in [0, duty) mod 1)."""
    p = np.mod(phase, 1.0)
    right = p < duty
    left = np.mod(p + 0.5, 1.0) < duty
    return ~(right | left)


def _heading(
    t: np.ndarray,
    pattern: GaitPattern,
    speed: float,
    style: ActionStyle,
    rng: np.random.Generator,
    start: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(T,) heading (deg, about Y; 0 = +X) of an out-and-back path and (T,) the stride
    scale (1 on the straights, down to 0.1 in the turns: turning nearly on the spot).

    Straights of ``pattern.straight_m`` at ``speed`` m/s alternate with turns of about
    180 deg lasting ``pattern.turn_s / style.speed`` s. Outward legs head +/-``a`` and
    return legs +/-(180 - ``a``), ``a`` = the pelvis rotation sway + 2 deg, so that heading
    plus sway stays inside +/-180 deg. Each turn picks, of its two possible next headings,
    the one whose predicted sideways drift (a turn through +90 deg moves the path to -Z,
    through -90 deg to +Z; an oblique leg drifts by ``-sin(heading)`` per metre) keeps the
    path nearest to its start. ``start``: start on the leg heading nearest this one (deg;
    None: a random leg). The clip starts at a random point of the schedule.
    """
    elapsed = t - t[0]
    length = rng.uniform(*pattern.straight_m)
    straight, turn = length / speed, pattern.turn_s / style.speed
    margin = pattern.pelvis_rotation[1] * style.amplitude + 2.0
    legs = np.array([margin, -margin, 180.0 - margin, margin - 180.0])
    if start is None:
        current = float(rng.choice(legs))
    else:
        current = float(legs[np.argmin(np.abs(np.angle(np.exp(1j * np.deg2rad(legs - start)))))])
    begin = straight - rng.uniform(0, straight + turn)
    drift = 0.25 * speed * turn  # rough sideways shift of one turn (m)
    heading, scale, z = np.full(len(t), current), np.ones(len(t)), 0.0
    while begin < elapsed[-1]:
        target, z = _next_heading(current, z, margin, length, drift)
        heading += (target - current) * minimum_jerk((elapsed - begin) / turn)
        scale -= 0.9 * ramp(elapsed, begin, begin + turn, 0.4 * turn)
        current, begin = target, begin + straight + turn
    return heading, scale


def _next_heading(
    current: float, z: float, margin: float, length: float, drift: float, depth: int = 2
) -> tuple[float, float]:
    """The next leg's heading (deg) and the predicted sideways position (m) after it,
    looking ``depth`` turns ahead (a return leg can only turn back one way)."""
    if abs(current) < 90.0:
        options = (180.0 - margin, margin - 180.0)
    else:
        options = (margin, -margin)
    best = None
    for target in options:
        after = z - np.sign(current + target) * drift - np.sin(np.deg2rad(target)) * length
        score = after
        if depth > 1:
            score = _next_heading(target, after, margin, length, drift, depth - 1)[1]
        if best is None or abs(score) < best[2]:
            best = (target, after, abs(score))
    return best[0], best[1]


def sideways(t: np.ndarray, style: ActionStyle, rng: np.random.Generator) -> Draft:
    """Sideways stepping facing +X: 3 to 5 steps to one side, then back, and so on.

    One step cycle (1.0 s at speed 1): the leading leg lifts (hip and knee flexion bumps,
    foot kept level) and both hips abduct by ``a`` (8 to 12 deg) while the trailing foot
    pushes the pelvis over; double support; the trailing leg lifts and both hips adduct
    back to neutral, closing the feet; double support. Each cycle moves the pelvis about
    ``2 L sin a`` (about 0.3 m) sideways once the stance feet are pinned.
    """
    cycle = 1.0 / style.speed
    abduction = rng.uniform(8.0, 12.0) * style.amplitude
    draft = Draft(t)
    elapsed = t - t[0] + rng.uniform(0, cycle)
    index = np.floor(elapsed / cycle).astype(int)
    phase = elapsed / cycle - index
    run = int(rng.integers(3, 6))
    direction = np.where((index // run) % 2 == 0, 1.0, -1.0) * rng.choice([1.0, -1.0])
    lead_swing = _bump(phase, 0.0, 0.42)
    trail_swing = _bump(phase, 0.5, 0.92)
    spread = minimum_jerk(phase / 0.42) - minimum_jerk((phase - 0.5) / 0.42)
    for side, sign in (("r", 1.0), ("l", -1.0)):
        lifted = np.where(direction == sign, lead_swing, trail_swing)
        hip = 18.0 * lifted + 2.0
        knee = 32.0 * lifted + style.knee_bend_deg
        draft.add(f"hip_flexion_{side}", hip)
        draft.add(f"knee_angle_{side}", knee)
        draft.add(f"ankle_angle_{side}", knee - hip)
        draft.add(f"hip_adduction_{side}", -abduction * spread)
        draft.add(f"arm_add_{side}", -8.0 - 6.0 * spread)
        draft.add(f"elbow_flex_{side}", 20.0)
        draft.add(f"pro_sup_{side}", 80.0)
    lean = direction * 3.0 * (lead_swing - trail_swing)  # pelvis drops on the lifted side
    draft.add("pelvis_list", lean)
    draft.add("hip_adduction_r", -lean)  # the hips take the list up: legs keep their line
    draft.add("hip_adduction_l", lean)
    draft.add("lumbar_bending", -lean)
    draft.add("lumbar_extension", -style.trunk_lean_deg)
    draft.add_all(posture_noise(t, style, rng, legs=0.2))
    return draft


def _bump(phase: np.ndarray, start: float, end: float) -> np.ndarray:
    """(T,) 0 -> 1 -> 0 over ``[start, end]`` of the phase (a squared sine), 0 elsewhere."""
    s = np.clip((phase - start) / (end - start), 0.0, 1.0)
    return np.sin(np.pi * s) ** 2
