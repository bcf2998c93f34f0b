"""The project's generic full-body OpenSim model, built by code.

A 75 kg, 1.75 m adult male: 22 bodies, 22 joints, 39 coordinates and 44 markers, named as in
Rajagopal et al. (2016) and LaiUhlrich2022 so that their ``.mot`` files drive it by name. Joint
axes follow Rajagopal (2016); segment lengths, masses, mass centres and radii of gyration come
from de Leva (1996); the hip joint centre from Harrington et al. (2007); ranges of motion from
the AAOS tables. ``data/generic_model.md`` is the model card with every number and citation.

Conventions:
    - OpenSim's ground frame: X forward, Y up, Z to the right. Every body frame is parallel to
      ground in the default pose: all coordinates zero (pelvis height aside), standing upright,
      arms hanging at the sides, palms forward (anatomical position), feet on the floor y = 0.
    - Numbers are given for the right side once. The left side is their mirror image in the
      sagittal (XY) plane: points map to (x, y, -z) and rotation axes, being axial vectors, to
      (-x, -y, z), so a left coordinate means the same anatomical motion as its right twin.
    - SI units inside (m, kg, rad); ranges of motion are written in degrees (``_deg`` names).

``python -m biokin_nb.osim.generic`` regenerates the committed ``data/generic_model.osim``.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biokin_nb.osim._opensim import opensim

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
MODEL_NAME = "biokin_generic"
HEIGHT_M = 1.75
MASS_KG = 75.0
SIDES = ("r", "l")

# ------------------------------------------------------------------------------- names

BODY_NAMES: tuple[str, ...] = (
    "pelvis",
    *(f"{b}_r" for b in ("femur", "tibia", "patella", "talus", "calcn", "toes")),
    *(f"{b}_l" for b in ("femur", "tibia", "patella", "talus", "calcn", "toes")),
    "torso",
    *(f"{b}_r" for b in ("humerus", "ulna", "radius", "hand")),
    *(f"{b}_l" for b in ("humerus", "ulna", "radius", "hand")),
)


def _leg_coordinates(s: str) -> tuple[str, ...]:
    return (
        f"hip_flexion_{s}",
        f"hip_adduction_{s}",
        f"hip_rotation_{s}",
        f"knee_angle_{s}",
        f"knee_angle_{s}_beta",
        f"ankle_angle_{s}",
        f"subtalar_angle_{s}",
        f"mtp_angle_{s}",
    )


def _arm_coordinates(s: str) -> tuple[str, ...]:
    names = ("arm_flex", "arm_add", "arm_rot", "elbow_flex", "pro_sup", "wrist_flex", "wrist_dev")
    return tuple(f"{n}_{s}" for n in names)


_PELVIS_COORDINATES = ("pelvis_tilt", "pelvis_list", "pelvis_rotation")
_PELVIS_COORDINATES += ("pelvis_tx", "pelvis_ty", "pelvis_tz")
COORDINATE_NAMES: tuple[str, ...] = (
    *_PELVIS_COORDINATES,
    *_leg_coordinates("r"),
    *_leg_coordinates("l"),
    "lumbar_extension",
    "lumbar_bending",
    "lumbar_rotation",
    *_arm_coordinates("r"),
    *_arm_coordinates("l"),
)
# Free coordinates: no range limit (clamped=False); the network treats them as angles on the
# unit circle. Every other coordinate is clamped to its range.
FREE_COORDINATES: tuple[str, ...] = (
    "pelvis_tilt",
    "pelvis_list",
    "pelvis_rotation",
    *(f"{n}_{s}" for s in SIDES for n in ("arm_flex", "arm_add", "arm_rot")),
)

# Ranges of motion, degrees (rotations) or metres (pelvis translations), keyed by the name
# without its side suffix. Sources per row in data/generic_model.md.
RANGES: dict[str, tuple[float, float]] = {
    "pelvis_tilt": (-90.0, 90.0),
    "pelvis_list": (-90.0, 90.0),
    "pelvis_rotation": (-180.0, 180.0),
    "pelvis_tx": (-10.0, 10.0),
    "pelvis_ty": (-1.0, 3.0),
    "pelvis_tz": (-10.0, 10.0),
    "hip_flexion": (-30.0, 120.0),
    "hip_adduction": (-45.0, 30.0),
    "hip_rotation": (-45.0, 45.0),
    "knee_angle": (0.0, 140.0),
    "knee_angle_beta": (0.0, 140.0),
    "ankle_angle": (-50.0, 30.0),
    "subtalar_angle": (-15.0, 35.0),
    "mtp_angle": (-70.0, 45.0),
    "lumbar_extension": (-80.0, 25.0),
    "lumbar_bending": (-35.0, 35.0),
    "lumbar_rotation": (-45.0, 45.0),
    "arm_flex": (-60.0, 180.0),
    "arm_add": (-180.0, 45.0),
    "arm_rot": (-90.0, 70.0),
    "elbow_flex": (0.0, 150.0),
    "pro_sup": (0.0, 170.0),
    "wrist_flex": (-70.0, 80.0),
    "wrist_dev": (-20.0, 30.0),
}
_TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")


def range_key(coordinate: str) -> str:
    """The ``RANGES`` key of a coordinate: its name without the side suffix."""
    return re.sub(r"_[rl](?=$|_beta$)", "", coordinate)


# ---------------------------------------------------------------- anthropometry (de Leva)

_DE_LEVA_STATURE_M = 1.741  # mean stature of de Leva's male sample; lengths scale with it


@dataclass(frozen=True)
class Segment:
    """One row of de Leva (1996) Table 4 (males, adjusted Zatsiorsky-Seluyanov).

    Attributes:
        endpoints: the landmarks bounding the segment, proximal first.
        length_mm: endpoint distance in mm for the 1.741 m sample mean.
        mass_pct: segment mass, % of body mass.
        com_pct: mass centre from the first endpoint, % of length.
        gyration_pct: radii of gyration about the sagittal (antero-posterior), transverse
            (medio-lateral) and longitudinal axes, % of length.
    """

    endpoints: str
    length_mm: float
    mass_pct: float
    com_pct: float
    gyration_pct: tuple[float, float, float]

    @property
    def length(self) -> float:
        """Length in m for a ``HEIGHT_M`` tall man (scaled by stature)."""
        return self.length_mm / 1000.0 * HEIGHT_M / _DE_LEVA_STATURE_M

    @property
    def mass(self) -> float:
        """Mass in kg for a ``MASS_KG`` man."""
        return self.mass_pct / 100.0 * MASS_KG


DE_LEVA: dict[str, Segment] = {
    "head": Segment("VERT-CERV", 242.9, 6.94, 50.02, (30.3, 31.5, 26.1)),
    "trunk": Segment("CERV-MIDH", 531.9, 43.46, 44.86, (37.2, 34.7, 19.1)),
    "lower_trunk": Segment("OMPH-MIDH", 145.7, 11.17, 61.15, (61.5, 55.1, 58.7)),
    "upper_arm": Segment("SJC-EJC", 281.7, 2.71, 57.72, (28.5, 26.9, 15.8)),
    "forearm": Segment("EJC-WJC", 268.9, 1.62, 45.74, (27.6, 26.5, 12.1)),
    "hand": Segment("WJC-MET3", 86.2, 0.61, 79.00, (62.8, 51.3, 40.1)),
    "thigh": Segment("HJC-KJC", 422.2, 14.16, 40.95, (32.9, 32.9, 14.9)),
    "shank": Segment("KJC-LMAL", 434.0, 4.33, 44.59, (25.5, 24.9, 10.3)),
    "foot": Segment("HEEL-TTIP", 258.1, 1.37, 44.15, (25.7, 24.5, 12.4)),
}
L_THIGH = DE_LEVA["thigh"].length
L_SHANK = DE_LEVA["shank"].length
L_FOOT = DE_LEVA["foot"].length
L_UPPER_ARM = DE_LEVA["upper_arm"].length
L_FOREARM = DE_LEVA["forearm"].length
L_HAND = DE_LEVA["hand"].length

# Mass split choices (fractions of a de Leva segment), see the model card.
PATELLA_MASS_KG = 0.001 * MASS_KG  # taken from the thigh
FOOT_SPLIT = {"talus": 0.10, "calcn": 0.75, "toes": 0.15}

# ----------------------------------------------------------------- layout (right side, m)

# Pelvis frame: origin at the mid-point of the two ASIS. Hip joint centre from the ASIS
# breadth (PW) and pelvic depth (PD, mid-ASIS to mid-PSIS): Harrington et al. (2007).
ASIS_BREADTH = 0.245
PELVIC_DEPTH = 0.155
HIP_CENTRE = np.array(
    [
        -0.24 * PELVIC_DEPTH - 0.0099,
        -0.30 * ASIS_BREADTH - 0.0109,
        0.33 * ASIS_BREADTH + 0.0073,
    ]
)
MID_HIP = HIP_CENTRE * [1.0, 1.0, 0.0]
LUMBAR_JOINT = np.array([-0.100, 0.070, 0.0])  # L5/S1, in the pelvis frame
ANKLE_HEIGHT = 0.039 * HEIGHT_M  # lateral malleolus height, Winter (2009)
PELVIS_HEIGHT = ANKLE_HEIGHT + L_SHANK + L_THIGH - HIP_CENTRE[1]  # default pelvis_ty

# Torso frame: origin at L5/S1. C7 (cervicale) is the trunk length CERV-MIDH from the mid-hip
# point, 0.10 m behind it; the head's vertex is the head length VERT-CERV above C7.
_MID_HIP_IN_TORSO = MID_HIP - LUMBAR_JOINT
_C7_BEHIND_MID_HIP = 0.10
C7 = _MID_HIP_IN_TORSO + [
    -_C7_BEHIND_MID_HIP,
    float(np.sqrt(DE_LEVA["trunk"].length ** 2 - _C7_BEHIND_MID_HIP**2)),
    0.0,
]
_VERTEX_AHEAD_OF_C7 = 0.06
VERTEX = C7 + [
    _VERTEX_AHEAD_OF_C7,
    float(np.sqrt(DE_LEVA["head"].length ** 2 - _VERTEX_AHEAD_OF_C7**2)),
    0.0,
]
SHOULDER_CENTRE = C7 + [0.085, -0.075, 0.175]  # glenohumeral centre, right

# Arm: humerus from the shoulder centre straight down; forearm with a 10 deg carrying angle.
ELBOW_CENTRE = np.array([0.0, -L_UPPER_ARM, 0.0])  # in the humerus frame
_CARRYING = np.radians(10.0)
WRIST_CENTRE = L_FOREARM * np.array([0.0, -np.cos(_CARRYING), np.sin(_CARRYING)])  # in ulna
RADIAL_HEAD = np.array([-0.007, -0.013, 0.026])  # radius origin, in the ulna frame

# Leg: femur and tibia long axes vertical; the foot from the ankle centre (talus origin).
KNEE_CENTRE = np.array([0.0, -L_THIGH, 0.0])  # in the femur frame
ANKLE_CENTRE = np.array([0.0, -L_SHANK, 0.0])  # in the tibia frame
SUBTALAR = np.array([-0.045, -0.040, 0.008])  # calcn origin, in the talus frame
HEEL_X = -0.21 * L_FOOT  # back of the heel, X from the ankle centre (behind it)
MTP_X = HEEL_X + 0.70 * L_FOOT  # metatarsophalangeal joint line, X from the ankle centre
MTP_HEIGHT = 0.025
MTP = np.array([MTP_X, MTP_HEIGHT - ANKLE_HEIGHT, 0.0]) - SUBTALAR  # in the calcn frame
FOOT_COM_HEIGHT = 0.5 * ANKLE_HEIGHT


def _calcn_y(height: float) -> float:
    """Y (m) in the calcn frame of a point ``height`` m above the floor in the default pose."""
    return height - ANKLE_HEIGHT - float(SUBTALAR[1])


# Joint axis directions in the parent body frame (normalized where used), right side, from
# Rajagopal (2016), rounded.
KNEE_AXIS = np.array([0.0, -0.0707, -0.9975])
ANKLE_AXIS = np.array([-0.105, -0.174, 0.979])
SUBTALAR_AXIS = np.array([0.787, 0.605, -0.121])
MTP_AXIS = np.array([0.581, 0.0, -0.814])
ELBOW_AXIS = np.array([0.226, 0.022, 0.974])
RADIOULNAR_AXIS = np.array([0.056, 0.998, 0.002])
WRIST_FLEX_AXIS = np.array([0.0, 0.0, 1.0])
WRIST_DEV_AXIS = np.array([1.0, 0.0, 0.0])
_X, _Y, _Z = np.eye(3)

# Patella (origin at its distal pole) on a spiral about the femur's knee point: radius
# 50 mm shrinking 11 mm/rad, polar angle -0.20 rad turning 1.05 rad per rad of knee flexion;
# it tilts by two thirds of the knee angle.
PATELLA_RADIUS = (0.050, -0.011)
PATELLA_POLAR = (-0.20, -1.05)
PATELLA_TILT_RATIO = -2.0 / 3.0
_PATELLA_KNOTS_DEG = np.arange(0.0, 141.0, 10.0)

# ------------------------------------------------------------------------------ markers

# Right-side and midline markers: name -> (body, position in the body frame, m). Marker
# centres sit ~1 cm off the bony landmark (skin plus half a 14 mm marker).
_MARKERS_RIGHT: dict[str, tuple[str, tuple[float, float, float]]] = {
    "RASI": ("pelvis", (0.010, 0.0, 0.5 * ASIS_BREADTH)),
    "RPSI": ("pelvis", (-PELVIC_DEPTH - 0.010, 0.025, 0.045)),
    "RTHI": ("femur_r", (0.0, -0.60 * L_THIGH, 0.075)),
    "RKNE": ("femur_r", (0.0, -L_THIGH, 0.055)),
    "RKNM": ("femur_r", (0.0, -L_THIGH, -0.055)),
    "RTIB": ("tibia_r", (0.0, -0.60 * L_SHANK, 0.055)),
    "RANK": ("tibia_r", (-0.005, -L_SHANK, 0.048)),
    "RMMA": ("tibia_r", (0.005, -L_SHANK + 0.010, -0.045)),
    "RHEE": ("calcn_r", (HEEL_X - 0.010 - SUBTALAR[0], _calcn_y(0.033), 0.0)),
    "RTOE": ("calcn_r", (MTP[0] - 0.005, _calcn_y(0.045), -0.010)),
    "R5MH": ("calcn_r", (MTP[0] - 0.030, _calcn_y(0.015), 0.050)),
    "RHLX": ("toes_r", (0.075, 0.0, -0.025)),
    "C7": ("torso", tuple(C7 + [-0.010, 0.0, 0.0])),
    "T10": ("torso", tuple(C7 + [-0.010, -0.220, 0.0])),
    "CLAV": ("torso", tuple(C7 + [0.140, -0.060, 0.0])),
    "STRN": ("torso", tuple(C7 + [0.200, -0.220, 0.0])),
    "RSHO": ("torso", tuple(SHOULDER_CENTRE + [-0.010, 0.045, 0.015])),
    "RUPA": ("humerus_r", (-0.010, -0.50 * L_UPPER_ARM, 0.050)),
    "RELB": ("humerus_r", (0.0, -L_UPPER_ARM, 0.040)),
    "RMEL": ("humerus_r", (0.0, -L_UPPER_ARM, -0.040)),
    "RFRA": ("radius_r", tuple(0.5 * WRIST_CENTRE + [-0.020, 0.0, 0.025] - RADIAL_HEAD)),
    "RWRA": ("radius_r", tuple(WRIST_CENTRE + [0.0, 0.0, 0.035] - RADIAL_HEAD)),
    "RWRB": ("radius_r", tuple(WRIST_CENTRE + [0.0, 0.0, -0.035] - RADIAL_HEAD)),
    "RFIN": ("hand_r", (-0.015, -L_HAND, 0.0)),
}
_MIDLINE_MARKERS = ("C7", "T10", "CLAV", "STRN")


def _mirror_marker_name(name: str) -> str:
    return name if name in _MIDLINE_MARKERS else "L" + name[1:]


MARKER_NAMES: tuple[str, ...] = tuple(
    n for name in _MARKERS_RIGHT for n in dict.fromkeys((name, _mirror_marker_name(name)))
)

# -------------------------------------------------------------------- mirror and frames


def mirror_point(p: Sequence[float]) -> np.ndarray:
    """Right-to-left image (3,) of a point (3,): (x, y, z) -> (x, y, -z), m."""
    return np.asarray(p, dtype=np.float64) * [1.0, 1.0, -1.0]


def mirror_axis(a: Sequence[float]) -> np.ndarray:
    """Right-to-left image (3,) of a rotation axis (3,) (axial vector): (-x, -y, z)."""
    return np.asarray(a, dtype=np.float64) * [-1.0, -1.0, 1.0]


def _sided(point: Sequence[float], side: str) -> np.ndarray:
    return np.asarray(point, dtype=np.float64) if side == "r" else mirror_point(point)


def _sided_axis(axis: Sequence[float], side: str) -> np.ndarray:
    a = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    return a if side == "r" else mirror_axis(a)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _perpendicular(axis: np.ndarray) -> np.ndarray:
    """A unit vector (3,) perpendicular to ``axis`` (3,), as close to X (else Y) as possible."""
    ref = _X if abs(axis @ _X) < 0.9 else _Y
    return _unit(ref - (ref @ axis) * axis)


def _completed_basis(axes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``axes`` (1 to 3 independent (3,) vectors) completed to 3 independent unit vectors."""
    basis = [_unit(np.asarray(a, dtype=np.float64)) for a in axes]
    if len(basis) == 1:
        basis.append(_perpendicular(basis[0]))
    if len(basis) == 2:
        basis.append(_unit(np.cross(basis[0], basis[1])))
    return basis


