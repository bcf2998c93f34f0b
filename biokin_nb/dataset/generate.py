"""Generate the synthetic two-view dataset (format: :mod:`biokin_nb.dataset.format`).

Pipeline per subject: a random body shape -> its scaled skeleton
(:func:`biokin_nb.body.skeleton_from_shape`) -> ``subjects/sNNN/``. Per clip: an action of
the procedural library for the subject -> the mesh fitted to it -> the paper's two cameras
-> clothing, light, background -> offscreen colour and mask renders -> ``clips/sNNN_cMM/``.

Every folder is written in a temporary sibling and renamed when complete, so a killed
job leaves only finished clips (and stale ``.tmp-*`` folders, removed by the next run);
running :func:`generate` again skips finished subjects and clips. Workers are spawned
processes (``workers=0``: in this process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from biokin_nb._files import atomic_write
from biokin_nb.dataset.format import (
    VIEWS,
    clip_name,
    subject_name,
    subject_splits,
    write_index,
)
from biokin_nb.motion import ACTIONS, clip_motion, motion_source, random_style
from biokin_nb.osim import forward_kinematics
from biokin_nb.osim.coordinates import read_motion, write_motion
from biokin_nb.render.cameras import paper_cameras, write_cameras
from biokin_nb.render.offscreen import MeshRenderer
from biokin_nb.render.scene import random_scene, vertex_colours, vertex_regions
from biokin_nb.render.video import FPS, VideoWriter, write_packed_masks

FORMAT_VERSION = 1


class DatasetMismatchError(ValueError):
    """The output folder holds another dataset (another config) or unrelated files."""


@dataclass(frozen=True)
class GenerateConfig:
    """What a dataset holds. Every field enters the config hash stored in dataset.json.

    Attributes:
        subjects: number of subjects (> 0).
        clips_per_subject: clips per subject (> 0).
        size: (width, height) pixels of both views (> 0); an int means square.
        duration_s: clip length (s, > 0); clips have ``round(duration_s * fps)`` frames.
        fps: frame rate (Hz).
        actions: the actions drawn from (library names, or paths of ``.mot`` / ``.sto``
            trials and AMASS SMPL-X ``.npz`` files, posed with ``$SMPLX_MODEL_DIR``'s
            SMPL-X model); clips cycle through them.
        seed: the random seed of everything.
        fit_iterations: L-BFGS iterations of the mesh fit (> 0).
        body: body model ("anny").
    """

    subjects: int = 8
    clips_per_subject: int = 4
    size: tuple[int, int] = (1080, 720)
    duration_s: float = 10.0
    fps: float = FPS
    actions: tuple[str, ...] = ACTIONS
    seed: int = 0
    fit_iterations: int = 10
    body: str = "anny"

    def __post_init__(self) -> None:
        size = (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)
        if len(size) != 2:
            raise ValueError(f"size must be (width, height) or one int; got {self.size!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in size))
        for label in ("subjects", "clips_per_subject", "fit_iterations"):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{label} must be a positive integer; got {value!r}")
        if min(self.size) <= 0:
            raise ValueError(f"size must be positive; got {self.size[0]} x {self.size[1]}")
        for label in ("duration_s", "fps"):
            if not float(getattr(self, label)) > 0:
                raise ValueError(f"{label} must be positive; got {getattr(self, label)!r}")
        actions = (self.actions,) if isinstance(self.actions, str) else tuple(self.actions)
        if not actions:
            raise ValueError(f"actions must name at least one of: {', '.join(ACTIONS)}")
        object.__setattr__(self, "actions", tuple(motion_source(a) for a in actions))

    @property
    def n_frames(self) -> int:
        return max(1, int(round(self.duration_s * self.fps)))

    def to_json(self) -> dict:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def digest(self) -> str:
        """A short hash of the config (and the format version)."""
        text = json.dumps({"format": FORMAT_VERSION, **self.to_json()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class GenerateResult:
    """What a :func:`generate` run did: clips made now, clips already there, seconds."""

    root: Path
    made: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------------------- the dataset folder


def prepare_root(root: Path, config: GenerateConfig) -> None:
    """Create or check the dataset folder: its dataset.json must carry ``config``'s hash.

    Raises:
        DatasetMismatchError: the folder holds another dataset or unrelated files.
    """
    info = root / "dataset.json"
    if info.is_file():
        stored = json.loads(info.read_text(encoding="utf-8"))
        if stored.get("hash") != config.digest():
            old = stored.get("config", {})
            diff = [k for k, v in config.to_json().items() if old.get(k) != v]
            raise DatasetMismatchError(
                f"{root} holds a different dataset (config differs in "
                f"{', '.join(diff) or 'format version'}); use another output folder or "
                "the same settings to resume"
            )
    elif root.exists() and any(root.iterdir()):
        raise DatasetMismatchError(
            f"{root} is not empty and holds no dataset.json; choose an empty or new folder"
        )
    for sub in ("subjects", "clips"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for stale in (root / sub).glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    if not info.is_file():
        with atomic_write(info) as file:
            json.dump({"hash": config.digest(), "config": config.to_json()}, file, indent=2)


def _commit(tmp: Path, final: Path) -> None:
    """Move a finished temporary folder into place (a twin finished first: drop ours)."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _tmp_folder(parent: Path, name: str) -> Path:
    tmp = parent / f".tmp-{name}-{os.getpid()}-{secrets.token_hex(3)}"
    tmp.mkdir()
    return tmp


