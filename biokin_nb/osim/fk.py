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

from biokin_nb.osim.model import AxisMotion, KinematicModel


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
    zero = q.new_zeros(*batch, 3)
    rots, poss, centres = [None] * model.n_bodies, [None] * model.n_bodies, []
    for joint, jc in zip(model.joints, c["joints"], strict=True):
        parent, child = joint.parent_body, joint.child_body
        r_par, p_par = (eye, zero) if parent < 0 else (rots[parent], poss[parent])
        s_par = scales[..., parent, :] if parent >= 0 else None
        # joint centre: parent origin + R_par (frame offset + joint translation, in parent)
        offset = _origin(jc["m_p"], s_par) + _translation(jc, q, s_par)
        p_m = p_par + _rotate(r_par, offset)
        r_child = r_par
        for factor in jc["factors"]:
            r_child = r_child @ _factor_matrix(factor, q)
        rots[child] = r_child
        m_c = jc["m_c"]
        poss[child] = (
            p_m if m_c is None else p_m - _rotate(r_child, _origin(m_c, scales[..., child, :]))
        )
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


def _factor_matrix(factor: tuple, q: torch.Tensor) -> torch.Tensor:
    """A constant (3, 3), or ``A + cos(f(q)) B + sin(f(q)) S`` (..., 3, 3): a rotation about
    one axis with the constant frame rotations around it folded in."""
    if len(factor) == 1:
        return factor[0]
    motion, a, b, sk = factor
    angle = _motion_value(motion, q)
    return a + torch.cos(angle)[..., None, None] * b + torch.sin(angle)[..., None, None] * sk


def _motion_value(motion: AxisMotion, q: torch.Tensor) -> torch.Tensor:
    x = q[..., motion.coordinate]
    return x if motion.function.is_identity else motion.function(x)


def _translation(jc: dict, q: torch.Tensor, s_par: torch.Tensor | None) -> torch.Tensor | float:
    """(..., 3) the joint's translation in the parent body frame (m), or 0."""
    total = 0.0
    for motion, axis in jc["translations"]:
        if motion.coordinate < 0:
            value = motion.function(q.new_zeros(()))
        else:
            value = _motion_value(motion, q)
        if s_par is not None and motion.scales:
            value = value * (s_par @ axis["a"])
        total = total + value[..., None] * axis["pa"]
    return total


def _assemble(c, rots, poss, centres, scales, eye, zero) -> FKResult:
    rot = torch.stack(rots, dim=-3)
    pos = torch.stack(poss, dim=-2)
    coms = pos + _rotate(rot, c["com"] * scales)
    blocks = []
    for body, m in c["marker_groups"]:
        r_b, p_b = (eye, zero) if body < 0 else (rots[body], poss[body])
        s_b = scales[..., body, :] if body >= 0 else None
        local = m.sum(-1) if s_b is None else (m @ s_b[..., None, :, None]).squeeze(-1)
        blocks.append(p_b[..., None, :] + local @ r_b.transpose(-1, -2))
    if blocks:
        markers = torch.cat(blocks, dim=-2)[..., c["marker_order"], :]
    else:
        markers = zero[..., None, :][..., :0, :]
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
        r_p = j.parent_frame.rotation
        translations = [
            (m, {"a": t(m.axis), "pa": t(r_p @ m.axis)})
            for m in j.motions
            if m.kind == "translation"
        ]
        m_c = j.child_frame.origin_by_scale
        joints.append(
            {
                "m_p": t(j.parent_frame.origin_by_scale),
                "m_c": None if not m_c.any() else t(m_c),
                "translations": translations,
                "factors": _rotation_factors(j, t),
            }
        )
    return {
        "eye": t(np.eye(3)),
        "joints": joints,
        "com": t(np.stack([b.com for b in model.bodies])),
        **_marker_groups(model, t, device),
    }


def _marker_groups(model: KinematicModel, t, device: torch.device) -> dict:
    """Markers grouped by body: ``[(body, M (k, 3, 3))]`` and the order that restores the
    model's marker order from the concatenated groups."""
    bodies = sorted({m.body for m in model.markers})
    groups, concatenated = [], []
    for body in bodies:
        members = [i for i, m in enumerate(model.markers) if m.body == body]
        groups.append((body, t(np.stack([model.markers[i].origin_by_scale for i in members]))))
        concatenated += members
    order = np.argsort(np.asarray(concatenated, dtype=np.int64)) if concatenated else []
    return {
        "marker_groups": groups,
        "marker_order": torch.as_tensor(order, dtype=torch.long, device=device),
    }


def _rotation_factors(joint, t) -> list[tuple]:
    """The joint's rotation ``R_P R_1(q) ... R_k(q) R_C^T`` as factors, constants folded in:
    ``R_P`` into the first, ``R_C^T`` into the last (a constant factor when k = 0)."""
    rotations = [m for m in joint.motions if m.kind == "rotation"]
    left, right = joint.parent_frame.rotation, joint.child_frame.rotation.T
    if not rotations:
        return [(t(left @ right),)]
    factors = []
    for i, m in enumerate(rotations):
        a = np.asarray(m.axis, dtype=np.float64)
        skew = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
        parts = [np.outer(a, a), np.eye(3) - np.outer(a, a), skew]
        pre = left if i == 0 else np.eye(3)
        post = right if i == len(rotations) - 1 else np.eye(3)
        parts = [pre @ x @ post for x in parts]
        if m.coordinate < 0:  # a constant rotation: fold it completely
            value = float(m.function.coefs[0, 0])
            factors.append((t(parts[0] + np.cos(value) * parts[1] + np.sin(value) * parts[2]),))
        else:
            factors.append((m, *map(t, parts)))
    return factors
