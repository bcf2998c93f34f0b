"""IK benchmark: our frame and temporal IK against OpenSim's IK tool on real trials.

Per trial in ``../shared/validation`` (gait2354 walk, Rajagopal 2016 walk,
subject_walk_scaled), with the trial's own marker weights and coordinate tasks:

- ``rms_deg``: RMS difference of our frame IK to OpenSim 4.6's converged IK (accuracy
  1e-9), per rotational coordinate that IK solves for, averaged over those coordinates;
- ``cost_ratio``: our weighted marker cost (plus coordinate tasks) over OpenSim's converged
  one, both computed with the same kinematics;
- ``speedup_frame`` / ``speedup_temporal``: wall time of OpenSim's ``InverseKinematicsTool``
  at the setup's own accuracy (``TIMING_ACCURACY`` notes the one exception) over ours
  (frame IK; temporal IK with ``--lambda``), all timed in this process, best of
  ``--repeats``. OpenSim uses one core; ours uses torch's threads (``--threads``).

Prints a table, then as its LAST line one JSON object ``{"real": [...]}``; the KinePose
benchmark adds its figures under ``"kinepose"`` through :func:`kinepose_figures`.

Run: ``python bench/ik.py [--repeats 3] [--threads N] [--lambda 1e-3] [--trials a,b]
[--kinepose | --no-kinepose]`` (``--kinepose``: the KinePose benchmark alone).

KinePose speed: temporal IK's time per frame against two SLSQP baselines, both printed:
SLSQP with batched finite-difference gradients (all unknowns perturbed in one FK call),
and SLSQP as KinePose's code runs it, ``scipy.optimize.minimize`` without ``jac``
(SciPy's own finite differences, one FK call per unknown) -- the issue's 1000x target
is against the latter, KinePose's own baseline.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from biokin_nb.ik import IKResult, ik_cost, read_ik_setup, run_opensim_ik, solve_ik
from biokin_nb.ik.kinepose import kinepose_figures as kinepose_benchmark
from biokin_nb.osim import load_model
from biokin_nb.osim.coordinates import read_motion

REPO = Path(__file__).resolve().parents[1]
VALIDATION = REPO.parent / "shared" / "validation"
# name: (IK setup, model, OpenSim 4.6 IK at accuracy 1e-9), paths in ../shared/validation
TRIALS = {
    "gait2354": (
        "gait2354_walk/subject01_Setup_IK.xml",
        "gait2354_walk/subject01_simbody.osim",
        "gait2354_walk/generated_opensim4.6/subject01_walk1_ik_os46_acc1e-9.mot",
    ),
    "rajagopal2016": (
        "rajagopal2016_walk/IK/ik_setup_walk.xml",
        "rajagopal2016_walk/generated_opensim4.6/subject_scaled_walk.osim",
        "rajagopal2016_walk/generated_opensim4.6/ik_output_walk_acc1e-9.mot",
    ),
    "subject_walk_scaled": (
        "rajagopal_walk_opensim-core/generated_opensim4.6/ik_setup_minimal.xml",
        "rajagopal_walk_opensim-core/subject_walk_scaled.osim",
        "rajagopal_walk_opensim-core/generated_opensim4.6/subject_walk_scaled_ik_acc1e-9.mot",
    ),
}
POORLY_OBSERVED = ("pro_sup", "arm_rot", "elbow")  # per the validation MANIFEST
# OpenSim's accuracy for the timing: the setup's own, except where the setup in the data set
# was written for the converged reference (1e-9); there OpenSim's default, 1e-5, as the
# original example uses (the validation MANIFEST times it so: 23.7 ms per frame).
TIMING_ACCURACY = {"subject_walk_scaled": 1e-5}


@dataclass
class Trial:
    """One trial's inputs and OpenSim's converged solution."""

    name: str
    setup: object
    model: object
    markers: object
    weights: dict
    tasks: dict
    reference_q: np.ndarray
    reference_cost: float

    def solve(self, **kwargs) -> IKResult:
        return solve_ik(
            self.model,
            self.markers,
            weights=self.weights,
            coordinate_tasks=self.tasks,
            **kwargs,
        )


def load_trial(name: str) -> Trial:
    setup_file, model_file, reference_file = (VALIDATION / p for p in TRIALS[name])
    setup = read_ik_setup(setup_file)
    model = load_model(model_file)
    markers = setup.load_markers()
    weights = setup.marker_weights(model)
    tasks = setup.coordinate_targets(model, markers.time)
    reference = read_motion(model, reference_file)
    cost, _ = ik_cost(model, reference.q, markers, weights=weights, coordinate_tasks=tasks)
    return Trial(name, setup, model, markers, weights, tasks, reference.q, float(cost.sum()))


def rms_deg(model, q: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """RMS difference (deg) per rotational coordinate that IK solves for."""
    solved = model.rotational & ~model.locked & ~model.dependent
    rms = np.rad2deg(np.sqrt(np.mean((q - reference) ** 2, axis=0)))
    return {n: float(r) for n, r, s in zip(model.coordinate_names, rms, solved, strict=True) if s}


def best_times(trial: Trial, repeats: int, smoothness: float) -> dict[str, tuple[float, object]]:
    """Best wall time (s) and last result of each method, interleaved over ``repeats``."""
    runs = {
        "opensim": lambda: run_opensim_ik(
            trial.model, trial.markers, setup=trial.setup, accuracy=TIMING_ACCURACY.get(trial.name)
        ),
        "frame": lambda: trial.solve(mode="frame"),
        "temporal": lambda: trial.solve(mode="temporal", smoothness=smoothness),
    }
    trial.solve(mode="frame")  # first call: model constants to tensors
    best: dict[str, tuple[float, object]] = {}
    for _ in range(repeats):
        for key, run in runs.items():
            result = run()
            seconds = result.wall_time_s
            if key not in best or seconds < best[key][0]:
                best[key] = (seconds, result)
    return best


def trial_figures(name: str, repeats: int, smoothness: float) -> dict[str, float | str]:
    trial = load_trial(name)
    best = best_times(trial, repeats, smoothness)
    n_frames = len(trial.markers.time)
    row: dict[str, float | str] = {"trial": name, "frames": n_frames}
    for key, (seconds, result) in best.items():
        rms = rms_deg(trial.model, result.q, trial.reference_q)
        row[f"rms_deg_{key}"] = float(np.mean(list(rms.values())))
        row[f"cost_ratio_{key}"] = float(result.cost.sum() / trial.reference_cost)
        row[f"ms_per_frame_{key}"] = 1000 * seconds / n_frames
    row["rms_deg"], row["cost_ratio"] = row["rms_deg_frame"], row["cost_ratio_frame"]
    row["speedup_frame"] = best["opensim"][0] / best["frame"][0]
    row["speedup_temporal"] = best["opensim"][0] / best["temporal"][0]
    print_coordinates(trial, best["frame"][1])
    return row


def print_coordinates(trial: Trial, result: IKResult, worst: int = 6) -> None:
    rms = rms_deg(trial.model, result.q, trial.reference_q)
    ranked = sorted(rms.items(), key=lambda kv: -kv[1])[:worst]
    cells = []
    for name, value in ranked:
        mark = "*" if name.startswith(POORLY_OBSERVED) else ""
        cells.append(f"{name}{mark} {value:.4f}")
    print(f"{trial.name}: largest RMS differences (deg, * poorly observed): {', '.join(cells)}")


def real_figures(trials: list[str], repeats: int, smoothness: float) -> list[dict]:
    """The real-trial rows; a trial whose files are missing is skipped with a note."""
    rows = []
    for name in trials:
        missing = [p for p in TRIALS[name] if not (VALIDATION / p).is_file()]
        if missing:
            print(f"{name}: skipped, missing {', '.join(missing)} in {VALIDATION}")
            continue
        rows.append(trial_figures(name, repeats, smoothness))
    return rows


def print_table(rows: list[dict], smoothness: float) -> None:
    print(
        f"\n{'trial':22s} {'frames':>6s} {'rms deg':>8s} {'cost ratio':>10s} "
        f"{'OpenSim':>9s} {'frame':>9s} {'temporal':>9s} {'x frame':>8s} {'x temp.':>8s}"
    )
    print(f"{'':22s} {'':6s} {'':8s} {'':10s} {'ms/frame':>9s} {'ms/frame':>9s} {'ms/frame':>9s}")
    for r in rows:
        print(
            f"{r['trial']:22s} {r['frames']:6d} {r['rms_deg']:8.4f} {r['cost_ratio']:10.6f} "
            f"{r['ms_per_frame_opensim']:9.2f} {r['ms_per_frame_frame']:9.2f} "
            f"{r['ms_per_frame_temporal']:9.2f} {r['speedup_frame']:8.1f} "
            f"{r['speedup_temporal']:8.1f}"
        )
    print(
        f"(temporal: lambda = {smoothness:g}; OpenSim at the setup's accuracy; rms and cost vs "
        f"OpenSim at 1e-9; temporal rms {[round(r['rms_deg_temporal'], 4) for r in rows]}, "
        f"OpenSim-at-setup-accuracy rms {[round(r['rms_deg_opensim'], 3) for r in rows]}; "
        f"torch threads {torch.get_num_threads()})"
    )


def kinepose_figures() -> dict | None:
    """HOOK for the KinePose-style benchmark (issue 3, acceptance 4): return its figures,
    ``{"mpjas_deg": {...}, "mpjas_lower_deg": {...}, "speedup_vs_slsqp": ...}``, to be
    merged into the JSON line under ``"kinepose"``; None leaves the key out."""
    return kinepose_benchmark()


def print_kinepose(k: dict) -> None:
    """The KinePose benchmark's MPJAS and speed, both SLSQP ratios labelled."""
    print(f"\nKinePose-style benchmark ({k['sequences']} sequences, {k['noise_mm']} mm noise)")
    print(f"{'method':12s} {'MPJAS deg':>10s} {'lower limbs':>12s} {'ms/frame':>10s}")
    for method, deg in k["mpjas_deg"].items():
        ms = k["ms_per_frame"].get(method, float("nan"))
        print(f"{method:12s} {deg:10.3f} {k['mpjas_lower_deg'][method]:12.3f} {ms:10.2f}")
    if "speedup_vs_slsqp" in k:
        print(
            f"temporal IK vs SLSQP, batched finite-difference gradient: "
            f"{k['speedup_vs_slsqp']:.0f}x less time per frame"
        )
    scipy_fd = k.get("slsqp_scipy_gradient")
    if scipy_fd:
        print(
            f"temporal IK vs SLSQP, SciPy's own finite differences (KinePose's code path, "
            f"{scipy_fd['ms_per_frame']:.0f} ms/frame on {scipy_fd['frames']} frames of "
            f"{scipy_fd['sequence']}): {scipy_fd['speedup_vs_temporal']:.0f}x less time per "
            f"frame (target >= 1000x)"
        )
    print(f"targets: {k['targets']}; torch threads {k.get('torch_threads')}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing runs, best kept")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--lambda", dest="smoothness", type=float, default=1e-3)
    parser.add_argument("--trials", default=",".join(TRIALS), help="comma separated")
    parser.add_argument(
        "--kinepose-threads",
        type=int,
        default=1,
        help="torch threads for the KinePose benchmark (default 1: SLSQP runs on one core, "
        "and tiny tensor ops only lose from more threads on a shared machine)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--kinepose", action="store_true", help="the KinePose benchmark only")
    group.add_argument("--no-kinepose", action="store_true", help="the real trials only")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    figures: dict = {}
    if not args.kinepose:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # setup tasks for markers a trial lacks
            rows = real_figures(args.trials.split(","), args.repeats, args.smoothness)
        print_table(rows, args.smoothness)
        figures["real"] = rows
    kinepose = None
    if not args.no_kinepose:
        threads = torch.get_num_threads()
        torch.set_num_threads(args.kinepose_threads)
        kinepose = kinepose_figures()
        kinepose["torch_threads"] = args.kinepose_threads
        torch.set_num_threads(threads)
    if kinepose is not None:
        print_kinepose(kinepose)
        figures["kinepose"] = kinepose
    print(f"(benchmark took {time.perf_counter() - start:.0f} s)")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