@lru_cache(maxsize=2)
def _registration(body: str):
    from biokin_nb.body import load_registration

    return load_registration(body)


# ---------------------------------------------------------------------------- subjects


def make_subject(root: Path, config: GenerateConfig, index: int) -> Path:
    """Draw subject ``index``'s body shape and write ``subjects/sNNN/``; returns it."""
    from biokin_nb.body import skeleton_from_shape, write_subject_osim

    final = root / "subjects" / subject_name(index)
    if final.is_dir():
        return final
    reg = _registration(config.body)
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + index)
    shape = reg.body.sample_shapes(1, generator)[0]
    subject = skeleton_from_shape(reg, shape)
    tmp = _tmp_folder(final.parent, final.name)
    write_subject_osim(reg, subject, tmp / "subject.osim", subject_name(index))
    np.save(tmp / "scales.npy", np.asarray(subject.scales, dtype=np.float64))
    np.savez(
        tmp / "subject.npz",
        shape=subject.shape.numpy(),
        marker_locations=subject.marker_locations,
        rest_joints=subject.rest_joints,
        height=subject.height,
    )
    meta = {
        "shape": dict(zip(reg.body.shape_names, map(float, subject.shape), strict=True)),
        "height_m": float(subject.height),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    _commit(tmp, final)
    return final


def load_subject(reg, folder: Path):
    """The :class:`biokin_nb.body.Subject` saved by :func:`make_subject`."""
    from biokin_nb.body import Subject
    from biokin_nb.osim.model import Marker

    data = np.load(folder / "subject.npz")
    scales = np.load(folder / "scales.npy")
    local = data["marker_locations"]
    per_scale = local / scales[reg.geom.marker_body]
    markers = tuple(
        Marker(m.name, m.body, np.diag(p))
        for m, p in zip(reg.model.markers, per_scale, strict=True)
    )
    model = dataclasses.replace(reg.model, markers=markers, _cache={})
    shape = torch.as_tensor(data["shape"], dtype=reg.body.dtype)
    return Subject(
        reg.body.kind, shape, scales, model, local, data["rest_joints"], float(data["height"])
    )


# ---------------------------------------------------------------------------- clips


def clip_action(config: GenerateConfig, subject: int, clip: int) -> str:
    """The action of a clip: the actions in a seeded order, cycled over all clips."""
    order = np.random.default_rng([config.seed, 1]).permutation(len(config.actions))
    return config.actions[int(order[(subject * config.clips_per_subject + clip) % len(order)])]


def make_clip(root: Path, config: GenerateConfig, subject_index: int, clip: int) -> Path:
    """Generate and write ``clips/sNNN_cMM/`` (see the format); returns the folder."""
    from biokin_nb.body import FitConfig, fit_motion

    final = root / "clips" / clip_name(subject_index, clip)
    if final.is_dir():
        return final
    reg = _registration(config.body)
    subject_folder = root / "subjects" / subject_name(subject_index)
    subject = load_subject(reg, subject_folder)
    rng = np.random.default_rng([config.seed, subject_index, clip])
    style = random_style(np.random.default_rng([config.seed, subject_index, 99]))
    action = clip_action(config, subject_index, clip)
    duration = config.n_frames / config.fps
    motion = clip_motion(
        subject.model, action, duration, rng=rng, style=style, fps=config.fps, scales=subject.scales
    )
    tmp = _tmp_folder(final.parent, final.name)
    try:
        # Ground truth from the .mot as written, so that the file reproduces it exactly.
        write_motion(reg.model, motion, tmp / "coordinates.mot")
        motion = read_motion(reg.model, tmp / "coordinates.mot")
        q = torch.as_tensor(motion.q, dtype=torch.float64)
        scales = torch.as_tensor(subject.scales, dtype=torch.float64)
        keypoints = forward_kinematics(reg.model, q, scales).keypoints.numpy()
        np.save(tmp / "keypoints.npy", keypoints)
        np.save(tmp / "scales.npy", np.asarray(subject.scales, dtype=np.float64))
        shutil.copyfile(subject_folder / "subject.osim", tmp / "subject.osim")
        fit = fit_motion(reg, subject, motion, FitConfig(iterations=config.fit_iterations))
        vertices = fit.vertices(reg).double().numpy()
        meta = _render_clip(reg, subject, vertices, keypoints, config, rng, tmp)
        meta.update(
            action=action,
            subject=subject_name(subject_index),
            clip=final.name,
            split=subject_splits(config.subjects, config.seed)[subject_index],
            frames=len(keypoints),
            fps=config.fps,
            width=config.size[0],
            height=config.size[1],
            body_shape=json.loads((subject_folder / "meta.json").read_text(encoding="utf-8")),
            fit_residuals_mm=fit.summary(),
            motion_style=dataclasses.asdict(style),
            body_model=config.body,
        )
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _commit(tmp, final)
    return final


def _render_clip(reg, subject, vertices, keypoints, config, rng, folder: Path) -> dict:
    """Cameras, look, renders and their files; returns the meta entries they add."""
    floor_centre = 0.5 * (keypoints.min(axis=(0, 1)) + keypoints.max(axis=(0, 1)))
    centre = np.array([floor_centre[0], 0.5 * float(vertices[..., 1].max()), floor_centre[2]])
    sample = vertices[:: max(1, len(vertices) // 10), ::25].reshape(-1, 3)
    cameras = paper_cameras(rng, centre, config.size, points=sample, pad=0.05)
    write_cameras(folder / "cameras.json", cameras)
    style = random_scene(rng)
    with torch.no_grad():
        rest = reg.body(subject.shape).vertices.double().numpy()
    body = reg.body
    regions = vertex_regions(body.bone_names, body.dominant_bones().cpu().numpy())
    colours = vertex_colours(style, regions, rest)
    masks = {view: [] for view in VIEWS}
    with contextlib.ExitStack() as stack:
        renderer = stack.enter_context(
            MeshRenderer(body.faces.cpu().numpy(), colours, style, config.size)
        )
        videos = [
            stack.enter_context(VideoWriter(folder / f"{view}.mp4", config.size, config.fps))
            for view in VIEWS
        ]
        for frame in vertices:  # both views per pose: the mesh is updated once
            for view, video, rendered in zip(
                VIEWS, videos, renderer.render_views(frame, cameras), strict=True
            ):
                video.write(rendered.rgb)
                masks[view].append(np.packbits(rendered.mask, axis=-1))
    write_packed_masks(folder / "masks.npz", masks, config.size[0])
    return {
        "garments": {"upper": style.upper.kind, "lower": style.lower.kind},
        "textures": {"upper": style.upper.texture, "lower": style.lower.texture},
        "scene": style.to_json(),
        "camera_heights_m": [float(c.centre[1]) for c in cameras],
    }


# ---------------------------------------------------------------------------- the job


def _init_worker() -> None:
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    torch.set_num_threads(1)


def _subject_task(args: tuple) -> str:
    root, config, index = args
    return make_subject(Path(root), config, index).name


def _clip_task(args: tuple) -> str:
    root, config, subject, clip = args
    return make_clip(Path(root), config, subject, clip).name


def generate(
    root: str | os.PathLike[str],
    config: GenerateConfig,
    workers: int = 0,
    progress: bool = True,
) -> GenerateResult:
    """Generate (or finish) the dataset of ``config`` in ``root``, then write index.csv.

    Args:
        root: the dataset folder (created; a folder of the same config is resumed).
        config: what to generate.
        workers: spawned worker processes (0: in this process).
        progress: show a tqdm progress bar.

    Raises:
        DatasetMismatchError: ``root`` holds another dataset or unrelated files.
        ValueError: ``workers`` < 0.
    """
    from tqdm.auto import tqdm

    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0; got {workers!r}")
    start = time.perf_counter()
    root = Path(root)
    prepare_root(root, config)
    result = GenerateResult(root)
    subjects = [
        (str(root), config, s)
        for s in range(config.subjects)
        if not (root / "subjects" / subject_name(s)).is_dir()
    ]
    clips = []
    for s in range(config.subjects):
        for c in range(config.clips_per_subject):
            done = (root / "clips" / clip_name(s, c)).is_dir()
            (result.skipped if done else clips).append(
                clip_name(s, c) if done else (str(root), config, s, c)
            )
    bar = tqdm(total=len(subjects) + len(clips), disable=not progress, desc="generate")
    if workers == 0:
        for task in subjects:
            _subject_task(task)
            bar.update()
        for task in clips:
            result.made.append(_clip_task(task))
            bar.update()
    else:
        context = mp.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker) as pool:
            for _ in pool.imap_unordered(_subject_task, subjects):
                bar.update()
            for name in pool.imap_unordered(_clip_task, clips):
                result.made.append(name)
                bar.update()
    bar.close()
    write_dataset_index(root)
    result.seconds = time.perf_counter() - start
    return result


def write_dataset_index(root: Path) -> Path:
    """Write ``index.csv`` from the finished clip folders' meta.json."""
    rows = []
    for folder in sorted((root / "clips").glob("s*_c*")):
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        rows.append(
            {
                "clip": meta["clip"],
                "subject": meta["subject"],
                "split": meta["split"],
                "action": meta["action"],
                "frames": meta["frames"],
                "upper": meta["garments"]["upper"],
                "lower": meta["garments"]["lower"],
                "width": meta["width"],
                "height": meta["height"],
            }
        )
    return write_index(root / "index.csv", rows)
