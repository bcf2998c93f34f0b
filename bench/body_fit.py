"""Benchmark of the body layer (Anny): regressor, skeleton from shape, mesh fitting.

Prints the figures, then, as its last line, one JSON object:
``regressor_mean_mm`` / ``regressor_p95_mm`` (held-out joint-centre error of the committed
regressor on new shapes and poses), ``skeleton_mean_mm`` (segment lengths of the scaled
models vs the mesh's regressed joints, held-out bodies), ``fit_joint_mean_mm``,
``fit_marker_mean_mm`` (mean residuals over the 2 s walk and the 2 s squat),
``fit_max_mm`` (the largest single joint or marker residual of any frame),
``fit_worst_frame_mm`` (the largest per-frame mean residual) and ``ms_per_frame``.

Run: ``python bench/body_fit.py`` (``--quick`` for a smaller run). The walk is the
Rajagopal 2016 IK solution in ``../shared/validation``; without it, only the squat runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from biokin_nb.body import (
    FitConfig,
    fit_motion,
    load_registration,
    skeleton_from_shape,
    squat_motion,
    walking_motion,
    write_subject_osim,
)
from biokin_nb.body.regressor import regressor_errors_mm, sample_training_data
from biokin_nb.body.subject import segment_length_errors_mm
from biokin_nb.osim import load_model

REPO = Path(__file__).resolve().parents[1]
WALK = REPO.parent / "shared/validation/rajagopal2016_walk/generated_opensim4.6"
WALK_MOT = WALK / "ik_output_walk_acc1e-9.mot"


def regressor_figures(reg, shapes: int, poses: int) -> dict[str, float]:
    test = sample_training_data(reg.body, reg.rig, reg.geom, shapes, poses, seed=2024)
    err = regressor_errors_mm(reg.regressor, test)[:, : reg.n_joints]
    print(
        f"regressor, {len(err)} held-out meshes: joint-centre error mean {err.mean():.2f} mm, "
        f"p95 {np.percentile(err, 95):.2f} mm, max {err.max():.1f} mm"
    )
    return {
        "regressor_mean_mm": float(err.mean()),
        "regressor_p95_mm": float(np.percentile(err, 95)),
    }


def skeleton_figures(reg, n_bodies: int) -> tuple[dict[str, float], object]:
    shapes = reg.body.sample_shapes(n_bodies, torch.Generator().manual_seed(2025))
    errors, subject = [], None
    for shape in shapes:
        subject = skeleton_from_shape(reg, shape)
        errors.append(segment_length_errors_mm(reg, subject))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_subject_osim(reg, subject, Path(tmp) / "subject.osim", "bench_subject")
        written = segment_length_errors_mm(reg, subject, load_model(path))
    err = np.concatenate(errors)
    print(
        f"skeleton from shape, {n_bodies} held-out bodies: segment length error mean "
        f"{err.mean():.2f} mm, max {err.max():.1f} mm; written .osim reloads in OpenSim "
        f"(mean {written.mean():.2f} mm)"
    )
    return {"skeleton_mean_mm": float(err.mean())}, subject


def fit_figures(reg, iterations: int) -> dict[str, float]:
    subject = skeleton_from_shape(reg)
    motions = {"squat": squat_motion(reg.model, scales=subject.scales)}
    if WALK_MOT.is_file():
        motions = {"walk": walking_motion(reg.model, WALK_MOT), **motions}
    else:
        print(f"no walking trial at {WALK_MOT}: squat only")
    joint, marker, worst, largest, seconds, frames = [], [], [], [], 0.0, 0
    for name, motion in motions.items():
        result = fit_motion(reg, subject, motion, FitConfig(iterations=iterations))
        s = result.summary()
        worst_frame = max(s["worst_frame_joint_mm"], s["worst_frame_marker_mm"])
        print(
            f"fit {name}: {len(result.time)} frames, joint {s['joint_mean_mm']:.2f} mm, "
            f"marker {s['marker_mean_mm']:.2f} mm, worst frame {worst_frame:.2f} mm, "
            f"largest point {s['max_point_mm']:.1f} mm, {s['ms_per_frame']:.0f} ms/frame"
        )
        joint.append(result.joint_error_mm.ravel())
        marker.append(result.marker_error_mm.ravel())
        worst.append(worst_frame)
        largest.append(s["max_point_mm"])
        seconds, frames = seconds + result.seconds, frames + len(result.time)
    return {
        "fit_joint_mean_mm": float(np.concatenate(joint).mean()),
        "fit_marker_mean_mm": float(np.concatenate(marker).mean()),
        "fit_max_mm": float(max(largest)),
        "fit_worst_frame_mm": float(max(worst)),
        "ms_per_frame": 1000.0 * seconds / frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller held-out sets")
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    reg = load_registration("anny")
    figures = regressor_figures(reg, *((8, 2) if args.quick else (32, 4)))
    skeleton, _ = skeleton_figures(reg, 2 if args.quick else 8)
    figures |= skeleton
    figures |= fit_figures(reg, 20 if args.quick else 30)
    figures["seconds"] = time.perf_counter() - start
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
