"""The joint regressor: a sparse non-negative linear map from mesh vertices to keypoints.

Keypoints are the generic model's 22 joint centres then its 22 body mass centres
(``model.keypoint_names``), with the target definitions of :mod:`biokin_nb.body.skeleton`.
Each keypoint is a convex combination of a few vertices (weights >= 0 summing to 1, so the
map commutes with rigid motions of the mesh), fitted by non-negative least squares over
random shapes and poses (:func:`fit_regressor`) and pruned to at most ``max_vertices``
vertices. ``python -m biokin_nb.body.regressor`` regenerates the committed
``data/body/<backend>_regressor.npz`` and prints its held-out error.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

from biokin_nb._files import atomic_write
from biokin_nb.body.markers import default_pose_mesh
from biokin_nb.body.model import BodyModel
from biokin_nb.body.rig import Rig
from biokin_nb.body.skeleton import (
    GenericGeometry,
    keypoint_bodies,
    pose_from_body_rotations,
    rest_skeleton,
    target_keypoints,
    vertex_bodies,
)
from biokin_nb.osim import KinematicModel, forward_kinematics

_SUM_TO_ONE_WEIGHT = 10.0  # weight of the sum-to-one row relative to metre residuals
# Pelvis orientation ranges used for sampling (deg); the model's own are wider.
_PELVIS_SAMPLING_DEG = {"pelvis_tilt": 30.0, "pelvis_list": 20.0, "pelvis_rotation": 180.0}


@dataclass(frozen=True)
class JointRegressor:
    """Keypoints (..., K, 3) = ``weights`` (K, S) applied to the ``support`` vertices.

    Attributes:
        backend: the body model kind the vertex indices refer to.
        names: keypoint names (K,).
        support: (S,) vertex indices used by any keypoint.
        weights: (K, S) non-negative weights, each row summing to 1.
        n_vertices: vertex count of the mesh.
        info: training metadata (sample counts, held-out errors in mm).
    """

    backend: str
    names: tuple[str, ...]
    support: np.ndarray
    weights: np.ndarray
    n_vertices: int
    info: dict = field(default_factory=dict)

    def __call__(self, vertices: torch.Tensor) -> torch.Tensor:
        """(..., K, 3) keypoints from all mesh vertices (..., V, 3)."""
        if vertices.shape[-2] != self.n_vertices:
            raise ValueError(
                f"the {self.backend} regressor expects {self.n_vertices} vertices; "
                f"got {vertices.shape[-2]}"
            )
        support = torch.as_tensor(self.support, dtype=torch.long, device=vertices.device)
        return self.from_support(vertices[..., support, :])

    def from_support(self, support_vertices: torch.Tensor) -> torch.Tensor:
        """(..., K, 3) keypoints from the support vertices only (..., S, 3)."""
        w = torch.as_tensor(
            self.weights, dtype=support_vertices.dtype, device=support_vertices.device
        )
        return w @ support_vertices


# -------------------------------------------------------------------------- data


def random_coordinates(
    model: KinematicModel, n: int, generator: torch.Generator, spread: float = 1.0
) -> torch.Tensor:
    """(n, C) random coordinates: uniform in each range (shrunk about its middle by
    ``spread``); pelvis translations 0 and pelvis rotations in moderate ranges."""
    ranges = torch.tensor(model.ranges)
    for name, deg in _PELVIS_SAMPLING_DEG.items():
        ranges[model.coordinate_index(name)] = torch.tensor([-deg, deg]).deg2rad()
    for name in ("pelvis_tx", "pelvis_ty", "pelvis_tz"):
        ranges[model.coordinate_index(name)] = 0.0
    mid, half = ranges.mean(-1), 0.5 * (ranges[:, 1] - ranges[:, 0]) * spread
    u = torch.rand(n, model.n_coordinates, generator=generator, dtype=torch.float64)
    return mid + (2.0 * u - 1.0) * half


@dataclass
class TrainingData:
    """Meshes and their target keypoints: ``vertices`` (N, V, 3), ``keypoints`` (N, K, 3)."""

    vertices: torch.Tensor
    keypoints: torch.Tensor


def sample_training_data(
    body: BodyModel,
    rig: Rig,
    geom: GenericGeometry,
    n_shapes: int,
    poses_per_shape: int,
    seed: int,
    batch: int = 32,
) -> TrainingData:
    """Random adult shapes, each in random poses of the generic model (mapped onto the
    mesh), with their target keypoints; ``seed`` makes it reproducible."""
    gen = torch.Generator().manual_seed(seed)
    vertices, keypoints = [], []
    for start in range(0, n_shapes, batch):
        shapes = body.sample_shapes(min(batch, n_shapes - start), gen)
        with torch.no_grad():
            rest = rest_skeleton(body, rig, geom, shapes)
            for i in range(poses_per_shape):
                spread = 1.0 if i % 2 == 0 else 0.5
                q = random_coordinates(geom.model, len(shapes), gen, spread)
                rot = forward_kinematics(geom.model, q).rotations.to(body.dtype)
                zero = torch.zeros(len(shapes), 3, dtype=body.dtype)
                pose = pose_from_body_rotations(rig, body, geom, rest, rot, zero)
                out = body(shapes, pose)
                vertices.append(out.vertices.float())
                keypoints.append(target_keypoints(rig, body, geom, rest, out).float())
    return TrainingData(torch.cat(vertices), torch.cat(keypoints))


# --------------------------------------------------------------------------- fitting


def candidate_vertices(
    mesh: np.ndarray, point: np.ndarray, allowed: np.ndarray, n: int, radius: float = 0.2
) -> np.ndarray:
    """Up to ``n`` allowed vertices of ``mesh`` (V, 3) within ``radius`` (m) of ``point``.

    The ball is wide enough to hold a point inside a limb or the trunk within the convex
    hull of its vertices; a ball with more than ``n`` vertices is thinned evenly.
    """
    d = np.where(allowed, np.linalg.norm(mesh - point, axis=1), np.inf)
    inside = np.nonzero(d <= radius)[0]
    if len(inside) > n:
        inside = inside[np.linspace(0, len(inside) - 1, n).astype(int)]
    return inside


def _nnls_convex(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights w >= 0, sum ~ 1, minimizing |x @ w - y|; x (R, C), y (R,)."""
    a = np.vstack([x, np.full((1, x.shape[1]), _SUM_TO_ONE_WEIGHT)])
    b = np.concatenate([y, [_SUM_TO_ONE_WEIGHT]])
    w, _ = nnls(a, b, maxiter=50 * x.shape[1])
    return w / w.sum()


