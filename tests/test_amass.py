"""AMASS -> coordinates on the test-made SMPL-X stand-in (the real files are licensed).

Known answers:
- a sequence posing the SMPL-X mesh exactly in the generic model's default posture (built
  here from the body layer's own skeleton alignment) comes back as the default
  coordinates (1e-6 rad) with sub-micrometre marker residuals;
- a sequence of the SMPL-X rest pose (standing up in AMASS's Z-up world) comes back with
  the body orientations of the skeleton laid into the rest mesh (pelvis, legs and trunk
  within 2 deg, the patella 7 deg as it follows the knee coupler, upper arm and ulna
  12 deg). The stand-in's rest template is Anny's (an A-pose with a 13 deg pelvic tilt,
  not SMPL-X's T-pose), so its pelvis, leg and trunk coordinates are within 20 deg of the
  model's defaults and the arms hang about 40 deg abducted.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from biokin_nb.body import AnnyBody, SmplxBody
from biokin_nb.body.frames import SMPLX_TO_GROUND
from biokin_nb.body.rig import rig_for
from biokin_nb.body.skeleton import generic_geometry, pose_from_body_rotations, rest_skeleton
from biokin_nb.body.smplx_body import ENV_VAR
from biokin_nb.body.smplx_standin import write_standin_smplx
from biokin_nb.motion import clip_motion, make_action, motion_source, sole_positions
from biokin_nb.motion.amass import AMASS_TO_GROUND, convert_amass
from biokin_nb.motion.sources import AmassSequence, amass_to_motion, read_amass
from biokin_nb.osim import forward_kinematics, load_model
from biokin_nb.osim.generic import generic_model_path

N_BETAS = 16
ARM_PREFIXES = ("arm_", "elbow_", "pro_sup", "wrist_")
LEGS_TRUNK = ("pelvis", "femur", "tibia", "talus", "calcn", "toes", "torso")


@cache
def generic():
    return load_model(generic_model_path())


@pytest.fixture(scope="module")
def smplx_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smplx")
    write_standin_smplx(folder, AnnyBody(dtype=torch.float64))
    return folder


@pytest.fixture(scope="module")
def body(smplx_dir) -> SmplxBody:
    return SmplxBody(model_path=smplx_dir, num_betas=N_BETAS, dtype=torch.float64)


def _sequence(poses: np.ndarray, trans: np.ndarray, fps: float = 60.0) -> AmassSequence:
    """An SMPL-X AMASS sequence from (T, 165) poses and (T, 3) translations."""
    return AmassSequence(
        "smplx",
        "neutral",
        fps,
        np.zeros(N_BETAS),
        trans,
        root_orient=poses[:, :3],
        pose_body=poses[:, 3:66],
        pose_hand=poses[:, 75:],
        pose_jaw=poses[:, 66:69],
        pose_eye=poses[:, 69:75],
    )


def _rest_pose(n: int) -> np.ndarray:
    """(n, 165) the SMPL-X rest pose stood up in AMASS's Z-up world (+90 deg about X)."""
    poses = np.zeros((n, 165))
    poses[:, 0] = np.pi / 2
    return poses


def _amass_from_coordinates(body: SmplxBody, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 165) poses and (T, 3) trans posing the stand-in mesh so that its generic bodies
    have the orientations of the generic model (scaled to the mesh) at coordinates q (T, C),
    the mesh's mid-hip on the model's."""
    model = generic()
    geom = generic_geometry(model)
    rig = rig_for("smplx", body.bone_names)
    shape = torch.zeros(len(body.shape_names), dtype=torch.float64)
    rest = rest_skeleton(body, rig, geom, shape)
    fk = forward_kinematics(model, torch.as_tensor(q), rest.scales.double())
    hips = [model.joint_names.index(n) for n in ("hip_r", "hip_l")]
    midhip = fk.joint_centres[:, hips].mean(1)
    pose = pose_from_body_rotations(rig, body, geom, rest, fk.rotations, midhip)
    to_ground = torch.as_tensor(AMASS_TO_GROUND)
    world = to_ground.T @ pose.rotations @ torch.tensor(SMPLX_TO_GROUND, dtype=torch.float64)
    parents = body.bone_parents
    local = [world[:, 0]] + [
        world[:, parents[j]].transpose(-1, -2) @ world[:, j] for j in range(1, body.n_bones)
    ]
    rotvec = Rotation.from_matrix(torch.stack(local, 1).reshape(-1, 3, 3).numpy()).as_rotvec()
    trans = (pose.root @ to_ground - body.rest(shape)["joints"][0, 0]).numpy()
    return rotvec.reshape(len(q), -1), trans


def _default_posture(body: SmplxBody, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 165) poses and (n, 3) trans posing the mesh in the generic default posture."""
    q = np.tile(generic().defaults, (n, 1))
    q[:, generic().coordinate_names.index("pelvis_ty")] += 0.95
    return _amass_from_coordinates(body, q)


