"""Whole-body actions: jumping jacks, vertical jumps, kicking and sitting down.

Keyframed like the gestures (right-handed; mirrored for left-handed subjects), with the
legs keyed too. Jumps pass through their keyframes without stopping (PCHIP) and mark
their flight phases, during which the ground-contact step lets the body follow a
ballistic arc; the flight time of a jump of height ``h`` is ``2 sqrt(2 h / g)``.
Standing phases keep the feet flat: ``ankle = knee - hip_flexion - pelvis_tilt``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from biokin_nb.motion.contact import GRAVITY
from biokin_nb.motion.draft import Draft, KeySequence, Pose, jitter, mirror_pose, pace
from biokin_nb.motion.gestures import repeat
from biokin_nb.motion.standing import on_feet, posture_noise, rest_pose
from biokin_nb.motion.style import ActionStyle


def _legs(hip: float, knee: float, ankle: float, tilt: float = 0.0, **extra: float) -> Pose:
    """Both legs alike: hip flexion, knee, ankle (deg); ``extra`` adds right-side values
    mirrored onto the left (e.g. ``mtp_angle_r``, ``hip_adduction_r``)."""
    right = {"hip_flexion_r": hip, "knee_angle_r": knee, "ankle_angle_r": ankle, **extra}
    return {**right, **mirror_pose(right), "pelvis_tilt": tilt}


def _flat(hip: float, knee: float, tilt: float = 0.0, **extra: float) -> Pose:
    """Both legs with the feet flat on the floor."""
    return _legs(hip, knee, knee - hip - tilt, tilt, **extra)


def _arms(flex: float, add: float, elbow: float, **extra: float) -> Pose:
    """Both arms alike: shoulder flexion, adduction, elbow (deg) and ``extra`` right-side
    values mirrored onto the left."""
    right = {"arm_flex_r": flex, "arm_add_r": add, "elbow_flex_r": elbow, **extra}
    return {**right, **mirror_pose(right)}


class _Jumps:
    """A keyframe sequence that also records flight intervals (s)."""

    def __init__(self, seq: KeySequence) -> None:
        self.seq = seq
        self.flights: list[tuple[float, float]] = []

    def fly(self, pose: Pose, duration: float) -> None:
        """Leave the floor now and land ``duration`` s later in the current pose updated
        with ``pose``."""
        self.flights.append((self.seq.now, self.seq.now + duration))
        self.seq.adjust(pose, duration)


def _jump_draft(
    t: np.ndarray,
    style: ActionStyle,
    rng: np.random.Generator,
    build: Callable[[_Jumps, ActionStyle, np.random.Generator], None],
) -> Draft:
    """Run ``build(jumps, style, rng)`` repeatedly over the clip; jumps pass through their
    keyframes; noise on the trunk and arms; the flight mask from the recorded flights."""
    jumps = _Jumps(KeySequence(rest_pose(style), start=float(t[0]) - rng.uniform(0.0, 1.0)))
    while jumps.seq.now < t[-1]:
        build(jumps, style, rng)
    draft = Draft(t)
    draft.add_all(jumps.seq.evaluate(t, through=True))
    draft.add("lumbar_extension", -style.trunk_lean_deg)
    draft.add_all(posture_noise(t, style, rng))
    for start, end in jumps.flights:
        draft.flight |= (t > start) & (t < end)
    return draft


def _jack(jumps: _Jumps, style: ActionStyle, rng: np.random.Generator) -> None:
    """One jumping-jack cycle: jump to feet apart and arms overhead, jump back. Each jump:
    absorb the landing, push off (the arms already half way), fly to the other stance."""
    seq, period = jumps.seq, 0.7 / style.speed
    height = 0.06 * style.amplitude
    flight = min(2.0 * np.sqrt(2.0 * height / GRAVITY), 0.5 * period)
    contact = period - flight
    arms = seq.current.get("arm_add_r", -10.0)
    for apart, up in ((-13.0 * style.amplitude, -165.0), (2.0, -10.0)):
        seq.adjust(_flat(14.0, 24.0), 0.35 * contact)
        half = _arms(5.0, 0.5 * (arms + up), 15.0, pro_sup_r=90.0)
        seq.adjust({**_legs(3.0, 5.0, -25.0, mtp_angle_r=-20.0), **half}, 0.65 * contact)
        land = _legs(10.0, 12.0, -12.0, hip_adduction_r=apart, mtp_angle_r=0.0)
        jumps.fly({**land, **_arms(5.0, up, 15.0, pro_sup_r=90.0)}, flight)
        arms = up


def jumping(t: np.ndarray, style: ActionStyle, rng: np.random.Generator) -> Draft:
    """Jumping jacks: repeated small jumps (about 6 cm, 0.7 s each at speed 1), landing
    alternately with the feet apart and arms overhead and with the feet together and arms
    down; the arms swing through push-off and flight."""
    return _jump_draft(t, style, rng, _jack)


def _vertical(jumps: _Jumps, style: ActionStyle, rng: np.random.Generator) -> None:
    """Stand, countermovement, push off, fly, land and absorb, stand up, pause."""
    seq = jumps.seq
    height = 0.25 * style.amplitude * rng.uniform(0.8, 1.2)
    flight = 2.0 * np.sqrt(2.0 * height / GRAVITY)
    seq.to({}, pace(rng, style, 1.0))
    crouch = {**_flat(58.0, 65.0, -20.0), **_arms(-45.0, -10.0, 20.0), "lumbar_extension": -10.0}
    seq.to(jitter(crouch, rng, 2.0), pace(rng, style, 0.55))
    takeoff = {**_legs(2.0, 3.0, -30.0, -3.0, mtp_angle_r=-30.0), **_arms(150.0, -15.0, 15.0)}
    seq.to(takeoff | {"lumbar_extension": 3.0}, 0.25 / style.speed)
    jumps.fly({**_legs(20.0, 25.0, -12.0, -5.0), **_arms(100.0, -15.0, 30.0)}, flight)
    absorb = {**_flat(50.0, 60.0, -15.0), **_arms(40.0, -10.0, 30.0), "lumbar_extension": -8.0}
    seq.to(absorb, 0.25)
    seq.to({}, pace(rng, style, 0.8)).hold(pace(rng, style, 1.0))


def vertical_jumping(t: np.ndarray, style: ActionStyle, rng: np.random.Generator) -> Draft:
    """Countermovement jumps on the spot (about 25 cm), arms swinging, with pauses."""
    return _jump_draft(t, style, rng, _vertical)


def _kick(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Wind up the right leg, kick forward (hip up to ~70 deg, knee extending), follow
    through, put the foot back, pause; the left leg bends a little, arms out for balance."""
    gain = style.amplitude * rng.uniform(0.85, 1.15)
    support = _flat(12.0, 15.0)  # both knees bend before the right foot leaves the floor
    balance = {"arm_flex_l": 25.0, "arm_add_l": -40.0, "elbow_flex_l": 25.0,
               "arm_flex_r": -25.0, "arm_add_r": -30.0, "elbow_flex_r": 25.0}  # fmt: skip
    windup = {"hip_flexion_r": -15.0, "knee_angle_r": 90.0, "ankle_angle_r": 0.0}
    strike = {"hip_flexion_r": 65.0 * gain, "knee_angle_r": 15.0, "ankle_angle_r": -30.0,
              "pelvis_tilt": 8.0 * gain, "lumbar_extension": 6.0 * gain}  # fmt: skip
    follow = {"hip_flexion_r": 78.0 * gain, "knee_angle_r": 22.0, "ankle_angle_r": -25.0,
              "pelvis_tilt": 12.0 * gain, "lumbar_extension": 8.0 * gain}  # fmt: skip
    seq.to({**support, **balance}, pace(rng, style, 0.6))
    lift = {"hip_flexion_r": 30.0, "knee_angle_r": 55.0, "ankle_angle_r": 10.0}
    seq.adjust(lift, pace(rng, style, 0.3))
    seq.adjust(windup, pace(rng, style, 0.35))
    through = {"hip_flexion_r": 25.0, "knee_angle_r": 75.0, "ankle_angle_r": -10.0}
    seq.adjust(through, 0.1 / style.speed).adjust(strike, 0.1 / style.speed)
    seq.adjust(follow, 0.2 / style.speed)
    hover = {"hip_flexion_r": 24.0, "knee_angle_r": 39.0, "ankle_angle_r": 15.0}
    hover |= {"pelvis_tilt": 0.0, "lumbar_extension": 0.0}
    seq.adjust(hover, pace(rng, style, 0.5)).adjust(support, pace(rng, style, 0.3))
    seq.to({}, pace(rng, style, 0.5)).hold(pace(rng, style, 1.5))