def fit_keypoint(
    vertices: np.ndarray, target: np.ndarray, candidates: np.ndarray, max_vertices: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse convex weights of one keypoint: (indices, weights).

    Args:
        vertices: (N, V, 3) training meshes; target: (N, 3) the keypoint.
        candidates: vertex indices allowed; max_vertices: the most kept after pruning.
    """
    x = vertices[:, candidates, :].transpose(0, 2, 1).reshape(-1, len(candidates))
    y = target.reshape(-1)
    w = _nnls_convex(x, y)
    keep = np.argsort(w)[::-1][:max_vertices]
    keep = keep[w[keep] > 0]
    w_keep = _nnls_convex(x[:, keep], y)
    nonzero = w_keep > 1e-6
    return candidates[keep[nonzero]], w_keep[nonzero] / w_keep[nonzero].sum()


def fit_regressor(
    body: BodyModel,
    rig: Rig,
    geom: GenericGeometry,
    train: TrainingData,
    n_candidates: int = 2000,
    max_vertices: int = 48,
) -> JointRegressor:
    """Fit the sparse convex regressor of every keypoint on ``train``."""
    mesh, keypoints, _ = default_pose_mesh(body, rig, geom)
    mesh_np = mesh.detach().double().cpu().numpy()
    kp_np = keypoints.detach().double().cpu().numpy()
    verts = train.vertices.double().cpu().numpy()
    targets = train.keypoints.double().cpu().numpy()
    vertex_body = vertex_bodies(body, rig, geom)
    rows = []
    for k, bodies in enumerate(keypoint_bodies(geom, rig)):
        allowed = np.isin(vertex_body, list(bodies))
        cand = candidate_vertices(mesh_np, kp_np[k], allowed, n_candidates)
        rows.append(fit_keypoint(verts, targets[:, k], cand, max_vertices))
    return _from_rows(body.kind, tuple(geom.keypoint_names), rows, mesh_np.shape[0])


def _from_rows(backend: str, names: tuple[str, ...], rows: list, n_vertices: int) -> JointRegressor:
    support = np.unique(np.concatenate([idx for idx, _ in rows]))
    weights = np.zeros((len(rows), len(support)))
    for k, (idx, w) in enumerate(rows):
        weights[k, np.searchsorted(support, idx)] = w
    return JointRegressor(backend, names, support, weights, n_vertices)


def regressor_errors_mm(regressor: JointRegressor, data: TrainingData) -> np.ndarray:
    """(N, K) distances (mm) between regressed and target keypoints on ``data``."""
    with torch.no_grad():
        pred = regressor(data.vertices.double())
    return ((pred - data.keypoints.double()).norm(dim=-1) * 1000.0).numpy()


# ---------------------------------------------------------------------------- IO


def save_regressor(regressor: JointRegressor, path: str | Path) -> Path:
    """Write the regressor as a sparse (CSR) ``.npz`` atomically; returns the path."""
    path = Path(path)
    w = regressor.weights
    indptr = np.concatenate([[0], np.cumsum((w > 0).sum(1))])
    rows = [np.nonzero(w[k] > 0)[0] for k in range(len(w))]
    with atomic_write(path, "wb") as f:
        np.savez(
            f,
            backend=regressor.backend,
            names=np.array(regressor.names),
            indptr=indptr,
            indices=np.concatenate([regressor.support[r] for r in rows]),
            data=np.concatenate([w[k, r] for k, r in enumerate(rows)]),
            n_vertices=regressor.n_vertices,
            info=json.dumps(regressor.info),
        )
    return path


def load_regressor(path: str | Path, backend: str) -> JointRegressor:
    """Read a regressor written by :func:`save_regressor`.

    Raises:
        FileNotFoundError: no file, with the command that builds it.
        ValueError: the file is for another backend.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no {backend} joint regressor at {path}; fit it with "
            f"`python -m biokin_nb.body.regressor --backend {backend}`"
        )
    with np.load(path) as z:
        if str(z["backend"]) != backend:
            raise ValueError(f"{path} is a regressor of {z['backend']}, not {backend}")
        indptr, indices, data = z["indptr"], z["indices"], z["data"]
        rows = [(indices[a:b], data[a:b]) for a, b in zip(indptr[:-1], indptr[1:], strict=True)]
        names = tuple(str(n) for n in z["names"])
        reg = _from_rows(backend, names, rows, int(z["n_vertices"]))
        info = json.loads(str(z["info"]))
    return JointRegressor(reg.backend, reg.names, reg.support, reg.weights, reg.n_vertices, info)


