"""Pinhole cameras: OpenCV convention, OpenSim world, the paper's two-camera setup.

Conventions:
    - World: OpenSim ground, metres, Y up, X forward (the way a subject faces at heading
      0), Z to the subject's right.
    - Camera frame (OpenCV): x right, y down, z forward (the optical axis). A world point
      ``X`` has camera coordinates ``R @ X + t`` and pixel ``K @ (R X + t)`` divided by
      depth.
    - Pixels: (u, v) = (column, row); pixel centres at integer coordinates, (0, 0) the
      centre of the top-left pixel, so the image centre is ``((W - 1) / 2, (H - 1) / 2)``.
    - Intrinsics from a physical lens: square pixels, the sensor width spans the image
      width ("horizontal fit"): ``f_px = focal_mm / sensor_width_mm * W``.
    - ``cameras.json``: ``{"convention": "opencv", "world": ..., "cameras": [{"name",
      "width", "height", "K" (3x3), "R" (3x3), "t" (3)}, ...]}``.

Arrays take any leading batch dimensions ``...``; float64.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from biokin_nb._files import atomic_write

PAPER_FOCAL_MM = 33.0
PAPER_SENSOR_WIDTH_MM = 36.0
PAPER_HEIGHT_M = (1.0, 1.2)  # 1.1 +/- 0.1 m
JSON_CONVENTION = "opencv"
JSON_WORLD = "OpenSim ground: metres, Y up, X forward, Z right"
WORLD_UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class Camera:
    """A pinhole camera.

    Attributes:
        K: (3, 3) intrinsics (pixels): ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``.
        R: (3, 3) rotation world -> camera (rows: camera x, y, z axes in world).
        t: (3,) translation (m): camera coordinates of the world origin.
        width, height: image size (pixels).
        name: a label ("frontal", "sagittal").
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int
    name: str = "camera"

    def __post_init__(self) -> None:
        for attr, shape in (("K", (3, 3)), ("R", (3, 3)), ("t", (3,))):
            value = np.asarray(getattr(self, attr), dtype=np.float64)
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ValueError(f"Camera.{attr} must be a finite {shape} array; got {value.shape}")
            object.__setattr__(self, attr, value)
        if not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-6) or np.linalg.det(self.R) < 0:
            raise ValueError("Camera.R must be a rotation matrix (orthonormal, det +1)")
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0 or not np.allclose(self.K[2], [0, 0, 1]):
            raise ValueError(
                f"Camera.K must have positive focal lengths and last row 0 0 1; got {self.K}"
            )
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"image size must be positive; got {self.width} x {self.height}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def centre(self) -> np.ndarray:
        """(3,) the camera centre in the world (m)."""
        return -self.R.T @ self.t

    @property
    def projection(self) -> np.ndarray:
        """(3, 4) the projection matrix ``K [R | t]``."""
        return self.K @ np.hstack([self.R, self.t[:, None]])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points (m) -> (..., 3) camera coordinates (m)."""
        return _points(points) @ self.R.T + self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points (m) -> (..., 2) pixels (u right, v down); NaN for points
        at or behind the camera plane."""
        cam = self.to_camera(points)
        pix = cam @ self.K.T
        depth = cam[..., 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(depth > 1e-9, pix[..., :2] / depth, np.nan)

    def inside(self, pixels: np.ndarray, border: float = 0.0) -> np.ndarray:
        """(...,) bool: pixels (..., 2) at least ``border`` pixels inside the image."""
        u, v = pixels[..., 0], pixels[..., 1]
        lo, hi_u, hi_v = border - 0.5, self.width - 0.5 - border, self.height - 0.5 - border
        return (u >= lo) & (u <= hi_u) & (v >= lo) & (v <= hi_v)

    def to_json(self) -> dict:
        """A JSON-ready dict (the per-camera entry of ``cameras.json``)."""
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "K": self.K.tolist(),
            "R": self.R.tolist(),
            "t": self.t.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Camera:
        """The camera of a :meth:`to_json` dict.

        Raises:
            ValueError: keys missing (named) or values of the wrong shape.
        """
        missing = [k for k in ("width", "height", "K", "R", "t") if k not in data]
        if missing:
            raise ValueError(f"camera entry lacks {', '.join(missing)} (has {', '.join(data)})")
        return cls(
            K=np.asarray(data["K"], dtype=np.float64),
            R=np.asarray(data["R"], dtype=np.float64),
            t=np.asarray(data["t"], dtype=np.float64),
            width=data["width"],
            height=data["height"],
            name=str(data.get("name", "camera")),
        )

    @classmethod
    def look_at(
        cls,
        position: np.ndarray,
        target: np.ndarray,
        K: np.ndarray,
        size: tuple[int, int],
        name: str = "camera",
    ) -> Camera:
        """A camera at ``position`` (3,) m whose optical axis passes through ``target`` (3,),
        image rows level with the world's horizontal (Y up); ``size`` = (width, height)."""
        R = look_at_rotation(position, target)
        return cls(K, R, -R @ np.asarray(position, dtype=np.float64), size[0], size[1], name)


def _points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 1 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3); got {points.shape}")
    return points


