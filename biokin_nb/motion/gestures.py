"""Upper-body actions done standing, as keyframed poses (right-handed; the library mirrors
them for left-handed subjects).

Each action is one repetition written on a :class:`KeySequence` (reach a pose with a
minimum-jerk move, hold it, perhaps oscillate, return to rest, pause), repeated to fill
the clip, which starts at a random point of the first repetition. Durations are divided
by the style's speed and jittered by +/-20 %; poses are jittered by a few degrees; the
style's amplitude scales the oscillations and the reach of stretches, throws and points.
The legs sway (:func:`biokin_nb.motion.standing.sway`) and the trunk and arms carry slow
noise. Poses that put a hand on the body (head, ear, wrist, crossed arms, clapping) were
found by solving for the wrist position in the torso frame of the generic model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from biokin_nb.motion.draft import Draft, KeySequence, Pose, jitter, mirror_pose, pace, scaled
from biokin_nb.motion.standing import on_feet, rest_pose
from biokin_nb.motion.style import ActionStyle

Step = Callable[[KeySequence, ActionStyle, np.random.Generator], None]


def _both(pose: Pose) -> Pose:
    """A right-side pose and its mirror image on the left."""
    return {**pose, **mirror_pose(pose)}


SCRATCH = {
    "arm_flex_r": 149.0, "arm_add_r": -29.0, "arm_rot_r": 33.0, "elbow_flex_r": 112.0,
    "pro_sup_r": 60.0, "wrist_flex_r": 25.0, "lumbar_bending": -3.0,
}  # fmt: skip
PHONE = {
    "arm_flex_r": 111.0, "arm_add_r": -7.0, "arm_rot_r": 19.0, "elbow_flex_r": 144.0,
    "pro_sup_r": 80.0, "wrist_flex_r": -10.0, "lumbar_bending": 3.0,
}  # fmt: skip
FREE_HAND = {"arm_flex_l": 25.0, "arm_add_l": -12.0, "elbow_flex_l": 80.0, "pro_sup_l": 40.0}
WATCH = {
    "arm_flex_l": 20.0, "arm_add_l": 1.0, "arm_rot_l": 33.0, "elbow_flex_l": 115.0,
    "pro_sup_l": 160.0, "wrist_flex_l": -5.0, "lumbar_extension": -10.0,
}  # fmt: skip
PHOTO_TWO = _both(
    {"arm_flex_r": 81.0, "arm_add_r": -26.0, "arm_rot_r": 39.0, "elbow_flex_r": 114.0,
     "pro_sup_r": 90.0, "wrist_flex_r": -10.0}
)  # fmt: skip
PHOTO_ONE = {
    "arm_flex_r": 78.0, "arm_add_r": -8.0, "arm_rot_r": 39.0, "elbow_flex_r": 74.0,
    "pro_sup_r": 90.0, "wrist_flex_r": -15.0,
}  # fmt: skip
# Arms folded: the right forearm against the chest, the left one over it.
CROSS = {
    "arm_flex_r": 35.0, "arm_add_r": 13.0, "arm_rot_r": 59.0, "elbow_flex_r": 98.0,
    "pro_sup_r": 80.0, "arm_flex_l": 47.0, "arm_add_l": 15.0, "arm_rot_l": 51.0,
    "elbow_flex_l": 88.0, "pro_sup_l": 80.0,
}  # fmt: skip
CLAP_OPEN = _both(
    {"arm_flex_r": 33.0, "arm_add_r": -14.0, "arm_rot_r": 8.0, "elbow_flex_r": 109.0,
     "pro_sup_r": 90.0}
)  # fmt: skip
CLAP_SHUT = _both(
    {"arm_flex_r": 44.0, "arm_add_r": -2.0, "arm_rot_r": 28.0, "elbow_flex_r": 98.0,
     "pro_sup_r": 90.0}
)  # fmt: skip
WAVE = {
    "arm_flex_r": 102.0, "arm_add_r": -63.0, "arm_rot_r": 7.0, "elbow_flex_r": 92.0,
    "pro_sup_r": 20.0, "wrist_flex_r": -5.0,
}  # fmt: skip
HOLD_BALL = _both(
    {"arm_flex_r": 15.0, "arm_add_r": -7.0, "arm_rot_r": 26.0, "elbow_flex_r": 110.0,
     "pro_sup_r": 60.0}
)  # fmt: skip
COCK = {
    "arm_flex_r": 20.0, "arm_add_r": -90.0, "arm_rot_r": -70.0, "elbow_flex_r": 90.0,
    "pro_sup_r": 80.0, "arm_flex_l": 70.0, "arm_add_l": -20.0, "elbow_flex_l": 20.0,
    "pro_sup_l": 90.0, "lumbar_rotation": -25.0, "lumbar_extension": 5.0,
}  # fmt: skip
RELEASE = {
    "arm_flex_r": 100.0, "arm_add_r": -45.0, "arm_rot_r": 10.0, "elbow_flex_r": 25.0,
    "arm_flex_l": 20.0, "arm_add_l": -15.0, "elbow_flex_l": 60.0, "lumbar_rotation": 20.0,
    "lumbar_extension": -10.0,
}  # fmt: skip
FOLLOW = {
    "arm_flex_r": 60.0, "arm_add_r": 10.0, "arm_rot_r": 30.0, "elbow_flex_r": 35.0,
    "arm_flex_l": 0.0, "arm_add_l": -10.0, "elbow_flex_l": 40.0, "lumbar_rotation": 25.0,
    "lumbar_extension": -15.0,
}  # fmt: skip
CATCH = _both(
    {"arm_flex_r": 60.0, "arm_add_r": -8.0, "arm_rot_r": 10.0, "elbow_flex_r": 35.0,
     "pro_sup_r": 20.0}
)  # fmt: skip


def scratching_head(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Hand to the top of the head, scratch (wrist at ~3.5 Hz), hand down, pause."""
    seq.to(jitter(SCRATCH, rng), pace(rng, style, 0.8))
    amp, freq = 12.0 * style.amplitude, 3.5 * style.speed
    seq.wiggle(pace(rng, style, 2.2), wrist_flex_r=(amp, freq), elbow_flex_r=(4.0, freq))
    seq.to({}, pace(rng, style, 0.8)).hold(pace(rng, style, 1.8))


