"""FK throughput: batched torch FK (float32, float64) against OpenSim's realizePosition loop.

Both compute body transforms and marker positions in ground for the same poses, in one
process. Usage: ``python bench/fk.py [--frames 10000] [--opensim-frames N]``. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from biokin_nb.osim import apply_coupler_constraints, forward_kinematics, load_model
from biokin_nb.osim.scaling import opensim_model

REPO = Path(__file__).resolve().parents[1]
MODELS = {
    "Rajagopal2016": REPO.parent / "shared/validation/rajagopal2016_walk/Rajagopal2016.osim",
    "generic": REPO / "data/generic_model.osim",
}


def random_poses(model, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = model.ranges.T
    limit = np.where(model.rotational, np.pi, 1.0)
    q = rng.uniform(np.maximum(lo, -limit), np.minimum(hi, limit), (n, model.n_coordinates))
    return apply_coupler_constraints(model, torch.tensor(q)).numpy()


def torch_fps(model, q: np.ndarray, dtype: torch.dtype, repeats: int = 3) -> float:
    qt = torch.tensor(q, dtype=dtype)
    scales = torch.ones(model.n_bodies, 3, dtype=dtype)
    with torch.no_grad():
        forward_kinematics(model, qt[:10], scales)  # compile constants
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            out = forward_kinematics(model, qt, scales)
            _ = out.markers.sum().item()
            best = min(best, time.perf_counter() - start)
    return len(q) / best


def opensim_fps(path: Path, q: np.ndarray) -> float:
    """Set coordinates, realizePosition, read body transforms and markers, pose by pose."""
    model = opensim_model(path)
    state = model.initSystem()
    coords = list(model.getCoordinateSet())
    for c in coords:
        c.setLocked(state, False)
    bodies, markers = list(model.getBodySet()), list(model.getMarkerSet())
    start = time.perf_counter()
    for pose in q:
        for c, v in zip(coords, pose, strict=True):
            c.setValue(state, float(v), False)
        model.realizePosition(state)
        for b in bodies:
            b.getTransformInGround(state)
        for m in markers:
            m.getLocationInGround(state)
    return len(q) / (time.perf_counter() - start)


def bench_model(name: str, path: Path, frames: int, opensim_frames: int) -> dict:
    model = load_model(path)
    q = random_poses(model, frames)
    row = {"model": name, "frames": frames, "opensim_frames": opensim_frames}
    row["torch_fps_float32"] = torch_fps(model, q, torch.float32)
    row["torch_fps_float64"] = torch_fps(model, q, torch.float64)
    row["opensim_fps"] = opensim_fps(path, q[:opensim_frames])
    row["torch_fps"] = row["torch_fps_float32"]
    row["speedup"] = row["torch_fps_float32"] / row["opensim_fps"]
    row["speedup_float64"] = row["torch_fps_float64"] / row["opensim_fps"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--opensim-frames", type=int, default=None, help="default: --frames")
    args = parser.parse_args()
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    header = ("model", "frames", "torch f32", "torch f64", "OpenSim", "speedup")
    print("{:16s} {:>7s} {:>12s} {:>12s} {:>10s} {:>8s}".format(*header))
    for name, path in MODELS.items():
        if not path.is_file():
            print(f"{name}: {path} not found, skipped")
            continue
        row = bench_model(name, path, args.frames, args.opensim_frames or args.frames)
        rows.append(row)
        print(
            f"{name:16s} {row['frames']:7d} {row['torch_fps_float32']:10.0f}/s "
            f"{row['torch_fps_float64']:10.0f}/s {row['opensim_fps']:8.0f}/s {row['speedup']:7.0f}x"
        )
    print(json.dumps({"models": rows}))


if __name__ == "__main__":
    main()