def _euler_xyz(rotation: np.ndarray) -> np.ndarray:
    """Body-fixed X-Y-Z angles (3,) rad of a (3, 3) rotation (OpenSim frame orientation)."""
    r = rotation
    return np.array(
        [
            np.arctan2(-r[1, 2], r[2, 2]),
            np.arcsin(np.clip(r[0, 2], -1.0, 1.0)),
            np.arctan2(-r[0, 1], r[0, 0]),
        ]
    )


def _frame_with_z(z_axis: np.ndarray) -> np.ndarray:
    """Orientation (3,) rad of a frame whose Z axis is ``z_axis`` (3,): a PinJoint's axis."""
    z = _unit(z_axis)
    x = _perpendicular(z)
    return _euler_xyz(np.column_stack([x, np.cross(z, x), z]))


def _frame_with_xy(x_axis: np.ndarray, y_axis: np.ndarray) -> np.ndarray:
    """Orientation (3,) rad of a frame with X along ``x_axis`` and Y along ``y_axis`` (3,)."""
    x, y = _unit(x_axis), _unit(y_axis)
    return _euler_xyz(np.column_stack([x, y, np.cross(x, y)]))


# ------------------------------------------------------------------------ mass properties


@dataclass(frozen=True)
class MassProperties:
    """Mass (kg), mass centre ``com`` (3,) m and ``inertia`` (3, 3) kg m^2 about the com.

    Both in the body frame.
    """

    mass: float
    com: np.ndarray
    inertia: np.ndarray

    def scaled(self, fraction: float) -> MassProperties:
        """The same distribution with ``fraction`` of the mass."""
        return MassProperties(self.mass * fraction, self.com, self.inertia * fraction)

    def mirrored(self) -> MassProperties:
        """The left-side image (Z mirrored: products of inertia with z change sign)."""
        flip = np.diag([1.0, 1.0, -1.0])
        return MassProperties(self.mass, mirror_point(self.com), flip @ self.inertia @ flip)


