"""Batched, differentiable forward kinematics of a :class:`KinematicModel` in PyTorch.

Convention: ``R`` maps body-frame vectors to ground (``R_ground_body``); positions in
ground, metres. Inputs take any leading batch dimensions ``...``; float32 or float64; any
device. Agrees with OpenSim's ``realizePosition`` on a model scaled by OpenSim's
``Model::scale`` (see ``tests/test_fk_opensim.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from biokin_nb.osim.model import KinematicModel


@dataclass
class FKResult:
    """Forward kinematics of a batch of poses (``...`` leading dims, B bodies, M markers).

    Attributes:
        rotations: (..., B, 3, 3) body orientations ``R_ground_body``.
        positions: (..., B, 3) body-frame origins in ground (m).
        joint_centres: (..., B, 3) origin of each joint's child frame in ground (m), in the
            model's joint order (``model.joint_names``).
        coms: (..., B, 3) body mass centres in ground (m).
        markers: (..., M, 3) markers in ground (m).
    """

    rotations: torch.Tensor
    positions: torch.Tensor
    joint_centres: torch.Tensor
    coms: torch.Tensor
    markers: torch.Tensor

    @property
    def keypoints(self) -> torch.Tensor:
        """(..., 2B, 3) joint centres then mass centres (``model.keypoint_names``)."""
        return torch.cat([self.joint_centres, self.coms], dim=-2)


def forward_kinematics(
    model: KinematicModel,
    q: torch.Tensor,
    scales: torch.Tensor | None = None,
    *,
    apply_couplers: bool = True,
) -> FKResult:
    """Body frames, joint centres, mass centres and markers of ``model`` at ``q``.

    Args:
        model: the kinematic model.
        q: (..., C) coordinates in the model's order (rad, m).
        scales: (..., B, 3) per-body scale factors (None: unscaled). Broadcasts with ``q``.
        apply_couplers: recompute coupled coordinates from their independent ones
            (OpenSim enforces CoordinateCouplerConstraints when it assembles a pose).

    Raises:
        ValueError: wrong shapes, or NaN in ``q`` or ``scales``.
    """
    q, scales = _check_inputs(model, q, scales)
    if apply_couplers:
        q = apply_coupler_constraints(model, q)
    c = _compiled(model, q.dtype, q.device)
    batch = torch.broadcast_shapes(q.shape[:-1], scales.shape[:-2])
    eye = c["eye"].expand(*batch, 3, 3)
    zero = torch.zeros(*batch, 3, dtype=q.dtype, device=q.device)
    rots, poss, centres = [None] * model.n_bodies, [None] * model.n_bodies, []
    for joint, jc in zip(model.joints, c["joints"], strict=True):
        parent = joint.parent_body
        r_par, p_par = (eye, zero) if parent < 0 else (rots[parent], poss[parent])
        s_par = scales[..., parent, :] if parent >= 0 else None
        r_f = r_par @ jc["r_p"]
        p_f = p_par + _rotate(r_par, _origin(jc["m_p"], s_par))
        r_j, p_j = _joint_transform(jc, q, s_par)
        r_m = r_f if r_j is None else r_f @ r_j
        p_m = p_f if p_j is None else p_f + _rotate(r_f, p_j)
        s_child = scales[..., joint.child_body, :]
        r_child = r_m @ jc["r_c_t"]
        rots[joint.child_body] = r_child
        poss[joint.child_body] = p_m - _rotate(r_child, _origin(jc["m_c"], s_child))
        centres.append(p_m)
    return _assemble(c, rots, poss, centres, scales, eye, zero)


def apply_coupler_constraints(model: KinematicModel, q: torch.Tensor) -> torch.Tensor:
    """(..., C) copy of ``q`` with every coupled coordinate set from its independent one."""
    if not model.couplers:
        return q
    cols = list(q.unbind(-1))
    for coupler in model.couplers:
        cols[coupler.dependent] = coupler.function(cols[coupler.independent])
    return torch.stack(cols, dim=-1)


def _check_inputs(
    model: KinematicModel, q: torch.Tensor, scales: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    q = torch.as_tensor(q)
    if not q.is_floating_point():
        q = q.to(torch.get_default_dtype())
    if q.ndim < 1 or q.shape[-1] != model.n_coordinates:
        raise ValueError(
            f"coordinates must have shape (..., {model.n_coordinates}) for model "
            f"{model.name!r}; got {tuple(q.shape)}"
        )
    if scales is None:
        scales = torch.ones(model.n_bodies, 3, dtype=q.dtype, device=q.device)
    scales = torch.as_tensor(scales, dtype=q.dtype, device=q.device)
    if scales.ndim < 2 or tuple(scales.shape[-2:]) != (model.n_bodies, 3):
        raise ValueError(
            f"scales must have shape (..., {model.n_bodies}, 3) for model {model.name!r}; "
            f"got {tuple(scales.shape)}"
        )
    for name, t in (("coordinates", q), ("scales", scales)):
        if torch.isnan(t).any():
            bad = torch.isnan(t).reshape(-1, t.shape[-1]).any(0).nonzero().flatten().tolist()
            labels = model.coordinate_names if name == "coordinates" else ["x", "y", "z"]
            raise ValueError(
                f"NaN in {name} ({', '.join(labels[i] for i in bad)}); fill gaps first"
            )
    return q, scales


def _rotate(r: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) @ (..., 3) -> (..., 3)."""
    return (r @ v.unsqueeze(-1)).squeeze(-1)


