"""Rendering: the VTK camera agrees with Camera.project, the scene's variety, video and
mask files."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import pytest
import pyvista as pv
from scipy.ndimage import binary_dilation

from biokin_nb.render.cameras import Camera, intrinsics
from biokin_nb.render.offscreen import MeshRenderer, set_vtk_camera
from biokin_nb.render.scene import (
    LOWER_GARMENTS,
    PALETTES,
    REGIONS,
    TEXTURES,
    UPPER_GARMENTS,
    Garment,
    random_scene,
    vertex_colours,
)
from biokin_nb.render.video import iter_video, read_masks, read_video, write_masks, write_video


def _camera(size=(160, 120), shift=(7.3, -4.2)) -> Camera:
    K = intrinsics(33.0, 36.0, size)
    K[0, 2] += shift[0]
    K[1, 2] += shift[1]
    return Camera.look_at(np.array([3.0, 1.1, 0.5]), np.array([0.0, 1.0, 0.0]), K, size)


def test_vtk_camera_projects_as_camera_project():
    camera = _camera()
    points = np.array([[0.0, 1.0, 0.0], [0.1, 1.5, 0.3], [-0.2, 0.3, -0.4], [0.3, 0.8, 0.5]])
    plotter = pv.Plotter(off_screen=True, window_size=[camera.width, camera.height])
    plotter.disable_anti_aliasing()
    plotter.set_background("black")
    set_vtk_camera(plotter, camera)
    for i, p in enumerate(points):
        plotter.add_mesh(pv.Sphere(radius=0.01, center=p), color=[(i + 1) * 60] * 3, lighting=False)
    plotter.render()
    image = np.array(plotter.screenshot(return_img=True))[..., 0].astype(int)
    plotter.close()
    for i, p in enumerate(points):
        rows, cols = np.nonzero(np.abs(image - (i + 1) * 60) < 20)
        assert len(rows) > 0
        centroid = np.array([cols.mean(), rows.mean()])
        assert np.linalg.norm(centroid - camera.project(p)) < 0.75


def test_set_vtk_camera_rejects_mismatch():
    camera = _camera()
    plotter = pv.Plotter(off_screen=True, window_size=[100, 100])
    with pytest.raises(ValueError, match="window"):
        set_vtk_camera(plotter, camera)
    plotter.close()


def test_mesh_renderer_mask_covers_projected_vertices():
    sphere = pv.Sphere(radius=0.3, center=(0.0, 1.0, 0.0), theta_resolution=24)
    faces = sphere.faces.reshape(-1, 4)[:, 1:]
    style = random_scene(np.random.default_rng(0))
    colours = np.full((sphere.n_points, 3), 200, dtype=np.uint8)
    camera = _camera((96, 72), (0.0, 0.0))
    with MeshRenderer(faces, colours, style, (96, 72)) as renderer:
        renderer.set_camera(camera)
        frame = renderer.render(np.asarray(sphere.points))
    assert frame.rgb.shape == (72, 96, 3) and frame.mask.shape == (72, 96)
    centre = np.round(camera.project(np.array([0.0, 1.0, 0.0]))).astype(int)
    assert frame.mask[centre[1], centre[0]]
    uv = np.round(camera.project(np.asarray(sphere.points))).astype(int)
    near = binary_dilation(frame.mask)  # silhouette vertices may round one pixel out
    assert near[uv[:, 1], uv[:, 0]].all()
    assert not frame.mask[0, 0] and frame.mask.mean() < 0.5


def _rasterize(pixels: np.ndarray, faces: np.ndarray, size, shift=(0.0, 0.0)) -> np.ndarray:
    """(H, W) bool: pixels whose centre (integer coordinates + ``shift``) lies inside a
    triangle of ``faces`` (F, 3) with vertex pixels ``pixels`` (V, 2): an exact rasterizer."""
    width, height = size
    tri = pixels[faces]  # (F, 3, 2)
    lo = np.floor(tri.min(axis=1)).astype(int)
    span = (np.ceil(tri.max(axis=1)).astype(int) - lo).max(axis=0) + 1
    dx, dy = (g.ravel() for g in np.meshgrid(np.arange(span[0]), np.arange(span[1])))
    px, py = lo[:, :1] + dx, lo[:, 1:] + dy  # (F, N) candidate pixels per triangle
    x, y = px + shift[0], py + shift[1]
    sides = [
        (tri[:, j, :1] - tri[:, i, :1]) * (y - tri[:, i, 1:])
        - (tri[:, j, 1:] - tri[:, i, 1:]) * (x - tri[:, i, :1])
        for i, j in ((0, 1), (1, 2), (2, 0))
    ]
    inside = np.all([s >= 0 for s in sides], axis=0) | np.all([s <= 0 for s in sides], axis=0)
    inside &= (px >= 0) & (px < width) & (py >= 0) & (py < height)
    mask = np.zeros((height, width), dtype=bool)
    mask[py[inside], px[inside]] = True
    return mask


@pytest.mark.parametrize("size", [(97, 71), (256, 256)])
def test_mesh_renderer_mask_is_the_exact_rasterization_of_projected_triangles(size):
    """The person mask is the set of pixels whose centre falls in a triangle projected
    with Camera.project: no half-pixel, flip or principal-point offset (the reference moved
    by a quarter pixel along either axis disagrees with the render far more)."""
    rng = np.random.default_rng(2)
    body = pv.Sphere(radius=0.45, center=(0.0, 1.0, 0.0), theta_resolution=40)
    body.points = body.points * [0.8, 1.2, 0.9] + rng.normal(0.0, 0.004, body.points.shape)
    faces = body.faces.reshape(-1, 4)[:, 1:]
    colours = np.full((body.n_points, 3), 200, dtype=np.uint8)
    camera = _camera(size, (5.3, -3.7))
    with MeshRenderer(faces, colours, random_scene(rng), size) as renderer:
        renderer.set_camera(camera)
        mask = renderer.render(np.asarray(body.points)).mask
    pixels = camera.project(np.asarray(body.points))
    exact = _rasterize(pixels, faces, size)
    assert mask.sum() > 500
    # pixel centres on an edge (or within float32 rounding of one) may go either way
    edge = mask.sum() ** 0.5  # ~ the silhouette's length in pixels / 4
    assert (exact ^ mask).sum() <= 0.05 * edge, (exact ^ mask).sum()
    for shift in ((0.25, 0.0), (-0.25, 0.0), (0.0, 0.25), (0.0, -0.25)):
        shifted = _rasterize(pixels, faces, size, shift)
        assert (shifted ^ mask).sum() > 0.2 * edge, shift


def test_render_views_matches_one_view_at_a_time():
    sphere = pv.Sphere(radius=0.3, center=(0.0, 1.0, 0.0), theta_resolution=24)
    faces = sphere.faces.reshape(-1, 4)[:, 1:]
    colours = np.full((sphere.n_points, 3), 200, dtype=np.uint8)
    cameras = [_camera((96, 72), (0.0, 0.0)), _camera((96, 72), (6.0, -3.0))]
    points = np.asarray(sphere.points)
    with MeshRenderer(faces, colours, random_scene(np.random.default_rng(0)), (96, 72)) as r:
        both = r.render_views(points, cameras)
        alone = []
        for camera in cameras:
            r.set_camera(camera)
            alone.append(r.render(points * 1.0))
    for a, b in zip(both, alone, strict=True):
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(both[0].mask, both[1].mask)


def test_scene_variety():
    assert len(UPPER_GARMENTS) >= 4 and len(LOWER_GARMENTS) >= 4
    assert len(TEXTURES) >= 5 and len(PALETTES) >= 5
    rng = np.random.default_rng(1)
    rest = rng.uniform(-0.5, 0.5, (3000, 3)) + [0, 1, 0]
    regions = rng.integers(len(REGIONS), size=3000)
    style = random_scene(rng)
    looks = set()
    for kind in UPPER_GARMENTS:
        for texture in TEXTURES:
            garment = Garment(kind, texture, 0)
            colours = vertex_colours(
                type(style)(garment, style.lower, *list(style.__dict__.values())[2:]),
                regions,
                rest,
            )
            assert colours.shape == (3000, 3) and colours.dtype == np.uint8
            looks.add(colours.tobytes())
    assert len(looks) == len(UPPER_GARMENTS) * len(TEXTURES)
    draws = {random_scene(rng).lower.kind for _ in range(50)}
    assert draws == set(LOWER_GARMENTS)


@pytest.mark.parametrize("size", [(64, 48), (65, 49)])
def test_video_round_trip(tmp_path, size):
    width, height = size
    frames = [np.full((height, width, 3), 20 * i, dtype=np.uint8) for i in range(7)]
    path = write_video(tmp_path / "clip.mp4", frames, fps=60)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    assert meta["codec"] == "h264" and meta["fps"] == pytest.approx(60)
    decoded = read_video(path, size)
    assert decoded.shape == (7, height, width, 3)
    assert np.abs(decoded.astype(int) - np.stack(frames)).max() <= 3
    assert len(list(iter_video(path))) == 7
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_masks_round_trip(tmp_path):
    masks = np.random.default_rng(0).random((3, 10, 13)) > 0.5
    write_masks(tmp_path / "masks.npz", {"view0": masks, "view1": ~masks})
    back = read_masks(tmp_path / "masks.npz")
    assert np.array_equal(back["view0"], masks) and np.array_equal(back["view1"], ~masks)
