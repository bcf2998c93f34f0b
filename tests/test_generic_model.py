"""The generic full-body model: committed file, structure, default pose, conventions, IK."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from biokin_nb.osim import generic
from biokin_nb.osim._opensim import opensim
from biokin_nb.osim.generic import (
    BODY_NAMES,
    COORDINATE_NAMES,
    FREE_COORDINATES,
    MARKER_NAMES,
    build_generic_model,
    generic_model_path,
    write_generic_model,
)
from biokin_nb.osim.io import MarkerTrajectories, read_table, write_trc

CARD = generic.DATA_DIR / "generic_model.md"
TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@pytest.fixture
def model():
    """The committed model, initialized; yields (model, state) in the default pose."""
    m = opensim().Model(str(generic_model_path()))
    state = m.initSystem()
    m.realizePosition(state)
    return m, state


def _vec(v) -> np.ndarray:
    return np.array([v.get(i) for i in range(3)])


def _markers(m, state) -> dict[str, np.ndarray]:
    """Marker positions (3,) m in ground, by name."""
    return {mk.getName(): _vec(mk.getLocationInGround(state)) for mk in m.getMarkerSet()}


def _set_pose(m, state, values: dict[str, float]) -> None:
    """Set coordinates (rad / m) by name, the rest to their defaults; betas follow knees."""
    for c in m.getCoordinateSet():
        c.setValue(state, values.get(c.getName(), c.getDefaultValue()), False)
    for s in generic.SIDES:
        knee = m.getCoordinateSet().get(f"knee_angle_{s}").getValue(state)
        m.getCoordinateSet().get(f"knee_angle_{s}_beta").setValue(state, knee, False)
    m.realizePosition(state)


# --------------------------------------------------------------------------- the file


def _split_numbers(text: str) -> tuple[list[str], np.ndarray]:
    return _NUMBER.split(text), np.array([float(x) for x in _NUMBER.findall(text)])


def test_committed_file_equals_a_fresh_regeneration(tmp_path):
    fresh = write_generic_model(tmp_path / "generic_model.osim")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generic_model.osim"]  # no temp left
    committed_text, committed_numbers = _split_numbers(generic_model_path().read_text())
    fresh_text, fresh_numbers = _split_numbers(fresh.read_text())
    assert committed_text == fresh_text, "regenerate: python -m biokin_nb.osim.generic"
    np.testing.assert_allclose(committed_numbers, fresh_numbers, rtol=1e-12, atol=1e-15)


def test_build_matches_the_name_constants():
    m = build_generic_model()
    assert [b.getName() for b in m.getBodySet()] == list(BODY_NAMES)
    assert [c.getName() for c in m.getCoordinateSet()] == list(COORDINATE_NAMES)
    assert [mk.getName() for mk in m.getMarkerSet()] == list(MARKER_NAMES)


# --------------------------------------------------------------------------- structure


def test_bodies_joints_and_coordinates(model):
    m, _ = model
    assert m.getNumBodies() == len(BODY_NAMES) == 22
    assert m.getNumJoints() == 22
    assert m.getNumCoordinates() == len(COORDINATE_NAMES) == 39
    assert [b.getName() for b in m.getBodySet()] == list(BODY_NAMES)
    assert [c.getName() for c in m.getCoordinateSet()] == list(COORDINATE_NAMES)
    expected_joints = {"ground_pelvis", "back"} | {
        f"{j}_{s}"
        for s in ("r", "l")
        for j in (
            "hip walker_knee patellofemoral ankle subtalar mtp "
            "acromial elbow radioulnar radius_hand".split()
        )
    }
    assert {j.getName() for j in m.getJointSet()} == expected_joints


def test_the_nine_free_coordinates_are_unclamped_and_the_rest_clamped(model):
    m, _ = model
    assert len(FREE_COORDINATES) == 9
    for c in m.getCoordinateSet():
        assert c.get_clamped() == (c.getName() not in FREE_COORDINATES), c.getName()
        assert not c.get_locked(), c.getName()


@pytest.mark.parametrize(
    ("name", "low_window", "high_window"),
    [
        ("hip_flexion", (-35.0, -10.0), (110.0, 130.0)),
        ("knee_angle", (0.0, 0.0), (120.0, 145.0)),
        ("elbow_flex", (0.0, 0.0), (140.0, 160.0)),
    ],
)
def test_ranges_of_motion_in_the_literature_windows(model, name, low_window, high_window):
    m, _ = model
    for s in generic.SIDES:
        c = m.getCoordinateSet().get(f"{name}_{s}")
        lo, hi = np.degrees([c.getRangeMin(), c.getRangeMax()])
        assert low_window[0] - 1e-9 <= lo <= low_window[1] + 1e-9
        assert high_window[0] <= hi <= high_window[1]


def test_every_default_value_lies_in_its_range(model):
    m, _ = model
    for c in m.getCoordinateSet():
        assert c.getRangeMin() < c.getRangeMax(), c.getName()
        assert c.getRangeMin() <= c.getDefaultValue() <= c.getRangeMax(), c.getName()


def test_markers_are_about_forty_each_on_a_model_body(model):
    m, _ = model
    bodies = set(BODY_NAMES)
    assert 36 <= m.getNumMarkers() <= 50
    assert len(set(MARKER_NAMES)) == len(MARKER_NAMES)
    for mk in m.getMarkerSet():
        frame = mk.getParentFrame()
        assert frame.getConcreteClassName() == "Body" and frame.getName() in bodies, mk.getName()


def test_total_mass_is_that_of_a_75_kg_man(model):
    m, state = model
    assert 70.0 <= m.getTotalMass(state) <= 80.0
    assert m.getTotalMass(state) == pytest.approx(generic.MASS_KG, abs=1e-9)
    for body in m.getBodySet():
        assert body.getMass() > 0.0, body.getName()


# --------------------------------------------------------------------------- default pose


def test_default_pose_stands_on_the_floor(model):
    m, state = model
    markers = _markers(m, state)
    foot_bodies = [f"{b}_{s}" for b in ("calcn", "toes") for s in generic.SIDES]
    foot_markers = [
        mk.getName() for mk in m.getMarkerSet() if mk.getParentFrameName() in foot_bodies
    ]
    heights = [markers[n][1] for n in foot_markers]
    heights += [_vec(m.getBodySet().get(b).getPositionInGround(state))[1] for b in foot_bodies]
    assert 0.0 <= min(heights) <= 0.03


def test_default_pose_is_upright_and_faces_plus_x(model):
    m, state = model
    markers = _markers(m, state)
    pelvis = _vec(m.getBodySet().get("pelvis").getPositionInGround(state))
    torso_com = _vec(
        m.getBodySet()
        .get("torso")
        .findStationLocationInGround(state, m.getBodySet().get("torso").getMassCenter())
    )
    assert torso_com[1] > pelvis[1] + 0.2 and markers["C7"][1] > pelvis[1] + 0.3
    for s in ("R", "L"):
        assert markers[f"{s}TOE"][0] > markers[f"{s}HEE"][0] + 0.1
        assert markers[f"{s}HLX"][0] > markers[f"{s}HEE"][0] + 0.2
        assert markers[f"{s}ASI"][0] > markers[f"{s}PSI"][0]
        assert markers[f"{s}SHO"][1] > markers[f"{s}ELB"][1] > markers[f"{s}WRA"][1]
    assert markers["STRN"][0] > markers["T10"][0]
    assert markers["RASI"][2] > 0 > markers["LASI"][2]  # +Z is the right side


def _mirror_name(name: str) -> str:
    return {"R": "L", "L": "R"}[name[0]] + name[1:] if name[0] in "RL" else name


def _symmetric_pose(m, rng: np.random.Generator) -> dict[str, float]:
    """Random values (rad / m) in range, equal on both sides; sagittal-plane trunk motion only."""

    def limited(c) -> float:
        return rng.uniform(max(c.getRangeMin(), -1.5), min(c.getRangeMax(), 1.5))

    pose = {n: limited(m.getCoordinateSet().get(n)) for n in ("pelvis_tilt", "lumbar_extension")}
    for c in m.getCoordinateSet():
        if re.search(r"_r(_beta)?$", c.getName()):
            pose[c.getName()] = pose[re.sub(r"_r(?=$|_beta$)", "_l", c.getName())] = limited(c)
    return pose


def test_left_and_right_are_mirror_images_in_any_symmetric_pose(model):
    m, state = model
    rng = np.random.default_rng(0)
    for _ in range(5):
        _set_pose(m, state, _symmetric_pose(m, rng))
        markers = _markers(m, state)
        for name, p in markers.items():
            mirrored = markers[_mirror_name(name)] * [1.0, 1.0, -1.0]
            np.testing.assert_allclose(p, mirrored, atol=1e-9, err_msg=name)


def test_mass_properties_are_mirror_images(model):
    m, _ = model
    for body in m.getBodySet():
        name = body.getName()
        if not name.endswith("_r"):
            continue
        twin = m.getBodySet().get(name[:-2] + "_l")
        assert twin.getMass() == pytest.approx(body.getMass())
        np.testing.assert_allclose(
            _vec(twin.getMassCenter()), _vec(body.getMassCenter()) * [1, 1, -1], atol=1e-12
        )


# --------------------------------------------------------------------------- the coupler


def test_the_coupler_makes_beta_follow_the_knee(model):
    m, state = model
    osim = opensim()
    for s in generic.SIDES:
        coupler = osim.CoordinateCouplerConstraint.safeDownCast(
            m.getConstraintSet().get(f"patellofemoral_knee_angle_{s}_con")
        )
        assert coupler.getDependentCoordinateName() == f"knee_angle_{s}_beta"
        assert coupler.getIndependentCoordinateNames().get(0) == f"knee_angle_{s}"
        fn = osim.LinearFunction.safeDownCast(coupler.getFunction())
        assert fn is not None and fn.getSlope() == 1.0 and fn.getIntercept() == 0.0
        knee = m.getCoordinateSet().get(f"knee_angle_{s}")
        knee.setValue(state, 1.1, False)
        m.assemble(state)
        beta = m.getCoordinateSet().get(f"knee_angle_{s}_beta").getValue(state)
        assert beta == pytest.approx(knee.getValue(state), abs=1e-6)
        assert knee.getValue(state) == pytest.approx(1.1, abs=1e-6)


# --------------------------------------------------------------------------- Rajagopal


def test_a_rajagopal_motion_gives_the_same_posture(model, validation_dir):
    """Body orientations along Rajagopal's own walking IK solution, driven by name.

    Rajagopal's walker knee couples up to 15 deg of tibial axial rotation to flexion; this
    model keeps a plain hinge, so below the knee only the long axes are compared tightly.
    """
    osim = opensim()
    gen, gen_state = model
    raj = osim.Model(str(validation_dir / "rajagopal2016_walk" / "Rajagopal2016.osim"))
    raj_state = raj.initSystem()
    table = read_table(
        validation_dir / "rajagopal2016_walk/generated_opensim4.6/ik_output_walk_acc1e-9.mot"
    )
    below_knee = {f"{b}_{s}" for b in ("tibia", "talus", "calcn", "toes") for s in "rl"}
    for row in table.values[::10]:
        pose = {
            n: v if n in TRANSLATIONS or n.endswith("_beta") else np.radians(v)
            for n, v in zip(table.columns, row, strict=True)
        }
        rotations = [_rotations(mdl, st, pose) for mdl, st in ((raj, raj_state), (gen, gen_state))]
        for body in BODY_NAMES:
            r_raj, r_gen = rotations[0][body], rotations[1][body]
            if body.startswith("patella"):
                continue
            long_axis = np.degrees(np.arccos(np.clip(r_raj[:, 1] @ r_gen[:, 1], -1, 1)))
            whole = np.degrees(np.arccos(np.clip((np.trace(r_raj.T @ r_gen) - 1) / 2, -1, 1)))
            assert long_axis < (6.0 if body in below_knee else 0.5), body
            assert whole < (16.0 if body in below_knee else 0.5), body


def _rotations(m, state, pose: dict[str, float]) -> dict[str, np.ndarray]:
    """Body rotations (3, 3) in ground after setting ``pose`` (rad / m) by name."""
    for c in m.getCoordinateSet():
        c.setLocked(state, False)
        c.setValue(state, pose[c.getName()], False)
    m.realizePosition(state)
    out = {}
    for body in m.getBodySet():
        r = body.getTransformInGround(state).R()
        out[body.getName()] = np.array([[r.get(i, j) for j in range(3)] for i in range(3)])
    return out


# --------------------------------------------------------------------------- OpenSim IK


def _synthetic_motion(n_frames: int = 10) -> dict[str, np.ndarray]:
    """(T,) values (rad / m) per coordinate: hip and knee flexion plus a little of the rest."""
    ramp = np.linspace(0.0, 1.0, n_frames)
    deg = np.radians
    return {
        "pelvis_tx": 0.3 * ramp,
        "pelvis_ty": generic.PELVIS_HEIGHT - 0.05 * ramp,
        "pelvis_tilt": deg(-5.0) * ramp,
        "hip_flexion_r": deg(40.0) * ramp,
        "knee_angle_r": deg(60.0) * ramp,
        "knee_angle_r_beta": deg(60.0) * ramp,
        "ankle_angle_r": deg(-10.0) * ramp,
        "hip_flexion_l": deg(-15.0) * ramp,
        "knee_angle_l": deg(5.0 + 20.0 * ramp),
        "knee_angle_l_beta": deg(5.0 + 20.0 * ramp),
        "lumbar_extension": deg(-10.0) * ramp,
        "arm_flex_r": deg(-20.0) * ramp,
        "arm_flex_l": deg(25.0) * ramp,
        "elbow_flex_r": deg(10.0 + 30.0 * ramp),
        "elbow_flex_l": deg(10.0 + 30.0 * ramp),
        "pro_sup_r": deg(60.0 + 20.0 * ramp),
        "pro_sup_l": deg(60.0 + 20.0 * ramp),
    }


def _marker_trajectories(m, state, motion: dict[str, np.ndarray], rate: float):
    """OpenSim's own marker positions along ``motion``: a MarkerTrajectories (m)."""
    n_frames = len(next(iter(motion.values())))
    positions = np.empty((n_frames, len(MARKER_NAMES), 3))
    for t in range(n_frames):
        _set_pose(m, state, {n: v[t] for n, v in motion.items()})
        markers = _markers(m, state)
        positions[t] = [markers[n] for n in MARKER_NAMES]
    return MarkerTrajectories(np.arange(n_frames) / rate, list(MARKER_NAMES), positions, rate)