def kicking(t: np.ndarray, style: ActionStyle, rng: np.random.Generator) -> Draft:
    """Forward kicks with the right foot (the left with left-handed styles)."""
    return on_feet(t, style, rng, repeat(_kick, t, style, rng, lead=1.0, through=True))


def _sit(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Stand, sit down onto a seat about knee high (trunk leaning forward on the way),
    sit with the hands on the thighs, stand up (leaning forward to rise), stand."""
    seq.hold(pace(rng, style, 1.2))
    lean = {**_flat(50.0, 45.0, -25.0), "lumbar_extension": -15.0,
            **_arms(25.0, -10.0, 20.0)}  # fmt: skip
    seated = {**_flat(88.0, 90.0, 5.0), "lumbar_extension": -5.0,
              **_arms(35.0, -8.0, 55.0, pro_sup_r=120.0)}  # fmt: skip
    rise = {**_flat(100.0, 90.0, -30.0), "lumbar_extension": -20.0,
            **_arms(30.0, -10.0, 30.0)}  # fmt: skip
    seq.to(lean, pace(rng, style, 0.7)).to(jitter(seated, rng, 2.0), pace(rng, style, 0.9))
    seq.hold(pace(rng, style, 3.0))
    seq.to(rise, pace(rng, style, 0.8)).to({}, pace(rng, style, 0.9))


def sitting_down(t: np.ndarray, style: ActionStyle, rng: np.random.Generator) -> Draft:
    """Sit down and stand up again. The seat is not part of the motion (the renderer may
    add one): seated, the hips rest at about knee height above the floor."""
    return on_feet(t, style, rng, repeat(_sit, t, style, rng, lead=0.5))
