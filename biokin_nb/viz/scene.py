"""Pyvista scenes of a model: a semi-transparent body mesh with the skeleton inside.

Conventions, once for the module: OpenSim's ground frame (Y up, X forward, Z to the
subject's right), metres. A mesh is ``(vertices (V, 3) m, faces (F, 3) int)`` in ground, or a
``pyvista.PolyData``; any body model's mesh drops in once it is in this frame (Anny is Z up:
the body layer converts it). Bones are cylinders between joint centres (FK's
``joint_centres``, :func:`biokin_nb.viz.skeleton.skeleton_segments`) capped by the joint
spheres, so they read as capsules; markers are small spheres. Images are ``(H, W, 3)`` uint8
with row 0 at the top; pixel coordinates are ``(x, y)`` = (column, row).

Views name where the camera stands, looking at the subject with +Y up: ``front`` on +X (the
subject's right appears on the image's left), ``back`` on -X, ``right`` on +Z, ``left`` on
-Z, ``oblique`` in front, to the right and a little above. Functions return the plotter and
leave ``show()`` to the caller; :func:`scene_view` picks an interactive (trame) or a static
view for Jupyter. Without a display on Linux, VTK renders offscreen through EGL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import secrets
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

if sys.platform.startswith("linux") and not (
    os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import pyvista as pv  # noqa: E402  (after the render window choice above)

from biokin_nb._files import atomic_write  # noqa: E402
from biokin_nb.osim.fk import forward_kinematics  # noqa: E402
from biokin_nb.osim.model import KinematicModel  # noqa: E402
from biokin_nb.viz.angles import _numpy  # noqa: E402
from biokin_nb.viz.skeleton import skeleton_segments  # noqa: E402

MeshLike = tuple[Any, Any] | pv.PolyData

VIEWS: dict[str, tuple[float, float, float]] = {
    "front": (1.0, 0.0, 0.0),
    "back": (-1.0, 0.0, 0.0),
    "right": (0.0, 0.0, 1.0),
    "left": (0.0, 0.0, -1.0),
    "oblique": (1.0, 0.35, 0.8),
}
BACKGROUND = "white"
COLOURS = {"body": "#e0ac8a", "bones": "#1f3d7a", "joints": "#d62728", "markers": "#ff9f1c"}
BONE_RADIUS, JOINT_RADIUS, MARKER_RADIUS = 0.012, 0.02, 0.009  # m
FRAME_MARGIN = 1.08  # the framed box spans 1 / FRAME_MARGIN of the image
WINDOW_SIZE = (608, 800)  # px (width, height): multiples of 16 suit H.264
MOVIE_SUFFIXES = (".gif", ".mp4")
# Stand-in body: ellipsoid radius = RADIUS_PER_LENGTH x axis length, clipped (m).
RADIUS_PER_LENGTH, MIN_RADIUS, MAX_RADIUS = 0.17, 0.035, 0.13
MIN_AXIS = 0.05  # m: shorter mass-centre ellipsoids are left out (patellae, toes)

__all__ = [
    "BACKGROUND",
    "COLOURS",
    "VIEWS",
    "body_silhouette_mask",
    "foreground_mask",
    "motion_movie",
    "project_points",
    "render_image",
    "scene_view",
    "screenshot",
    "skeleton_scene",
    "stand_in_body",
    "trame_available",
    "update_scene",
]


# --------------------------------------------------------------------------- geometry


def _fk_numpy(
    model: KinematicModel, q: Any, scales: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint centres (..., J, 3), markers (..., M, 3), mass centres (..., B, 3) (m) at ``q``."""
    q = torch.as_tensor(_numpy(q))
    if q.shape[-1:] != (model.n_coordinates,):
        raise ValueError(
            f"q must have shape (..., {model.n_coordinates}) for model {model.name!r} "
            f"(rad / m, model order); got {tuple(q.shape)}"
        )
    s = None if scales is None else torch.as_tensor(_numpy(scales))
    with torch.no_grad():
        fk = forward_kinematics(model, q, s)
    return _numpy(fk.joint_centres), _numpy(fk.markers), _numpy(fk.coms)


