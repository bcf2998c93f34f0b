"""Two-view frames per second of dataset generation, end to end per clip (motion, mesh
fitting, rendering both views with masks, encoding, writing), at 256x256 and 1080x720.

Clips are made as ``biokin generate --workers N`` makes them: in N spawned worker
processes (default 2, one per core of the reference machine; 0: in this process). Subject
creation (body shape -> scaled skeleton) is per subject, not per frame: it is timed
separately. Each worker first makes one warm-up clip (imports, caches, first render); the
figure is the frames of the next ``--clips`` clips over the wall-clock time they take.
The last line printed is one JSON object.

    python bench/generate.py [--workers 2] [--clips 4] [--seconds 1.0] [--fit-iterations 10]
                             [--sizes 256 1080x720]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

from biokin_nb.dataset.generate import (  # noqa: E402
    GenerateConfig,
    _clip_task,
    _init_worker,
    make_subject,
    prepare_root,
)

SIZES = {"256": (256, 256), "1080x720": (1080, 720)}


def _run(pool, tasks: list[tuple]) -> float:
    """Seconds to make the clips of ``tasks`` (in ``pool``, or here when None)."""
    start = time.perf_counter()
    if pool is None:
        for task in tasks:
            _clip_task(task)
    else:
        for _ in pool.imap_unordered(_clip_task, tasks):
            pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (0: here)")
    parser.add_argument("--clips", type=int, default=4, help="timed clips per size")
    parser.add_argument("--seconds", type=float, default=1.0, help="clip length (s)")
    parser.add_argument("--fit-iterations", type=int, default=10)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    if args.workers < 0 or args.clips <= 0:
        parser.error("--workers must be >= 0 and --clips > 0")
    warm = max(1, args.workers)
    out: dict[str, float] = {}
    context = mp.get_context("spawn")
    pool = context.Pool(args.workers, initializer=_init_worker) if args.workers else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for key in args.sizes:
                size = SIZES[key]
                config = GenerateConfig(
                    subjects=1,
                    clips_per_subject=warm + args.clips,
                    size=size,
                    duration_s=args.seconds,
                    fit_iterations=args.fit_iterations,
                    actions=("walking",),
                )
                root = Path(tmp) / key
                prepare_root(root, config)
                start = time.perf_counter()
                make_subject(root, config, 0)
                out["subject_s"] = round(time.perf_counter() - start, 2)
                tasks = [(str(root), config, 0, c) for c in range(warm + args.clips)]
                _run(pool, tasks[:warm])  # warm-up: one clip per worker
                seconds = _run(pool, tasks[warm:])
                frames = args.clips * config.n_frames
                out[f"fps_{key}"] = round(frames / seconds, 2)
                print(f"{key}: {frames} two-view frames in {seconds:.2f} s", flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    out["workers"] = args.workers
    out["cpus"] = os.cpu_count()
    out["frames_per_clip"] = GenerateConfig(duration_s=args.seconds).n_frames
    out["fit_iterations"] = args.fit_iterations
    print(json.dumps(out))


if __name__ == "__main__":
    main()
