"""FK throughput: batched torch FK (float32, float64) against OpenSim's realizePosition loop.

Both compute body transforms and marker positions in ground for the same poses, in one
process: the torch side returns them as tensors (rotations, origins, joint centres, mass
centres, markers), OpenSim's side sets the coordinates, realizes positions and reads every
body transform and marker location, pose by pose. Each side is timed best of
``--repeats`` (torch) and ``--opensim-repeats`` runs over the same poses.

Allocator: glibc's malloc hands large freed blocks back to the kernel and so makes the
torch side page-fault its fresh tensors again on every other call (about 6,000 faults,
+10 ms per 10,000 poses here). The bench therefore raises glibc's mmap and trim thresholds
in its own process (``mallopt``, the effect of PyTorch's advice to run CPU jobs with
jemalloc or tcmalloc); ``--no-malloc-tuning`` measures without.

Chunking: ``--chunk auto`` times the batch whole and in chunks and keeps the fastest
(stated in the output); a number fixes the chunk size.

Usage: ``python bench/fk.py [--frames 10000] [--repeats 7] [--opensim-repeats 3]
[--threads N] [--chunk auto|N] [--no-malloc-tuning]``. The last line printed is one JSON
object ``{"models": [{"model", "frames", "torch_fps", "opensim_fps", "speedup", ...}]}``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import time
from collections.abc import Callable
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
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def tune_malloc() -> bool:
    """Keep freed memory in this process (glibc): no page faults on reused tensor memory."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 31)
    except (OSError, AttributeError):
        return False
    return bool(ok)


def random_poses(model, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = model.ranges.T
    limit = np.where(model.rotational, np.pi, 1.0)
    q = rng.uniform(np.maximum(lo, -limit), np.minimum(hi, limit), (n, model.n_coordinates))
    return apply_coupler_constraints(model, torch.tensor(q)).numpy()


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls (after one untimed call)."""
    run()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def torch_run(model, q: torch.Tensor, chunk: int) -> Callable[[], list]:
    """FK of all poses in ``q`` (chunks of ``chunk``), no autograd; results are kept."""
    scales = torch.ones(model.n_bodies, 3, dtype=q.dtype)

    def run() -> list:
        with torch.no_grad():
            return [
                forward_kinematics(model, q[k : k + chunk], scales) for k in range(0, len(q), chunk)
            ]

    return run


def torch_fps(model, q: np.ndarray, dtype: torch.dtype, repeats: int, chunk: str) -> tuple:
    """(poses/s, chunk used): the best over the candidate chunk sizes."""
    qt = torch.tensor(q, dtype=dtype)
    sizes = [len(q), len(q) // 2, len(q) // 4] if chunk == "auto" else [int(chunk)]
    timed = {size: best_seconds(torch_run(model, qt, size), repeats) for size in sizes if size > 0}
    size = min(timed, key=timed.get)
    return len(q) / timed[size], size


def opensim_run(path: Path, q: np.ndarray) -> Callable[[], None]:
    """Set coordinates, realizePosition, read body transforms and markers, pose by pose."""
    model = opensim_model(path)
    state = model.initSystem()
    coords = list(model.getCoordinateSet())
    for c in coords:
        c.setLocked(state, False)
    bodies, markers = list(model.getBodySet()), list(model.getMarkerSet())

    def run() -> None:
        for pose in q:
            for c, v in zip(coords, pose, strict=True):
                c.setValue(state, float(v), False)
            model.realizePosition(state)
            for b in bodies:
                b.getTransformInGround(state)
            for m in markers:
                m.getLocationInGround(state)

    return run


def bench_model(name: str, path: Path, args: argparse.Namespace) -> dict:
    model = load_model(path)
    q = random_poses(model, args.frames)
    n_os = args.opensim_frames or args.frames
    row = {"model": name, "frames": args.frames, "opensim_frames": n_os}
    row["torch_fps_float32"], row["chunk_float32"] = torch_fps(
        model, q, torch.float32, args.repeats, args.chunk
    )
    row["torch_fps_float64"], row["chunk_float64"] = torch_fps(
        model, q, torch.float64, args.repeats, args.chunk
    )
    row["opensim_fps"] = n_os / best_seconds(opensim_run(path, q[:n_os]), args.opensim_repeats)
    row["torch_fps"] = row["torch_fps_float32"]
    row["speedup"] = row["torch_fps_float32"] / row["opensim_fps"]
    row["speedup_float64"] = row["torch_fps_float64"] / row["opensim_fps"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--opensim-frames", type=int, default=None, help="default: --frames")
    parser.add_argument("--repeats", type=int, default=7, help="torch timings, best kept")
    parser.add_argument("--opensim-repeats", type=int, default=3, help="OpenSim timings")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--chunk", default="auto", help="'auto' or poses per FK call")
    parser.add_argument("--no-malloc-tuning", action="store_true")
    args = parser.parse_args()
    tuned = not args.no_malloc_tuning and tune_malloc()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {"threads": torch.get_num_threads(), "malloc_tuned": tuned}
    print(
        f"torch {torch.__version__}, CPU, {settings['threads']} threads (OpenSim: 1), "
        f"glibc malloc thresholds raised: {tuned}; best of {args.repeats} (torch) and "
        f"{args.opensim_repeats} (OpenSim) runs"
    )
    header = ("model", "frames", "torch f32", "torch f64", "OpenSim", "f32 x", "f64 x", "chunk")
    print("{:16s} {:>7s} {:>12s} {:>12s} {:>10s} {:>6s} {:>6s} {:>6s}".format(*header))
    rows = []
    for name, path in MODELS.items():
        if not path.is_file():
            print(f"{name}: {path} not found, skipped")
            continue
        row = {**bench_model(name, path, args), **settings}
        rows.append(row)
        print(
            f"{name:16s} {row['frames']:7d} {row['torch_fps_float32']:10.0f}/s "
            f"{row['torch_fps_float64']:10.0f}/s {row['opensim_fps']:8.0f}/s "
            f"{row['speedup']:5.0f}x {row['speedup_float64']:5.0f}x {row['chunk_float32']:6d}"
        )
    print(json.dumps({"models": rows}))


if __name__ == "__main__":
    main()
