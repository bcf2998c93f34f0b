"""Rendering: cameras (OpenCV convention in the OpenSim world); the scene, offscreen
rendering and video come with the body layer."""

from biokin_nb.render.cameras import (
    Camera,
    intrinsics,
    look_at_rotation,
    paper_cameras,
    read_cameras,
    triangulate,
    write_cameras,
)

__all__ = [
    "Camera",
    "intrinsics",
    "look_at_rotation",
    "paper_cameras",
    "read_cameras",
    "triangulate",
    "write_cameras",
]
