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
    # Internally "batch last" (structure of arrays): rotations (3, 3, n), vectors (3, n).
    n = int(np.prod(batch)) if batch else 1
    qt = q.expand(*batch, q.shape[-1]).reshape(n, -1).T
    st = _scales_soa(scales, batch, n)
    rots, poss, centres = [None] * model.n_bodies, [None] * model.n_bodies, []
    for joint, jc in zip(model.joints, c["joints"], strict=True):
        parent, child = joint.parent_body, joint.child_body
        r_par, p_par = (c["eye"], c["zero"]) if parent < 0 else (rots[parent], poss[parent])
        s_par = st[parent] if parent >= 0 else None
        offset = _origin(jc["m_p"], s_par) + _translation(jc, qt, s_par)
        p_m = p_par + _rotate(r_par, offset)
        r_child = r_par
        for factor in jc["factors"]:
            r_child = _mm(r_child, _factor_matrix(factor, qt))
        rots[child] = r_child
        m_c = jc["m_c"]
        poss[child] = p_m if m_c is None else p_m - _rotate(r_child, _origin(m_c, st[child]))
        centres.append(p_m)
    return _assemble(c, rots, poss, centres, st, batch, n)


def _scales_soa(scales: torch.Tensor, batch: tuple[int, ...], n: int) -> torch.Tensor:
    """(B, 3, 1) for shared scales, else (B, 3, n)."""
    if scales.ndim == 2:
        return scales[..., None]
    return scales.expand(*batch, *scales.shape[-2:]).reshape(n, *scales.shape[-2:]).permute(1, 2, 0)


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


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(3, 3, n) @ (3, 3, n) per column n (batch last: 3 broadcast products, no bmm)."""
    return torch.addcmul(torch.addcmul(a[:, 0:1] * b[0:1], a[:, 1:2], b[1:2]), a[:, 2:3], b[2:3])


def _rotate(r: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(3, 3, n) applied to (3, n) -> (3, n)."""
    return torch.addcmul(torch.addcmul(r[:, 0] * v[0], r[:, 1], v[1]), r[:, 2], v[2])


