"""Motion sources other than the action library: OpenSim ``.mot`` trials and AMASS files.

- :func:`motion_from_mot`: any ``.mot`` / ``.sto`` of coordinates whose names the model
  has (OpenSim IK results of Rajagopal-style models drive the generic model), resampled
  to the dataset rate (60 fps) and optionally put on the floor.
- :func:`read_amass`: an AMASS ``.npz`` (SMPL+H or SMPL-X parameters) read and checked
  into an :class:`AmassSequence`. AMASS stores a Z-up world, metres, axis-angle rotations.
- :func:`amass_to_motion`: AMASS SMPL-X sequences as coordinates (virtual markers on the
  posed SMPL-X mesh, then temporal marker IK; :mod:`biokin_nb.motion.amass`).
- :func:`clip_motion`: a dataset clip from a library action or a motion file (the
  generator's motion source; :func:`motion_source` checks a source name).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.interpolate import CubicSpline

from biokin_nb.motion.actions import action_name, make_action
from biokin_nb.motion.contact import ground_contact
from biokin_nb.motion.style import ActionStyle
from biokin_nb.osim.coordinates import Motion, read_motion
from biokin_nb.osim.model import KinematicModel

# ---------------------------------------------------------------------------- .mot files


def motion_from_mot(
    model: KinematicModel,
    path: str | Path,
    *,
    fps: float | None = 60.0,
    extra: Literal["error", "ignore"] = "error",
    missing: Literal["default", "error"] = "default",
    on_floor: bool = False,
) -> Motion:
    """Coordinates of ``model`` from an OpenSim ``.mot`` / ``.sto`` file.

    Args:
        model: the model to drive; the file's columns are matched to its coordinates by
            name (rotational ones converted from degrees when the file says so).
        path: the file.
        fps: resample to this rate (Hz; None keeps the file's own times).
        extra: columns the model lacks raise ("error", the message lists them) or are
            dropped ("ignore").
        missing: model coordinates the file lacks take their defaults (with a warning) or
            raise ("error").
        on_floor: move ``pelvis_ty`` per frame so the lowest foot point touches y = 0 (for
            a trial captured on another body; removes flight phases).

    Raises:
        FileNotFoundError: no such file.
        KeyError: coordinate names do not match (see ``extra``, ``missing``).
        ValueError: ``fps`` not positive, or fewer than 2 frames to resample.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no motion file at {path}")
    try:
        motion = read_motion(model, path, missing=missing, extra=extra)
    except KeyError as error:
        raise KeyError(f"{path.name}: {error.args[0]}") from None
    if fps is not None:
        motion = resample(motion, fps, rotational=model.rotational)
    if on_floor:
        motion = ground_contact(model, motion, pin=False, recentre=False)
    return motion


def resample(motion: Motion, fps: float, rotational: np.ndarray | None = None) -> Motion:
    """``motion`` on a uniform grid at ``fps`` Hz from its first time up to its last.

    Cubic spline interpolation per coordinate. Rotational columns (``rotational`` (C,)
    bool) that wrap around +/-pi are unwrapped first and wrapped back after.

    Raises:
        ValueError: ``fps`` not positive or fewer than 2 frames.
    """
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive; got {fps!r}")
    if len(motion.time) < 2:
        raise ValueError(f"resampling needs at least 2 frames; the motion has {len(motion.time)}")
    t0, t1 = motion.time[0], motion.time[-1]
    time = t0 + np.arange(int(np.floor((t1 - t0) * fps + 1e-9)) + 1) / fps
    q = motion.q.copy()
    wrapped = np.zeros(q.shape[1], dtype=bool)
    if rotational is not None:
        unwrapped = np.unwrap(q, axis=0)
        wrapped = rotational & np.any(np.abs(unwrapped - q) > 1e-9, axis=0)
        q[:, wrapped] = unwrapped[:, wrapped]
    out = CubicSpline(motion.time, q, axis=0)(time)
    out[:, wrapped] = np.angle(np.exp(1j * out[:, wrapped]))
    return Motion(time, out, list(motion.coordinate_names))


# ---------------------------------------------------------------------------- AMASS

SMPLH_POSE_WIDTH = 156  # 52 joints x 3: root, 21 body, 30 hand joints
SMPLX_POSE_WIDTH = 165  # 55 joints x 3: root, 21 body, jaw, 2 eyes, 30 hand joints
GENDERS = ("male", "female", "neutral")


@dataclass
class AmassSequence:
    """An AMASS motion: body model parameters per frame (AMASS world: Z up, metres).

    Attributes:
        model_type: "smplh" (SMPL+H, AMASS's original release) or "smplx".
        gender: "male", "female" or "neutral".
        fps: the capture rate (Hz).
        betas: (S,) shape coefficients (10 or 16 in AMASS).
        trans: (T, 3) root translation (m).
        root_orient: (T, 3) global root rotation, axis-angle (rad).
        pose_body: (T, 63) 21 body joints, axis-angle (rad).
        pose_hand: (T, 90) 30 hand joints (left then right), axis-angle (rad).
        pose_jaw: (T, 3) SMPL-X jaw (None for SMPL+H).
        pose_eye: (T, 6) SMPL-X eyes (None for SMPL+H).
        dmpls: (T, 8) soft-tissue coefficients when present.
        source: the file read.
    """

    model_type: Literal["smplh", "smplx"]
    gender: str
    fps: float
    betas: np.ndarray
    trans: np.ndarray
    root_orient: np.ndarray
    pose_body: np.ndarray
    pose_hand: np.ndarray
    pose_jaw: np.ndarray | None = None
    pose_eye: np.ndarray | None = None
    dmpls: np.ndarray | None = None
    source: Path | None = None

    @property
    def n_frames(self) -> int:
        return len(self.trans)

    @property
    def time(self) -> np.ndarray:
        """(T,) s from 0."""
        return np.arange(self.n_frames) / self.fps

    @property
    def poses(self) -> np.ndarray:
        """(T, 156) SMPL+H or (T, 165) SMPL-X: all joint rotations in AMASS's order."""
        parts = [self.root_orient, self.pose_body]
        if self.model_type == "smplx":
            parts += [self.pose_jaw, self.pose_eye]
        return np.concatenate([*parts, self.pose_hand], axis=1)


def read_amass(path: str | Path) -> AmassSequence:
    """Read and check an AMASS ``.npz`` (SMPL+H: ``poses`` (T, 156), ``trans``, ``betas``,
    ``gender``, ``mocap_framerate``; SMPL-X: also ``root_orient``, ``pose_body``,
    ``pose_hand``, ``pose_jaw``, ``pose_eye``, ``mocap_frame_rate``,
    ``surface_model_type``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable ``.npz``, a key missing (the message lists the keys
            found), wrong shapes, frame counts that disagree, NaN or infinite values, an
            unknown gender, a non-positive frame rate, or plain SMPL (72 pose values).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no AMASS file at {path}")
    data = _load_npz(path)
    model_type = _model_type(data, path)
    fps = _frame_rate(data, path)
    poses = _split_poses(data, model_type, path)
    trans = _array(data, "trans", path, (None, 3))
    betas = _array(data, "betas", path, (None,))
    dmpls = _array(data, "dmpls", path, (None, None)) if "dmpls" in data else None
    sequence = AmassSequence(
        model_type, _gender(data, path), fps, betas, trans, **poses, dmpls=dmpls, source=path
    )
    _check_frames(sequence, path)
    return sequence


def amass_to_motion(
    sequence: AmassSequence | str | Path,
    model: KinematicModel,
    *,
    fps: float = 60.0,
    model_path: str | Path | None = None,
    heading: Literal["first_frame", "keep"] = "first_frame",
    recentre: bool = True,
) -> Motion:
    """Coordinates of ``model`` following an AMASS SMPL-X sequence (or its ``.npz`` path).

    The SMPL-X mesh of the sequence's shape is posed frame by frame through the body layer
    (the user's licensed files: ``model_path`` or ``$SMPLX_MODEL_DIR``), its virtual
    markers are carried from AMASS's Z-up world into OpenSim's ground (Y up, X forward;
    the subject facing +X at the first frame unless ``heading="keep"``), and temporal
    marker IK of the model, scaled to the body, gives the coordinates, resampled to
    ``fps``. Details, scales and residuals: :func:`biokin_nb.motion.amass.convert_amass`.

    Returns:
        Motion with ``time`` (T,) s from 0 at ``fps`` and ``q`` (T, C) rad / m in the
        model's order, inside its ranges of motion.

    Raises:
        ValueError: an SMPL+H sequence (the body layer poses SMPL-X only; use AMASS's
            SMPL-X release), or a file :func:`read_amass` rejects.
        FileNotFoundError: no such file, or no SMPL-X model file (says where it looked).
    """
    from biokin_nb.motion.amass import convert_amass

    if not isinstance(sequence, AmassSequence):
        sequence = read_amass(sequence)
    return convert_amass(
        sequence, model, fps=fps, model_path=model_path, heading=heading, recentre=recentre
    ).motion


# ---------------------------------------------------------------------------- clip sources

MOTION_FILE_SUFFIXES = (".mot", ".sto", ".npz")


def is_motion_file(source: str | Path) -> bool:
    """Whether a clip source names a motion file (``.mot``, ``.sto``, AMASS ``.npz``)."""
    return Path(str(source)).suffix.lower() in MOTION_FILE_SUFFIXES


def motion_source(source: str | Path) -> str:
    """A clip source checked: a library action's name (normalised) or an existing
    ``.mot`` / ``.sto`` / AMASS ``.npz`` file (its absolute path).

    Raises:
        FileNotFoundError: a motion file that does not exist.
        ValueError: neither an action nor a motion file (lists the valid actions).
    """
    if is_motion_file(source):
        path = Path(source).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no motion file at {path}")
        return str(path)
    try:
        return action_name(str(source))
    except ValueError as error:
        raise ValueError(
            f"{error.args[0]}; or give a .mot / .sto trial or an AMASS .npz file"
        ) from None


def clip_motion(
    model: KinematicModel,
    source: str | Path,
    duration_s: float,
    *,
    rng: np.random.Generator,
    style: ActionStyle | None = None,
    fps: float = 60.0,
    scales: np.ndarray | None = None,
    smplx_path: str | Path | None = None,
) -> Motion:
    """A clip of ``duration_s`` from a library action or a motion file.

    Actions go to :func:`~biokin_nb.motion.actions.make_action`. A ``.mot`` / ``.sto`` or
    AMASS ``.npz`` file is converted to ``fps`` (AMASS: :func:`amass_to_motion` with
    ``smplx_path`` or ``$SMPLX_MODEL_DIR``; cached per file), a window of the clip's length
    starts at a random frame (a shorter file holds its last frame), the feet are put on
    the floor for the subject's ``scales`` and the pelvis path is centred on the origin.

    Returns:
        Motion of ``round(duration_s * fps)`` frames (at least 1), times from 0.
    """
    if not is_motion_file(source):
        return make_action(
            model, str(source), duration_s, rng=rng, style=style, fps=fps, scales=scales
        )
    full = _file_motion(model, str(source), fps, smplx_path)
    n = max(1, int(round(duration_s * fps)))
    start = int(rng.integers(0, max(1, len(full.time) - n + 1)))
    index = np.minimum(np.arange(start, start + n), len(full.time) - 1)
    window = Motion(np.arange(n) / fps, full.q[index], list(full.coordinate_names))
    window = ground_contact(model, window, scales=scales, pin=False, recentre=False)
    horizontal = [model.coordinate_names.index(c) for c in ("pelvis_tx", "pelvis_tz")]
    window.q[:, horizontal] -= 0.5 * (
        window.q[:, horizontal].min(0) + window.q[:, horizontal].max(0)
    )
    return window


_FILE_MOTIONS: dict[tuple, Motion] = {}
_CACHED_FILES = 8


def _file_motion(
    model: KinematicModel, source: str, fps: float, smplx_path: str | Path | None
) -> Motion:
    """The whole file as coordinates of ``model`` at ``fps`` (cached per file version)."""
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no motion file at {path}")
    key = (str(path.resolve()), path.stat().st_mtime_ns, fps, str(smplx_path), model.name)
    key += tuple(model.coordinate_names)
    if key not in _FILE_MOTIONS:
        if path.suffix.lower() == ".npz":
            motion = amass_to_motion(path, model, fps=fps, model_path=smplx_path)
        else:
            motion = motion_from_mot(model, path, fps=fps)
        if len(_FILE_MOTIONS) >= _CACHED_FILES:
            _FILE_MOTIONS.clear()
        _FILE_MOTIONS[key] = motion
    return _FILE_MOTIONS[key]


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(
            f"{path}: not a readable AMASS .npz ({error}); AMASS files are numpy .npz "
            "archives without pickled objects"
        ) from None


def _missing(path: Path, wanted: str, data: dict) -> ValueError:
    return ValueError(f"{path}: no {wanted} in the file (keys found: {', '.join(sorted(data))})")


def _model_type(data: dict, path: Path) -> Literal["smplh", "smplx"]:
    if "surface_model_type" in data:
        kind = str(np.asarray(data["surface_model_type"]).reshape(-1)[0]).lower()
        kind = {"smplx": "smplx", "smpl-x": "smplx", "smplh": "smplh", "smpl+h": "smplh"}.get(kind)
        if kind is None:
            raise ValueError(
                f"{path}: surface_model_type {data['surface_model_type']!r} is not SMPL+H or SMPL-X"
            )
        return kind
    if "poses" not in data:
        raise _missing(path, "'poses' (is this a shape.npz without motion?)", data)
    width = np.asarray(data["poses"]).shape[-1]
    if width == SMPLX_POSE_WIDTH:
        return "smplx"
    if width == SMPLH_POSE_WIDTH:
        return "smplh"
    raise ValueError(
        f"{path}: 'poses' has {width} values per frame; expected {SMPLH_POSE_WIDTH} (SMPL+H) "
        f"or {SMPLX_POSE_WIDTH} (SMPL-X); plain SMPL (72) is not supported"
    )


def _frame_rate(data: dict, path: Path) -> float:
    for key in ("mocap_framerate", "mocap_frame_rate"):
        if key in data:
            fps = float(np.asarray(data[key]).reshape(-1)[0])
            if not (np.isfinite(fps) and fps > 0):
                raise ValueError(f"{path}: {key} must be positive; got {fps}")
            return fps
    raise _missing(path, "frame rate ('mocap_framerate' or 'mocap_frame_rate')", data)


def _gender(data: dict, path: Path) -> str:
    if "gender" not in data:
        raise _missing(path, "'gender'", data)
    value = np.asarray(data["gender"]).reshape(-1)[0]
    gender = (value.decode() if isinstance(value, bytes) else str(value)).strip().lower()
    if gender not in GENDERS:
        raise ValueError(f"{path}: gender {gender!r} is not one of {', '.join(GENDERS)}")
    return gender


def _split_poses(data: dict, model_type: str, path: Path) -> dict[str, np.ndarray]:
    """The per-part pose arrays: from SMPL-X's separate keys when present, else by slicing
    ``poses`` in AMASS's joint order."""
    parts = {"root_orient": 3, "pose_body": 63, "pose_hand": 90}
    if model_type == "smplx":
        parts |= {"pose_jaw": 3, "pose_eye": 6}
    if all(key in data for key in parts):
        return {key: _array(data, key, path, (None, width)) for key, width in parts.items()}
    width = SMPLX_POSE_WIDTH if model_type == "smplx" else SMPLH_POSE_WIDTH
    if "poses" not in data:
        raise _missing(path, "'poses'", data)
    poses = _array(data, "poses", path, (None, width))
    out = {"root_orient": poses[:, :3], "pose_body": poses[:, 3:66]}
    if model_type == "smplx":
        out |= {"pose_jaw": poses[:, 66:69], "pose_eye": poses[:, 69:75]}
    out["pose_hand"] = poses[:, -90:]
    return out


def _array(data: dict, key: str, path: Path, shape: tuple[int | None, ...]) -> np.ndarray:
    """``data[key]`` as float64 of ``shape`` (None: any size), finite."""
    if key not in data:
        raise _missing(path, repr(key), data)
    try:
        array = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {key!r} is not numeric") from None
    if array.ndim != len(shape) or any(
        s is not None and s != n for s, n in zip(shape, array.shape, strict=True)
    ):
        wanted = "(" + ", ".join("T" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{path}: {key!r} must have shape {wanted}; got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{path}: {key!r} holds NaN or infinite values; fill or cut them first")
    return array


def _check_frames(sequence: AmassSequence, path: Path) -> None:
    """Every per-frame array has the same number of frames (at least one)."""
    counts = {
        name: len(value)
        for name in (
            "trans",
            "root_orient",
            "pose_body",
            "pose_hand",
            "pose_jaw",
            "pose_eye",
            "dmpls",
        )
        if (value := getattr(sequence, name)) is not None
    }
    if len(set(counts.values())) != 1:
        raise ValueError(f"{path}: frame counts disagree: {counts}")
    if sequence.n_frames < 1:
        raise ValueError(f"{path}: the sequence has no frames")
