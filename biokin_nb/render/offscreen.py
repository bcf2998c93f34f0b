"""Offscreen rendering of a body-mesh sequence from a :class:`~biokin_nb.render.Camera`.

The VTK camera is set from the pinhole camera exactly: position = the camera centre,
focal point one metre along the optical axis (row 3 of R), view-up = -(row 2 of R) (OpenCV
y points down), vertical view angle ``2 atan(H / (2 fy))``, and the principal point
through VTK's window centre. A world point then lands on the pixel
:meth:`Camera.project` gives (pixel centres at integer coordinates). Square pixels and
zero skew are required.

Each frame is rendered twice per view: in colour (clothing colours, lights, floor,
backdrop) and as a person mask (the body in flat white on black, no floor, no
anti-aliasing): a pixel is in the mask exactly when its centre falls inside a triangle
projected with :meth:`Camera.project`. The pixels are read straight from the window
after each render (one reusable image filter, no screenshot round trip). Vertices are in
OpenSim's ground frame (m, Y up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyvista as pv
import scipy.sparse
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

from biokin_nb.render.cameras import Camera
from biokin_nb.render.scene import SceneStyle

NEAR_M, FAR_M = 0.05, 100.0
FLOOR_SIZE_M = 40.0


@dataclass
class RenderedFrame:
    """One view of one frame: ``rgb`` (H, W, 3) uint8 and ``mask`` (H, W) bool."""

    rgb: np.ndarray
    mask: np.ndarray


def set_vtk_camera(plotter: pv.Plotter, camera: Camera) -> None:
    """Point the plotter's VTK camera as ``camera`` (see the module docstring).

    Raises:
        ValueError: the plotter's window size differs from the camera's image size, or
            the intrinsics have skew or non-square pixels.
    """
    K = camera.K
    if abs(K[0, 1]) > 1e-9 or abs(K[0, 0] - K[1, 1]) > 1e-6 * K[1, 1]:
        raise ValueError(f"rendering needs square pixels and zero skew; got K = {K.tolist()}")
    if tuple(plotter.window_size) != (camera.width, camera.height):
        raise ValueError(
            f"plotter window {tuple(plotter.window_size)} != camera image "
            f"{(camera.width, camera.height)}"
        )
    vtk_camera = plotter.renderer.GetActiveCamera()
    centre = camera.centre
    vtk_camera.SetPosition(*centre)
    vtk_camera.SetFocalPoint(*(centre + camera.R[2]))
    vtk_camera.SetViewUp(*(-camera.R[1]))
    vtk_camera.SetViewAngle(float(np.degrees(2 * np.arctan(camera.height / (2 * K[1, 1])))))
    # Principal point -> normalized device coordinates (x right, y up, pixel edges at +/-1).
    wx = 2 * (K[0, 2] + 0.5) / camera.width - 1
    wy = 1 - 2 * (K[1, 2] + 0.5) / camera.height
    vtk_camera.SetWindowCenter(-wx, -wy)
    vtk_camera.SetClippingRange(NEAR_M, FAR_M)
    plotter.camera_set = True  # pyvista must not reset the view to the scene's bounds


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals of a triangle mesh (V, 3), faces (F, 3)."""
    return _normals(vertices, faces, _incidence(faces, len(vertices)))


def _incidence(faces: np.ndarray, n_vertices: int) -> scipy.sparse.csr_matrix:
    """(V, F) sparse 0/1 matrix: vertex v is a corner of face f."""
    n_faces = len(faces)
    rows = np.asarray(faces, dtype=np.int64).T.ravel()
    cols = np.tile(np.arange(n_faces), 3)
    return scipy.sparse.csr_matrix(
        (np.ones(3 * n_faces), (rows, cols)), shape=(n_vertices, n_faces)
    )


def _normals(vertices: np.ndarray, faces: np.ndarray, incidence) -> np.ndarray:
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    normals = incidence @ np.cross(b - a, c - a)
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(norm, 1e-12)