def _write(path, poses: np.ndarray, trans: np.ndarray, fps: float) -> None:
    np.savez(
        path,
        poses=poses,
        root_orient=poses[:, :3],
        pose_body=poses[:, 3:66],
        pose_jaw=poses[:, 66:69],
        pose_eye=poses[:, 69:75],
        pose_hand=poses[:, 75:],
        trans=trans,
        betas=np.zeros(N_BETAS),
        gender=np.array("neutral"),
        mocap_frame_rate=np.array(fps),
        surface_model_type=np.array("smplx"),
    )


def _in_range(q: np.ndarray) -> list[str]:
    """Coordinates of q (T, C) outside their ranges: every one but the free pelvis's (the
    shoulders' nominal ranges included)."""
    model = generic()
    low, high = model.ranges.T
    bad = (q.min(0) < low - 1e-9) | (q.max(0) > high + 1e-9)
    names = model.coordinate_names
    return [n for n, b in zip(names, bad, strict=True) if b and not n.startswith("pelvis_")]


def test_the_default_posture_comes_back_as_the_default_coordinates(body, smplx_dir, tmp_path):
    model = generic()
    poses, trans = _default_posture(body, 4)
    path = tmp_path / "default.npz"
    _write(path, poses, trans, fps=120.0)
    conversion = convert_amass(read_amass(path), model, model_path=smplx_dir, recentre=False)
    assert conversion.stride == 2 and conversion.marker_rmse_mm.max() < 1e-3
    q = conversion.motion.q
    rotational = model.rotational
    np.testing.assert_allclose(q[:, rotational] - model.defaults[rotational], 0.0, atol=1e-6)
    assert np.all(conversion.scales > 0.5) and np.all(conversion.scales < 1.5)
    same = amass_to_motion(path, model, model_path=smplx_dir, recentre=False)
    np.testing.assert_allclose(same.q, q)