def _template(kind: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere (radius 1) or open cylinder (radius 1, z in [-1, 1]): points, faces."""
    if kind == "sphere":
        shape = pv.Sphere(radius=1.0, theta_resolution=resolution, phi_resolution=resolution)
    else:
        shape = pv.Cylinder(
            direction=(0.0, 0.0, 1.0), radius=1.0, height=2.0, resolution=resolution, capping=False
        )
        shape = shape.triangulate()
    return np.asarray(shape.points, dtype=np.float64), np.asarray(shape.regular_faces)


def _frames(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors (..., 3) perpendicular to the unit ``axis`` (..., 3) and each other."""
    ref = np.zeros_like(axis)
    near_x = np.abs(axis[..., 0]) > 0.9
    ref[..., 0], ref[..., 2] = ~near_x, near_x
    v = np.cross(axis, ref)
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    return v, np.cross(axis, v)


def _instances(
    kind: str,
    start: np.ndarray,
    end: np.ndarray,
    radius: np.ndarray | float,
    cap: np.ndarray | float = 0.0,
    resolution: int = 12,
) -> tuple[np.ndarray, np.ndarray]:
    """One shape per (start, end) pair (..., N, 3): points (..., N * S, 3), faces (N * G, 3).

    A shape is centred between its ends, its long axis along ``end - start``, of half length
    ``|end - start| / 2 + cap`` and radius ``radius`` (N,) or scalar, m. For spheres pass
    ``start == end`` and ``cap == radius``.
    """
    points, faces = _template(kind, resolution)
    delta = end - start
    length = np.linalg.norm(delta, axis=-1, keepdims=True)
    axis = np.where(length > 1e-9, delta / np.maximum(length, 1e-12), [0.0, 1.0, 0.0])
    v, w = _frames(axis)
    half = length / 2 + np.asarray(cap, dtype=np.float64)[..., None]
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), length.shape[:-1])[..., None]
    centre = (start + end) / 2
    out = (
        centre[..., None, :]
        + points[:, 0, None] * (r * v)[..., None, :]
        + points[:, 1, None] * (r * w)[..., None, :]
        + points[:, 2, None] * (half * axis)[..., None, :]
    )
    n, s = start.shape[-2], len(points)
    all_faces = (faces[None] + s * np.arange(n)[:, None, None]).reshape(-1, 3)
    return out.reshape(*out.shape[:-3], n * s, 3), all_faces


def _radius(length: np.ndarray) -> np.ndarray:
    """Stand-in ellipsoid radius (m) for an axis of ``length`` (m)."""
    return np.clip(RADIUS_PER_LENGTH * length, MIN_RADIUS, MAX_RADIUS)


def _widest_pair(points: np.ndarray) -> tuple[int, int]:
    """Indices of the two most distant of ``points`` (N, 3)."""
    gaps = np.linalg.norm(points[:, None] - points[None], axis=-1)
    i, j = np.unravel_index(np.argmax(gaps), gaps.shape)
    return int(i), int(j)


def _ellipsoid_specs(
    model: KinematicModel, joints: np.ndarray, coms: np.ndarray
) -> list[tuple[str, int, int, float]]:
    """The stand-in body's ellipsoids, from the default pose's joints (J, 3) and coms (B, 3).

    ``("joints", a, b, radius)`` spans joint centres ``a`` and ``b``: one along every bone,
    and for a body with several child joints (pelvis, torso) a girdle across its two
    farthest (hips, shoulders). ``("mass", k, k, radius)`` runs from body ``k``'s joint
    centre through its mass centre to twice that distance, for a body with no child joint
    or several (the trunk and head above the lumbar joint), as wide as 0.4 x its girdle.
    Radii (m) follow the axis lengths at the default pose, so they do not change with pose.
    """
    segments = skeleton_segments(model)
    specs = [
        ("joints", a, b, float(_radius(np.linalg.norm(joints[b] - joints[a])))) for a, b in segments
    ]
    for k, body in enumerate(model.bodies):
        kids = [c for _, c in segments if model.joints[c].parent_body == k]
        width = 0.0
        if len(kids) >= 2:
            i, j = _widest_pair(joints[kids])
            width = float(np.linalg.norm(joints[kids[i]] - joints[kids[j]]))
            specs.append(("joints", kids[i], kids[j], float(_radius(np.asarray(width)))))
        length = 2 * float(np.linalg.norm(coms[k] - joints[body.joint]))
        if len(kids) != 1 and body.mass > 0 and length >= MIN_AXIS:
            specs.append(("mass", k, k, max(float(_radius(np.asarray(length))), 0.4 * width)))
    return specs


