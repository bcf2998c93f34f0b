"""The synthetic dataset's on-disk format.

A dataset folder::

    dataset.json            the generation config and its hash (resume checks it)
    index.csv               one row per finished clip (columns ``INDEX_COLUMNS``)
    subjects/sNNN/          per subject: subject.osim (scaled model), scales.npy (22, 3),
                            subject.npz (shape, marker locations, rest joints, height),
                            meta.json (body shape by name, height)
    clips/sNNN_cMM/         per clip:

        view0.mp4, view1.mp4  frontal and sagittal video, H.264 yuv420p, 60 fps
        masks.npz             person masks, bit-packed: read with :func:`read_masks`
                              -> {"view0", "view1"}: (T, H, W) bool
        cameras.json          K, R, t, width, height per view (OpenCV convention, OpenSim
                              world; :func:`biokin_nb.render.read_cameras`)
        coordinates.mot       ground-truth coordinates (OpenSim .mot, degrees)
        scales.npy            (22, 3) float64 body scale factors of the generic model
        keypoints.npy         (T, 44, 3) float64 joint centres then body mass centres (m):
                              the project FK of coordinates.mot with scales.npy
        subject.osim          the subject's scaled OpenSim model
        meta.json             action, garments, textures, palettes, lights, background,
                              camera heights, body shape, frame count, fps, subject, split

A clip folder only appears complete: it is written in a temporary ``clips/.tmp-*`` folder
and renamed at the end. Splits are by subject (no subject is in two splits).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biokin_nb._files import atomic_write
from biokin_nb.osim.coordinates import Motion, read_motion
from biokin_nb.osim.model import KinematicModel
from biokin_nb.render.cameras import Camera, read_cameras
from biokin_nb.render.video import read_masks, read_video

VIEWS = ("view0", "view1")
CLIP_FILES = (
    "view0.mp4",
    "view1.mp4",
    "masks.npz",
    "cameras.json",
    "coordinates.mot",
    "scales.npy",
    "keypoints.npy",
    "subject.osim",
    "meta.json",
)
INDEX_COLUMNS = (
    "clip",
    "subject",
    "split",
    "action",
    "frames",
    "upper",
    "lower",
    "width",
    "height",
)
SPLITS = ("train", "val", "test")


def subject_name(subject: int) -> str:
    return f"s{subject:03d}"


def clip_name(subject: int, clip: int) -> str:
    return f"{subject_name(subject)}_c{clip:02d}"


def subject_splits(n_subjects: int, seed: int) -> list[str]:
    """The split of each subject: about 75 / 10 / 15 % train / val / test, shuffled by
    ``seed``; with 2 subjects one train and one test, with 3 or more at least one each."""
    n_test = 0 if n_subjects < 2 else max(1, round(0.15 * n_subjects))
    n_val = 0 if n_subjects < 3 else max(1, round(0.10 * n_subjects))
    labels = ["test"] * n_test + ["val"] * n_val
    labels += ["train"] * (n_subjects - len(labels))
    order = np.random.default_rng([seed, 7]).permutation(n_subjects)
    return [labels[int(i)] for i in np.argsort(order)]


@dataclass
class Clip:
    """A clip read back (videos not decoded until asked).

    Attributes:
        folder: the clip folder.
        meta: the meta.json dict.
        cameras: the two cameras (frontal, sagittal).
        motion: ground-truth coordinates (``time`` (T,) s, ``q`` (T, C) rad / m).
        scales: (22, 3) scale factors.
        keypoints: (T, 44, 3) m.
    """

    folder: Path
    meta: dict
    cameras: list[Camera]
    motion: Motion
    scales: np.ndarray
    keypoints: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.keypoints)

    def video(self, view: int, frames: slice | None = None) -> np.ndarray:
        """(T, H, W, 3) uint8 frames of view 0 (frontal) or 1 (sagittal)."""
        camera = self.cameras[view]
        path = self.folder / f"{VIEWS[view]}.mp4"
        return read_video(path, (camera.width, camera.height), frames)

    def masks(self) -> np.ndarray:
        """(2, T, H, W) bool person masks of both views."""
        masks = read_masks(self.folder / "masks.npz")
        return np.stack([masks[v] for v in VIEWS])


def read_clip(folder: str | Path, model: KinematicModel) -> Clip:
    """Read a clip folder's ground truth and cameras.

    Args:
        folder: the clip folder.
        model: the generic model (its coordinate names read the .mot).

    Raises:
        FileNotFoundError: the folder lacks one of ``CLIP_FILES`` (named).
    """
    folder = Path(folder)
    missing = [name for name in CLIP_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"clip {folder} lacks {', '.join(missing)}; regenerate it")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return Clip(
        folder=folder,
        meta=meta,
        cameras=read_cameras(folder / "cameras.json"),
        motion=read_motion(model, folder / "coordinates.mot"),
        scales=np.load(folder / "scales.npy"),
        keypoints=np.load(folder / "keypoints.npy"),
    )


def write_index(path: str | Path, rows: list[dict]) -> Path:
    """Write ``index.csv`` (columns ``INDEX_COLUMNS``) atomically."""
    with atomic_write(path) as file:
        writer = csv.DictWriter(file, fieldnames=INDEX_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in INDEX_COLUMNS})
    return Path(path)


def read_index(root: str | Path) -> list[dict]:
    """The rows of a dataset's ``index.csv`` (``frames``, ``width``, ``height`` as int).

    Raises:
        FileNotFoundError: no index (the dataset was never generated to the end).
    """
    path = Path(root) / "index.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no index.csv in {root}; run `biokin generate` to finish it")
    with open(path, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        for key in ("frames", "width", "height"):
            row[key] = int(row[key])
    return rows


def preview_image(
    clip: Clip, frame: int = 0, overlay: bool = True, masks: np.ndarray | None = None
) -> np.ndarray:
    """(H, 2W, 3) uint8: both views of ``frame`` side by side; with ``overlay`` the person
    mask tinted green and the ground-truth keypoints projected with the clip's cameras as
    red dots (joint centres) and yellow dots (mass centres).

    Args:
        masks: (2, T, H, W) the clip's masks when already read (saves decoding them).
    """
    masks = clip.masks() if (overlay and masks is None) else masks
    panels = []
    for view, camera in enumerate(clip.cameras):
        image = clip.video(view, slice(frame, frame + 1))[0].copy()
        if overlay:
            mask = masks[view, frame]
            image[mask] = (0.6 * image[mask] + [0, 100, 0]).astype(np.uint8)
            uv = np.round(camera.project(clip.keypoints[frame])).astype(int)
            half = len(uv) // 2
            for k, (u, v) in enumerate(uv):
                if 0 <= u < camera.width and 0 <= v < camera.height:
                    colour = (255, 0, 0) if k < half else (255, 230, 0)
                    image[max(v - 1, 0) : v + 2, max(u - 1, 0) : u + 2] = colour
        panels.append(image)
    return np.hstack(panels)
