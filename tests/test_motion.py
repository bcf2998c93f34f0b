"""The motion layer: procedural actions, ground contact, .mot trials and AMASS files.

Ground-contact thresholds (60 fps): the lowest sole point never below -5 mm; actions
without flights always have a foot on the floor (lowest point under 2 mm). The stance
foot (the lowest foot, within 1 cm of the floor and not lifting faster than 0.1 m/s)
slides, measured on its lowest sole point: for actions on the spot at most 0.05 m/s at the
95th percentile of a clip and 0.1 m/s on any frame; for locomotion (and freestyle) at most
0.2 m/s at the 95th percentile and 0.75 m/s on any frame (1.25 cm; single frames where the
contact rolls from one sole point to the next while the foot pivots in a turn).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from biokin_nb.motion import (
    ACTIONS,
    ActionStyle,
    action_name,
    contact_metrics,
    ground_contact,
    make_action,
    random_style,
    sole_positions,
)
from biokin_nb.motion.actions import GENERATORS
from biokin_nb.motion.contact import GRAVITY
from biokin_nb.motion.sources import (
    AmassSequence,
    amass_to_motion,
    motion_from_mot,
    read_amass,
    resample,
)
from biokin_nb.osim import load_model
from biokin_nb.osim.coordinates import Motion
from biokin_nb.osim.generic import generic_model_path
from biokin_nb.osim.io import Table, write_table

FPS = 60.0
DURATION = 6.0
SLIDE = {"on_the_spot": (0.05, 0.1), "moving": (0.2, 0.75)}  # m/s: 95th percentile, max
FLYING = {"jumping", "vertical_jumping", "jogging", "running", "freestyle"}
MOVING = {"walking", "jogging", "running", "sideways_stepping", "freestyle"}
ODAH = (
    "walking jogging running jumping sideways_stepping scratching_head throwing_catching "
    "hand_clapping checking_watch sitting_down hand_waving crossing_arms stretching kicking "
    "phone_talking taking_photos pointing vertical_jumping freestyle"
).split()
RAJ_WALK = "rajagopal2016_walk/generated_opensim4.6/ik_output_walk.mot"


@cache
def generic():
    return load_model(generic_model_path())


@cache
def clip(name: str, seed: int = 7) -> Motion:
    return make_action(generic(), name, DURATION, seed=seed)


# ---------------------------------------------------------------------------- the library


def test_the_library_covers_the_odah_actions():
    assert ACTIONS == tuple(ODAH)
    assert set(GENERATORS) == set(ACTIONS) - {"freestyle"}


@pytest.mark.parametrize("name", ACTIONS)
def test_action_has_the_right_frames_and_stays_in_range(name):
    model = generic()
    motion = clip(name)
    assert motion.q.shape == (round(DURATION * FPS), model.n_coordinates)
    assert motion.coordinate_names == model.coordinate_names
    np.testing.assert_allclose(np.diff(motion.time), 1.0 / FPS, rtol=1e-12)
    assert motion.time[0] == 0.0
    assert np.all(np.isfinite(motion.q))
    low, high = model.ranges.T
    outside = [
        n for i, n in enumerate(model.coordinate_names)
        if motion.q[:, i].min() < low[i] or motion.q[:, i].max() > high[i]
    ]  # fmt: skip
    assert not outside, f"{name} leaves the range of {outside}"
    for side in "rl":
        beta = motion.column(f"knee_angle_{side}_beta")
        np.testing.assert_array_equal(beta, motion.column(f"knee_angle_{side}"))


@pytest.mark.parametrize("name", ACTIONS)
def test_action_meets_the_floor(name):
    report = contact_metrics(generic(), clip(name))
    assert report.min_height >= -0.005
    assert report.max_stance_height <= 0.01
    assert report.stance.mean() > 0.5
    if name not in FLYING:  # never off the floor: the lowest foot always touches it
        assert report.lowest.max() < 0.002
    p95, most = SLIDE["moving" if name in MOVING else "on_the_spot"]
    assert report.slide_quantile(0.95) <= p95
    assert report.slide_quantile(1.0) <= most


def test_flights_are_short_and_ballistic():
    motion = clip("vertical_jumping")
    report = contact_metrics(generic(), motion)
    airborne = report.lowest > 0.002
    assert airborne.any()
    runs = np.diff(np.concatenate([[0], airborne.astype(int), [0]]))
    lengths = np.flatnonzero(runs == -1) - np.flatnonzero(runs == 1)
    assert lengths.max() / FPS < 0.7  # a 25 cm jump flies about 0.45 s
    assert 0.1 < report.lowest.max() < 0.6  # feet rise like a jump, not a launch


def test_locomotion_moves_forward_and_turns_within_range():
    motion = clip("walking")
    x, z = motion.column("pelvis_tx"), motion.column("pelvis_tz")
    speed = np.hypot(np.diff(x), np.diff(z)) * FPS
    assert 0.9 < np.median(speed) < 1.8  # m/s: walking
    assert np.ptp(x) > 1.5
    heading = np.rad2deg(motion.column("pelvis_rotation"))
    assert np.all(np.abs(heading) <= 180.0)
    hip = np.rad2deg(motion.column("hip_flexion_r"))
    assert hip.max() > 20 and hip.min() < -5  # flexion at strike, extension at push-off
    assert np.rad2deg(motion.column("knee_angle_r")).max() > 50  # swing knee flexion


def test_same_seed_same_clip_other_seed_other_clip():
    model = generic()
    a = make_action(model, "hand_waving", 2.0, seed=3)
    b = make_action(model, "hand_waving", 2.0, rng=np.random.default_rng(3))
    c = make_action(model, "hand_waving", 2.0, seed=4)
    np.testing.assert_array_equal(a.q, b.q)
    assert np.abs(a.q - c.q).max() > 1e-3


def _cycles(signal: np.ndarray) -> int:
    centred = signal - signal.mean()
    return int(np.sum((centred[:-1] < 0) & (centred[1:] >= 0)))


def test_style_sets_speed_amplitude_and_hand():
    model = generic()
    slow = make_action(model, "walking", 6.0, seed=1, style=ActionStyle(speed=0.7))
    fast = make_action(model, "walking", 6.0, seed=1, style=ActionStyle(speed=1.4))
    assert _cycles(fast.column("knee_angle_r")) > _cycles(slow.column("knee_angle_r")) + 2
    small = make_action(model, "hand_waving", 6.0, seed=1, style=ActionStyle(amplitude=0.6))
    large = make_action(model, "hand_waving", 6.0, seed=1, style=ActionStyle(amplitude=1.4))
    assert np.ptp(large.column("elbow_flex_r")) > np.ptp(small.column("elbow_flex_r")) + 0.2
    left = make_action(model, "hand_waving", 6.0, seed=1, style=ActionStyle(handedness="left"))
    assert np.rad2deg(left.column("arm_add_l")).min() < -45  # the left arm is raised
    assert np.rad2deg(left.column("arm_add_r")).min() > -20  # the right one hangs


def test_random_style_is_reproducible_and_valid():
    a, b = random_style(np.random.default_rng(5)), random_style(np.random.default_rng(5))
    assert a == b
    styles = [random_style(np.random.default_rng(s)) for s in range(40)]
    assert len({s.speed for s in styles}) == 40
    assert {s.handedness for s in styles} == {"right", "left"}


@pytest.mark.parametrize(
    ("field", "value"), [("speed", 0.0), ("amplitude", -1.0), ("noise_deg", np.nan)]
)
def test_bad_style_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        ActionStyle(**{field: value})


def test_unknown_action_lists_the_valid_ones():
    with pytest.raises(ValueError) as error:
        make_action(generic(), "moonwalking", 2.0, seed=0)
    message = str(error.value)
    assert "moonwalking" in message
    assert all(name in message for name in ACTIONS)


def test_action_names_are_forgiving():
    assert action_name("Hand waving") == "hand_waving"
    assert action_name("sideways-stepping") == "sideways_stepping"


@pytest.mark.parametrize("duration", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_duration_is_refused(duration):
    with pytest.raises(ValueError, match="duration_s"):
        make_action(generic(), "walking", duration, seed=0)


def test_bad_fps_and_double_randomness_are_refused():
    with pytest.raises(ValueError, match="fps"):
        make_action(generic(), "walking", 1.0, seed=0, fps=0)
    with pytest.raises(ValueError, match="seed or rng"):
        make_action(generic(), "walking", 1.0, seed=0, rng=np.random.default_rng(0))


def test_a_short_clip_has_one_frame_per_sixtieth():
    motion = make_action(generic(), "freestyle", 0.5, seed=2)
    assert len(motion.time) == 30


# ---------------------------------------------------------------------------- ground contact


def _static(q: np.ndarray, n: int) -> Motion:
    return Motion(np.arange(n) / FPS, np.tile(q, (n, 1)), generic().coordinate_names)


def test_sole_points_lie_on_the_floor_in_the_default_pose():
    model = generic()
    sole = sole_positions(model, model.defaults[None])
    np.testing.assert_allclose(sole[..., 1], 0.0, atol=1e-12)


def test_sinking_body_is_lifted_onto_the_floor_also_when_scaled():
    model = generic()
    sunk = _static(model.pose({"pelvis_ty": 0.9}), 5)
    report = contact_metrics(model, ground_contact(model, sunk))
    np.testing.assert_allclose(report.lowest, 0.0, atol=1e-12)
    scales = np.full((model.n_bodies, 3), 1.1)
    lifted = ground_contact(model, sunk, scales=scales)
    np.testing.assert_allclose(contact_metrics(model, lifted, scales).lowest, 0.0, atol=1e-12)
    assert lifted.column("pelvis_ty")[0] > 1.1 * 1.0  # longer legs, higher pelvis


def test_flight_follows_a_ballistic_arc():
    model = generic()
    n, flight = 61, np.zeros(61, dtype=bool)
    flight[10:40] = True  # take-off after frame 9, landing at frame 40: tau = 31 frames
    moved = ground_contact(model, _static(model.defaults, n), flight=flight)
    height = contact_metrics(model, moved).lowest
    t = np.arange(n) / FPS
    arc = 0.5 * GRAVITY * (t - t[9]) * (t[40] - t)  # apex g tau^2 / 8 = 0.33 m, tau = 31/60 s
    np.testing.assert_allclose(height[10:40], arc[10:40], atol=1e-12)
    np.testing.assert_allclose(height[:10], 0.0, atol=1e-12)
    np.testing.assert_allclose(height[40:], 0.0, atol=1e-12)


def test_pinning_stops_a_sliding_stance_foot():
    model = generic()
    sliding = _static(model.defaults, 30)
    sliding.q[:, model.coordinate_index("pelvis_tx")] = np.arange(30) / FPS  # 1 m/s
    report = contact_metrics(model, sliding)
    assert report.slide_quantile(0.5) == pytest.approx(1.0, rel=1e-9)
    pinned = ground_contact(model, sliding)
    assert contact_metrics(model, pinned).slide_quantile(1.0) < 1e-9
    assert np.ptp(pinned.column("pelvis_tx")) < 1e-12


def test_flight_mask_must_match_the_frames():
    model = generic()
    with pytest.raises(ValueError, match="flight"):
        ground_contact(model, _static(model.defaults, 5), flight=np.zeros(4, dtype=bool))


# ---------------------------------------------------------------------------- .mot files


def test_a_real_trial_drives_the_generic_model_at_60_fps(validation_dir):
    model, path = generic(), validation_dir / RAJ_WALK
    raw = motion_from_mot(model, path, fps=None, extra="ignore")
    motion = motion_from_mot(model, path, extra="ignore")
    np.testing.assert_allclose(np.diff(motion.time), 1 / 60, rtol=1e-9)
    assert motion.time[-1] <= raw.time[-1] + 1e-12
    assert raw.time[-1] - motion.time[-1] < 1 / 60
    # 0.1 s is a sample of both grids: the cubic interpolation passes through it
    i_raw, i_new = np.argmin(np.abs(raw.time - 0.1)), np.argmin(np.abs(motion.time - 0.1))
    np.testing.assert_allclose(motion.q[i_new], raw.q[i_raw], atol=1e-9)


def test_a_trial_with_fewer_coordinates_takes_defaults(validation_dir):
    path = validation_dir / "gait2354_walk" / "subject01_walk1_ik.mot"
    with pytest.warns(UserWarning, match="arm_flex_r"):
        motion = motion_from_mot(generic(), path)
    np.testing.assert_array_equal(motion.column("arm_flex_r"), 0.0)


def test_put_on_the_floor(validation_dir):
    model = generic()
    motion = motion_from_mot(model, validation_dir / RAJ_WALK, on_floor=True)
    np.testing.assert_allclose(contact_metrics(model, motion).lowest, 0.0, atol=1e-12)


def _write_mot(path, columns: list[str], n: int = 5) -> None:
    values = np.zeros((n, len(columns)))
    write_table(path, Table(np.arange(n) / 100.0, columns, values, True, name="Coordinates"))


def test_a_mot_with_unknown_coordinates_is_refused_unless_ignored(tmp_path):
    path = tmp_path / "odd.mot"
    _write_mot(path, ["hip_flexion_r", "tail_wag"])
    with pytest.raises(KeyError, match="tail_wag") as error:
        motion_from_mot(generic(), path)
    assert "odd.mot" in str(error.value) and "extra='ignore'" in str(error.value)
    with pytest.warns(UserWarning):
        motion = motion_from_mot(generic(), path, extra="ignore")
    assert motion.q.shape[1] == generic().n_coordinates


def test_missing_mot_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.mot"):
        motion_from_mot(generic(), tmp_path / "nothing.mot")


def test_resampling_unwraps_a_heading_that_crosses_180_degrees():
    time = np.arange(11) / 10.0
    heading = np.deg2rad(170.0 + 2.0 * np.arange(11))  # 170 .. 190 deg
    wrapped = np.angle(np.exp(1j * heading))
    motion = Motion(time, wrapped[:, None], ["pelvis_rotation"])
    out = resample(motion, 60.0, rotational=np.array([True]))
    truth = np.angle(np.exp(1j * np.deg2rad(170.0 + 20.0 * out.time)))
    np.testing.assert_allclose(out.q[:, 0], truth, atol=1e-9)


def test_resampling_needs_two_frames_and_a_rate():
    one = Motion(np.zeros(1), np.zeros((1, 1)), ["a"])
    with pytest.raises(ValueError, match="2 frames"):
        resample(one, 60.0)
    with pytest.raises(ValueError, match="fps"):
        resample(one, 0.0)


# ---------------------------------------------------------------------------- AMASS


def _smplh(n: int = 12, **override) -> dict:
    rng = np.random.default_rng(0)
    data = {
        "poses": rng.normal(0, 0.2, (n, 156)),
        "trans": rng.normal(0, 1, (n, 3)),
        "betas": rng.normal(0, 1, 16),
        "dmpls": rng.normal(0, 1, (n, 8)),
        "gender": np.array("female"),
        "mocap_framerate": np.array(120.0),
    }
    return data | override


def _smplx(n: int = 12) -> dict:
    rng = np.random.default_rng(1)
    poses = rng.normal(0, 0.2, (n, 165))
    return {
        "poses": poses,
        "root_orient": poses[:, :3],
        "pose_body": poses[:, 3:66],
        "pose_jaw": poses[:, 66:69],
        "pose_eye": poses[:, 69:75],
        "pose_hand": poses[:, 75:],
        "trans": rng.normal(0, 1, (n, 3)),
        "betas": rng.normal(0, 1, 16),
        "gender": np.array("neutral"),
        "mocap_frame_rate": np.array(60.0),
        "surface_model_type": np.array("smplx"),
    }


def _npz(tmp_path, data: dict, name: str = "seq.npz"):
    path = tmp_path / name
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return path


def test_read_an_smplh_amass_file(tmp_path):
    data = _smplh()
    seq = read_amass(_npz(tmp_path, data))
    assert isinstance(seq, AmassSequence)
    assert (seq.model_type, seq.gender, seq.fps, seq.n_frames) == ("smplh", "female", 120.0, 12)
    assert seq.pose_body.shape == (12, 63) and seq.pose_hand.shape == (12, 90)
    assert seq.pose_jaw is None and seq.dmpls.shape == (12, 8)
    np.testing.assert_array_equal(seq.poses, data["poses"])
    np.testing.assert_allclose(seq.time[-1], 11 / 120)


def test_read_an_smplx_amass_file(tmp_path):
    data = _smplx()
    seq = read_amass(_npz(tmp_path, data))
    assert (seq.model_type, seq.gender, seq.fps) == ("smplx", "neutral", 60.0)
    assert seq.pose_eye.shape == (12, 6)
    np.testing.assert_array_equal(seq.poses, data["poses"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"mocap_framerate": None}, "frame rate"),
        ({"poses": np.zeros((12, 72))}, "SMPL"),
        ({"trans": np.full((12, 3), np.nan)}, "NaN"),
        ({"trans": np.zeros((11, 3))}, "frame counts"),
        ({"trans": np.zeros((12, 2))}, "shape"),
        ({"gender": np.array("robot")}, "gender"),
        ({"mocap_framerate": np.array(-5.0)}, "positive"),
        ({"poses": None}, "poses"),
    ],
)
def test_bad_amass_files_get_one_clear_error(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        read_amass(_npz(tmp_path, _smplh(**override)))


def test_amass_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_amass(tmp_path / "none.npz")
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        read_amass(text)


def test_amass_smplh_sequences_get_a_clear_error(tmp_path):
    seq = read_amass(_npz(tmp_path, _smplh()))
    with pytest.raises(ValueError, match="SMPL\\+H.*SMPL-X"):
        amass_to_motion(seq, generic())
