"""OpenSim's own forward kinematics, pose by pose: the reference and the baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class OpenSimFK:
    """OpenSim's FK of N poses: rotations (N, B, 3, 3), positions / coms / joint centres
    (N, B, 3), markers (N, M, 3); bodies and markers in the model's set order, joint
    centres in the order of ``joint_names``."""

    rotations: np.ndarray
    positions: np.ndarray
    joint_centres: np.ndarray
    coms: np.ndarray
    markers: np.ndarray


def opensim_forward_kinematics(model: Any, q: np.ndarray, joint_names: list[str]) -> OpenSimFK:
    """Realize each pose of ``q`` (N, C), in ``model.getCoordinateSet()`` order, in OpenSim.

    Coordinates are set without enforcing constraints (couplers must already hold in q)
    and unlocked first so that locked coordinates take the given values.
    """
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    state = model.initSystem()
    coords = list(model.getCoordinateSet())
    for c in coords:
        c.setLocked(state, False)
    bodies, markers = list(model.getBodySet()), list(model.getMarkerSet())
    frames = [model.getJointSet().get(name).getChildFrame() for name in joint_names]
    out = {k: [] for k in ("rotations", "positions", "joint_centres", "coms", "markers")}
    for pose in q:
        for c, v in zip(coords, pose, strict=True):
            c.setValue(state, float(v), False)
        model.realizePosition(state)
        out["rotations"].append([_mat(b.getTransformInGround(state).R()) for b in bodies])
        out["positions"].append([_vec(b.getPositionInGround(state)) for b in bodies])
        out["coms"].append(
            [_vec(b.findStationLocationInGround(state, b.getMassCenter())) for b in bodies]
        )
        out["joint_centres"].append([_vec(f.getPositionInGround(state)) for f in frames])
        out["markers"].append([_vec(m.getLocationInGround(state)) for m in markers])
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    if not markers:
        arrays["markers"] = np.zeros((len(q), 0, 3))
    return OpenSimFK(**arrays)


def _vec(v: Any) -> list[float]:
    return [v.get(0), v.get(1), v.get(2)]


def _mat(r: Any) -> list[list[float]]:
    m = r.asMat33()
    return [[m.get(i, j) for j in range(3)] for i in range(3)]
