"""Coordinate sequences to and from .mot, with OpenSim's unit conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biokin_nb.osim import forward_kinematics, load_model
from biokin_nb.osim._opensim import opensim
from biokin_nb.osim.coordinates import Motion, read_motion, write_motion

RAJ = "rajagopal2016_walk/generated_opensim4.6/"


@pytest.fixture(scope="module")
def scaled_rajagopal(validation_dir):
    return load_model(validation_dir / RAJ / "subject_scaled_walk.osim")


def test_beta_columns_stay_in_radians(scaled_rajagopal, validation_dir):
    motion = read_motion(scaled_rajagopal, validation_dir / RAJ / "ik_output_walk_acc1e-9.mot")
    ref = np.load(validation_dir / RAJ / "ik_output_walk_acc1e-9_fk.npz")
    np.testing.assert_allclose(motion.q, ref["q"], atol=1e-6)  # .mot printed to 8 digits
    knee, beta = motion.column("knee_angle_r"), motion.column("knee_angle_r_beta")
    np.testing.assert_allclose(beta, knee, atol=1e-6)


def test_mot_round_trip_and_opensim_reads_it(scaled_rajagopal, tmp_path):
    rng = np.random.default_rng(0)
    q = rng.uniform(-1, 1, (12, scaled_rajagopal.n_coordinates))
    motion = Motion(np.arange(12) / 60.0, q, scaled_rajagopal.coordinate_names)
    path = write_motion(scaled_rajagopal, motion, tmp_path / "m.mot")
    again = read_motion(scaled_rajagopal, path)
    np.testing.assert_allclose(again.q, q, rtol=1e-12, atol=1e-14)
    table = opensim().TimeSeriesTable(str(path))
    assert table.getTableMetaDataAsString("inDegrees") == "yes"
    column = table.getDependentColumn("hip_flexion_r").to_numpy()
    i = scaled_rajagopal.coordinate_index("hip_flexion_r")
    np.testing.assert_allclose(np.deg2rad(column), q[:, i], rtol=1e-10)
    beta = table.getDependentColumn("knee_angle_r_beta").to_numpy()
    np.testing.assert_allclose(beta, q[:, scaled_rajagopal.coordinate_index("knee_angle_r_beta")])


def test_a_real_mot_drives_another_model_by_name(validation_dir):
    gait = load_model(validation_dir / "gait2354_walk/subject01_simbody.osim")
    raj = load_model(validation_dir / "rajagopal2016_walk/Rajagopal2016.osim")
    path = validation_dir / "gait2354_walk/subject01_walk1_ik.mot"
    with pytest.warns(UserWarning, match="take their defaults: .*arm_flex_r"):
        motion = read_motion(raj, path, extra="ignore")
    assert forward_kinematics(raj, torch.tensor(motion.q)).markers.isfinite().all()
    with pytest.raises(KeyError, match="lacks: .*"):
        read_motion(gait, validation_dir / RAJ / "ik_output_walk_acc1e-9.mot")


def test_coordinate_table_units_and_flags(scaled_rajagopal):
    table = scaled_rajagopal.coordinate_table().set_index("coordinate")
    assert table.loc["knee_angle_r", "max"] == pytest.approx(np.rad2deg(2.0944), abs=1e-2)
    assert table.loc["pelvis_tx", "unit"] == "m"
    assert table.loc["knee_angle_r_beta", "coupled"] and not table.loc["knee_angle_r_beta", "free"]
    flagged = scaled_rajagopal.coordinate_table(free=["arm_flex_r"]).set_index("coordinate")
    assert flagged["free"].sum() == 1 and flagged.loc["arm_flex_r", "free"]


def test_pose_by_name_in_degrees(scaled_rajagopal):
    q = scaled_rajagopal.pose({"knee_angle_r": 90.0, "pelvis_ty": 1.0})
    assert q[scaled_rajagopal.coordinate_index("knee_angle_r")] == pytest.approx(np.pi / 2)
    assert q[scaled_rajagopal.coordinate_index("pelvis_ty")] == 1.0
    with pytest.raises(KeyError, match="did you mean knee_angle_r"):
        scaled_rajagopal.pose({"knee_angel_r": 10.0})
