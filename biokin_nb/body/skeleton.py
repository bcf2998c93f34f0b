"""The generic OpenSim skeleton laid into a body mesh: alignment, segment scales, targets.

Definitions (the model card ``data/body/body.md`` states them for users):

- *Primary* joint centres are points of the body model's own skeleton (bone heads, see
  :mod:`biokin_nb.body.rig`): ``back`` (where the torso bones start) and, per side, hip,
  knee (``walker_knee``), ankle, mtp (mean of the five toe bases), shoulder
  (``acromial``), elbow and wrist (``radius_hand``). They are the mesh's own rotation
  centres.
- *Body frames*: in the mesh's rest pose each OpenSim body gets an orientation ``A_b``
  (the rotation from the generic model's default orientation to the mesh's rest one,
  aligning a primary segment direction and a second direction, :func:`alignment`) and
  three scale factors ``k_b`` (ratios of primary segment lengths to the generic model's,
  :func:`segment_scales`). In a pose, body ``b`` has orientation ``R_b = G_c A_b``,
  ``G_c`` being the rotation of the bone ``c`` that carries it.
- *Foot*: the hindfoot (talus) is scaled by the heel's length behind the ankle, the toes
  by their length ahead of the mtp (skin extremes of the rest mesh, :func:`foot_extremes`,
  against the generic heel and hallux markers), and the calcaneus so that the scaled
  ankle-subtalar-mtp chain spans the mesh's ankle-to-mtp distance exactly. Scaling the
  whole foot by ankle-to-mtp alone put the subtalar centre behind the skin of the heel
  (Anny's heels are about a third shorter, relative to that length, than the generic
  model's) and the toes' mass centre just outside their skin.
- *Derived* joint centres (``ground_pelvis``, ``patellofemoral``, ``subtalar``,
  ``radioulnar``) and the body mass centres are the generic model's points, scaled by
  ``k_b`` in body ``b``'s frame and placed from a primary anchor of that body; the
  patella follows the knee angle as in the generic model.

Everything is in the ground frame (X forward, Y up, Z right), metres; tensors take leading
batch dimensions ``...``; bodies are in the generic model's body order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from biokin_nb.body.frames import rotation_aligning
from biokin_nb.body.model import BodyModel, BodyOutput, BodyPose
from biokin_nb.body.rig import PRIMARY, PRIMARY_JOINT, SIDES, Rig
from biokin_nb.osim import KinematicModel, forward_kinematics

# Derived joints: joint name -> (primary landmark it is placed from, in the parent body).
DERIVED_ANCHORS = {
    "ground_pelvis": "midhip",
    "patellofemoral_r": "knee_r",
    "patellofemoral_l": "knee_l",
    "subtalar_r": "ankle_r",
    "subtalar_l": "ankle_l",
    "radioulnar_r": "elbow_r",
    "radioulnar_l": "elbow_l",
}
# Primary joint name -> its landmark.
JOINT_LANDMARK = {"back": "back"} | {
    f"{PRIMARY_JOINT[p]}_{s}": f"{p}_{s}" for p in PRIMARY for s in SIDES
}
# Foot extremes -> the generic marker standing for them ({S}: R or L).
FOOT_MARKERS = {"heel": "{S}HEE", "toetip": "{S}HLX"}
_PATELLA_KNOTS_DEG = np.arange(0.0, 181.0, 5.0)
_FORWARD = (1.0, 0.0, 0.0)


@dataclass(frozen=True)
class GenericGeometry:
    """The generic model at its default pose (unit scales), as body-frame coordinates.

    Every body frame is parallel to ground at the default pose, so body-frame coordinates
    are ground offsets from the body's origin.

    Attributes:
        model: the generic KinematicModel.
        joint_parent, joint_child: (J,) parent (-1: ground) and child body of each joint.
        origins: (B,) 3-vectors: body origins in ground (m).
        joint_local: (J, 3) joint centre in its parent body's frame (pelvis root: 0).
        com_local: (B, 3) mass centres in their body's frame.
        marker_body: (M,) body of each marker; marker_local (M, 3) in that body's frame.
        patella_beta: (K,) knee angles (rad); patella_local (2, K, 3) patellofemoral
            centre in the femur frame, right then left.
        elbow_axis: (2, 3) elbow flexion axes in ground, right then left.
        landmarks: primary landmark name -> (3,) ground position.
    """

    model: KinematicModel
    joint_parent: np.ndarray
    joint_child: np.ndarray
    origins: np.ndarray
    joint_local: np.ndarray
    com_local: np.ndarray
    marker_body: np.ndarray
    marker_local: np.ndarray
    patella_beta: np.ndarray
    patella_local: np.ndarray
    elbow_axis: np.ndarray
    landmarks: dict[str, np.ndarray]

    @property
    def body_names(self) -> list[str]:
        return self.model.body_names

    @property
    def joint_names(self) -> list[str]:
        return self.model.joint_names

    @property
    def keypoint_names(self) -> list[str]:
        return self.model.keypoint_names


def generic_geometry(model: KinematicModel) -> GenericGeometry:
    """Read the :class:`GenericGeometry` of ``model`` (its default pose, unit scales).

    Raises:
        ValueError: a body frame is not parallel to ground at the default pose, or a joint
            the body layer needs is missing.
    """
    _check_joint_names(model)
    fk = forward_kinematics(model, torch.tensor(model.defaults, dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64)
    if (fk.rotations - eye).abs().max() > 1e-9:
        raise ValueError(
            f"model {model.name!r}: body frames are not parallel to ground at the default "
            "pose; the body layer needs the project's generic model (data/generic_model.osim)"
        )
    origins = fk.positions.numpy()
    parent = np.array([j.parent_body for j in model.joints])
    child = np.array([j.child_body for j in model.joints])
    centres = fk.joint_centres.numpy()
    base = np.where(parent[:, None] >= 0, origins[np.maximum(parent, 0)], centres[:1])
    marker_body = np.array([m.body for m in model.markers], dtype=int)
    names = model.joint_names
    landmarks = {
        f"{p}_{s}": centres[names.index(f"{PRIMARY_JOINT[p]}_{s}")] for p in PRIMARY for s in SIDES
    }
    landmarks["back"] = centres[names.index("back")]
    landmarks["midhip"] = 0.5 * (landmarks["hip_r"] + landmarks["hip_l"])
    landmarks["midshoulder"] = 0.5 * (landmarks["shoulder_r"] + landmarks["shoulder_l"])
    marker_names = [m.name for m in model.markers]
    for s in SIDES:
        landmarks[f"subtalar_{s}"] = centres[names.index(f"subtalar_{s}")]
        for point, marker in FOOT_MARKERS.items():
            landmarks[f"{point}_{s}"] = fk.markers[marker_names.index(marker.format(S=s.upper()))]
    landmarks = {k: np.asarray(v, dtype=np.float64) for k, v in landmarks.items()}
    beta, patella = _patella_table(model, origins)
    return GenericGeometry(
        model=model,
        joint_parent=parent,
        joint_child=child,
        origins=origins,
        joint_local=centres - base,
        com_local=(fk.coms - fk.positions).numpy(),
        marker_body=marker_body,
        marker_local=fk.markers.numpy() - origins[marker_body],
        patella_beta=beta,
        patella_local=patella,
        elbow_axis=np.stack([_elbow_axis(model, f"elbow_{s}") for s in SIDES]),
        landmarks=landmarks,
    )


def _check_joint_names(model: KinematicModel) -> None:
    needed = [f"{PRIMARY_JOINT[p]}_{s}" for p in PRIMARY for s in SIDES]
    needed += ["back", *DERIVED_ANCHORS]
    missing = [n for n in needed if n not in model.joint_names]
    markers = {m.name for m in model.markers}
    missing += [
        m.format(S=s.upper())
        for m in FOOT_MARKERS.values()
        for s in SIDES
        if m.format(S=s.upper()) not in markers
    ]
    if missing:
        raise ValueError(
            f"model {model.name!r} lacks the joints or markers {', '.join(missing)} that the "
            "body layer maps onto the mesh; use the project's generic model "
            "(data/generic_model.osim)"
        )


def _patella_table(model: KinematicModel, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patellofemoral centres (2, K, 3) in the femur frames over knee angles (K,) rad."""
    beta = np.radians(_PATELLA_KNOTS_DEG)
    q = np.tile(model.defaults, (len(beta), 1))
    for s in SIDES:
        lo, hi = model.ranges[model.coordinate_index(f"knee_angle_{s}")]
        q[:, model.coordinate_index(f"knee_angle_{s}")] = np.clip(beta, lo, hi)
    fk = forward_kinematics(model, torch.tensor(q, dtype=torch.float64))
    names = model.joint_names
    table = []
    for s in SIDES:
        centre = fk.joint_centres[:, names.index(f"patellofemoral_{s}")].numpy()
        table.append(centre - origins[model.body_index(f"femur_{s}")])
    return beta, np.stack(table)