def test_the_rest_pose_keeps_the_rest_meshs_body_orientations(body, smplx_dir):
    model = generic()
    sequence = _sequence(_rest_pose(3), np.tile([0.3, -0.2, 1.0], (3, 1)))
    conversion = convert_amass(sequence, model, model_path=smplx_dir)
    geom = generic_geometry(model)
    rest = rest_skeleton(body, rig_for("smplx", body.bone_names), geom, None)
    q = torch.as_tensor(conversion.motion.q[0])
    fk = forward_kinematics(model, q, torch.as_tensor(conversion.scales))
    relative = fk.rotations.transpose(-1, -2) @ rest.align.double()
    cos = (relative.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    degrees = np.degrees(np.arccos(cos.clamp(-1, 1).numpy()))
    angle = dict(zip(geom.body_names, degrees, strict=True))
    limits = {name: 2.0 for name in angle if name.split("_")[0] in LEGS_TRUNK}
    limits |= {f"{b}_{s}": 12.0 for b in ("humerus", "ulna") for s in "rl"}
    limits |= {"patella_r": 7.0, "patella_l": 7.0}
    worse = {n: round(float(angle[n]), 1) for n, limit in limits.items() if angle[n] > limit}
    assert not worse, f"body orientations off the rest mesh's (deg): {worse}"
    deviation = np.degrees(np.abs(conversion.motion.q[0] - model.defaults))
    legs_trunk = [
        i for i, n in enumerate(model.coordinate_names) if not n.startswith(("arm", "elbow",
        "pro_sup", "wrist", "pelvis_t", "knee_angle_r_beta", "knee_angle_l_beta"))
    ]  # fmt: skip
    assert deviation[legs_trunk].max() < 20.0
    assert abs(conversion.motion.column("pelvis_rotation")[0]) < np.radians(1.0)  # faces +X
    keep = convert_amass(sequence, model, model_path=smplx_dir, heading="keep")
    np.testing.assert_allclose(keep.motion.column("pelvis_rotation"), -np.pi / 2, atol=0.02)


def test_a_library_walk_comes_back_through_the_mesh(body, smplx_dir):
    """Walking -> the mesh posed with its body orientations -> AMASS arrays -> coordinates:
    MAE over the rotational coordinates under 3 deg, pelvis, legs and trunk under 2 deg
    (the rest is the SMPL-X forearm: no twist bone, see ``marker_weights``)."""
    model = generic()
    walk = make_action(model, "walking", 0.25, seed=1)
    poses, trans = _amass_from_coordinates(body, walk.q)
    sequence = _sequence(poses, trans)
    conversion = convert_amass(sequence, model, model_path=smplx_dir, heading="keep",
                               recentre=False)  # fmt: skip
    error = np.abs(conversion.motion.q - walk.q)
    names = model.coordinate_names
    angles = model.rotational & np.array([not n.endswith("_beta") for n in names])
    assert np.degrees(error[:, angles].mean()) < 3.0
    core = angles & np.array([not n.startswith(ARM_PREFIXES) for n in names])
    worst = np.degrees(error[:, core].mean(0)).max()
    assert worst < 2.0, f"pelvis / leg / trunk coordinate off by {worst:.1f} deg on average"
    assert error[:, ~model.rotational].mean() < 0.01  # pelvis translation, m


def test_a_moving_sequence_is_resampled_and_stays_in_range(smplx_dir):
    model = generic()
    rng = np.random.default_rng(3)
    poses = _rest_pose(9) + np.cumsum(rng.normal(0, 0.08, (9, 165)), axis=0)
    trans = np.column_stack([np.linspace(0, 0.2, 9), np.zeros(9), np.full(9, 0.95)])
    motion = amass_to_motion(_sequence(poses, trans, fps=120.0), model, model_path=smplx_dir)
    assert motion.coordinate_names == model.coordinate_names
    assert motion.q.shape == (5, model.n_coordinates) and np.all(np.isfinite(motion.q))
    np.testing.assert_allclose(motion.time, np.arange(5) / 60.0)
    assert not _in_range(motion.q), f"outside the ranges: {_in_range(motion.q)}"


def test_smplh_and_missing_model_files_get_clear_errors(tmp_path, monkeypatch):
    seq = _sequence(_rest_pose(2), np.zeros((2, 3)))
    smplh = AmassSequence("smplh", "male", 60.0, seq.betas, seq.trans, seq.root_orient,
                          seq.pose_body, seq.pose_hand)  # fmt: skip
    with pytest.raises(ValueError, match="SMPL\\+H.*SMPL-X release"):
        amass_to_motion(smplh, generic())
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        amass_to_motion(seq, generic())
    with pytest.raises(FileNotFoundError, match="looked for"):
        amass_to_motion(seq, generic(), model_path=tmp_path)


def test_a_clip_comes_from_an_amass_file_or_an_action(body, smplx_dir, tmp_path):
    model = generic()
    poses, trans = _default_posture(body, 6)
    path = tmp_path / "still.npz"
    _write(path, poses, trans + [0.0, 0.0, 0.3], fps=60.0)
    assert motion_source(str(path)) == str(path.resolve())
    rng = np.random.default_rng(0)
    clip = clip_motion(model, str(path), 0.05, rng=rng, smplx_path=smplx_dir)
    assert clip.q.shape == (3, model.n_coordinates)
    soles = sole_positions(model, clip.q)
    assert abs(float(soles[..., 1].min())) < 2e-3  # feet on the floor
    longer = clip_motion(model, str(path), 0.2, rng=rng, smplx_path=smplx_dir)
    assert len(longer.time) == 12  # a short file holds its last frame
    action = clip_motion(model, "Hand waving", 0.05, rng=rng)
    assert action.q.shape == (3, model.n_coordinates)
    with pytest.raises(ValueError, match="valid actions.*AMASS"):
        motion_source("moonwalk")
    with pytest.raises(FileNotFoundError, match="no motion file"):
        motion_source(tmp_path / "none.npz")


def test_generation_takes_an_amass_file(body, smplx_dir, tmp_path, monkeypatch):
    from biokin_nb.dataset import GenerateConfig, generate, read_clip, read_index

    monkeypatch.setenv(ENV_VAR, str(smplx_dir))
    walk = make_action(generic(), "walking", 0.2, seed=2)
    path = tmp_path / "walk.npz"
    _write(path, *_amass_from_coordinates(body, walk.q), fps=60.0)
    config = GenerateConfig(
        subjects=1, clips_per_subject=1, size=32, duration_s=0.05, fit_iterations=1,
        actions=(str(path),),
    )  # fmt: skip
    generate(tmp_path / "data", config, progress=False)
    (row,) = read_index(tmp_path / "data")
    assert row["action"] == str(path.resolve()) and row["frames"] == 3
    clip = read_clip(tmp_path / "data" / "clips" / row["clip"], generic())
    assert not _in_range(clip.motion.q)