def _segment_inertia(segment: Segment, mass: float, long_axis: int = 1) -> np.ndarray:
    """Principal inertia (3, 3) kg m^2 from de Leva radii; ``long_axis`` 1 (Y) or 0 (X, foot).

    Sagittal radius about X (Y for the foot), transverse about Z, longitudinal about the long
    axis.
    """
    sag, trans, long = np.asarray(segment.gyration_pct) / 100.0 * segment.length
    radii = (sag, long, trans) if long_axis == 1 else (long, sag, trans)
    return np.diag(mass * np.square(radii))


def _segment_props(name: str, proximal: np.ndarray, distal: np.ndarray) -> MassProperties:
    """A de Leva segment between two points (3,) m: com along the line, principal inertia."""
    seg = DE_LEVA[name]
    com = proximal + seg.com_pct / 100.0 * (distal - proximal)
    return MassProperties(seg.mass, com, _segment_inertia(seg, seg.mass))


def _combine(parts: Sequence[tuple[float, MassProperties]]) -> MassProperties:
    """Signed sum of parts (+1 adds, -1 removes), parallel-axis theorem about the new com."""
    mass = sum(sign * p.mass for sign, p in parts)
    com = sum(sign * p.mass * p.com for sign, p in parts) / mass
    inertia = np.zeros((3, 3))
    for sign, p in parts:
        d = p.com - com
        inertia += sign * (p.inertia + p.mass * (d @ d * np.eye(3) - np.outer(d, d)))
    return MassProperties(float(mass), com, inertia)