def _elbow_axis(model: KinematicModel, joint_name: str) -> np.ndarray:
    joint = model.joints[model.joint_names.index(joint_name)]
    rotations = [m for m in joint.motions if m.kind == "rotation" and m.coordinate >= 0]
    axis = joint.parent_frame.rotation @ rotations[0].axis
    return axis / np.linalg.norm(axis)


# ------------------------------------------------------------------------ rest skeleton


@dataclass
class RestSkeleton:
    """The generic skeleton laid into rest-pose meshes (``...`` = the shapes' batch).

    Attributes:
        landmarks: landmark name -> (..., 3) rest position (ground, m); includes the
            primary joints, the finger bases, ``midhip`` and the derived ``back``.
        align: (..., B, 3, 3) body orientations ``A_b`` of the rest mesh.
        scales: (..., B, 3) body scale factors ``k_b``.
        root: (..., 3) rest position of the root bone's head.
    """

    landmarks: dict[str, torch.Tensor]
    align: torch.Tensor
    scales: torch.Tensor
    root: torch.Tensor


def landmark_positions(rig: Rig, bone_names: tuple[str, ...], joints: torch.Tensor) -> dict:
    """Landmark name -> (..., 3): the means of the rig's bone heads ``joints`` (..., NB, 3),
    plus ``midhip`` and ``midshoulder``."""
    out = {}
    for name, bones in rig.landmarks.items():
        idx = [bone_names.index(b) for b in bones]
        out[name] = joints[..., idx, :].mean(-2)
    out["midhip"] = 0.5 * (out["hip_r"] + out["hip_l"])
    out["midshoulder"] = 0.5 * (out["shoulder_r"] + out["shoulder_l"])
    return out