def phone_talking(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Phone to the ear, talk (the free hand gestures now and then), phone down, pause."""
    seq.to(jitter(PHONE, rng), pace(rng, style, 0.9))
    for _ in range(int(rng.integers(1, 4))):
        seq.hold(pace(rng, style, 1.5))
        if rng.random() < 0.6:
            seq.adjust(jitter(FREE_HAND, rng, 8.0), pace(rng, style, 0.6))
            seq.wiggle(pace(rng, style, 1.0), elbow_flex_l=(10.0 * style.amplitude, 1.5))
            seq.adjust({k: v for k, v in seq.rest.items() if k.endswith("_l")}, 0.6)
    seq.to({}, pace(rng, style, 0.9)).hold(pace(rng, style, 1.5))


def checking_watch(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Raise the left wrist in front of the chest, palm down, look at it, lower it."""
    seq.to(jitter(WATCH, rng), pace(rng, style, 0.8)).hold(pace(rng, style, 1.6))
    seq.to({}, pace(rng, style, 0.8)).hold(pace(rng, style, 2.2))


def taking_photos(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Camera (two hands) or phone (one hand) up to the eyes, frame and shoot a few times
    turning the trunk between shots, lower it, pause."""
    pose = PHOTO_TWO if rng.random() < 0.6 else PHOTO_ONE
    seq.to(jitter(pose, rng), pace(rng, style, 0.9))
    for _ in range(int(rng.integers(1, 4))):
        turn = rng.uniform(-15.0, 15.0) * style.amplitude
        seq.adjust({"lumbar_rotation": turn}, pace(rng, style, 0.7))
        seq.hold(pace(rng, style, 1.2))
    seq.to({}, pace(rng, style, 0.9)).hold(pace(rng, style, 1.5))


def crossing_arms(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Fold the arms across the chest (either forearm on top), hold, unfold, pause."""
    pose = CROSS if rng.random() < 0.5 else mirror_pose(CROSS)
    seq.to(jitter(pose, rng, 2.0), pace(rng, style, 1.1)).hold(pace(rng, style, 4.0))
    seq.to({}, pace(rng, style, 1.0)).hold(pace(rng, style, 1.8))


def hand_clapping(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Hands up in front of the chest, 4 to 10 claps at ~2.3 Hz, hands down, pause."""
    shut = jitter(CLAP_SHUT, rng, 1.0)
    opened = scaled(CLAP_OPEN, CLAP_SHUT, style.amplitude)
    seq.to(opened, pace(rng, style, 0.6))
    period = 1.0 / (2.3 * style.speed * rng.uniform(0.9, 1.1))
    for _ in range(int(rng.integers(4, 11))):
        seq.to(shut, 0.45 * period).to(opened, 0.55 * period)
    seq.to({}, pace(rng, style, 0.7)).hold(pace(rng, style, 1.5))


def hand_waving(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Raise the hand beside the head, wave (elbow and wrist at ~2.2 Hz), lower, pause."""
    seq.to(jitter(WAVE, rng, 4.0), pace(rng, style, 0.6))
    amp, freq = 18.0 * style.amplitude, 2.2 * style.speed
    seq.wiggle(pace(rng, style, 2.2), elbow_flex_r=(amp, freq), wrist_dev_r=(8.0, freq))
    seq.to({}, pace(rng, style, 0.7)).hold(pace(rng, style, 1.6))


def pointing(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Point with the straight arm at one or two targets (forward to the side, level to
    raised), the trunk turning a little towards them; lower the arm, pause."""
    for _ in range(int(rng.integers(1, 3))):
        side = rng.uniform(-60.0, 0.0) * style.amplitude
        target = {
            "arm_flex_r": rng.uniform(65.0, 110.0), "arm_add_r": side, "arm_rot_r": 0.0,
            "elbow_flex_r": 5.0, "pro_sup_r": 110.0, "wrist_flex_r": -5.0,
            "lumbar_rotation": 0.3 * side,
        }  # fmt: skip
        seq.to(target, pace(rng, style, 0.6)).hold(pace(rng, style, 1.3))
    seq.to({}, pace(rng, style, 0.7)).hold(pace(rng, style, 1.6))


def throwing_catching(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """Ball at the chest, overarm throw (cock, release, follow through, trunk rotating),
    wait, catch it with both hands and bring it to the chest."""
    gain = style.amplitude
    seq.to(jitter(HOLD_BALL, rng, 2.0), pace(rng, style, 0.6)).hold(pace(rng, style, 0.6))
    seq.to(scaled(jitter(COCK, rng), seq.rest, gain), pace(rng, style, 0.5))
    seq.to(scaled(RELEASE, seq.rest, gain), 0.2 / style.speed)
    seq.to(scaled(FOLLOW, seq.rest, gain), 0.25 / style.speed)
    seq.to({}, pace(rng, style, 0.7)).hold(pace(rng, style, 1.3))
    seq.to(jitter(CATCH, rng), pace(rng, style, 0.5)).hold(0.15)
    seq.to(HOLD_BALL, pace(rng, style, 0.4))


def _stretches(rng: np.random.Generator, gain: float) -> list[Pose]:
    """The stretch poses (deg), ``gain`` scaling their depth."""
    side = rng.choice([1.0, -1.0])
    overhead = _both(
        {"arm_flex_r": 172.0, "arm_add_r": -5.0, "elbow_flex_r": 5.0, "pro_sup_r": 90.0,
         "wrist_flex_r": -20.0}
    )  # fmt: skip
    bend = {"lumbar_bending": 22.0 * gain, "arm_flex_l": 165.0, "arm_add_l": -25.0,
            "elbow_flex_l": 25.0, "arm_add_r": 0.0}  # fmt: skip
    forward = {
        "pelvis_tilt": -40.0 * gain, "hip_flexion_r": 40.0 * gain,
        "hip_flexion_l": 40.0 * gain, "lumbar_extension": -30.0 * gain,
        "arm_flex_r": 70.0 * gain, "arm_flex_l": 70.0 * gain,
    }  # fmt: skip
    twist = {"lumbar_rotation": 35.0 * gain * side, **_both({"arm_add_r": -85.0,
             "elbow_flex_r": 15.0, "pro_sup_r": 150.0})}  # fmt: skip
    across = {"arm_flex_r": 90.0, "arm_add_r": 40.0, "elbow_flex_r": 5.0, "pro_sup_r": 90.0,
              "arm_flex_l": 75.0, "arm_add_l": 20.0, "arm_rot_l": 30.0,
              "elbow_flex_l": 100.0}  # fmt: skip
    return [overhead | {"lumbar_extension": 8.0}, bend, mirror_pose(bend), forward, twist, across]


def stretching(seq: KeySequence, style: ActionStyle, rng: np.random.Generator) -> None:
    """One stretch drawn from: overhead reach, side bend either way, forward bend, trunk
    twist, cross-body shoulder stretch; move in slowly, hold, release, pause."""
    poses = _stretches(rng, style.amplitude)
    pose = poses[int(rng.integers(len(poses)))]
    seq.to(jitter(pose, rng, 2.0), pace(rng, style, 1.3)).hold(pace(rng, style, 2.5))
    seq.to({}, pace(rng, style, 1.1)).hold(pace(rng, style, 0.8))


GESTURES: dict[str, Step] = {
    "scratching_head": scratching_head,
    "throwing_catching": throwing_catching,
    "hand_clapping": hand_clapping,
    "checking_watch": checking_watch,
    "hand_waving": hand_waving,
    "crossing_arms": crossing_arms,
    "stretching": stretching,
    "phone_talking": phone_talking,
    "taking_photos": taking_photos,
    "pointing": pointing,
}


def repeat(
    step: Step,
    t: np.ndarray,
    style: ActionStyle,
    rng: np.random.Generator,
    lead: float = 1.5,
    through: bool = False,
) -> dict[str, np.ndarray]:
    """name -> (T,) deg: ``step`` repeated from rest until the clip ends; the sequence starts
    up to ``lead`` s before the clip so clips start at different points; ``through``: pass
    through keyframes without stopping (see :meth:`KeySequence.evaluate`)."""
    seq = KeySequence(rest_pose(style), start=float(t[0]) - rng.uniform(0.0, lead))
    while seq.now < t[-1]:
        step(seq, style, rng)
    return seq.evaluate(t, through=through)


def gesture(name: str, t: np.ndarray, style: ActionStyle, rng: np.random.Generator) -> Draft:
    """A draft of the standing upper-body action ``name`` (a key of ``GESTURES``)."""
    return on_feet(t, style, rng, repeat(GESTURES[name], t, style, rng))