def intrinsics(focal_mm: float, sensor_width_mm: float, size: tuple[int, int]) -> np.ndarray:
    """(3, 3) K of a lens of ``focal_mm`` on a sensor ``sensor_width_mm`` wide fitted to the
    image width (square pixels), principal point at the image centre; ``size`` = (W, H).

    Raises:
        ValueError: a non-positive focal length, sensor width or image size.
    """
    width, height = size
    if not (focal_mm > 0 and sensor_width_mm > 0 and width > 0 and height > 0):
        raise ValueError(
            f"focal length, sensor width and image size must be positive; got {focal_mm} mm, "
            f"{sensor_width_mm} mm, {width} x {height}"
        )
    f = focal_mm / sensor_width_mm * width
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def look_at_rotation(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) world -> camera rotation of a camera at ``position`` looking at ``target``
    (OpenCV axes: z towards the target, x horizontal to the right, y down).

    Raises:
        ValueError: position and target coincide, or the view is vertical.
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError("camera position and target coincide")
    z = forward / norm
    x = np.cross(z, WORLD_UP)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("a camera looking straight up or down has no level image rows")
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


# ---------------------------------------------------------------------------- the paper's setup


def paper_cameras(
    rng: np.random.Generator,
    subject_centre: np.ndarray,
    size: tuple[int, int] = (1080, 720),
    *,
    points: np.ndarray | None = None,
    heading_deg: float = 0.0,
    side: str = "right",
    pad: float = 0.25,
    border: float = 0.04,
    jitter_deg: float = 5.0,
) -> tuple[Camera, Camera]:
    """The two static cameras of Lin et al. (2024): frontal and sagittal.

    Both have a 33 mm lens on a 36 mm wide sensor (horizontal fit), stand 1.1 +/- 0.1 m
    high (uniform) and look at ``subject_centre``. The frontal one stands in front of the
    subject (along its facing direction ``heading_deg``: 0 = +X), the sagittal one on its
    ``side`` ("right": +Z at heading 0); each direction is perturbed by up to
    +/-``jitter_deg`` degrees of azimuth.

    Distance: the smallest (found by bisection) that keeps every point of ``points``
    padded by ``pad`` m along each world axis inside the image with ``border`` times the
    shorter image side left free on every side, then lengthened by a random 0 to 10 %. Pass
    the clip's keypoints and markers over all frames as ``points`` (T, K, 3) or (N, 3) so
    that the whole motion stays in frame; ``pad`` covers what lies beyond them (head top,
    hands, feet). None: a standing person, a 0.8 m wide, 2.0 m tall column on the floor
    under ``subject_centre``.

    Args:
        rng: random generator (heights, azimuth jitter, extra distance).
        subject_centre: (3,) m, the point both cameras look at.
        size: (width, height) pixels.

    Returns:
        (frontal, sagittal) cameras named "frontal" and "sagittal".
    """
    centre = np.asarray(subject_centre, dtype=np.float64)
    if centre.shape != (3,):
        raise ValueError(f"subject_centre must have shape (3,); got {centre.shape}")
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left'; got {side!r}")
    cloud = _padded(_cloud(points, centre), pad)
    K = intrinsics(PAPER_FOCAL_MM, PAPER_SENSOR_WIDTH_MM, size)
    sagittal = heading_deg + (-90.0 if side == "right" else 90.0)
    cameras = []
    for name, azimuth in (("frontal", heading_deg), ("sagittal", sagittal)):
        azimuth += rng.uniform(-jitter_deg, jitter_deg)
        height = rng.uniform(*PAPER_HEIGHT_M)
        camera = _fit_distance(K, size, centre, azimuth, height, cloud, border, name)
        extra = rng.uniform(1.0, 1.1)
        position = centre + extra * (camera.centre - centre) * np.array([1.0, 0.0, 1.0])
        position[1] = height
        cameras.append(Camera.look_at(position, centre, K, size, name))
    return cameras[0], cameras[1]


def _direction(azimuth_deg: float) -> np.ndarray:
    """(3,) horizontal unit vector at ``azimuth_deg`` about Y (0 = +X, 90 = -Z)."""
    a = np.deg2rad(azimuth_deg)
    return np.array([np.cos(a), 0.0, -np.sin(a)])


def _cloud(points: np.ndarray | None, centre: np.ndarray) -> np.ndarray:
    """(N, 3) the points to keep in view (a standing-person column when None)."""
    if points is None:
        corners = np.array(
            [[x, y, z] for x in (-0.4, 0.4) for y in (0.0, 2.0) for z in (-0.4, 0.4)]
        )
        return corners + centre * np.array([1.0, 0.0, 1.0])
    cloud = _points(points).reshape(-1, 3)
    cloud = cloud[np.all(np.isfinite(cloud), axis=1)]
    if len(cloud) == 0:
        raise ValueError("points holds no finite point")
    return cloud