def rest_skeleton(body: BodyModel, rig: Rig, geom: GenericGeometry, shape=None) -> RestSkeleton:
    """Lay the generic skeleton into the rest mesh of ``shape`` (..., S)."""
    rest = body.rest_pose(shape)
    skin = foot_skin_vertices(body, rig, geom)
    ids = torch.cat(list(skin.values()))
    out = body.forward(shape, rest, vertex_ids=ids)
    landmarks = landmark_positions(rig, body.bone_names, out.joints)
    parts = out.vertices.split([len(v) for v in skin.values()], dim=-2)
    landmarks |= foot_extremes(landmarks, dict(zip(skin, parts, strict=True)))
    return skeleton_from_landmarks(geom, landmarks, rest.root)


def skeleton_from_landmarks(
    geom: GenericGeometry, landmarks: dict[str, torch.Tensor], root: torch.Tensor | None = None
) -> RestSkeleton:
    """Body orientations and scales from rest-pose landmarks (..., 3) (see module doc).

    ``landmarks`` needs the primary joints, ``midhip``, ``midshoulder``, the finger
    bases and the foot extremes (:func:`foot_extremes`).
    """
    root = root if root is not None else landmarks["midhip"]
    scales = segment_scales(geom, landmarks)
    return RestSkeleton(landmarks, alignment(geom, landmarks, scales), scales, root)