def _run_ik(trc: Path, time: np.ndarray, out_dir: Path) -> Path:
    """OpenSim's InverseKinematicsTool on the committed model, all markers weight 1."""
    osim = opensim()
    tool = osim.InverseKinematicsTool()
    tool.set_model_file(str(generic_model_path()))
    tool.set_marker_file(str(trc))
    tool.set_time_range(0, float(time[0]))
    tool.set_time_range(1, float(time[-1]))
    tool.set_results_directory(str(out_dir))
    tool.set_output_motion_file(str(out_dir / "ik.mot"))
    tool.set_accuracy(1e-7)
    tool.set_report_errors(False)
    for name in MARKER_NAMES:
        task = osim.IKMarkerTask()
        task.setName(name)
        task.setWeight(1.0)
        tool.upd_IKTaskSet().cloneAndAppend(task)
    assert tool.run()
    return out_dir / "ik.mot"


def test_opensim_ik_recovers_a_synthetic_motion(model, tmp_path):
    m, state = model
    motion = _synthetic_motion()
    markers = _marker_trajectories(m, state, motion, rate=100.0)
    trc = tmp_path / "synthetic.trc"
    write_trc(trc, markers)
    result = read_table(_run_ik(trc, markers.time, tmp_path))
    assert len(result.time) == len(markers.time)
    for name in COORDINATE_NAMES:
        default = m.getCoordinateSet().get(name).getDefaultValue()
        truth = motion.get(name, np.full(len(markers.time), default))
        got = result.column(name)
        if name in TRANSLATIONS:
            np.testing.assert_allclose(got, truth, atol=1e-3, err_msg=name)
        elif name.endswith("_beta"):  # OpenSim writes coupled coordinates in radians
            np.testing.assert_allclose(np.degrees(got), np.degrees(truth), atol=0.5, err_msg=name)
        else:
            np.testing.assert_allclose(got, np.degrees(truth), atol=0.5, err_msg=name)