def _padded(cloud: np.ndarray, pad: float) -> np.ndarray:
    """The vertices of the convex hull of the points and their copies moved by +/-``pad``
    along each world axis (a point set projects inside the image, a convex region, exactly
    when its hull's vertices do, for points in front of the camera)."""
    offsets = np.vstack([np.zeros(3), pad * np.eye(3), -pad * np.eye(3)])
    padded = (cloud[:, None, :] + offsets[None]).reshape(-1, 3)
    try:
        return padded[ConvexHull(padded).vertices]
    except QhullError:  # flat or degenerate sets: keep them all
        return padded


def _fit_distance(
    K: np.ndarray,
    size: tuple[int, int],
    centre: np.ndarray,
    azimuth: float,
    height: float,
    cloud: np.ndarray,
    border: float,
    name: str,
) -> Camera:
    """The nearest camera along ``azimuth`` at ``height`` that sees all of ``cloud``."""
    direction = _direction(azimuth)

    def camera(distance: float) -> Camera:
        position = centre + distance * direction
        position[1] = height
        return Camera.look_at(position, centre, K, size, name)

    def fits(distance: float) -> bool:
        cam = camera(distance)
        pixels = cam.project(cloud)
        return bool(np.all(cam.inside(pixels, border * min(size))))

    near = 0.5 + float(np.max((cloud - centre) @ direction, initial=0.0))
    far = near + 2.0
    while not fits(far):
        near, far = far, 2.0 * far
        if far > 1e4:
            raise ValueError("no camera distance keeps the points in view; check the points")
    for _ in range(40):
        middle = 0.5 * (near + far)
        near, far = (near, middle) if fits(middle) else (middle, far)
    return camera(far)


# ---------------------------------------------------------------------------- files, triangulation


def write_cameras(path: str | Path, cameras: Sequence[Camera]) -> Path:
    """Write ``cameras.json`` atomically; returns the path."""
    document = {
        "convention": JSON_CONVENTION,
        "world": JSON_WORLD,
        "cameras": [camera.to_json() for camera in cameras],
    }
    with atomic_write(path) as file:
        json.dump(document, file, indent=2)
        file.write("\n")
    return Path(path)


def read_cameras(path: str | Path) -> list[Camera]:
    """The cameras of a ``cameras.json``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, another convention, or malformed camera entries.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no cameras file at {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if document.get("convention") != JSON_CONVENTION or "cameras" not in document:
        raise ValueError(
            f"{path}: expected {{'convention': 'opencv', 'cameras': [...]}}; got keys "
            f"{', '.join(document)}"
        )
    return [Camera.from_json(entry) for entry in document["cameras"]]


def triangulate(cameras: Sequence[Camera], points2d: np.ndarray) -> np.ndarray:
    """3D points from their pixels in several views by the linear (DLT) method.

    Each view's pixels are first mapped to [-1, 1] (Hartley's normalization); the point is
    the right singular vector of the stacked ``u P3 - P1``, ``v P3 - P2`` rows. Views
    where a pixel is NaN are left out for that point.

    Args:
        cameras: V >= 2 cameras.
        points2d: (V, ..., 2) pixels, view first.

    Returns:
        (..., 3) world points (m); NaN where fewer than two views see the point.

    Raises:
        ValueError: fewer than 2 cameras, or ``points2d`` not (V, ..., 2).
    """
    points2d = np.asarray(points2d, dtype=np.float64)
    if len(cameras) < 2:
        raise ValueError(f"triangulation needs at least 2 cameras; got {len(cameras)}")
    if points2d.ndim < 2 or points2d.shape[0] != len(cameras) or points2d.shape[-1] != 2:
        raise ValueError(f"points2d must have shape ({len(cameras)}, ..., 2); got {points2d.shape}")
    rows, seen = [], []
    for camera, pixels in zip(cameras, points2d, strict=True):
        norm = np.array([[2.0 / camera.width, 0, -1], [0, 2.0 / camera.height, -1], [0, 0, 1]])
        P = norm @ camera.projection
        uv = pixels @ norm[:2, :2].T + norm[:2, 2]
        valid = np.all(np.isfinite(uv), axis=-1, keepdims=True)
        uv = np.where(valid, uv, 0.0)
        for i in range(2):
            rows.append((uv[..., i : i + 1] * P[2] - P[i]) * valid)
        seen.append(valid[..., 0])
    A = np.stack(rows, axis=-2)  # (..., 2V, 4)
    _, _, vt = np.linalg.svd(A)
    X = vt[..., -1, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        points = X[..., :3] / X[..., 3:]
    enough = np.sum(seen, axis=0) >= 2
    return np.where(enough[..., None], points, np.nan)