def _t(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=like.dtype, device=like.device)


def _midhip_local(geom: GenericGeometry) -> np.ndarray:
    """Mid-hip point in the pelvis frame (generic)."""
    return geom.landmarks["midhip"] - geom.origins[geom.body_names.index("pelvis")]


def _ratio(lm: dict, g: dict, a: str, b: str) -> torch.Tensor:
    """(...,) mesh distance a-b over the generic distance."""
    return (lm[a] - lm[b]).norm(dim=-1) / float(np.linalg.norm(g[a] - g[b]))


# Sided body -> the primary segment whose length ratio scales it (isotropically).
_SCALING_SEGMENT = {
    "femur": ("hip", "knee"),
    "patella": ("hip", "knee"),
    "tibia": ("knee", "ankle"),
    "humerus": ("shoulder", "elbow"),
    "ulna": ("elbow", "wrist"),
    "radius": ("elbow", "wrist"),
    "hand": ("elbow", "wrist"),
}


def segment_scales(geom: GenericGeometry, lm: dict[str, torch.Tensor]) -> torch.Tensor:
    """(..., B, 3) body scale factors from primary segment lengths (landmarks (..., 3)).

    pelvis: mid-hip to back (x, y) and hip width (z); torso: back to mid-shoulder (x, y)
    and shoulder width (z); the limb bodies: the length of their segment in
    ``_SCALING_SEGMENT`` (the hand takes the forearm's), on all three axes; the foot bodies
    as the module docstring says (*Foot*; ``lm`` needs the foot extremes).
    """
    g = geom.landmarks
    k_pelvis = _ratio(lm, g, "midhip", "back")
    k_trunk = _ratio(lm, g, "back", "midshoulder")
    per_body: dict[str, torch.Tensor] = {
        "pelvis": torch.stack([k_pelvis, k_pelvis, _ratio(lm, g, "hip_r", "hip_l")], -1),
        "torso": torch.stack([k_trunk, k_trunk, _ratio(lm, g, "shoulder_r", "shoulder_l")], -1),
    }
    for body, (a, b) in _SCALING_SEGMENT.items():
        for s in SIDES:
            k = _ratio(lm, g, f"{a}_{s}", f"{b}_{s}")
            per_body[f"{body}_{s}"] = k.unsqueeze(-1).expand(*k.shape, 3)
    for s in SIDES:
        for body, k in _foot_scales(lm, g, s).items():
            per_body[f"{body}_{s}"] = k.unsqueeze(-1).expand(*k.shape, 3)
    return torch.stack([per_body[name] for name in geom.body_names], dim=-2)


def _forward(lm: dict, s: str) -> torch.Tensor:
    """(..., 3) the foot's forward direction: ankle to mtp, horizontal, unit."""
    d = lm[f"mtp_{s}"] - lm[f"ankle_{s}"]
    d = torch.stack([d[..., 0], torch.zeros_like(d[..., 1]), d[..., 2]], -1)
    return d / d.norm(dim=-1, keepdim=True)


