"""A structurally valid SMPL-X stand-in file, built from Anny, for tests and demos.

The real SMPL-X files are licensed; this writes an ``SMPLX_<GENDER>.npz`` with every array
``smplx.SMPLX`` reads, shaped as in the real model (55 joints, hands, face landmarks): the
template mesh and skinning are Anny's (so the stand-in is a plausible person, in SMPL-X's
axes: Y up, facing +Z), the joints are Anny's bone heads, and the shape and expression
directions are small random displacements; the pose-corrective blend shapes are zero. It is
not SMPL-X: it only lets the SMPL-X code path run without the licensed files.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

from biokin_nb._files import atomic_write
from biokin_nb.body.anny_body import AnnyBody
from biokin_nb.body.frames import SMPLX_TO_GROUND

# SMPL-X joints: name, parent index, Anny bones whose heads give its position.
_FINGERS = (("index", 2), ("middle", 3), ("pinky", 5), ("ring", 4), ("thumb", 1))


def _joint_table() -> list[tuple[str, int, tuple[str, ...]]]:
    body = [
        ("pelvis", -1, ("upperleg01.L", "upperleg01.R")),
        ("left_hip", 0, ("upperleg01.L",)),
        ("right_hip", 0, ("upperleg01.R",)),
        ("spine1", 0, ("spine04",)),
        ("left_knee", 1, ("lowerleg01.L",)),
        ("right_knee", 2, ("lowerleg01.R",)),
        ("spine2", 3, ("spine03",)),
        ("left_ankle", 4, ("foot.L",)),
        ("right_ankle", 5, ("foot.R",)),
        ("spine3", 6, ("spine01",)),
        ("left_foot", 7, tuple(f"toe{i}-1.L" for i in range(1, 6))),
        ("right_foot", 8, tuple(f"toe{i}-1.R" for i in range(1, 6))),
        ("neck", 9, ("neck01",)),
        ("left_collar", 9, ("clavicle.L",)),
        ("right_collar", 9, ("clavicle.R",)),
        ("head", 12, ("head",)),
        ("left_shoulder", 13, ("upperarm01.L",)),
        ("right_shoulder", 14, ("upperarm01.R",)),
        ("left_elbow", 16, ("lowerarm01.L",)),
        ("right_elbow", 17, ("lowerarm01.R",)),
        ("left_wrist", 18, ("wrist.L",)),
        ("right_wrist", 19, ("wrist.R",)),
        ("jaw", 15, ("head",)),
        ("left_eye_smplhf", 15, ("eye.L",)),
        ("right_eye_smplhf", 15, ("eye.R",)),
    ]
    for side, wrist, a in (("left", 20, "L"), ("right", 21, "R")):
        for finger, digit in _FINGERS:
            first = len(body)
            for k in (1, 2, 3):
                parent = wrist if k == 1 else first + k - 2
                body.append((f"{side}_{finger}{k}", parent, (f"finger{digit}-{k}.{a}",)))
    return body


# Anny bone -> SMPL-X joint whose segment it moves (for the skinning weights).
_WEIGHT_RULES = (
    (r"root|pelvis\.[LR]|spine05", "pelvis"),
    (r"spine04", "spine1"),
    (r"spine0[23]", "spine2"),
    (r"spine01", "spine3"),
    (r"neck0\d", "neck"),
    (r"head", "head"),
    (r"eye\.L", "left_eye_smplhf"),
    (r"eye\.R", "right_eye_smplhf"),
    (r"(clavicle|shoulder01)\.(?P<s>[LR])", "{s}_collar"),
    (r"upperarm0[12]\.(?P<s>[LR])", "{s}_shoulder"),
    (r"lowerarm0[12]\.(?P<s>[LR])", "{s}_elbow"),
    (r"(wrist|metacarpal\d)\.(?P<s>[LR])", "{s}_wrist"),
    (r"finger(?P<d>\d)-(?P<k>\d)\.(?P<s>[LR])", "{s}_{finger}{k}"),
    (r"upperleg0[12]\.(?P<s>[LR])", "{s}_hip"),
    (r"lowerleg0[12]\.(?P<s>[LR])", "{s}_knee"),
    (r"foot\.(?P<s>[LR])", "{s}_ankle"),
    (r"toe\d-\d\.(?P<s>[LR])", "{s}_foot"),
)


def _smplx_joint_of(bone: str) -> str:
    for pattern, target in _WEIGHT_RULES:
        match = re.fullmatch(pattern, bone)
        if match:
            g = match.groupdict()
            side = {"L": "left", "R": "right"}.get(g.get("s", ""), "")
            finger = {d: f for f, d in _FINGERS}.get(int(g["d"]), "") if "d" in g else ""
            return target.format(s=side, finger=finger, k=g.get("k", ""))
    raise ValueError(f"no SMPL-X joint for Anny bone {bone!r}")


def _convex_weights(vertices: np.ndarray, point: np.ndarray, radius: float = 0.12) -> np.ndarray:
    """(V,) convex weights over vertices near ``point`` whose mean is ``point``."""
    near = np.nonzero(np.linalg.norm(vertices - point, axis=1) < radius)[0]
    a = np.vstack([vertices[near].T, 10.0 * np.ones(len(near))])
    w, _ = nnls(a, np.concatenate([point, [10.0]]))
    out = np.zeros(len(vertices))
    out[near] = w / w.sum()
    return out


def standin_arrays(anny: AnnyBody, seed: int = 0, n_betas: int = 10) -> dict[str, np.ndarray]:
    """The arrays of an SMPL-X stand-in from the default Anny body (SMPL-X native axes)."""
    rest = anny.rest()
    to_native = np.asarray(SMPLX_TO_GROUND).T  # ground -> SMPL-X native
    vertices = rest["vertices"][0].double().numpy() @ to_native.T
    heads = rest["heads"][0].double().numpy() @ to_native.T
    table = _joint_table()
    joints = np.stack([heads[[anny.bone_index(b) for b in bones]].mean(0) for _, _, bones in table])
    vertices = vertices - joints[0]
    joints = joints - joints[0]
    regressor = np.stack([_convex_weights(vertices, j) for j in joints])
    names = [name for name, _, _ in table]
    column = [names.index(_smplx_joint_of(b)) for b in anny.bone_names]
    weights = np.zeros((len(vertices), len(names)))
    np.add.at(weights.T, column, anny.skinning_weights.double().numpy().T)
    rng = np.random.default_rng(seed)
    n_v = len(vertices)
    faces = anny.faces.numpy()
    return {
        "v_template": vertices.astype(np.float32),
        "f": faces.astype(np.int64),
        "J_regressor": regressor.astype(np.float32),
        "kintree_table": np.array([[p for _, p, _ in table], range(len(table))], dtype=np.int64),
        "weights": weights.astype(np.float32),
        "shapedirs": (0.005 * rng.standard_normal((n_v, 3, 2 * n_betas))).astype(np.float32),
        "posedirs": np.zeros((n_v, 3, 9 * (len(table) - 1)), dtype=np.float32),
        "hands_componentsl": np.eye(45, dtype=np.float32),
        "hands_componentsr": np.eye(45, dtype=np.float32),
        "hands_meanl": np.zeros(45, dtype=np.float32),
        "hands_meanr": np.zeros(45, dtype=np.float32),
        "lmk_faces_idx": np.arange(51, dtype=np.int64),
        "lmk_bary_coords": np.full((51, 3), 1.0 / 3.0, dtype=np.float32),
    }


def write_standin_smplx(
    folder: str | Path, anny: AnnyBody | None = None, gender: str = "neutral"
) -> Path:
    """Write ``<folder>/SMPLX_<GENDER>.npz`` (compressed, a few MB); returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = standin_arrays(anny or AnnyBody(dtype=torch.float64))
    path = folder / f"SMPLX_{gender.upper()}.npz"
    with atomic_write(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path