def _ellipsoid_ends(
    model: KinematicModel,
    specs: list[tuple[str, int, int, float]],
    joints: np.ndarray,
    coms: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Axis ends (..., E, 3) (m) of ``specs`` at poses with joints (..., J, 3), coms (..., B, 3)."""
    ends = []
    for kind, a, b, _ in specs:
        if kind == "joints":
            ends.append((joints[..., a, :], joints[..., b, :]))
        else:
            origin = joints[..., model.bodies[a].joint, :]
            ends.append((origin, 2 * coms[..., a, :] - origin))
    return tuple(np.stack([e[n] for e in ends], axis=-2) for n in (0, 1))


def stand_in_body(
    model: KinematicModel, q: Any, scales: Any = None, *, resolution: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """A rough body mesh of ellipsoids around the skeleton, for when no body model is at hand.

    Args:
        q: (..., C) coordinates (rad / m, model order); any leading dims (e.g. T frames).
        scales: (B, 3) body scale factors, or None.
        resolution: points around each ellipsoid.

    Returns:
        vertices (..., V, 3) in ground (m) and faces (F, 3): the same faces for every pose.
    """
    ref_joints, _, ref_coms = _fk_numpy(model, model.defaults, scales)
    specs = _ellipsoid_specs(model, ref_joints, ref_coms)
    joints, _, coms = _fk_numpy(model, q, scales)
    start, end = _ellipsoid_ends(model, specs, joints, coms)
    radius = np.array([spec[3] for spec in specs])
    return _instances("sphere", start, end, radius, 0.5 * radius, resolution)


def _mesh_polydata(mesh: MeshLike) -> pv.PolyData:
    """``(vertices (V, 3), faces (F, 3))`` or PolyData -> PolyData (checked)."""
    if isinstance(mesh, pv.PolyData):
        return mesh
    vertices, faces = (_numpy(mesh[0]), np.asarray(_numpy(mesh[1]), dtype=np.int64))
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"mesh vertices must have shape (V, 3) in m; got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"mesh faces must have shape (F, 3) (triangles); got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"mesh faces index vertices 0..{len(vertices) - 1}; got {faces.max()}")
    return pv.PolyData.from_regular_faces(vertices, faces)


def _polydata(points: np.ndarray, faces: np.ndarray) -> pv.PolyData:
    return pv.PolyData.from_regular_faces(points, faces)


def _skeleton_meshes(
    model: KinematicModel, joints: np.ndarray, markers: np.ndarray, show_markers: bool
) -> dict[str, pv.PolyData]:
    """Bones, joint spheres and marker spheres of one pose (joints (J, 3), markers (M, 3))."""
    pairs = np.asarray(skeleton_segments(model), dtype=int).reshape(-1, 2)
    meshes = {
        "bones": _polydata(
            *_instances("cylinder", joints[pairs[:, 0]], joints[pairs[:, 1]], BONE_RADIUS)
        ),
        "joints": _polydata(*_instances("sphere", joints, joints, JOINT_RADIUS, JOINT_RADIUS)),
    }
    if show_markers and len(markers):
        meshes["markers"] = _polydata(
            *_instances("sphere", markers, markers, MARKER_RADIUS, MARKER_RADIUS, resolution=8)
        )
    return meshes


# --------------------------------------------------------------------------- scenes


def _draw(plotter: pv.Plotter, meshes: dict[str, pv.PolyData], opacity: float) -> None:
    """Add (or replace, by name) the actors ``body``, ``bones``, ``joints``, ``markers``.

    Rendering is suppressed meanwhile (pyvista renders after each actor otherwise).
    """
    suppressed = plotter.suppress_rendering
    plotter.suppress_rendering = True
    try:
        for name, mesh in meshes.items():
            plotter.add_mesh(
                mesh,
                color=COLOURS[name],
                opacity=opacity if name == "body" else 1.0,
                smooth_shading=True,
                name=name,
                reset_camera=False,
            )
    finally:
        plotter.suppress_rendering = suppressed


def _set_view(plotter: pv.Plotter, view: str, bounds: Sequence[float]) -> None:
    """Look from ``view`` at the centre of ``bounds`` (6,) m, +Y up, the box just in frame."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; pick one of {', '.join(VIEWS)}")
    lo, hi = np.asarray(bounds[::2]), np.asarray(bounds[1::2])
    centre = (lo + hi) / 2
    back = np.asarray(VIEWS[view]) / np.linalg.norm(VIEWS[view])  # from centre to camera
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    corners = np.array(np.meshgrid(*zip(lo, hi, strict=True))).reshape(3, -1).T - centre
    width, height = plotter.window_size
    tan_v = np.tan(np.radians(plotter.camera.view_angle) / 2) / FRAME_MARGIN
    tan_h = tan_v * width / height
    distance = np.max(
        corners @ back + np.maximum(abs(corners @ up) / tan_v, abs(corners @ right) / tan_h)
    )
    camera = plotter.camera
    camera.focal_point = centre
    camera.position = centre + distance * back
    camera.up = up
    plotter.renderer.ResetCameraClippingRange()


