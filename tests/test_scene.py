"""Pyvista scenes: what lands where in the image, checked against the camera's own projection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from biokin_nb.osim import forward_kinematics, load_model
from biokin_nb.viz import scene

REPO = Path(__file__).resolve().parents[1]
POSE_DEG = {  # arms out, right leg forward, left elbow bent: limbs apart in the front view
    "arm_add_r": -45,
    "arm_add_l": -45,
    "hip_flexion_r": 25,
    "knee_angle_r": 30,
    "elbow_flex_l": 60,
}
OTHER_POSE_DEG = {"arm_add_r": -10, "arm_add_l": -85, "hip_flexion_l": 50, "knee_angle_l": 70}
WINDOW = (304, 400)  # px (width, height): small keeps the tests quick


@pytest.fixture(scope="module")
def model():
    return load_model(REPO / "data" / "generic_model.osim")


@pytest.fixture(scope="module")
def q(model) -> np.ndarray:
    return model.pose(POSE_DEG)


@pytest.fixture(scope="module")
def body(model, q) -> tuple[np.ndarray, np.ndarray]:
    return scene.stand_in_body(model, q)


@pytest.fixture(scope="module")
def renders(model, q, body) -> dict:
    """One front-view scene (markers hidden) rendered whole, and with the body alone."""
    plotter = scene.skeleton_scene(
        model, q, mesh=body, view="front", window_size=WINDOW, show_markers=False
    )
    full = scene.render_image(plotter)
    for name in ("bones", "joints"):
        plotter.actors[name].visibility = False
    body_only = scene.render_image(plotter)
    mask = scene.body_silhouette_mask(plotter, body)
    yield {"plotter": plotter, "full": full, "body": body_only, "mask": mask}
    plotter.close()


def _joint_centres(model, q) -> np.ndarray:
    return forward_kinematics(model, torch.as_tensor(q)).joint_centres.numpy()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# --------------------------------------------------------------------------- contents


def test_scene_holds_body_bones_joints_markers(model, q, body):
    plotter = scene.skeleton_scene(model, q, mesh=body, window_size=WINDOW, opacity=0.4)
    actors = plotter.actors
    assert {"body", "bones", "joints", "markers"} <= set(actors)
    assert actors["body"].prop.opacity == pytest.approx(0.4)
    assert actors["bones"].prop.opacity == 1.0
    assert actors["body"].mapper.dataset.n_points == len(body[0])
    n_bones = len(model.joints) - 1
    points = {k: actors[k].mapper.dataset.n_points for k in ("bones", "joints", "markers")}
    assert points["bones"] % n_bones == 0  # one cylinder per bone
    assert points["joints"] % len(model.joints) == 0  # one sphere per joint
    assert points["markers"] % len(model.markers) == 0
    assert tuple(plotter.camera.up) == pytest.approx((0, 1, 0))
    eye = np.subtract(plotter.camera.position, plotter.camera.focal_point)
    assert eye[0] > 0 and eye[1:] == pytest.approx([0, 0], abs=1e-9)  # front: on +X
    skeleton_only = scene.skeleton_scene(model, q, show_markers=False, window_size=WINDOW)
    assert set(skeleton_only.actors) == {"bones", "joints"}
    plotter.close()
    skeleton_only.close()


def test_front_view_projection_puts_the_right_side_left_and_the_head_up(model, q, renders):
    names = model.joint_names
    pixels = scene.project_points(renders["plotter"], _joint_centres(model, q))
    col = dict(zip(names, pixels[:, 0], strict=True))
    row = dict(zip(names, pixels[:, 1], strict=True))
    assert col["radius_hand_r"] < col["ground_pelvis"] < col["radius_hand_l"]
    assert row["acromial_r"] < row["ground_pelvis"] < row["walker_knee_l"] < row["ankle_l"]
    width, height = WINDOW
    assert ((pixels >= 0) & (pixels < [width, height])).all(), "everything in frame"


def test_side_view_shows_the_toes_forward_on_the_right(model, q):
    plotter = scene.skeleton_scene(model, q, view="right", window_size=WINDOW)
    pixels = scene.project_points(plotter, _joint_centres(model, q))
    col = dict(zip(model.joint_names, pixels[:, 0], strict=True))
    assert col["mtp_l"] > col["ankle_l"]  # +X (forward) is right on the image
    plotter.close()


def test_body_pixels_are_where_the_mesh_projects(model, renders):
    drawn = scene.foreground_mask(renders["body"])
    mask = renders["mask"]
    assert mask.mean() > 0.1, "the body covers a good part of the image"
    assert _iou(drawn, mask) > 0.95
    # the check can fail: another pose's silhouette does not match this render
    other = scene.stand_in_body(model, model.pose(OTHER_POSE_DEG))
    assert _iou(drawn, scene.body_silhouette_mask(renders["plotter"], other)) < 0.85


def test_skeleton_pixels_lie_inside_the_body_silhouette(renders):
    full, body_only, mask = renders["full"], renders["body"], renders["mask"]
    skeleton = np.abs(full.astype(int) - body_only.astype(int)).max(axis=-1) > 20
    assert skeleton.sum() > 2000, "the skeleton shows through the semi-transparent body"
    assert (skeleton & mask).sum() / skeleton.sum() > 0.99
    # the dark bones and red joints darken the skin they show through
    assert full[skeleton].mean() < body_only[skeleton].mean() - 30


# --------------------------------------------------------------------------- stand-in body


def test_stand_in_body_takes_batches_and_keeps_its_faces(model, q):
    poses = np.stack([q, model.pose(OTHER_POSE_DEG)])
    vertices, faces = scene.stand_in_body(model, poses)
    one, faces_one = scene.stand_in_body(model, poses[1])
    assert vertices.shape == (2, *one.shape) and one.shape[-1] == 3
    assert vertices[1] == pytest.approx(one)
    assert np.array_equal(faces, faces_one) and faces.max() == len(one) - 1
    centres = _joint_centres(model, q)
    lo, hi = vertices[0].min(axis=0), vertices[0].max(axis=0)
    assert ((centres > lo) & (centres < hi)).all(), "the joints are inside the body's box"


# --------------------------------------------------------------------------- files


def test_screenshot_writes_a_png_of_the_window(model, q, tmp_path):
    plotter = scene.skeleton_scene(model, q, window_size=WINDOW)
    path = scene.screenshot(plotter, tmp_path / "sub" / "pose.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == WINDOW
    with pytest.raises(ValueError, match="ending in .png"):
        scene.screenshot(plotter, tmp_path / "pose.jpg")
    assert not list(tmp_path.glob("*.tmp")) and not list((tmp_path / "sub").glob(".*"))
    plotter.close()


def test_motion_movie_writes_gif_and_mp4(model, q, tmp_path):
    import imageio_ffmpeg

    frames = np.stack([q, model.pose(OTHER_POSE_DEG), q])
    bodies = scene.stand_in_body(model, frames)
    size = (160, 208)
    gif = scene.motion_movie(
        model, frames, tmp_path / "m.gif", mesh_sequence=bodies, fps=10, window_size=size
    )
    with Image.open(gif) as image:
        assert (image.format, image.n_frames, image.size) == ("GIF", 3, size)
        assert image.info["duration"] == 100  # ms per frame at 10 fps
    mp4 = scene.motion_movie(model, frames, tmp_path / "m.mp4", fps=10, window_size=size)
    assert mp4.read_bytes()[4:8] == b"ftyp"
    n_frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert n_frames == 3 and seconds == pytest.approx(0.3, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gif", "m.mp4"]


def test_scene_view_falls_back_to_a_static_png(model, q):
    plotter = scene.skeleton_scene(model, q, window_size=WINDOW)
    view = scene.scene_view(plotter)  # no widget front end here (and maybe no trame)
    assert view.format == "png" and view.data[:8] == b"\x89PNG\r\n\x1a\n"
    if not scene.trame_available():
        with pytest.raises(RuntimeError, match="need trame"):
            scene.scene_view(plotter, interactive=True)
    plotter.close()


# --------------------------------------------------------------------------- bad input


def test_bad_input_gets_one_clear_error(model, q, body, tmp_path):
    with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., 39\)"):
        scene.skeleton_scene(model, q[:5])
    with pytest.raises(ValueError, match="one pose"):
        scene.skeleton_scene(model, np.stack([q, q]))
    with pytest.raises(ValueError, match="unknown view 'top'; pick one of front"):
        scene.skeleton_scene(model, q, view="top")
    with pytest.raises(ValueError, match=r"faces index vertices"):
        scene.skeleton_scene(model, q, mesh=(body[0][:10], body[1]))
    with pytest.raises(ValueError, match=r"vertices must have shape \(V, 3\)"):
        scene.skeleton_scene(model, q, mesh=(body[0][:, :2], body[1]))
    with pytest.raises(ValueError, match="must end in .gif or .mp4"):
        scene.motion_movie(model, q[None], tmp_path / "m.avi")
    with pytest.raises(ValueError, match=r"\(T, V, 3\) with T = 2 frames"):
        scene.motion_movie(model, np.stack([q, q]), tmp_path / "m.gif", mesh_sequence=body)
    assert not list(tmp_path.iterdir()), "nothing written on bad input"
