"""Cameras: OpenCV projection in the OpenSim world, cameras.json, DLT triangulation and
the paper's two-camera setup."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from biokin_nb.motion import make_action
from biokin_nb.osim import forward_kinematics, load_model
from biokin_nb.osim.generic import generic_model_path
from biokin_nb.render import (
    Camera,
    intrinsics,
    look_at_rotation,
    paper_cameras,
    read_cameras,
    triangulate,
    write_cameras,
)

SIZE = (1080, 720)


def _front_camera() -> Camera:
    """5 m in front of a subject facing +X, 1.1 m high, looking level at (0, 1.1, 0)."""
    K = intrinsics(33.0, 36.0, SIZE)
    return Camera.look_at([5.0, 1.1, 0.0], [0.0, 1.1, 0.0], K, SIZE, "frontal")


def test_intrinsics_from_a_33_mm_lens_on_a_36_mm_sensor():
    K = intrinsics(33.0, 36.0, SIZE)
    assert K[0, 0] == K[1, 1] == pytest.approx(33.0 / 36.0 * 1080)
    np.testing.assert_allclose(K[:2, 2], [539.5, 359.5])
    with pytest.raises(ValueError, match="positive"):
        intrinsics(0.0, 36.0, SIZE)


def test_projection_of_known_points():
    cam = _front_camera()
    f, (cx, cy) = cam.K[0, 0], cam.K[:2, 2]
    on_axis = cam.project(np.array([2.0, 1.1, 0.0]))
    np.testing.assert_allclose(on_axis, [cx, cy], atol=1e-9)
    # The camera faces -X: its right is the world's -Z, 1 m there at 5 m depth.
    right = cam.project(np.array([0.0, 1.1, -1.0]))
    np.testing.assert_allclose(right, [cx + f / 5.0, cy], atol=1e-9)
    up = cam.project(np.array([0.0, 2.1, 0.0]))  # Y up in the world: up in the image
    assert up[1] < cy and up[0] == pytest.approx(cx)
    behind = cam.project(np.array([6.0, 1.1, 0.0]))
    assert np.all(np.isnan(behind))
    batch = cam.project(np.zeros((4, 5, 3)))
    assert batch.shape == (4, 5, 2)


def test_look_at_gives_a_rotation_and_the_right_centre():
    cam = _front_camera()
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(cam.R) == pytest.approx(1.0)
    np.testing.assert_allclose(cam.centre, [5.0, 1.1, 0.0], atol=1e-12)
    np.testing.assert_allclose(cam.to_camera(np.array([0.0, 1.1, 0.0])), [0, 0, 5.0], atol=1e-12)
    with pytest.raises(ValueError, match="straight up"):
        look_at_rotation([0, 0, 0], [0, 5, 0])


def test_bad_cameras_are_refused():
    K = intrinsics(33.0, 36.0, SIZE)
    with pytest.raises(ValueError, match="rotation"):
        Camera(K, 2 * np.eye(3), np.zeros(3), *SIZE)
    with pytest.raises(ValueError, match="K"):
        Camera(K[:2], np.eye(3), np.zeros(3), *SIZE)
    with pytest.raises(ValueError, match="size"):
        Camera(K, np.eye(3), np.zeros(3), 0, 720)


def test_cameras_json_round_trip(tmp_path):
    cams = paper_cameras(np.random.default_rng(0), np.array([0.0, 1.0, 0.0]))
    path = write_cameras(tmp_path / "cameras.json", cams)
    document = json.loads(path.read_text())
    assert document["convention"] == "opencv"
    assert set(document["cameras"][0]) == {"name", "width", "height", "K", "R", "t"}
    again = read_cameras(path)
    for a, b in zip(cams, again, strict=True):
        assert (a.name, a.width, a.height) == (b.name, b.width, b.height)
        for attr in ("K", "R", "t"):
            np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert Camera.from_json(cams[0].to_json()).name == "frontal"


def test_bad_cameras_json(tmp_path):
    with pytest.raises(ValueError, match="lacks K"):
        Camera.from_json({"width": 2, "height": 2, "R": np.eye(3).tolist(), "t": [0, 0, 0]})
    path = tmp_path / "cameras.json"
    path.write_text('{"cameras": []}')
    with pytest.raises(ValueError, match="opencv"):
        read_cameras(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="JSON"):
        read_cameras(path)
    with pytest.raises(FileNotFoundError):
        read_cameras(tmp_path / "none.json")


def test_triangulation_recovers_noise_free_points():
    rng = np.random.default_rng(1)
    cams = paper_cameras(rng, np.array([0.0, 1.0, 0.0]))
    points = rng.uniform([-1, 0, -1], [1, 2, 1], (50, 3))
    pixels = np.stack([c.project(points) for c in cams])
    np.testing.assert_allclose(triangulate(cams, pixels), points, atol=1e-9)
    third = Camera.look_at([-4.0, 2.5, 3.0], [0.0, 1.0, 0.0], cams[0].K, SIZE)
    views = [*cams, third]
    pixels = np.stack([c.project(points.reshape(5, 10, 3)) for c in views])
    pixels[0, 0, 0] = np.nan  # one view misses one point: two views remain
    np.testing.assert_allclose(triangulate(views, pixels), points.reshape(5, 10, 3), atol=1e-9)


def test_triangulation_needs_two_views():
    cams = paper_cameras(np.random.default_rng(2), np.array([0.0, 1.0, 0.0]))
    pixels = np.stack([c.project(np.array([[0.0, 1.0, 0.0]])) for c in cams])
    pixels[1] = np.nan
    assert np.all(np.isnan(triangulate(cams, pixels)))
    with pytest.raises(ValueError, match="2 cameras"):
        triangulate(cams[:1], pixels[:1])
    with pytest.raises(ValueError, match="shape"):
        triangulate(cams, pixels[..., :1])


@pytest.mark.parametrize("seed", range(5))
def test_paper_cameras_stand_in_front_and_beside_at_lab_height(seed):
    centre = np.array([0.2, 0.95, -0.1])
    frontal, sagittal = paper_cameras(np.random.default_rng(seed), centre)
    for cam in (frontal, sagittal):
        assert 1.0 <= cam.centre[1] <= 1.2
        assert cam.K[0, 0] == pytest.approx(990.0)
        np.testing.assert_allclose(cam.project(centre), cam.K[:2, 2], atol=1e-6)  # looks at it
    front, side = frontal.centre - centre, sagittal.centre - centre
    assert front[0] > 2.0 and abs(front[2]) < 0.2 * front[0]  # ahead along +X
    assert side[2] > 2.0 and abs(side[0]) < 0.2 * side[2]  # on the subject's right (+Z)


def test_a_walking_subject_stays_in_both_views():
    model = load_model(generic_model_path())
    motion = make_action(model, "walking", 8.0, seed=11)
    fk = forward_kinematics(model, torch.as_tensor(motion.q))
    keypoints = fk.keypoints.numpy()  # (T, 44, 3)
    points = np.concatenate([keypoints, fk.markers.numpy()], axis=1)
    flat = points.reshape(-1, 3)
    centre = 0.5 * (flat.min(axis=0) + flat.max(axis=0))
    for size in (SIZE, (256, 256)):
        for cam in paper_cameras(np.random.default_rng(3), centre, size, points=points):
            pixels = cam.project(keypoints)
            assert np.all(cam.inside(pixels)), f"{cam.name} loses keypoints at {size}"
            height = np.nanmax(pixels[..., 1]) - np.nanmin(pixels[..., 1])
            assert height > 0.2 * size[1]  # the person is not a speck


def test_paper_cameras_validate_their_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="subject_centre"):
        paper_cameras(rng, np.zeros(2))
    with pytest.raises(ValueError, match="side"):
        paper_cameras(rng, np.zeros(3), side="top")
