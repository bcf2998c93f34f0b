"""SMPL-X backend on a test-made, structurally valid SMPLX_NEUTRAL.npz (the real one is
licensed): loading through smplx, axes, posing, clear errors, and the registration path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biokin_nb.body import AnnyBody, BodyPose, SmplxBody, load_registration, skeleton_from_shape
from biokin_nb.body.fit import FitConfig, fit_motion
from biokin_nb.body.frames import rotvec_to_matrix
from biokin_nb.body.registration import GENERIC_MODEL
from biokin_nb.body.regressor import build_and_evaluate, save_regressor
from biokin_nb.body.rig import rig_for
from biokin_nb.body.skeleton import generic_geometry
from biokin_nb.body.smplx_body import ENV_VAR
from biokin_nb.body.smplx_standin import standin_arrays, write_standin_smplx
from biokin_nb.osim import load_model


@pytest.fixture(scope="module")
def anny() -> AnnyBody:
    return AnnyBody(dtype=torch.float64)


@pytest.fixture(scope="module")
def smplx_dir(tmp_path_factory, anny):
    folder = tmp_path_factory.mktemp("smplx")
    write_standin_smplx(folder, anny)
    return folder


@pytest.fixture(scope="module")
def smplx_body(smplx_dir) -> SmplxBody:
    return SmplxBody(model_path=smplx_dir)


def test_standin_file_has_the_smplx_layout(smplx_dir):
    with np.load(smplx_dir / "SMPLX_NEUTRAL.npz") as z:
        assert z["v_template"].shape[0] >= 9930
        assert z["J_regressor"].shape[0] == 55 and z["kintree_table"].shape == (2, 55)
        assert z["posedirs"].shape[-1] == 54 * 9 and z["weights"].shape[1] == 55
        np.testing.assert_allclose(z["weights"].sum(1), 1.0, atol=1e-5)


def test_loads_from_folder_file_and_env_var(smplx_dir, smplx_body, monkeypatch):
    assert smplx_body.n_bones == 55 and smplx_body.shape_names[0] == "beta0"
    assert SmplxBody(model_path=smplx_dir / "SMPLX_NEUTRAL.npz").n_vertices == smplx_body.n_vertices
    monkeypatch.setenv(ENV_VAR, str(smplx_dir))
    assert SmplxBody().path == smplx_dir / "SMPLX_NEUTRAL.npz"


def test_smplx_axes_in_the_ground_frame(smplx_body):
    out = smplx_body()
    v, j = out.vertices, out.joints
    assert 1.4 < float(v[:, 1].max() - v[:, 1].min()) < 2.1 and abs(float(v[:, 1].min())) < 1e-5
    head, r_ankle, l_ankle = (
        smplx_body.bone_index(n) for n in ("head", "right_ankle", "left_ankle")
    )
    assert j[head, 1] > j[r_ankle, 1] + 1.0
    assert j[smplx_body.bone_index("right_foot"), 0] > j[r_ankle, 0] + 0.05  # facing +X
    assert j[r_ankle, 2] > j[l_ankle, 2]  # right side at +Z


def test_smplx_joints_follow_their_parents_world_rotation(smplx_body):
    rot = rotvec_to_matrix(0.5 * torch.randn(2, smplx_body.n_bones, 3))
    root = torch.randn(2, 3)
    posed = smplx_body(None, BodyPose(rot, root)).joints
    rest = smplx_body().joints
    parents = list(smplx_body.bone_parents)
    for c in range(1, 22):
        p = parents[c]
        expected = (rot[:, p] @ (rest[c] - rest[p]).unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(posed[:, c] - posed[:, p], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(posed[:, 0], root)


def test_missing_file_says_where_it_looked_and_how_to_point_to_it(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=f"model_path.*{ENV_VAR}"):
        SmplxBody()
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path}/SMPLX_NEUTRAL\.npz.*{ENV_VAR}"):
        SmplxBody(model_path=tmp_path)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=rf"elsewhere/SMPLX_FEMALE\.npz.*\${ENV_VAR}"):
        SmplxBody(gender="female")


def test_wrong_model_type_is_one_clear_error(tmp_path, anny):
    arrays = standin_arrays(anny)
    smpl = {k: v for k, v in arrays.items() if not k.startswith(("hands", "lmk"))}
    smpl["J_regressor"] = arrays["J_regressor"][:24]
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **smpl)
    with pytest.raises(ValueError, match="is SMPL, not SMPL-X"):
        SmplxBody(model_path=tmp_path)
    small = dict(arrays, v_template=arrays["v_template"][:6890])
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **small)
    with pytest.raises(ValueError, match="6890 vertices"):
        SmplxBody(model_path=tmp_path)
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", something=np.zeros(3))
    with pytest.raises(ValueError, match="not a body model file"):
        SmplxBody(model_path=tmp_path)


def test_registration_skeleton_and_fit_run_on_smplx(smplx_body, tmp_path, monkeypatch):
    monkeypatch.setenv("BIOKIN_BODY_CACHE", str(tmp_path))
    rig = rig_for("smplx", smplx_body.bone_names)
    geom = generic_geometry(load_model(GENERIC_MODEL))
    regressor = build_and_evaluate(smplx_body, rig, geom, n_train=(8, 2), n_test=(4, 1))
    save_regressor(regressor, tmp_path / "smplx_regressor.npz")
    reg = load_registration(smplx_body)  # builds the marker table into the cache
    assert (tmp_path / "smplx_markers.csv").is_file()
    subject = skeleton_from_shape(reg)
    assert np.all(subject.scales > 0.5) and np.all(subject.scales < 2.0)
    q = np.tile(reg.model.defaults, (3, 1))
    q[:, reg.model.coordinate_index("knee_angle_r")] = [0.0, 0.5, 1.0]
    result = fit_motion(reg, subject, q, FitConfig(iterations=10))
    assert result.joint_error_mm.mean() < 25.0
