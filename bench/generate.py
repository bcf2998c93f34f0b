"""Two-view frames per second of dataset generation, end to end per clip (motion, mesh
fitting, rendering both views with masks, encoding), at 256x256 and 1080x720.

Subject creation (body shape -> scaled skeleton) is per subject, not per frame: it is
timed separately. The last line printed is one JSON object.

    python bench/generate.py [--seconds 1.0] [--fit-iterations 10]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

from biokin_nb.dataset.generate import GenerateConfig, make_clip, make_subject, prepare_root  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="clip length (s)")
    parser.add_argument("--fit-iterations", type=int, default=10)
    args = parser.parse_args()
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, size in (("256", (256, 256)), ("1080x720", (1080, 720))):
            config = GenerateConfig(
                subjects=1,
                clips_per_subject=2,
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
            make_clip(root, config, 0, 0)  # warm-up: caches, first render
            start = time.perf_counter()
            make_clip(root, config, 0, 1)
            seconds = time.perf_counter() - start
            out[f"fps_{key}"] = round(config.n_frames / seconds, 2)
            print(f"{key}: {config.n_frames} two-view frames in {seconds:.2f} s", flush=True)
    out["frames_per_clip"] = GenerateConfig(duration_s=args.seconds).n_frames
    out["fit_iterations"] = args.fit_iterations
    print(json.dumps(out))


if __name__ == "__main__":
    main()