def _origin(m: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
    """(3, k) origin ``M @ s`` of a fixed frame (``M`` (3, 3), ``s`` (3, k)); ``s`` None
    means unscaled (ground)."""
    return m.sum(-1, keepdim=True) if s is None else m @ s


def _factor_matrix(factor: tuple, qt: torch.Tensor) -> torch.Tensor:
    """A constant (3, 3, 1), or ``A + cos(f(q)) B + sin(f(q)) S`` (3, 3, n): a rotation
    about one axis with the constant frame rotations around it folded in."""
    if len(factor) == 1:
        return factor[0]
    motion, a, b, sk = factor
    angle = _motion_value(motion, qt)
    return torch.addcmul(torch.addcmul(a, torch.cos(angle), b), torch.sin(angle), sk)


def _motion_value(motion: AxisMotion, qt: torch.Tensor) -> torch.Tensor:
    """(n,) the motion's function of its coordinate (``qt`` is (C, n))."""
    x = qt[motion.coordinate]
    return x if motion.function.is_identity else motion.function(x)


def _translation(jc: dict, qt: torch.Tensor, s_par: torch.Tensor | None) -> torch.Tensor | float:
    """(3, n) the joint's translation in the parent body frame (m), or 0."""
    total = 0.0
    for motion, axis in jc["translations"]:
        value = _motion_value(motion, qt)
        if s_par is not None and motion.scales:
            value = value * (axis["a"] @ s_par)
        total = total + value * axis["pa"][:, None]
    return total


def _assemble(c, rots, poss, centres, st, batch, n) -> FKResult:
    rot = torch.stack([r.expand(3, 3, n) for r in rots])  # (B, 3, 3, n)
    pos = torch.stack([p.expand(3, n) for p in poss])  # (B, 3, n)
    local = c["com"][..., None] * st  # (B, 3, n or 1)
    coms = pos + sum(rot[:, :, j] * local[:, j, None] for j in range(3))
    blocks = []
    for body, m in c["marker_groups"]:
        r_b, p_b = (c["eye"], c["zero"]) if body < 0 else (rots[body], poss[body])
        s_b = st[body] if body >= 0 else st.new_ones(3, 1)
        loc = (m.reshape(-1, 3) @ s_b).reshape(m.shape[0], 3, -1)  # (k, 3, n or 1)
        blocks.append(p_b[:, None] + sum(r_b[:, j, None] * loc[:, j][None] for j in range(3)))
    if blocks:
        markers = torch.cat(blocks, dim=1)[:, c["marker_order"]].expand(3, -1, n)
    else:
        markers = pos.new_zeros(3, 0, n)
    return FKResult(
        rotations=rot.permute(3, 0, 1, 2).reshape(*batch, *rot.shape[:3]),
        positions=_unsoa(pos, batch),
        joint_centres=_unsoa(torch.stack([p.expand(3, n) for p in centres]), batch),
        coms=_unsoa(coms, batch),
        markers=_unsoa(markers.transpose(0, 1), batch),
    )


def _unsoa(x: torch.Tensor, batch: tuple[int, ...]) -> torch.Tensor:
    """(K, 3, n) -> (*batch, K, 3)."""
    return x.permute(2, 0, 1).reshape(*batch, *x.shape[:2])


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
        moving = [m for m in j.motions if m.kind == "translation" and m.coordinate >= 0]
        m_p, c_p = _constant_translations(j)
        m_c = j.child_frame.origin_by_scale
        joints.append(
            {
                "m_p": t(m_p),
                "c_p": t(c_p) if c_p.any() else None,
                "m_c": None if not m_c.any() else t(m_c),
                "translations": [(m, {"a": t(m.axis), "pa": t(r_p @ m.axis)}) for m in moving],
                "factors": _rotation_factors(j, t),
            }
        )
    return {
        "eye": t(np.eye(3))[..., None],
        "zero": t(np.zeros((3, 1))),
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


def _constant_translations(joint) -> tuple[np.ndarray, np.ndarray]:
    """The parent frame's origin-by-scale matrix with the joint's constant translations
    folded in (scaled ones: ``value * (a . s) * R_P a``), and the unscaled constant part."""
    m_p = joint.parent_frame.origin_by_scale.copy()
    c_p = np.zeros(3)
    for m in joint.motions:
        if m.kind != "translation" or m.coordinate >= 0:
            continue
        direction = joint.parent_frame.rotation @ m.axis
        value = float(m.function.numpy(np.zeros(1))[0])
        if m.scales and joint.parent_body >= 0:
            m_p += value * np.outer(direction, m.axis)
        else:
            c_p += value * direction
    return m_p, c_p


def _rotation_factors(joint, t) -> list[tuple]:
    """The joint's rotation ``R_P R_1(q) ... R_k(q) R_C^T`` as factors, constants folded in:
    ``R_P`` into the first, ``R_C^T`` into the last (a constant factor when k = 0)."""
    rotations = [m for m in joint.motions if m.kind == "rotation"]
    left, right = joint.parent_frame.rotation, joint.child_frame.rotation.T
    if not rotations:
        return [(t(left @ right)[..., None],)]
    factors = []
    for i, m in enumerate(rotations):
        a = np.asarray(m.axis, dtype=np.float64)
        skew = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
        parts = [np.outer(a, a), np.eye(3) - np.outer(a, a), skew]
        pre = left if i == 0 else np.eye(3)
        post = right if i == len(rotations) - 1 else np.eye(3)
        parts = [pre @ x @ post for x in parts]
        if m.coordinate < 0:  # a constant rotation: fold it completely
            value = float(m.function.numpy(np.zeros(1))[0])
            rotation = parts[0] + np.cos(value) * parts[1] + np.sin(value) * parts[2]
            factors.append((t(rotation)[..., None],))
        else:
            factors.append((m, *(t(x)[..., None] for x in parts)))
    return factors