# --------------------------------------------------------------------------- model card


def _card_rows(first_header: str) -> dict[str, list[str]]:
    """Rows of the card's table whose header starts with ``| first_header |``, by first cell."""
    rows, inside = {}, False
    for line in CARD.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith(f"| {first_header} |"):
            inside = True
        elif inside and line.startswith("|") and not set(line) <= set("|-: "):
            rows[cells[0].strip("`")] = cells
        elif inside and not line.startswith("|"):
            inside = False
    return rows


def test_the_model_card_lists_the_model_numbers(model):
    m, _ = model
    bodies = _card_rows("body")
    assert list(bodies) == list(BODY_NAMES)
    for body in m.getBodySet():
        assert float(bodies[body.getName()][1]) == pytest.approx(body.getMass(), abs=6e-4)
    coordinates = _card_rows("coordinate")
    assert list(coordinates) == list(COORDINATE_NAMES)
    for c in m.getCoordinateSet():
        row = coordinates[c.getName()]
        lo, hi = (float(x) for x in _NUMBER.findall(row[1])[:2])
        scale = 1.0 if c.getName() in TRANSLATIONS else 180.0 / np.pi
        assert (lo, hi) == pytest.approx((c.getRangeMin() * scale, c.getRangeMax() * scale))
        assert ("free" in row[2]) == (c.getName() in FREE_COORDINATES)
    assert list(_card_rows("marker")) == list(MARKER_NAMES)
