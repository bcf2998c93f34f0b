"""Quiet standing: the rest pose, postural sway of the legs and noise on trunk and arms.

Sway is written as three slow postural variables so that both feet stay where they are
to first order: ``kappa`` (symmetric knee bend, deg), ``alpha`` (forward lean of both legs
about the ankles, deg) and ``beta`` (sideways shift of the pelvis over the feet, deg of
hip adduction). A leg keeps its foot flat when ``ankle = knee - hip_flexion - pelvis_tilt``
(all about the same medio-lateral axis); the sway terms respect it.
"""

from __future__ import annotations

import numpy as np

from biokin_nb.motion.curves import smooth_noise
from biokin_nb.motion.draft import Draft, Pose
from biokin_nb.motion.style import ActionStyle

SIDES = ("r", "l")
ARM = ("arm_flex", "arm_add", "arm_rot", "elbow_flex", "pro_sup", "wrist_flex", "wrist_dev")
TRUNK = ("lumbar_extension", "lumbar_bending", "lumbar_rotation")


def rest_pose(style: ActionStyle) -> Pose:
    """Relaxed standing (deg): arms hanging slightly away from the sides, elbows a little
    bent, palms facing the thighs (forearm half pronated)."""
    pose: Pose = {}
    for s in SIDES:
        pose |= {
            f"arm_flex_{s}": 3.0,
            f"arm_add_{s}": -7.0,
            f"elbow_flex_{s}": 12.0,
            f"pro_sup_{s}": 80.0,
            f"wrist_flex_{s}": 5.0,
        }
    return pose


def flat_foot_legs(
    hip_flexion: float | np.ndarray,
    knee: float | np.ndarray,
    pelvis_tilt: float | np.ndarray = 0.0,
    side: str = "r",
) -> dict[str, np.ndarray | float]:
    """Hip, knee and ankle (deg) of one leg with the foot flat on the floor."""
    return {
        f"hip_flexion_{side}": hip_flexion,
        f"knee_angle_{side}": knee,
        f"ankle_angle_{side}": knee - hip_flexion - pelvis_tilt,
    }


def sway(t: np.ndarray, style: ActionStyle, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Postural sway of quiet standing as leg angle tracks (deg), feet kept in place.

    Standard deviations: knee bend 1.5 deg about ``style.knee_bend_deg``, forward lean
    0.7 deg, sideways shift 1 deg of hip adduction (about 1.5 cm at the pelvis); all
    band-limited below 0.3 Hz (weight shifts of a person standing and gesturing).
    """
    rate = 1.0 / np.median(np.diff(t)) if len(t) > 1 else 60.0
    kappa, alpha, beta = smooth_noise(rng, len(t), 3, rate, cutoff_hz=0.3).T
    kappa = np.clip(style.knee_bend_deg + 1.5 * kappa, 0.0, None)
    alpha = 0.7 * alpha
    out: dict[str, np.ndarray] = {}
    for s, sign in (("r", 1.0), ("l", -1.0)):
        out[f"hip_flexion_{s}"] = kappa / 2 - alpha
        out[f"knee_angle_{s}"] = kappa
        out[f"ankle_angle_{s}"] = kappa / 2 + alpha
        out[f"hip_adduction_{s}"] = sign * beta
    return out


def posture_noise(
    t: np.ndarray, style: ActionStyle, rng: np.random.Generator, legs: float = 0.0
) -> dict[str, np.ndarray]:
    """Slow noise (deg, std ``style.noise_deg``) on the trunk and both arms, and
    ``legs`` times that on the hip, knee and ankle angles, band-limited below 0.6 Hz."""
    rate = 1.0 / np.median(np.diff(t)) if len(t) > 1 else 60.0
    names = [f"{a}_{s}" for s in SIDES for a in ARM] + list(TRUNK)
    if legs > 0:
        names += [f"{a}_{s}" for s in SIDES for a in ("hip_flexion", "knee_angle", "ankle_angle")]
    noise = smooth_noise(rng, len(t), len(names), rate, cutoff_hz=0.6) * style.noise_deg
    out = {}
    for i, name in enumerate(names):
        scale = legs if name.startswith(("hip_", "knee_", "ankle_")) else 1.0
        scale *= 0.5 if name.startswith(("wrist", "pro_sup", "lumbar")) else 1.0
        out[name] = scale * noise[:, i]
    return out


def on_feet(
    t: np.ndarray,
    style: ActionStyle,
    rng: np.random.Generator,
    tracks: dict[str, np.ndarray] | None = None,
) -> Draft:
    """A draft of ``tracks`` (absolute deg, e.g. from a :class:`KeySequence` started at
    :func:`rest_pose`) done standing: plus postural sway of the legs, the style's trunk lean
    and posture noise on trunk and arms. Without ``tracks``: quiet standing."""
    draft = Draft(t)
    if tracks is None:
        tracks = {name: np.full(len(t), value) for name, value in rest_pose(style).items()}
    draft.add_all(tracks)
    draft.add_all(sway(t, style, rng))
    draft.add("lumbar_extension", -style.trunk_lean_deg)
    draft.add_all(posture_noise(t, style, rng))
    return draft
