"""How each backend's bones correspond to the generic OpenSim model: the rig tables.

A :class:`Rig` says, for one body-model backend:

- ``bone_body``: the OpenSim body whose rotation each bone follows (every bone; a bone's
  head rides on its parent, so a whole chain mapped to one body moves rigidly with it);
- ``landmarks``: named skeleton points, each the mean of some bones' heads: the *primary*
  joint centres (``back``, the lumbar joint where the torso bones start; hip, knee, ankle,
  mtp, shoulder, elbow, wrist per side) and the finger bases that orient the hand;
- ``carriers``: for each OpenSim body, the bone whose motion carries the points fixed in
  that body (derived joint centres, mass centres).

Sides: OpenSim's ``_r`` / ``_l`` are the subject's right / left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SIDES = ("r", "l")
PRIMARY = ("hip", "knee", "ankle", "mtp", "shoulder", "elbow", "wrist")
# OpenSim joint whose centre each primary landmark is.
PRIMARY_JOINT = {
    "hip": "hip",
    "knee": "walker_knee",
    "ankle": "ankle",
    "mtp": "mtp",
    "shoulder": "acromial",
    "elbow": "elbow",
    "wrist": "radius_hand",
}


@dataclass(frozen=True)
class Rig:
    """The correspondence of one backend's skeleton with the generic OpenSim model.

    Attributes:
        backend: "anny" or "smplx".
        bone_body: bone name -> OpenSim body name, for every bone.
        landmarks: landmark name (``back``, ``<primary>_<side>``, ``middle_<side>``,
            ``index_<side>``, ``pinky_<side>``) -> names of the bones whose heads are
            averaged.
        carriers: OpenSim body name -> bone carrying its fixed points.
    """

    backend: str
    bone_body: dict[str, str]
    landmarks: dict[str, tuple[str, ...]]
    carriers: dict[str, str]


# --------------------------------------------------------------------------------- Anny

_ANNY_RULES: tuple[tuple[str, str], ...] = (
    (r"root|pelvis\.[LR]|spine0[45]", "pelvis"),
    (r"spine0[123]|neck0\d|head|eye\.[LR]|clavicle\.[LR]|shoulder01\.[LR]", "torso"),
    (r"upperleg0[12]\.(?P<s>[LR])", "femur"),
    (r"lowerleg0[12]\.(?P<s>[LR])", "tibia"),
    (r"foot\.(?P<s>[LR])", "calcn"),
    (r"toe\d-\d\.(?P<s>[LR])", "toes"),
    (r"upperarm0[12]\.(?P<s>[LR])", "humerus"),
    (r"lowerarm01\.(?P<s>[LR])", "ulna"),
    (r"lowerarm02\.(?P<s>[LR])", "radius"),
    (r"(wrist|finger\d-\d|metacarpal\d)\.(?P<s>[LR])", "hand"),
)


def _rig_body(bone: str, rules: tuple[tuple[str, str], ...], backend: str) -> str:
    """The OpenSim body of ``bone`` by the first matching rule; side ``L``/``left`` -> ``_l``."""
    for pattern, body in rules:
        match = re.fullmatch(pattern, bone)
        if match:
            side = match.groupdict().get("s")
            return body if side is None else f"{body}_{side[0].lower()}"
    raise ValueError(f"{backend} bone {bone!r} has no OpenSim body in the rig table")


def anny_rig(bone_names: tuple[str, ...]) -> Rig:
    """The Anny rig (bone names as in ``anny.Anny().bone_labels``)."""
    landmarks: dict[str, tuple[str, ...]] = {"back": ("spine03",)}
    carriers: dict[str, str] = {"pelvis": "root", "torso": "spine01"}
    for s, a in (("r", "R"), ("l", "L")):
        landmarks |= {
            f"hip_{s}": (f"upperleg01.{a}",),
            f"knee_{s}": (f"lowerleg01.{a}",),
            f"ankle_{s}": (f"foot.{a}",),
            f"mtp_{s}": tuple(f"toe{i}-1.{a}" for i in range(1, 6)),
            f"shoulder_{s}": (f"upperarm01.{a}",),
            f"elbow_{s}": (f"lowerarm01.{a}",),
            f"wrist_{s}": (f"wrist.{a}",),
            f"middle_{s}": (f"finger3-1.{a}",),
            f"index_{s}": (f"finger2-1.{a}",),
            f"pinky_{s}": (f"finger5-1.{a}",),
        }
        carriers |= {
            f"femur_{s}": f"upperleg01.{a}",
            f"patella_{s}": f"upperleg01.{a}",
            f"tibia_{s}": f"lowerleg01.{a}",
            f"talus_{s}": f"foot.{a}",
            f"calcn_{s}": f"foot.{a}",
            f"toes_{s}": f"toe3-1.{a}",
            f"humerus_{s}": f"upperarm01.{a}",
            f"ulna_{s}": f"lowerarm01.{a}",
            f"radius_{s}": f"lowerarm02.{a}",
            f"hand_{s}": f"wrist.{a}",
        }
    return Rig(
        "anny", {b: _rig_body(b, _ANNY_RULES, "Anny") for b in bone_names}, landmarks, carriers
    )


# ------------------------------------------------------------------------------- SMPL-X

_SMPLX_RULES: tuple[tuple[str, str], ...] = (
    (r"pelvis|spine1", "pelvis"),
    (r"spine[23]|neck|head|jaw|(left|right)_eye_smplhf|(left|right)_collar", "torso"),
    (r"(?P<s>left|right)_hip", "femur"),
    (r"(?P<s>left|right)_knee", "tibia"),
    (r"(?P<s>left|right)_ankle", "calcn"),
    (r"(?P<s>left|right)_foot", "toes"),
    (r"(?P<s>left|right)_shoulder", "humerus"),
    (r"(?P<s>left|right)_elbow", "ulna"),
    (r"(?P<s>left|right)_(wrist|index\d|middle\d|pinky\d|ring\d|thumb\d)", "hand"),
)


def smplx_rig(bone_names: tuple[str, ...]) -> Rig:
    """The SMPL-X rig (the 55 joints of ``smplx.joint_names.JOINT_NAMES``)."""
    landmarks: dict[str, tuple[str, ...]] = {"back": ("spine2",)}
    carriers: dict[str, str] = {"pelvis": "pelvis", "torso": "spine3"}
    for s, side in (("r", "right"), ("l", "left")):
        landmarks |= {
            f"hip_{s}": (f"{side}_hip",),
            f"knee_{s}": (f"{side}_knee",),
            f"ankle_{s}": (f"{side}_ankle",),
            f"mtp_{s}": (f"{side}_foot",),
            f"shoulder_{s}": (f"{side}_shoulder",),
            f"elbow_{s}": (f"{side}_elbow",),
            f"wrist_{s}": (f"{side}_wrist",),
            f"middle_{s}": (f"{side}_middle1",),
            f"index_{s}": (f"{side}_index1",),
            f"pinky_{s}": (f"{side}_pinky1",),
        }
        carriers |= {
            f"femur_{s}": f"{side}_hip",
            f"patella_{s}": f"{side}_hip",
            f"tibia_{s}": f"{side}_knee",
            f"talus_{s}": f"{side}_ankle",
            f"calcn_{s}": f"{side}_ankle",
            f"toes_{s}": f"{side}_foot",
            f"humerus_{s}": f"{side}_shoulder",
            f"ulna_{s}": f"{side}_elbow",
            f"radius_{s}": f"{side}_elbow",
            f"hand_{s}": f"{side}_wrist",
        }
    return Rig(
        "smplx", {b: _rig_body(b, _SMPLX_RULES, "SMPL-X") for b in bone_names}, landmarks, carriers
    )


def rig_for(kind: str, bone_names: tuple[str, ...]) -> Rig:
    """The rig of backend ``kind`` ("anny" or "smplx")."""
    if kind == "anny":
        return anny_rig(bone_names)
    if kind == "smplx":
        return smplx_rig(bone_names)
    raise ValueError(f"no rig table for body model {kind!r}")