# --------------------------------------------------------------------------- main


def build_and_evaluate(
    body: BodyModel,
    rig: Rig,
    geom: GenericGeometry,
    n_train: tuple[int, int] = (96, 6),
    n_test: tuple[int, int] = (32, 4),
) -> JointRegressor:
    """Fit on ``n_train`` (shapes, poses per shape) and report errors on held-out
    ``n_test`` (other seeds: new shapes and poses) in ``info``."""
    start = time.perf_counter()
    train = sample_training_data(body, rig, geom, *n_train, seed=0)
    regressor = fit_regressor(body, rig, geom, train)
    test = sample_training_data(body, rig, geom, *n_test, seed=1)
    err = regressor_errors_mm(regressor, test)
    n_joints = len(geom.joint_names)
    info = {
        "train_samples": int(train.vertices.shape[0]),
        "test_samples": int(test.vertices.shape[0]),
        "joint_mean_mm": float(err[:, :n_joints].mean()),
        "joint_p95_mm": float(np.percentile(err[:, :n_joints], 95)),
        "keypoint_mean_mm": float(err.mean()),
        "keypoint_p95_mm": float(np.percentile(err, 95)),
        "per_keypoint_mean_mm": {
            n: float(e) for n, e in zip(regressor.names, err.mean(0), strict=True)
        },
        "seconds": time.perf_counter() - start,
    }
    return JointRegressor(
        regressor.backend,
        regressor.names,
        regressor.support,
        regressor.weights,
        regressor.n_vertices,
        info,
    )


def main(argv: list[str] | None = None) -> None:
    """Regenerate ``data/body/<backend>_regressor.npz``."""
    from biokin_nb.body.registration import load_backend_parts, regressor_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="anny", choices=("anny", "smplx"))
    parser.add_argument("--model-path", default=None, help="SMPL-X folder or file")
    parser.add_argument("--out", default=None, help="output .npz (default: see registration)")
    parser.add_argument("--shapes", type=int, default=96)
    parser.add_argument("--poses", type=int, default=6)
    args = parser.parse_args(argv)
    body, rig, geom = load_backend_parts(args.backend, args.model_path)
    regressor = build_and_evaluate(body, rig, geom, (args.shapes, args.poses))
    out = Path(args.out) if args.out else regressor_path(args.backend)
    out.parent.mkdir(parents=True, exist_ok=True)
    out = save_regressor(regressor, out)
    info = regressor.info
    print(
        f"wrote {out}: held-out joint error mean {info['joint_mean_mm']:.1f} mm, "
        f"p95 {info['joint_p95_mm']:.1f} mm (all keypoints {info['keypoint_mean_mm']:.1f} / "
        f"{info['keypoint_p95_mm']:.1f} mm)"
    )


if __name__ == "__main__":
    main()