def _pelvis_props() -> MassProperties:
    """The lower trunk (OMPH-MIDH) with its com on the vertical through the mid-hip point."""
    length = DE_LEVA["lower_trunk"].length
    return _segment_props("lower_trunk", MID_HIP + [0.0, length, 0.0], MID_HIP)


def _torso_props() -> MassProperties:
    """Trunk (CERV-MIDH) minus lower trunk plus head (VERT-CERV), in the torso frame."""
    trunk = _segment_props("trunk", C7, _MID_HIP_IN_TORSO)
    pelvis = _pelvis_props()
    lower = MassProperties(pelvis.mass, pelvis.com - LUMBAR_JOINT, pelvis.inertia)
    head = _segment_props("head", VERTEX, C7)
    return _combine([(1.0, trunk), (-1.0, lower), (1.0, head)])


def _foot_props() -> dict[str, MassProperties]:
    """Talus, calcn and toes: the de Leva foot split by ``FOOT_SPLIT``, each in its frame.

    The talus com is the ankle centre, the toes com 3 cm ahead of the MTP line; the calcn com
    is placed so that the three together have the foot's com (44.15 % of HEEL-TTIP).
    """
    foot = DE_LEVA["foot"]
    inertia = _segment_inertia(foot, foot.mass, long_axis=0)
    com_foot = np.array([HEEL_X + foot.com_pct / 100.0 * L_FOOT, FOOT_COM_HEIGHT - ANKLE_HEIGHT, 0])
    com_talus = np.zeros(3)  # all three in the talus frame here
    com_toes = SUBTALAR + MTP + [0.030, 0.0, 0.0]
    f = FOOT_SPLIT
    com_calcn = (com_foot - f["talus"] * com_talus - f["toes"] * com_toes) / f["calcn"]
    offsets = {"talus": np.zeros(3), "calcn": SUBTALAR, "toes": SUBTALAR + MTP}
    coms = {"talus": com_talus, "calcn": com_calcn, "toes": com_toes}
    return {
        k: MassProperties(foot.mass * f[k], coms[k] - offsets[k], inertia * f[k])
        for k in FOOT_SPLIT
    }


