"""The ``biokin`` command line: the notebooks' jobs, for batches.

Each subcommand is one ``_add_<name>(subparsers)`` function that adds its parser and sets
``handler`` (a function of the parsed arguments returning the exit status); register it in
``SUBCOMMANDS``. Import heavy modules inside the ``_add_`` function or the handler so that
``biokin --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

from biokin_nb import __version__

Subparsers = argparse._SubParsersAction  # argparse exposes no public name for this type


def _add_notebooks(subparsers: Subparsers) -> None:
    """``biokin notebooks``: run or check the numbered notebooks (papermill)."""
    from biokin_nb import notebooks

    parser = subparsers.add_parser(
        "notebooks",
        help="run or check the numbered notebooks",
        description="Run the notebooks/NN_*.ipynb in order with papermill, or check them.",
    )
    notebooks.add_arguments(parser)
    parser.set_defaults(handler=notebooks.run_from_args)


def _add_ik(subparsers: Subparsers) -> None:
    """``biokin ik``: inverse kinematics of a .trc on a .osim, written as a .mot."""
    import sys
    from pathlib import Path

    parser = subparsers.add_parser(
        "ik",
        help="inverse kinematics: markers (.trc) -> coordinates (.mot)",
        description="Solve the coordinates of MODEL that fit MARKERS (OpenSim's IK problem: "
        "weighted marker distances and coordinate tasks, ranges as bounds), frame by frame "
        "or over time, and write them as a .mot that OpenSim reads.",
    )
    parser.add_argument("model", type=Path, metavar="MODEL.osim")
    parser.add_argument("markers", type=Path, metavar="MARKERS.trc")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.mot")
    parser.add_argument(
        "--setup",
        type=Path,
        metavar="IK.xml",
        help="OpenSim IK setup: marker weights, coordinate tasks, time range",
    )
    parser.add_argument(
        "--temporal",
        type=float,
        metavar="LAMBDA",
        help="temporal IK with this weight on squared frame-to-frame changes (>= 0)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")

    def run(args: argparse.Namespace) -> int:
        import numpy as np

        from biokin_nb.ik import read_ik_setup, solve_ik
        from biokin_nb.osim import load_model
        from biokin_nb.osim.coordinates import write_motion
        from biokin_nb.osim.io import read_trc

        log = logging.getLogger("biokin.ik")
        try:
            model = load_model(args.model)
            weights, tasks, markers = None, None, None
            if args.setup is not None:
                setup = read_ik_setup(args.setup)
                markers = setup.load_markers(args.markers)
                weights = setup.marker_weights(model)
                tasks = setup.coordinate_targets(model, markers.time)
            markers = markers if markers is not None else read_trc(args.markers)
            mode = "frame" if args.temporal is None else "temporal"
            smoothness = 1e-4 if args.temporal is None else args.temporal
            result = solve_ik(
                model,
                markers,
                weights=weights,
                coordinate_tasks=tasks,
                mode=mode,
                smoothness=smoothness,
                device=args.device,
            )
            write_motion(model, result.motion(), args.output)
        except (KeyError, ValueError, FileNotFoundError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            print(f"biokin ik: error: {message}", file=sys.stderr)
            return 2
        rms_mm = 1000 * float(np.sqrt(np.nanmean(result.marker_residuals**2)))
        log.info(
            "%s: %d frames, %s IK in %.2f s, marker RMS %.2f mm, %d of %d frames converged",
            args.output,
            len(result.time),
            mode,
            result.wall_time_s,
            rms_mm,
            int(result.converged.sum()),
            len(result.converged),
        )
        return 0

    parser.set_defaults(handler=run)


def _add_report(subparsers: Subparsers) -> None:
    """``biokin report``: notebook 70 over the clips of a params file, as HTML reports."""
    from biokin_nb import report

    parser = subparsers.add_parser(
        "report",
        help="per-clip HTML reports and an index (notebook 70 over many clips)",
        description=report.__doc__.split("\n\n")[0],
    )
    report.add_arguments(parser)
    parser.set_defaults(handler=report.run_from_args)


def _add_generate(subparsers: Subparsers) -> None:
    """``biokin generate``: the synthetic two-view dataset (resumable)."""
    from pathlib import Path

    parser = subparsers.add_parser(
        "generate",
        help="generate the synthetic two-view video dataset",
        description="Random subjects perform library actions, rendered by two cameras to "
        "H.264 video with masks and exact ground truth. Rerun to resume.",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    parser.add_argument("--subjects", type=int, default=8, help="subjects (default 8)")
    parser.add_argument("--clips-per-subject", type=int, default=4, help="(default 4)")
    parser.add_argument(
        "--size",
        type=int,
        nargs="+",
        default=[1080, 720],
        metavar="PX",
        help="image size: W H, or one number for square (default 1080 720)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="clip length, s")
    parser.add_argument("--fps", type=float, default=60.0, help="frame rate (default 60)")
    parser.add_argument(
        "--actions",
        nargs="+",
        help="actions to draw from (default: all), or .mot / .sto trials and AMASS SMPL-X "
        ".npz files (posed with the SMPL-X model in $SMPLX_MODEL_DIR)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit-iterations", type=int, default=10, help="mesh-fit iterations")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: none)")

    def run(args: argparse.Namespace) -> int:
        from biokin_nb.dataset import GenerateConfig, generate
        from biokin_nb.motion import ACTIONS

        log = logging.getLogger("biokin.generate")
        if len(args.size) not in (1, 2):
            log.error("--size takes W H or one number; got %s", args.size)
            return 2
        try:
            config = GenerateConfig(
                subjects=args.subjects,
                clips_per_subject=args.clips_per_subject,
                size=tuple(args.size) if len(args.size) == 2 else args.size[0],
                duration_s=args.duration,
                fps=args.fps,
                actions=tuple(args.actions) if args.actions else ACTIONS,
                seed=args.seed,
                fit_iterations=args.fit_iterations,
            )
            result = generate(args.output, config, workers=args.workers)
        except (ValueError, FileNotFoundError) as error:
            log.error("error: %s", error)
            return 2
        log.info(
            "%s: %d clips made, %d already there, %.1f s",
            result.root,
            len(result.made),
            len(result.skipped),
            result.seconds,
        )
        return 0

    parser.set_defaults(handler=run)


def _add_train(subparsers: Subparsers) -> None:
    """``biokin train``: both training stages on a generated dataset (resumable)."""
    from pathlib import Path

    parser = subparsers.add_parser(
        "train",
        help="train the network (frame-only stage, then temporal stage)",
        description="Train KinematicsNet on a generated dataset; rerun to resume from "
        "OUT/last.pt. Metrics per epoch go to OUT/metrics.jsonl.",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder (biokin generate)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    parser.add_argument("--preset", choices=("cpu", "paper"), default="cpu")
    parser.add_argument("--stage1-epochs", type=int, default=4)
    parser.add_argument("--stage2-epochs", type=int, default=4)
    parser.add_argument(
        "--stage3-epochs", type=int, default=0, help="mask refiner epochs (default 0)"
    )
    parser.add_argument("--window", type=int, help="frames per window (default: preset's T)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-steps", type=int, help="steps per epoch cap")
    parser.add_argument("--mask-weight", type=float, default=5.0, help="mask BCE weight")
    parser.add_argument("--heatmap-weight", type=float, default=100.0, help="heatmap MSE weight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--restart", action="store_true", help="ignore OUT/last.pt")

    def run(args: argparse.Namespace) -> int:
        from biokin_nb.net import CheckpointMismatchError, NetConfig
        from biokin_nb.train import TrainConfig, train

        log = logging.getLogger("biokin.train")
        try:
            config = TrainConfig(
                root=str(args.dataset),
                out=str(args.output),
                net=getattr(NetConfig, args.preset)(),
                stage1_epochs=args.stage1_epochs,
                stage2_epochs=args.stage2_epochs,
                stage3_epochs=args.stage3_epochs,
                window=args.window,
                batch_size=args.batch_size,
                lr=args.lr,
                max_steps=args.max_steps,
                mask_weight=args.mask_weight,
                heatmap_weight=args.heatmap_weight,
                seed=args.seed,
                device=args.device,
                resume=not args.restart,
            )
            result = train(config)
        except (ValueError, FileNotFoundError, CheckpointMismatchError) as error:
            log.error("error: %s", error)
            return 2
        log.info("%s: %d epochs, %.1f s", result.checkpoint, result.epochs_run, result.seconds)
        return 0

    parser.set_defaults(handler=run)


def _add_infer(subparsers: Subparsers) -> None:
    """``biokin infer``: two-view clips -> .mot, scaled .osim and keypoints."""
    from pathlib import Path

    parser = subparsers.add_parser(
        "infer",
        help="predict OpenSim kinematics of two-view clips",
        description="For every clip folder (view0.mp4, view1.mp4, cameras.json) under "
        "VIDEO_DIR, write OUT/<clip>/coordinates.mot, scaled.osim and keypoints.npy.",
    )
    parser.add_argument("video_dir", type=Path, metavar="VIDEO_DIR")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    parser.add_argument("-c", "--checkpoint", type=Path, required=True)
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")

    def run(args: argparse.Namespace) -> int:
        from biokin_nb.infer import infer_folder

        log = logging.getLogger("biokin.infer")
        try:
            files = infer_folder(args.checkpoint, args.video_dir, args.output, device=args.device)
        except (ValueError, FileNotFoundError) as error:
            log.error("error: %s", error)
            return 2
        for name, clip in files.items():
            log.info("%s: %s, %s", name, clip.motion, clip.osim)
        return 0

    parser.set_defaults(handler=run)


def _add_eval(subparsers: Subparsers) -> None:
    """``biokin eval``: frame-only, temporal and multi-step baseline metrics on a split,
    printed and as CSV."""
    from pathlib import Path

    parser = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint on a dataset split (MAE, PA-MPJPE, PA-MPJVE, mask IoU)",
    )
    parser.add_argument("dataset", type=Path)
    parser.add_argument("-c", "--checkpoint", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True, help="CSV file")
    parser.add_argument("--split", default="test")
    parser.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the multi-step baseline row (heatmaps -> triangulation -> temporal IK)",
    )

    def run(args: argparse.Namespace) -> int:
        from biokin_nb.evaluate import evaluate, write_table
        from biokin_nb.infer import load_network

        log = logging.getLogger("biokin.eval")
        try:
            net = load_network(args.checkpoint, device=args.device)
            table = evaluate(net, args.dataset, args.split, baseline=args.baseline)
        except (ValueError, FileNotFoundError) as error:
            log.error("error: %s", error)
            return 2
        print(table.to_string(index=False, float_format="%.2f"))
        log.info("wrote %s", write_table(table, args.output))
        return 0

    parser.set_defaults(handler=run)


def _add_variety(subparsers: Subparsers) -> None:
    """``biokin variety``: the distributions of a generated dataset's clips."""
    from pathlib import Path

    parser = subparsers.add_parser(
        "variety",
        help="report the variety of a generated dataset",
        description="Actions, garments, textures, camera heights, light, body shapes of a "
        "dataset's clips, as their meta.json recorded them.",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder (biokin generate)")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write the figure")

    def run(args: argparse.Namespace) -> int:
        from biokin_nb.dataset.variety import variety_report

        try:
            report = variety_report(args.dataset)
        except (ValueError, FileNotFoundError) as error:
            logging.getLogger("biokin.variety").error("error: %s", error)
            return 2
        print(report.table())
        if args.html:
            report.figure().write_html(args.html, include_plotlyjs=True)
        return 0

    parser.set_defaults(handler=run)


SUBCOMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    _add_notebooks,
    _add_ik,
    _add_report,
    _add_generate,
    _add_variety,
    _add_train,
    _add_infer,
    _add_eval,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``biokin`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="biokin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"biokin_nb {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``biokin``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