def _foot_lengths(lm: dict, s: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(...,) heel length (ankle to heel) and toe length (mtp to toe tip), along the foot."""
    f = _forward(lm, s)
    heel = ((lm[f"ankle_{s}"] - lm[f"heel_{s}"]) * f).sum(-1)
    toes = ((lm[f"toetip_{s}"] - lm[f"mtp_{s}"]) * f).sum(-1)
    return heel, toes


def _foot_scales(lm: dict, g: dict, s: str) -> dict[str, torch.Tensor]:
    """(...,) isotropic scales of talus, calcn and toes (module docstring, *Foot*)."""
    g = {k: _t(v, lm[f"ankle_{s}"]) for k, v in g.items()}
    heel, toes = _foot_lengths(lm, s)
    heel_g, toes_g = _foot_lengths(g, s)
    k_talus = heel / heel_g
    a = g[f"subtalar_{s}"] - g[f"ankle_{s}"]  # talus part of the chain
    b = g[f"mtp_{s}"] - g[f"subtalar_{s}"]  # calcn part
    span = (lm[f"mtp_{s}"] - lm[f"ankle_{s}"]).norm(dim=-1)
    # |k_talus a + k_calcn b| = span: the positive root of a quadratic in k_calcn
    ab, aa, bb = (a * b).sum(-1), (a * a).sum(-1), (b * b).sum(-1)
    half = k_talus * ab / bb
    k_calcn = -half + torch.sqrt((half * half + (span**2 - k_talus**2 * aa) / bb).clamp_min(0))
    return {"talus": k_talus, "calcn": k_calcn, "toes": toes / toes_g}


def scaled_foot(geom: GenericGeometry, scales: torch.Tensor, s: str) -> torch.Tensor:
    """(..., 3) the generic ankle-to-mtp vector of side ``s`` with the foot scales of
    ``scales`` (..., B, 3) applied (body frames are parallel to ground)."""
    g = geom.landmarks
    talus, calcn = (geom.body_names.index(f"{b}_{s}") for b in ("talus", "calcn"))
    a = _t(g[f"subtalar_{s}"] - g[f"ankle_{s}"], scales)
    b = _t(g[f"mtp_{s}"] - g[f"subtalar_{s}"], scales)
    return scales[..., talus, :] * a + scales[..., calcn, :] * b


def foot_extremes(
    lm: dict[str, torch.Tensor], skin: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``heel_<s>`` and ``toetip_<s>`` (..., 3): of the hindfoot's skin ``skin["heel_<s>"]``
    (..., K, 3) the point farthest behind the ankle, of the toes' skin
    ``skin["toetip_<s>"]`` the point farthest ahead of the mtp, along the foot's
    horizontal ankle-to-mtp direction (landmarks ``lm`` (..., 3))."""
    out = {}
    for s in SIDES:
        f = _forward(lm, s).unsqueeze(-2)
        for name, sign, base in (("heel", -1.0, "ankle"), ("toetip", 1.0, "mtp")):
            points = skin[f"{name}_{s}"]
            reach = sign * ((points - lm[f"{base}_{s}"].unsqueeze(-2)) * f).sum(-1)
            index = reach.argmax(-1, keepdim=True).unsqueeze(-1).expand(*reach.shape[:-1], 1, 3)
            out[f"{name}_{s}"] = points.gather(-2, index).squeeze(-2)
    return out


def foot_skin_vertices(body: BodyModel, rig: Rig, geom: GenericGeometry) -> dict[str, torch.Tensor]:
    """``heel_<s>``: the vertices of the calcn's skin, ``toetip_<s>``: the toes' (indices)."""
    owner = torch.as_tensor(vertex_bodies(body, rig, geom))
    out = {}
    for s in SIDES:
        for name, body_name in (("heel", "calcn"), ("toetip", "toes")):
            ids = torch.nonzero(owner == geom.body_names.index(f"{body_name}_{s}")).flatten()
            if len(ids) == 0:
                raise ValueError(f"no vertex of the {body.kind} mesh is skinned to {body_name}_{s}")
            out[f"{name}_{s}"] = ids
    return out


def _elbow_axis_mesh(lm: dict, s: str) -> torch.Tensor:
    """Elbow flexion axis of a rest mesh: upper arm x forearm, or, for an elbow bent less
    than 10 deg, the axis about which the forearm would flex forward."""
    upper = lm[f"elbow_{s}"] - lm[f"shoulder_{s}"]
    fore = lm[f"wrist_{s}"] - lm[f"elbow_{s}"]
    axis = torch.linalg.cross(upper, fore)
    fallback = torch.linalg.cross(upper, _t(np.array(_FORWARD), upper).expand_as(upper))
    sin_bend = axis.norm(dim=-1, keepdim=True) / (
        upper.norm(dim=-1, keepdim=True) * fore.norm(dim=-1, keepdim=True)
    )
    return torch.where(sin_bend > np.sin(np.radians(10.0)), axis, fallback)


def alignment(
    geom: GenericGeometry, lm: dict[str, torch.Tensor], scales: torch.Tensor
) -> torch.Tensor:
    """(..., B, 3, 3) rotations from the generic default body orientations to the rest mesh.

    Each body's primary direction is matched exactly, a second one in its plane: pelvis
    (mid-hip to back, hip to hip), torso (back to mid-shoulder, shoulder to shoulder),
    thigh and shank (their axis, the foot's direction), foot (ankle to mtp, up the shank),
    upper arm and ulna (their axis, the elbow's flexion axis), radius and hand (their axis,
    pinky to index base: lateral with the palm forward). The generic foot direction is
    that of the scaled foot (``scales`` (..., B, 3), :func:`scaled_foot`).
    """
    like = lm["hip_r"]
    g = {k: _t(v, like).expand_as(like) for k, v in geom.landmarks.items()}
    for s in SIDES:
        g[f"mtp_{s}"] = g[f"ankle_{s}"] + scaled_foot(geom, scales.to(like), s)
    rot = {
        "pelvis": _align(lm, g, ("midhip", "back"), ("hip_l", "hip_r")),
        "torso": _align(lm, g, ("back", "midshoulder"), ("shoulder_l", "shoulder_r")),
    }
    for i, s in enumerate(SIDES):
        rot |= _leg_alignment(lm, g, s) | _arm_alignment(
            lm, g, s, _t(geom.elbow_axis[i], lm["hip_r"])
        )
    batch = lm["hip_r"].shape[:-1]
    return torch.stack([rot[name].expand(*batch, 3, 3) for name in geom.body_names], -3)


def _leg_alignment(lm: dict, g: dict, s: str) -> dict[str, torch.Tensor]:
    foot = _align(lm, g, (f"ankle_{s}", f"mtp_{s}"), (f"ankle_{s}", f"knee_{s}"))
    femur = _align(lm, g, (f"hip_{s}", f"knee_{s}"), (f"ankle_{s}", f"mtp_{s}"))
    return {
        f"femur_{s}": femur,
        f"patella_{s}": femur,
        f"tibia_{s}": _align(lm, g, (f"knee_{s}", f"ankle_{s}"), (f"ankle_{s}", f"mtp_{s}")),
        f"talus_{s}": foot,
        f"calcn_{s}": foot,
        f"toes_{s}": foot,
    }


def _arm_alignment(lm: dict, g: dict, s: str, elbow_g: torch.Tensor) -> dict[str, torch.Tensor]:
    like = lm["hip_r"]
    lateral = _t(np.array([0.0, 0.0, 1.0 if s == "r" else -1.0]), like)
    down = _t(np.array([0.0, -1.0, 0.0]), like)
    elbow_m = _elbow_axis_mesh(lm, s)
    fore = lm[f"wrist_{s}"] - lm[f"elbow_{s}"]
    fore_g = g[f"wrist_{s}"] - g[f"elbow_{s}"]
    palm = lm[f"index_{s}"] - lm[f"pinky_{s}"]
    upper = lm[f"elbow_{s}"] - lm[f"shoulder_{s}"]
    upper_g = g[f"elbow_{s}"] - g[f"shoulder_{s}"]
    return {
        f"humerus_{s}": rotation_aligning((upper_g, elbow_g), (upper, elbow_m)),
        f"ulna_{s}": rotation_aligning((fore_g, elbow_g), (fore, elbow_m)),
        f"radius_{s}": rotation_aligning((fore_g, lateral), (fore, palm)),
        f"hand_{s}": rotation_aligning(
            (down, lateral), (lm[f"middle_{s}"] - lm[f"wrist_{s}"], palm)
        ),
    }


def _align(lm: dict, g: dict, first: tuple[str, str], second: tuple[str, str]) -> torch.Tensor:
    """Rotation taking the generic (first, second) landmark vectors onto the mesh's."""
    a, b = first
    c, d = second
    return rotation_aligning((g[b] - g[a], g[d] - g[c]), (lm[b] - lm[a], lm[d] - lm[c]))


# -------------------------------------------------------------------------- posing


def pose_from_body_rotations(
    rig: Rig,
    body: BodyModel,
    geom: GenericGeometry,
    rest: RestSkeleton,
    rotations: torch.Tensor,
    midhip: torch.Tensor,
) -> BodyPose:
    """The mesh pose whose bodies have orientations ``rotations`` (..., B, 3, 3).

    Each bone ``c`` of body ``b`` gets ``G_c = R_b A_b^T``; the root is placed so that the
    mesh's mid-hip point lands on ``midhip`` (..., 3) (ground, m).
    """
    index = [geom.body_names.index(rig.bone_body[name]) for name in body.bone_names]
    bone_rot = rotations[..., index, :, :] @ rest.align[..., index, :, :].transpose(-1, -2)
    offset = (rest.landmarks["midhip"] - rest.root).unsqueeze(-1)
    root = midhip - (bone_rot[..., 0, :, :] @ offset).squeeze(-1)
    return BodyPose(bone_rot, root)


def body_rotations(
    rig: Rig, body: BodyModel, geom: GenericGeometry, rest: RestSkeleton, out: BodyOutput
) -> torch.Tensor:
    """(..., B, 3, 3) OpenSim body orientations ``R_b = G_carrier A_b`` of a posed mesh."""
    index = [body.bone_index(rig.carriers[name]) for name in geom.body_names]
    return out.rotations[..., index, :, :] @ rest.align


def target_keypoints(
    rig: Rig, body: BodyModel, geom: GenericGeometry, rest: RestSkeleton, out: BodyOutput
) -> torch.Tensor:
    """(..., 2B, 3) the target joint centres then mass centres of a posed mesh (ground, m).

    See the module docstring for the definitions; ``rest`` is the rest skeleton of the
    mesh's shape, ``out`` the posed mesh (its ``joints`` and ``rotations``).
    """
    lm = landmark_positions(rig, body.bone_names, out.joints)
    rot = body_rotations(rig, body, geom, rest, out)
    like = out.joints
    names, bodies = geom.joint_names, geom.body_names
    centres: list[torch.Tensor] = []
    for j, name in enumerate(names):
        if name in DERIVED_ANCHORS:
            centres.append(_derived(geom, rest, lm, rot, j, name, like))
        else:
            centres.append(lm[JOINT_LANDMARK[name]])
    joints = torch.stack(centres, dim=-2)
    origin = joints[..., [list(geom.joint_child).index(b) for b in range(len(bodies))], :]
    com = (rot @ (rest.scales * _t(geom.com_local, like)).unsqueeze(-1)).squeeze(-1)
    return torch.cat([joints, origin + com], dim=-2)


def _derived(geom, rest, lm, rot, j: int, name: str, like: torch.Tensor) -> torch.Tensor:
    """A derived joint centre: generic offset from its anchor, scaled, in the parent frame."""
    parent = int(geom.joint_parent[j]) if geom.joint_parent[j] >= 0 else 0
    anchor = DERIVED_ANCHORS[name]
    if anchor == "midhip":
        local_anchor = _midhip_local(geom)
    else:
        local_anchor = geom.landmarks[anchor] - geom.origins[parent]
    if name.startswith("patellofemoral"):
        side = SIDES.index(name[-1])
        femur, tibia = (geom.body_names.index(f"{b}_{name[-1]}") for b in ("femur", "tibia"))
        beta = _relative_angle(rot[..., femur, :, :], rot[..., tibia, :, :])
        local = _interp(beta, geom.patella_beta, geom.patella_local[side], like)
        offset = local - _t(local_anchor, like)
    else:
        offset = _t(geom.joint_local[j] - local_anchor, like)
    scaled = rest.scales[..., parent, :] * offset
    return lm[anchor] + (rot[..., parent, :, :] @ scaled.unsqueeze(-1)).squeeze(-1)


def _relative_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(...,) angle (rad) of the rotation from orientation ``a`` to ``b`` (..., 3, 3)."""
    trace = (a * b).sum((-1, -2))
    return torch.acos(((trace - 1.0) / 2.0).clamp(-1.0 + 1e-7, 1.0 - 1e-7))


def _interp(x: torch.Tensor, knots: np.ndarray, values: np.ndarray, like) -> torch.Tensor:
    """(..., D) piecewise-linear interpolation of ``values`` (K, D) at ``x`` (...,)."""
    k = _t(knots, like)
    v = _t(values, like)
    step = float(knots[1] - knots[0])
    pos = ((x - k[0]) / step).clamp(0.0, len(knots) - 1.000001)
    i = pos.floor().long()
    frac = (pos - i.to(pos.dtype)).unsqueeze(-1)
    return v[i] * (1.0 - frac) + v[i + 1] * frac


# ---------------------------------------------------------------- vertex ownership


def vertex_bodies(body: BodyModel, rig: Rig, geom: GenericGeometry) -> np.ndarray:
    """(V,) the OpenSim body of each vertex: that of its most weighted bone."""
    bone_body = np.array([geom.body_names.index(rig.bone_body[b]) for b in body.bone_names])
    return bone_body[body.dominant_bones().cpu().numpy()]


def _tree(geom: GenericGeometry) -> tuple[dict[int, int], dict[int, set[int]]]:
    parent = {int(c): int(p) for p, c in zip(geom.joint_parent, geom.joint_child, strict=True)}
    children: dict[int, set[int]] = {b: set() for b in range(len(geom.body_names))}
    for c, p in parent.items():
        if p >= 0:
            children[p].add(c)
    return parent, children


def _with_boneless(bodies: set[int], geom: GenericGeometry, rig: Rig) -> set[int]:
    """``bodies`` plus, for each one without bones, its parent, siblings and children."""
    parent, children = _tree(geom)
    skinned = {geom.body_names.index(b) for b in rig.bone_body.values()}
    out = set(bodies)
    for b in bodies - skinned:
        p = parent.get(b, -1)
        out |= children[b] | ({p} | children[p] if p >= 0 else set())
    return out


def _shared_skin(geom: GenericGeometry, b: int) -> set[int]:
    """The bodies sharing body ``b``'s skin: the ulna and radius share the forearm's."""
    name = geom.body_names[b]
    for first, second in (("ulna", "radius"), ("radius", "ulna")):
        if name.startswith(first):
            return {geom.body_names.index(second + name[len(first) :])}
    return set()


def keypoint_bodies(geom: GenericGeometry, rig: Rig) -> list[set[int]]:
    """For each keypoint, the bodies whose vertices may regress it: a joint's parent and
    child bodies, a mass centre's own body and those sharing its skin (bodies without
    bones: their neighbours)."""
    joints = [
        {max(int(p), 0), int(c)} for p, c in zip(geom.joint_parent, geom.joint_child, strict=True)
    ]
    coms = [{b} | _shared_skin(geom, b) for b in range(len(geom.body_names))]
    return [_with_boneless(s, geom, rig) for s in joints + coms]


def marker_search_bodies(geom: GenericGeometry, rig: Rig) -> list[set[int]]:
    """For each body, the bodies whose vertices may carry its markers: itself, those sharing
    its skin and its children (markers at a joint sit on the skin of either side)."""
    _, children = _tree(geom)
    return [
        _with_boneless({b} | children[b] | _shared_skin(geom, b), geom, rig)
        for b in range(len(geom.body_names))
    ]