def _patella_props() -> MassProperties:
    """A 2 cm sphere-like patella with its com 2 cm above its distal pole."""
    return MassProperties(PATELLA_MASS_KG, np.array([0.0, 0.02, 0.0]), np.eye(3) * 1.2e-5)


def _right_limb_props() -> dict[str, MassProperties]:
    """Mass properties of the right limbs' bodies, each in its own body frame."""
    zero = np.zeros(3)
    thigh = _segment_props("thigh", zero, KNEE_CENTRE)
    forearm = _segment_props("forearm", zero, WRIST_CENTRE)
    half_forearm = forearm.scaled(0.5)
    props = {
        "femur": thigh.scaled((thigh.mass - PATELLA_MASS_KG) / thigh.mass),
        "tibia": _segment_props("shank", zero, ANKLE_CENTRE),
        "patella": _patella_props(),
        **_foot_props(),
        "humerus": _segment_props("upper_arm", zero, ELBOW_CENTRE),
        "ulna": half_forearm,
        "radius": MassProperties(
            half_forearm.mass, forearm.com - RADIAL_HEAD, half_forearm.inertia
        ),
        "hand": _segment_props("hand", zero, np.array([0.0, -L_HAND, 0.0])),
    }
    return props


def mass_properties() -> dict[str, MassProperties]:
    """Mass properties of all 22 bodies, keyed by body name (order of ``BODY_NAMES``)."""
    right = _right_limb_props()
    props = {"pelvis": _pelvis_props(), "torso": _torso_props()}
    for base, p in right.items():
        props[f"{base}_r"] = p
        props[f"{base}_l"] = p.mirrored()
    return {name: props[name] for name in BODY_NAMES}