def _bounds(*points: np.ndarray) -> list[float]:
    """[xmin, xmax, ymin, ymax, zmin, zmax] (m) of all finite points (..., 3)."""
    flat = np.concatenate([p.reshape(-1, 3) for p in points if p.size])
    flat = flat[np.isfinite(flat).all(axis=1)]
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    return [float(v) for pair in zip(lo, hi, strict=True) for v in pair]


def skeleton_scene(
    model: KinematicModel,
    q: Any,
    *,
    mesh: MeshLike | None = None,
    scales: Any = None,
    opacity: float = 0.35,
    off_screen: bool = True,
    show_markers: bool = True,
    view: str = "front",
    window_size: tuple[int, int] = WINDOW_SIZE,
) -> pv.Plotter:
    """The body mesh (semi-transparent) with the skeleton of pose ``q`` inside it.

    Args:
        q: (C,) coordinates (rad / m, model order).
        mesh: ``(vertices (V, 3) m, faces (F, 3))`` or PolyData in ground, or None (skeleton
            only); e.g. :func:`stand_in_body` or a body model's mesh.
        scales: (B, 3) body scale factors, or None.
        opacity: of the mesh, 0..1.
        view: camera position (see :data:`VIEWS`), framing the mesh and the skeleton.
        window_size: (width, height) px of screenshots.

    Returns:
        A plotter with actors named ``body`` (when a mesh is given), ``bones``, ``joints``
        and ``markers`` (when shown and the model has markers); call ``show()`` or
        :func:`screenshot`.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    if _numpy(q).ndim != 1:
        raise ValueError(f"q must be one pose (C,); got shape {_numpy(q).shape}")
    plotter = pv.Plotter(off_screen=off_screen, window_size=list(window_size))
    plotter.set_background(BACKGROUND)
    # No depth peeling: with Mesa's EGL it hides translucent actors entirely.
    points = update_scene(
        plotter, model, q, mesh=mesh, scales=scales, show_markers=show_markers, opacity=opacity
    )
    _set_view(plotter, view, _bounds(*points))
    return plotter


def update_scene(
    plotter: pv.Plotter,
    model: KinematicModel,
    q: Any,
    *,
    mesh: MeshLike | None = None,
    scales: Any = None,
    show_markers: bool = True,
    opacity: float = 0.35,
) -> list[np.ndarray]:
    """Redraw the scene's actors at pose ``q`` (C,), keeping the camera.

    Returns:
        The drawn points: joint centres (J, 3), markers (M, 3) and mesh vertices (V, 3), m.
    """
    joints, markers, _ = _fk_numpy(model, q, scales)
    meshes = _skeleton_meshes(model, joints, markers, show_markers)
    if mesh is not None:
        meshes = {"body": _mesh_polydata(mesh), **meshes}
    _draw(plotter, meshes, opacity)
    body = [np.asarray(meshes["body"].points)] if "body" in meshes else []
    return [joints, markers, *body]


def render_image(plotter: pv.Plotter) -> np.ndarray:
    """(H, W, 3) uint8 image of the scene as it is now (pyvista re-renders only on request)."""
    plotter.render()
    return np.array(plotter.screenshot(return_img=True), dtype=np.uint8)[..., :3]


def screenshot(plotter: pv.Plotter, path: str | os.PathLike[str]) -> Path:
    """Render ``plotter`` to a PNG file (written atomically); returns its path."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"screenshot writes PNG: give a path ending in .png, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(render_image(plotter))
    with atomic_write(path, "wb") as file:
        image.save(file, format="PNG")
    return path