def _origin(m: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
    """Origin ``M @ s`` of a fixed frame; ``s`` None means unscaled (ground)."""
    return m.sum(-1) if s is None else (m @ s.unsqueeze(-1)).squeeze(-1)


def _axis_rotation(axis: dict[str, torch.Tensor], angle: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation by ``angle`` (...,) about a unit axis (Rodrigues)."""
    cos, sin = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]
    return axis["aat"] + cos * axis["perp"] + sin * axis["skew"]


def _joint_transform(
    jc: dict, q: torch.Tensor, s_par: torch.Tensor | None
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Rotation (..., 3, 3) and translation (..., 3) of the child frame in the parent frame."""
    rot, trans = None, None
    for motion, axis in jc["motions"]:
        value = motion.function(q[..., motion.coordinate]) if motion.coordinate >= 0 else None
        if value is None:
            value = motion.function(q.new_zeros(q.shape[:-1]))
        if motion.kind == "rotation":
            r = _axis_rotation(axis, value)
            rot = r if rot is None else rot @ r
            continue
        factor = value if (s_par is None or not motion.scales) else value * (s_par @ axis["a"])
        t = factor[..., None] * axis["a"]
        trans = t if trans is None else trans + t
    return rot, trans


def _assemble(c, rots, poss, centres, scales, eye, zero) -> FKResult:
    rot = torch.stack(rots, dim=-3)
    pos = torch.stack(poss, dim=-2)
    coms = pos + _rotate(rot, c["com"] * scales)
    rot_g = torch.cat([rot, eye.unsqueeze(-3)], dim=-3)  # ground appended: index -1
    pos_g = torch.cat([pos, zero.unsqueeze(-2)], dim=-2)
    s_g = torch.cat(
        [scales.expand(*pos.shape[:-2], -1, -1), torch.ones_like(zero)[..., None, :]], -2
    )
    idx = c["marker_body"]
    local = (c["marker_m"] @ s_g[..., idx, :].unsqueeze(-1)).squeeze(-1)
    markers = pos_g[..., idx, :] + _rotate(rot_g[..., idx, :, :], local)
    return FKResult(rot, pos, torch.stack(centres, dim=-2), coms, markers)


def _compiled(model: KinematicModel, dtype: torch.dtype, device: torch.device) -> dict:
    """Model constants as tensors, cached per dtype and device."""
    key = ("fk", dtype, str(device))
    if key not in model._cache:
        model._cache[key] = _compile(model, dtype, device)
    return model._cache[key]


def _compile(model: KinematicModel, dtype: torch.dtype, device: torch.device) -> dict:
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)

    joints = []
    for j in model.joints:
        motions = [(m, _axis_constants(m.axis, t)) for m in j.motions]
        joints.append(
            {
                "r_p": t(j.parent_frame.rotation),
                "m_p": t(j.parent_frame.origin_by_scale),
                "r_c_t": t(j.child_frame.rotation.T),
                "m_c": t(j.child_frame.origin_by_scale),
                "motions": motions,
            }
        )
    markers = model.markers
    return {
        "eye": t(np.eye(3)),
        "joints": joints,
        "com": t(np.stack([b.com for b in model.bodies])),
        "marker_body": torch.tensor([m.body for m in markers], dtype=torch.long, device=device),
        "marker_m": t(
            np.stack([m.origin_by_scale for m in markers]) if markers else np.zeros((0, 3, 3))
        ),
    }


def _axis_constants(axis: np.ndarray, t) -> dict[str, torch.Tensor]:
    a = np.asarray(axis, dtype=np.float64)
    skew = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    aat = np.outer(a, a)
    return {"a": t(a), "aat": t(aat), "perp": t(np.eye(3) - aat), "skew": t(skew)}