class MeshRenderer:
    """A reusable offscreen scene of one body mesh with a clip's look.

    Args:
        faces: (F, 3) triangle vertex indices.
        colours: (V, 3) uint8 vertex colours (:func:`biokin_nb.render.scene.vertex_colours`).
        style: lights and background.
        size: (width, height) pixels.
    """

    def __init__(
        self,
        faces: np.ndarray,
        colours: np.ndarray,
        style: SceneStyle,
        size: tuple[int, int],
    ) -> None:
        width, height = (int(s) for s in size)
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive; got {width} x {height}")
        self.size = (width, height)
        self.faces = np.asarray(faces, dtype=np.int64)
        self.style = style
        n_vertices = len(colours)
        self._incidence = _incidence(self.faces, n_vertices)
        cells = np.hstack([np.full((len(self.faces), 1), 3), self.faces]).ravel()
        self.mesh = pv.PolyData(np.zeros((n_vertices, 3)), cells)
        self.mesh.point_data["rgb"] = np.asarray(colours, dtype=np.uint8)
        self.mesh.point_data.set_array(np.zeros((n_vertices, 3)), "Normals")
        self.mesh.point_data.active_normals_name = "Normals"
        self.plotter = pv.Plotter(off_screen=True, window_size=[width, height], lighting="none")
        self.plotter.disable_anti_aliasing()
        self.body = self.plotter.add_mesh(
            self.mesh, scalars="rgb", rgb=True, ambient=style.lighting.ambient, diffuse=0.8
        )
        self.silhouette = self.plotter.add_mesh(self.mesh, color="white", lighting=False)
        self.silhouette.mapper.scalar_visibility = False
        floor = pv.Plane(
            center=(0, -0.001, 0), direction=(0, 1, 0), i_size=FLOOR_SIZE_M, j_size=FLOOR_SIZE_M
        )
        self.floor = self.plotter.add_mesh(floor, color=style.background.floor, ambient=0.3)
        self._add_lights()
        self._mask_mode(False)
        self._capture = vtkWindowToImageFilter()  # reads the window as last rendered
        self._capture.SetInput(self.plotter.render_window)
        self._capture.SetInputBufferTypeToRGB()
        self._capture.ReadFrontBufferOn()
        self._capture.ShouldRerenderOff()

    def _add_lights(self) -> None:
        light = self.style.lighting
        az, el = np.radians(light.azimuth_deg), np.radians(light.elevation_deg)
        direction = np.array([np.cos(el) * np.cos(az), np.sin(el), -np.cos(el) * np.sin(az)])
        for sign, intensity in ((1.0, light.key_intensity), (-1.0, light.fill_intensity)):
            d = direction * np.array([sign, 1.0, sign])
            self.plotter.add_light(
                pv.Light(position=tuple(10 * d), focal_point=(0, 1, 0), intensity=intensity)
            )

    def _mask_mode(self, on: bool) -> None:
        self.body.visibility = not on
        self.floor.visibility = not on
        self.silhouette.visibility = on
        if on:
            self.plotter.set_background("black")
        else:
            bg = self.style.background
            self.plotter.set_background(np.array(bg.bottom) / 255.0, top=np.array(bg.top) / 255.0)

    def set_camera(self, camera: Camera) -> None:
        """Render from ``camera`` (its image size must be the renderer's)."""
        set_vtk_camera(self.plotter, camera)

    def set_vertices(self, vertices: np.ndarray) -> None:
        """Pose the mesh at ``vertices`` (V, 3) m (and update its normals)."""
        vertices = np.asarray(vertices, dtype=np.float64)
        self.mesh.points[:] = vertices
        self.mesh.point_data["Normals"][:] = _normals(vertices, self.faces, self._incidence)
        self.mesh.Modified()

    def render(self, vertices: np.ndarray | None = None) -> RenderedFrame:
        """The colour image and person mask of the mesh posed at ``vertices`` (V, 3) m
        (None: as last posed) from the current camera."""
        if vertices is not None:
            self.set_vertices(vertices)
        rgb = self._grab()
        self._mask_mode(True)
        mask = self._grab()[..., 0] > 127
        self._mask_mode(False)
        return RenderedFrame(rgb, mask)

    def render_views(self, vertices: np.ndarray, cameras: Sequence[Camera]) -> list[RenderedFrame]:
        """The frames of the mesh posed at ``vertices`` (V, 3) m seen by each camera (the
        mesh and its normals are updated once for all views)."""
        self.set_vertices(vertices)
        frames = []
        for camera in cameras:
            self.set_camera(camera)
            frames.append(self.render())
        return frames

    def _grab(self) -> np.ndarray:
        """(H, W, 3) uint8: render, then read the window's pixels (top row first)."""
        self.plotter.render_window.Render()  # pyvista's render() waits for a first show
        self._capture.Modified()
        self._capture.Update()
        image = self._capture.GetOutput()
        width, height, _ = image.GetDimensions()
        pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, 3)
        return np.ascontiguousarray(pixels[::-1])

    def close(self) -> None:
        self._capture.SetInput(None)
        self.plotter.close()

    def __enter__(self) -> MeshRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