# ---------------------------------------------------------------------- model building


def _vec3(v: Sequence[float]) -> Any:
    return opensim().Vec3(*(float(x) for x in v))


def _add_body(model: Any, name: str, props: MassProperties) -> Any:
    osim = opensim()
    i = props.inertia
    inertia = osim.Inertia(i[0, 0], i[1, 1], i[2, 2], i[0, 1], i[0, 2], i[1, 2])
    body = osim.Body(name, props.mass, _vec3(props.com), inertia)
    model.addBody(body)
    return body


def _configure_coordinate(coordinate: Any, default: float = 0.0) -> None:
    """Range (from ``RANGES``), default value and clamping of one coordinate."""
    name = coordinate.getName()
    lo, hi = RANGES[range_key(name)]
    scale = 1.0 if name in _TRANSLATIONS else np.pi / 180.0
    coordinate.setRangeMin(lo * scale)
    coordinate.setRangeMax(hi * scale)
    coordinate.setDefaultValue(default)
    coordinate.set_clamped(name not in FREE_COORDINATES)


def _transform_axis(axis_obj: Any, axis: np.ndarray, coordinate: str | None, fn: Any) -> None:
    axis_obj.setAxis(_vec3(axis))
    if coordinate is not None:
        axis_obj.setCoordinateNames(opensim().ArrayStr(coordinate, 1))
    axis_obj.set_function(fn)  # setFunction segfaults in the python bindings


AxisSpec = tuple[str | None, np.ndarray, Callable[[], Any]]


def _spatial_transform(rotations: Sequence[AxisSpec], translations: Sequence[AxisSpec]) -> Any:
    """A SpatialTransform; missing rotation / translation axes become Constant(0) axes.

    Each spec is (coordinate or None, axis (3,), function factory). The used axes come first,
    the rest complete an independent set (the transform needs 3 + 3 independent axes).
    """
    osim = opensim()
    transform = osim.SpatialTransform()
    for offset, specs in ((0, rotations), (3, translations)):
        basis = _completed_basis([axis for _, axis, _ in specs] or [_X, _Y, _Z])
        for i in range(3):
            coord, _, make = specs[i] if i < len(specs) else (None, None, None)
            fn = make() if make is not None else osim.Constant(0.0)
            _transform_axis(transform.updTransformAxis(offset + i), basis[i], coord, fn)
    return transform


def _linear(slope: float = 1.0) -> Callable[[], Any]:
    return lambda: opensim().LinearFunction(slope, 0.0)


def _custom_joint(
    model: Any,
    name: str,
    parent: Any,
    child: Any,
    location: Sequence[float],
    rotations: Sequence[AxisSpec],
    translations: Sequence[AxisSpec] = (),
) -> Any:
    """A CustomJoint at ``location`` (3,) m in the parent, frames parallel to the bodies."""
    osim = opensim()
    transform = _spatial_transform(rotations, translations)
    zero = _vec3((0.0, 0.0, 0.0))
    joint = osim.CustomJoint(name, parent, _vec3(location), zero, child, zero, zero, transform)
    model.addJoint(joint)
    return joint


def _pin_joint(
    model: Any, name: str, parent: Any, child: Any, location: np.ndarray, axis: np.ndarray
) -> Any:
    """A PinJoint about ``axis`` (3,) (parent frame) at ``location`` (3,) m in the parent.

    The child's joint frame is at its origin with the same orientation, so the bodies are
    parallel at zero angle.
    """
    osim = opensim()
    orient = _vec3(_frame_with_z(axis))
    zero = _vec3((0.0, 0.0, 0.0))
    joint = osim.PinJoint(name, parent, _vec3(location), orient, child, zero, orient)
    model.addJoint(joint)
    return joint