# --------------------------------------------------------------------------- movies


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, moved onto it when the block succeeds."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _mesh_frames(mesh_sequence: tuple[Any, Any] | None, n_frames: int) -> list[Any] | None:
    """Per-frame ``(vertices (V, 3), faces)`` of a ``(vertices (T, V, 3), faces)`` pair."""
    if mesh_sequence is None:
        return None
    vertices, faces = _numpy(mesh_sequence[0]), mesh_sequence[1]
    if vertices.ndim != 3 or vertices.shape[0] != n_frames or vertices.shape[2] != 3:
        raise ValueError(
            f"mesh_sequence vertices must have shape (T, V, 3) with T = {n_frames} frames; "
            f"got {vertices.shape}"
        )
    return [(v, faces) for v in vertices]


def _root_shift(model: KinematicModel, joints: np.ndarray) -> np.ndarray:
    """(T, 3) horizontal (X, Z) displacement (m) of the root joint from the first frame."""
    root = next(k for k, j in enumerate(model.joints) if j.parent_body < 0)
    shift = joints[:, root] - joints[:1, root]
    shift[:, 1] = 0.0
    return shift


def _movie_frames(
    model: KinematicModel,
    q: np.ndarray,
    meshes: list[Any] | None,
    scales: Any,
    view: str,
    window_size: tuple[int, int],
    show_markers: bool,
    follow: bool,
) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 images of each frame.

    The camera frames the whole motion; with ``follow`` it moves along with the root joint
    horizontally and frames the motion relative to it.
    """
    joints, markers, _ = _fk_numpy(model, q, scales)
    shift = _root_shift(model, joints) if follow else np.zeros((len(q), 3))
    points = [joints, markers, *([] if meshes is None else [np.stack([m[0] for m in meshes])])]
    plotter = skeleton_scene(
        model,
        q[0],
        mesh=None if meshes is None else meshes[0],
        scales=scales,
        view=view,
        window_size=window_size,
        show_markers=show_markers,
    )
    _set_view(plotter, view, _bounds(*[p - shift[:, None] for p in points]))
    focal, position = np.array(plotter.camera.focal_point), np.array(plotter.camera.position)
    try:
        for t in range(len(q)):
            mesh = None if meshes is None else meshes[t]
            update_scene(plotter, model, q[t], mesh=mesh, scales=scales, show_markers=show_markers)
            plotter.camera.focal_point, plotter.camera.position = (
                focal + shift[t],
                position + shift[t],
            )
            plotter.renderer.ResetCameraClippingRange()
            yield render_image(plotter)
    finally:
        plotter.close()


def _write_gif(frames: Iterator[np.ndarray], path: Path, fps: float) -> None:
    from PIL import Image

    images = [
        Image.fromarray(f).quantize(255, Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        for f in frames
    ]
    with atomic_write(path, "wb") as file:
        images[0].save(
            file,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(20, round(1000 / fps)),
            loop=0,
        )


def _write_mp4(frames: Iterator[np.ndarray], path: Path, fps: float, size: tuple[int, int]) -> None:
    import imageio_ffmpeg

    with _atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp), size, fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=7
        )
        writer.send(None)
        try:
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
        finally:
            writer.close()


def motion_movie(
    model: KinematicModel,
    q: Any,
    path: str | os.PathLike[str],
    *,
    mesh_sequence: tuple[Any, Any] | None = None,
    scales: Any = None,
    fps: float = 30.0,
    view: str = "front",
    window_size: tuple[int, int] = WINDOW_SIZE,
    show_markers: bool = True,
    follow: bool = False,
) -> Path:
    """Render a motion offscreen to an animated GIF or an H.264 MP4 (by ``path``'s suffix).

    Args:
        q: (T, C) coordinates (rad / m, model order), one movie frame each.
        mesh_sequence: ``(vertices (T, V, 3) m, faces (F, 3))`` of the body per frame, or None.
        fps: frames per second of the movie.
        view: fixed camera (see :data:`VIEWS`) framing the whole motion.
        window_size: (width, height) px; multiples of 16 for MP4.
        follow: move the camera with the root joint (pelvis) horizontally, so that a
            walking subject stays in the middle of the frame.

    Returns:
        The path written (atomically).
    """
    path = Path(path)
    if path.suffix.lower() not in MOVIE_SUFFIXES:
        raise ValueError(f"movie path must end in .gif or .mp4, got {path}")
    q = _numpy(q)
    if q.ndim != 2 or len(q) == 0 or q.shape[1] != model.n_coordinates:
        raise ValueError(
            f"q must have shape (T, {model.n_coordinates}) with T >= 1 for model "
            f"{model.name!r}; got {q.shape}"
        )
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    meshes = _mesh_frames(mesh_sequence, len(q))
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = _movie_frames(model, q, meshes, scales, view, window_size, show_markers, follow)
    if path.suffix.lower() == ".gif":
        _write_gif(frames, path, fps)
    else:
        _write_mp4(frames, path, fps, window_size)
    return path


# --------------------------------------------------------------------------- projections


def project_points(
    plotter: pv.Plotter, points: Any, image_shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Pixel positions (N, 2) = (column, row from the top) of world points (N, 3) m.

    Uses the plotter's camera; ``image_shape`` (H, W) defaults to the window size.
    """
    width, height = plotter.window_size if image_shape is None else image_shape[::-1]
    matrix = plotter.camera.GetCompositeProjectionTransformMatrix(width / height, -1, 1)
    m = np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])
    p = _numpy(points).reshape(-1, 3)
    clip = np.c_[p, np.ones(len(p))] @ m.T
    ndc = clip[:, :2] / clip[:, 3:]
    return np.c_[(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height]


def body_silhouette_mask(
    plotter: pv.Plotter, mesh: MeshLike, image_shape: tuple[int, int] | None = None
) -> np.ndarray:
    """(H, W) bool: where the mesh projects, by filling its projected triangles.

    Independent of VTK's rasterizer: vertices go through :func:`project_points` and each
    triangle is filled with PIL, so a rendered image can be checked against it.
    """
    from PIL import Image, ImageDraw

    poly = _mesh_polydata(mesh)
    width, height = plotter.window_size if image_shape is None else image_shape[::-1]
    pixels = project_points(plotter, poly.points, (height, width))
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for triangle in pixels[np.asarray(poly.regular_faces)]:
        draw.polygon([tuple(xy) for xy in triangle], fill=1)
    return np.asarray(canvas, dtype=bool)


def foreground_mask(
    image: Any, background: Sequence[int] = (255, 255, 255), tol: int = 6
) -> np.ndarray:
    """(H, W) bool: pixels of an (H, W, 3+) uint8 image differing from ``background`` by > tol."""
    rgb = np.asarray(image)[..., :3].astype(np.int16)
    return (np.abs(rgb - np.asarray(background, dtype=np.int16)) > tol).any(axis=-1)


# --------------------------------------------------------------------------- Jupyter


def trame_available() -> bool:
    """Whether pyvista's interactive Jupyter backend (trame) is installed."""
    return (
        importlib.util.find_spec("trame") is not None
        and importlib.util.find_spec("trame_vtk") is not None
    )


def scene_view(plotter: pv.Plotter, interactive: bool | None = None) -> Any:
    """What a notebook cell should display: an interactive view or a static PNG.

    Interactive (trame) when ``interactive`` is True, or None and a live widget front end
    and trame are present; otherwise an ``IPython.display.Image`` of a screenshot (papermill,
    nbconvert, no trame: no error, no widget).
    """
    from IPython.display import Image

    from biokin_nb.viz.explorer import widget_frontend_available

    if interactive is None:
        interactive = trame_available() and widget_frontend_available()
    if interactive:
        if not trame_available():
            raise RuntimeError("interactive scenes need trame: pip install 'pyvista[jupyter]'")
        return plotter.show(jupyter_backend="trame", return_viewer=True, auto_close=False)
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(render_image(plotter)).save(buffer, format="PNG")
    return Image(data=buffer.getvalue(), format="png")