def _universal_joint(
    model: Any, name: str, parent: Any, child: Any, location: np.ndarray, axes: Sequence
) -> Any:
    """A UniversalJoint: first coordinate about ``axes[0]``, second about ``axes[1]``."""
    osim = opensim()
    orient = _vec3(_frame_with_xy(*axes))
    zero = _vec3((0.0, 0.0, 0.0))
    joint = osim.UniversalJoint(name, parent, _vec3(location), orient, child, zero, orient)
    model.addJoint(joint)
    return joint


def _name_coordinates(joint: Any, names: Sequence[str]) -> None:
    for i, name in enumerate(names):
        joint.upd_coordinates(i).setName(name)


def _add_pelvis(model: Any, bodies: dict[str, Any]) -> None:
    names = _PELVIS_COORDINATES
    translations = [(n, a, _linear()) for n, a in zip(names[3:], (_X, _Y, _Z), strict=True)]
    pelvis, origin = bodies["pelvis"], (0.0, 0.0, 0.0)
    rotations = _zxy(names[:3])
    _custom_joint(
        model, "ground_pelvis", model.getGround(), pelvis, origin, rotations, translations
    )


def _zxy(names: Sequence[str], side: str = "r") -> list[AxisSpec]:
    """Rotations about Z, X, Y (flexion, adduction, rotation), mirrored on the left."""
    axes = (_Z, _X, _Y)
    return [(n, _sided_axis(a, side), _linear()) for n, a in zip(names, axes, strict=True)]


def _patella_spline(component: Callable[[np.ndarray], np.ndarray]) -> Callable[[], Any]:
    def make() -> Any:
        spline = opensim().SimmSpline()
        beta = np.radians(_PATELLA_KNOTS_DEG)
        for x, y in zip(beta, component(beta), strict=True):
            spline.addPoint(float(x), float(y))
        return spline

    return make


def patella_path(beta: np.ndarray) -> np.ndarray:
    """Patella origin (..., 2) (x, y) m relative to the femur's knee point, for beta (...) rad."""
    radius = PATELLA_RADIUS[0] + PATELLA_RADIUS[1] * beta
    polar = PATELLA_POLAR[0] + PATELLA_POLAR[1] * beta
    return np.stack([radius * np.cos(polar), radius * np.sin(polar)], axis=-1)


def _add_knee(model: Any, bodies: dict[str, Any], s: str) -> None:
    femur, knee = bodies[f"femur_{s}"], _sided(KNEE_CENTRE, s)
    axis = _sided_axis(KNEE_AXIS, s)
    rot = [(f"knee_angle_{s}", axis, _linear())]
    _custom_joint(model, f"walker_knee_{s}", femur, bodies[f"tibia_{s}"], knee, rot)
    beta = f"knee_angle_{s}_beta"
    rot = [(beta, _Z, _linear(PATELLA_TILT_RATIO))]
    trans = [
        (beta, _X, _patella_spline(lambda b: patella_path(b)[..., 0])),
        (beta, _Y, _patella_spline(lambda b: patella_path(b)[..., 1])),
    ]
    _custom_joint(model, f"patellofemoral_{s}", femur, bodies[f"patella_{s}"], knee, rot, trans)
    _add_coupler(model, f"knee_angle_{s}", beta)


def _add_coupler(model: Any, independent: str, dependent: str) -> None:
    """``dependent = independent`` through a CoordinateCouplerConstraint (LinearFunction 1)."""
    osim = opensim()
    coupler = osim.CoordinateCouplerConstraint()
    coupler.setName(f"patellofemoral_{independent}_con")
    coupler.setIndependentCoordinateNames(osim.ArrayStr(independent, 1))
    coupler.setDependentCoordinateName(dependent)
    coupler.setFunction(osim.LinearFunction(1.0, 0.0))
    model.addConstraint(coupler)


def _add_leg(model: Any, bodies: dict[str, Any], s: str) -> None:
    """Hip, knee, patellofemoral, ankle, subtalar and MTP joints of side ``s``."""
    names = _leg_coordinates(s)
    hip = _sided(HIP_CENTRE, s)
    _custom_joint(
        model, f"hip_{s}", bodies["pelvis"], bodies[f"femur_{s}"], hip, _zxy(names[:3], s)
    )
    _add_knee(model, bodies, s)
    pins = (
        ("ankle", "tibia", "talus", ANKLE_CENTRE, ANKLE_AXIS, names[5]),
        ("subtalar", "talus", "calcn", SUBTALAR, SUBTALAR_AXIS, names[6]),
        ("mtp", "calcn", "toes", MTP, MTP_AXIS, names[7]),
    )
    for joint, parent, child, loc, axis, coord in pins:
        pin = _pin_joint(
            model,
            f"{joint}_{s}",
            bodies[f"{parent}_{s}"],
            bodies[f"{child}_{s}"],
            _sided(loc, s),
            _sided_axis(axis, s),
        )
        _name_coordinates(pin, [coord])


def _add_back(model: Any, bodies: dict[str, Any]) -> None:
    names = ("lumbar_extension", "lumbar_bending", "lumbar_rotation")
    _custom_joint(model, "back", bodies["pelvis"], bodies["torso"], LUMBAR_JOINT, _zxy(names))


def _add_arm(model: Any, bodies: dict[str, Any], s: str) -> None:
    """Acromial (shoulder), elbow, radioulnar and wrist joints of side ``s``."""
    names = _arm_coordinates(s)
    torso, humerus = bodies["torso"], bodies[f"humerus_{s}"]
    shoulder = _sided(SHOULDER_CENTRE, s)
    _custom_joint(model, f"acromial_{s}", torso, humerus, shoulder, _zxy(names[:3], s))
    ulna, radius, hand = bodies[f"ulna_{s}"], bodies[f"radius_{s}"], bodies[f"hand_{s}"]
    elbow_loc, elbow_axis = _sided(ELBOW_CENTRE, s), _sided_axis(ELBOW_AXIS, s)
    _name_coordinates(
        _pin_joint(model, f"elbow_{s}", humerus, ulna, elbow_loc, elbow_axis), [names[3]]
    )
    head, ru_axis = _sided(RADIAL_HEAD, s), _sided_axis(RADIOULNAR_AXIS, s)
    _name_coordinates(_pin_joint(model, f"radioulnar_{s}", ulna, radius, head, ru_axis), [names[4]])
    wrist = _sided(WRIST_CENTRE - RADIAL_HEAD, s)
    axes = (_sided_axis(WRIST_FLEX_AXIS, s), _sided_axis(WRIST_DEV_AXIS, s))
    joint = _universal_joint(model, f"radius_hand_{s}", radius, hand, wrist, axes)
    _name_coordinates(joint, names[5:])


def _add_markers(model: Any, bodies: dict[str, Any]) -> None:
    osim = opensim()
    for name, (body, location) in _MARKERS_RIGHT.items():
        model.addMarker(osim.Marker(name, bodies[body], _vec3(location)))
        if name in _MIDLINE_MARKERS:
            continue
        mirror_body = body.removesuffix("_r") + "_l" if body.endswith("_r") else body
        model.addMarker(
            osim.Marker(
                _mirror_marker_name(name), bodies[mirror_body], _vec3(mirror_point(location))
            )
        )


def _configure_coordinates(model: Any) -> None:
    for joint in model.getJointSet():
        for i in range(joint.numCoordinates()):
            coordinate = joint.upd_coordinates(i)
            default = PELVIS_HEIGHT if coordinate.getName() == "pelvis_ty" else 0.0
            _configure_coordinate(coordinate, default)


def build_generic_model() -> Any:
    """The generic model as an ``opensim.Model`` (connections finalized, not initialized).

    Returns:
        A model with ``BODY_NAMES``, ``COORDINATE_NAMES`` and ``MARKER_NAMES`` in that order,
        the default pose standing on the floor (y = 0).
    """
    osim = opensim()
    model = osim.Model()
    model.setName(MODEL_NAME)
    model.setAuthors("biokin_nb (built by biokin_nb.osim.generic)")
    model.setPublications(
        "de Leva 1996 J Biomech 29:1223; Rajagopal et al. 2016 IEEE TBME 63:2068; "
        "Harrington et al. 2007 J Biomech 40:595; AAOS joint motion (Greene & Heckman 1994)"
    )
    bodies = {n: _add_body(model, n, p) for n, p in mass_properties().items()}
    _add_pelvis(model, bodies)
    for s in SIDES:
        _add_leg(model, bodies, s)
    _add_back(model, bodies)
    for s in SIDES:
        _add_arm(model, bodies, s)
    _configure_coordinates(model)
    _add_markers(model, bodies)
    model.finalizeConnections()
    return model


def write_generic_model(path: str | os.PathLike[str] = DATA_DIR / "generic_model.osim") -> Path:
    """Build the model and write it as ``.osim`` atomically (temp file, then ``os.replace``).

    Args:
        path: destination; default ``data/generic_model.osim`` (the committed file).

    Returns:
        The path written.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        if not build_generic_model().printToXML(str(tmp)):
            raise OSError(f"OpenSim could not write {tmp}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def generic_model_path() -> Path:
    """Path of the committed ``data/generic_model.osim``."""
    path = DATA_DIR / "generic_model.osim"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; regenerate it with `python -m biokin_nb.osim.generic`"
        )
    return path


def main() -> None:
    """Regenerate ``data/generic_model.osim``."""
    print(f"wrote {write_generic_model()}")


if __name__ == "__main__":
    main()
