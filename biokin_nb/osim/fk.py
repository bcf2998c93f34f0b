"""Batched, differentiable forward kinematics of a :class:`KinematicModel` in PyTorch.

Convention: ``R`` maps body-frame vectors to ground (``R_ground_body``); positions in
ground, metres. Inputs take any leading batch dimensions ``...``; float32 or float64; any
device. Agrees with OpenSim's ``realizePosition`` on a model scaled by OpenSim's
``Model::scale`` (see ``tests/test_fk_opensim.py``).

Speed (``bench/fk.py``): on a CPU the FK of a large batch is bound by memory traffic and
per-op overhead, not arithmetic, so the batch is laid out last (every op streams over it),
all axis functions of one coordinate on the same spline knots are evaluated together
(:class:`~biokin_nb.osim.functions.PolynomialStack`), all cosines and sines in one op,
rotations about a coordinate axis update two columns instead of multiplying 3x3 matrices,
intermediates are updated in place, and without autograd the results are written into
preallocated outputs while still in cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from biokin_nb.osim.functions import PolynomialStack
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
    c = _compiled(model, q.dtype, q.device)
    batch = torch.broadcast_shapes(q.shape[:-1], scales.shape[:-2])
    # Internally "batch last" (structure of arrays): rotations (3, 3, n), vectors (3, n).
    n = int(np.prod(batch)) if batch else 1
    qt = q.expand(*batch, q.shape[-1]).reshape(n, -1).T
    qt = (apply_coupler_constraints(model, qt, dim=0) if apply_couplers else qt).contiguous()
    st = _scales_soa(scales, batch, n)
    values = _function_values(c, qt)
    trig = _cos_sin(c, values)
    out = _Outputs.allocate(model, qt, st, n)
    for j, (joint, jc) in enumerate(zip(model.joints, c["joints"], strict=True)):
        parent, child = joint.parent_body, joint.child_body
        r_par, p_par = (None, c["zero"]) if parent < 0 else (out.rots[parent], out.poss[parent])
        s_par = st[parent] if parent >= 0 else None
        offset = _origin(jc["m_p"], s_par) + _translation(jc, values, s_par)
        if jc["c_p"] is not None:  # constant translations that do not scale
            offset = offset + jc["c_p"][:, None]
        p_m = p_par + (offset if r_par is None else _rotate(r_par, offset))
        r_child = r_par
        for factor in jc["factors"]:
            r_child = _apply_factor(r_child, factor, trig, c["eye"])
        r_child = out.store("rots", child, c["eye"] if r_child is None else r_child)
        m_c = jc["m_c"]
        p_child = p_m if m_c is None else p_m - _rotate(r_child, _origin(m_c, st[child]))
        out.store("poss", child, p_child)
        out.store("centres", j, p_m)
    return _assemble(c, out, st, batch, n)


@dataclass
class _Outputs:
    """Per-body results, batch last: lists of tensors (autograd), or views into one
    preallocated tensor each (no autograd: results are copied there while still in cache,
    which spares the final stack a pass over memory)."""

    rots: list
    poss: list
    centres: list
    buffers: dict[str, torch.Tensor] | None

    @staticmethod
    def allocate(model: KinematicModel, qt: torch.Tensor, st: torch.Tensor, n: int) -> _Outputs:
        b = model.n_bodies
        lists = ([None] * b, [None] * b, [None] * len(model.joints))
        if torch.is_grad_enabled() and (qt.requires_grad or st.requires_grad):
            return _Outputs(*lists, None)
        new = qt.new_empty
        buffers = {"rots": new(b, 3, 3, n), "poss": new(b, 3, n), "centres": new(b, 3, n)}
        return _Outputs(*lists, buffers)

    def store(self, kind: str, index: int, value: torch.Tensor) -> torch.Tensor:
        """Keep ``value`` as entry ``index`` of ``kind``; returns what was kept."""
        if self.buffers is not None:
            slot = self.buffers[kind][index]
            value = slot.copy_(value.expand_as(slot))
        getattr(self, kind)[index] = value
        return value

    def stacked(self, kind: str, n: int) -> torch.Tensor:
        """(K, ..., n) all entries of ``kind``."""
        if self.buffers is not None:
            return self.buffers[kind]
        items = getattr(self, kind)
        return torch.stack([x.expand(*x.shape[:-1], n) for x in items])


def _function_values(c: dict, qt: torch.Tensor) -> dict[int, torch.Tensor]:
    """``{id(motion): (n,) value}`` of every moving axis: identity functions read ``qt``
    (C, n); the others are evaluated in stacks that share a coordinate and pieces."""
    values = {key: qt[coordinate] for key, coordinate in c["identity_motions"]}
    for coordinate, stack, keys in c["function_stacks"]:
        values.update(zip(keys, stack(qt[coordinate]).unbind(0), strict=True))
    return values


def _scales_soa(scales: torch.Tensor, batch: tuple[int, ...], n: int) -> torch.Tensor:
    """(B, 3, 1) for shared scales, else (B, 3, n)."""
    if scales.ndim == 2:
        return scales[..., None]
    return scales.expand(*batch, *scales.shape[-2:]).reshape(n, *scales.shape[-2:]).permute(1, 2, 0)


def apply_coupler_constraints(
    model: KinematicModel, q: torch.Tensor, dim: int = -1
) -> torch.Tensor:
    """Copy of ``q`` (coordinates along ``dim``: (..., C) by default) with every coupled
    coordinate set from its independent one; ``q`` itself when the model has no coupler."""
    if not model.couplers:
        return q
    cols = list(q.unbind(dim))
    for coupler in model.couplers:
        cols[coupler.dependent] = coupler.function(cols[coupler.independent])
    return torch.stack(cols, dim=dim)


def root_relative_keypoints(
    model: KinematicModel, q: torch.Tensor, scales: torch.Tensor | None = None
) -> torch.Tensor:
    """(..., 2B, 3) keypoints (m) relative to the first (the root joint centre) for
    coordinates ``q`` (..., C) with the translational ones zeroed and ``scales``
    broadcastable to (..., B, 3) (None: unit); the pose the network predicts and is scored
    on."""
    q = torch.as_tensor(q).clone()
    q[..., torch.as_tensor(model.translational)] = 0.0
    kp = forward_kinematics(model, q, scales).keypoints
    return kp - kp[..., :1, :]


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
        if torch.isnan(t.detach().sum()) and torch.isnan(t).any():  # the sum: one fast pass
            bad = torch.isnan(t).reshape(-1, t.shape[-1]).any(0).nonzero().flatten().tolist()
            labels = model.coordinate_names if name == "coordinates" else ["x", "y", "z"]
            raise ValueError(
                f"NaN in {name} ({', '.join(labels[i] for i in bad)}); fill gaps first"
            )
    return q, scales


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(3, 3, n) @ (3, 3, n) per column n (batch last: 3 broadcast products, no bmm)."""
    out = a[:, 0:1] * b[0:1]  # fresh, so the in-place steps are safe for autograd
    return out.addcmul_(a[:, 1:2], b[1:2]).addcmul_(a[:, 2:3], b[2:3])


def _rotate(r: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(3, 3, n) applied to (3, n) -> (3, n)."""
    out = r[:, 0] * v[0]
    return out.addcmul_(r[:, 1], v[1]).addcmul_(r[:, 2], v[2])


def _origin(m: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
    """(3, k) origin ``M @ s`` of a fixed frame (``M`` (3, 3), ``s`` (3, k)); ``s`` None
    means unscaled (ground)."""
    return m.sum(-1, keepdim=True) if s is None else m @ s


def _apply_factor(
    r: torch.Tensor | None, factor: tuple, trig: dict[int, torch.Tensor], eye: torch.Tensor
) -> torch.Tensor:
    """``r @ factor`` (3, 3, n); ``r`` None stands for the identity."""
    if factor[0] == "axis":  # about a coordinate axis, no constant rotation around it
        _, key, k, sign = factor
        return _rotate_about_axis(eye if r is None else r, trig[key], k, sign)
    f = _factor_matrix(factor, trig)
    return f if r is None else _mm(r, f)


def _rotate_about_axis(r: torch.Tensor, cos_sin: torch.Tensor, k: int, sign: float):
    """``r @ Rot(sign * e_k, theta)`` (3, 3, n) from ``r`` (3, 3, n or 1) and ``cos_sin``
    (2, n): two columns change, ``u' = c u + sign s v``, ``v' = c v - sign s u``."""
    cos, sin = cos_sin[0], cos_sin[1]
    cols = list(r.unbind(1))  # (3, n or 1) each
    u, v = (k + 1) % 3, (k + 2) % 3
    new_u = torch.addcmul(cols[u] * cos, cols[v], sin, value=sign)
    new_v = torch.addcmul(cols[v] * cos, cols[u], sin, value=-sign)
    cols[u], cols[v] = new_u, new_v
    return torch.stack([x.expand_as(new_u) for x in cols], dim=1)


def _factor_matrix(factor: tuple, trig: dict[int, torch.Tensor]) -> torch.Tensor:
    """A constant (3, 3, 1), or ``A + W [cos; sin]`` (3, 3, n): a rotation about one axis
    with the constant frame rotations around it folded in (one matrix product)."""
    if len(factor) == 1:
        return factor[0]
    key, a, w = factor
    cos_sin = trig[key]  # (2, n)
    return torch.addmm(a, w, cos_sin).view(3, 3, cos_sin.shape[-1])


def _cos_sin(c: dict, values: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """``{id(motion): (2, n) [cos; sin]}`` of every rotation's angle, in two batched ops."""
    keys = c["rotation_keys"]
    if not keys:
        return {}
    angles = torch.stack([values[k] for k in keys])  # (K, n)
    return dict(zip(keys, torch.stack([angles.cos(), angles.sin()], 1).unbind(0), strict=True))


def _translation(jc: dict, values: dict[int, torch.Tensor], s_par: torch.Tensor | None):
    """(3, n) the joint's translation in the parent body frame (m), or 0."""
    total = 0.0
    for key, scales, axis in jc["translations"]:
        value = values[key]
        if s_par is not None and scales:
            value = value * (axis["a"] @ s_par)
        total = total + value * axis["pa"][:, None]
    return total


def _assemble(c: dict, out: _Outputs, st: torch.Tensor, batch: tuple, n: int) -> FKResult:
    rot, pos = out.stacked("rots", n), out.stacked("poss", n)  # (B, 3, 3, n), (B, 3, n)
    coms = _body_points(rot, pos, (c["com"][..., None] * st)[:, None])[:, :, 0]  # (B, 3, n)
    markers = _markers(c, out, st, n)
    return FKResult(
        rotations=rot.permute(3, 0, 1, 2).reshape(*batch, *rot.shape[:3]),
        positions=_unsoa(pos, batch),
        joint_centres=_unsoa(out.stacked("centres", n), batch),
        coms=_unsoa(coms, batch),
        markers=_unsoa(markers.transpose(0, 1), batch),
    )


def _markers(c: dict, out: _Outputs, st: torch.Tensor, n: int) -> torch.Tensor:
    """(3, M, n) markers in ground, computed per body (without autograd, each body's
    markers go to their places in the result while they are still in cache)."""
    groups = c["marker_groups"]
    total = sum(m.shape[0] for _, m, _ in groups)
    markers = None if out.buffers is None else st.new_empty(3, total, n)
    blocks = []
    for body, m, runs in groups:
        r_b, p_b = (c["eye"], c["zero"]) if body < 0 else (out.rots[body], out.poss[body])
        s_b = st[body] if body >= 0 else st.new_ones(3, 1)
        loc = (m.reshape(-1, 3) @ s_b).reshape(m.shape[0], 3, -1)  # (k, 3, n or 1)
        block = _body_points(r_b, p_b, loc).expand(3, -1, n)
        if markers is None:
            blocks.append(block)
        else:  # slices: index_copy_ along a middle dimension is slow on CPU
            for j, i, length in runs:
                markers.narrow(1, i, length).copy_(block.narrow(1, j, length))
    if markers is not None:
        return markers
    if not blocks:
        return st.new_zeros(3, 0, n)
    return torch.cat(blocks, dim=1).index_select(1, c["marker_order"])


def _runs(places: list[int]) -> list[tuple[int, int, int]]:
    """Consecutive runs ``(j, i, length)`` in ``places``: ``places[j : j + length]`` is
    ``i, i + 1, ..., i + length - 1``."""
    runs: list[list[int]] = []
    for j, i in enumerate(places):
        if runs and i == runs[-1][1] + runs[-1][2]:
            runs[-1][2] += 1
        else:
            runs.append([j, i, 1])
    return [tuple(r) for r in runs]


def _body_points(r: torch.Tensor, p: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """``p + R local`` of body-fixed points: ``r`` (..., 3, 3, n), ``p`` (..., 3, n),
    ``local`` (..., k, 3, n or 1) body-frame coordinates -> (..., 3, k, n)."""
    if local.shape[-1] == 1 and r.shape[-1] == p.shape[-1]:  # shared scales: a product
        k, n = local.shape[-3], r.shape[-1]
        lead = r.shape[:-3]
        mat = local[..., 0].unsqueeze(-3).expand(*lead, 3, k, 3).reshape(-1, k, 3)
        base = p[..., :, None, :].expand(*lead, 3, k, n).reshape(-1, k, n)
        prod = torch.baddbmm(base, mat, r.reshape(-1, 3, n))
        return prod.reshape(*lead, 3, k, n)
    out = torch.addcmul(p[..., :, None, :], r[..., :, 0, None, :], local[..., None, :, 0, :])
    for j in (1, 2):
        out = out.addcmul_(r[..., :, j, None, :], local[..., None, :, j, :])
    return out


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
                "translations": [
                    (id(m), m.scales, {"a": t(m.axis), "pa": t(r_p @ m.axis)}) for m in moving
                ],
                "factors": _rotation_factors(j, t),
            }
        )
    return {
        "eye": t(np.eye(3))[..., None],
        "zero": t(np.zeros((3, 1))),
        "joints": joints,
        "com": t(np.stack([b.com for b in model.bodies])),
        **_marker_groups(model, t, device),
        "rotation_keys": [_factor_key(f) for jc in joints for f in jc["factors"] if len(f) > 1],
        **_function_stacks(model),
    }


def _factor_key(factor: tuple) -> int:
    """The id of the motion of a moving factor."""
    return factor[1] if factor[0] == "axis" else factor[0]


def _function_stacks(model: KinematicModel) -> dict:
    """The moving axes' functions: ``identity_motions`` ``[(id(motion), coordinate)]`` and
    ``function_stacks`` ``[(coordinate, PolynomialStack, [id(motion)])]``, one stack per
    coordinate and pieces (one bucketize and gather for all of a spline knee's axes)."""
    identity, groups = [], {}
    for joint in model.joints:
        for m in joint.motions:
            if m.coordinate < 0:
                continue
            if m.function.is_identity:
                identity.append((id(m), m.coordinate))
            else:
                groups.setdefault((m.coordinate, m.function.pieces_key), []).append(m)
    stacks = [
        (coordinate, PolynomialStack.of([m.function for m in motions]), [id(m) for m in motions])
        for (coordinate, _), motions in groups.items()
    ]
    return {"identity_motions": identity, "function_stacks": stacks}


def _marker_groups(model: KinematicModel, t, device: torch.device) -> dict:
    """Markers grouped by body: ``marker_groups`` ``[(body, M (k, 3, 3), runs)]`` (``runs``:
    where the group's markers go in the model's order, :func:`_runs`) and ``marker_order``,
    the order that restores the model's from the groups concatenated."""
    bodies = sorted({m.body for m in model.markers})
    groups, concatenated = [], []
    for body in bodies:
        members = [i for i, m in enumerate(model.markers) if m.body == body]
        origins = t(np.stack([model.markers[i].origin_by_scale for i in members]))
        groups.append((body, origins, _runs(members)))
        concatenated += members
    order = np.argsort(np.asarray(concatenated, dtype=np.int64))
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
    ``R_P`` into the first, ``R_C^T`` into the last (a constant factor when k = 0).

    A factor is a constant ``(R (3, 3, 1),)``; ``("axis", id(motion), k, sign)``, a rotation
    about ``sign * e_k`` (nothing folded in: two columns change); or ``(id(motion), A (9, 1),
    W (9, 2))``: the rotation by ``theta`` is ``A + W @ [cos theta, sin theta]`` (flat 3x3)."""
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
        k = _coordinate_axis(a)
        if m.coordinate >= 0 and k >= 0 and (pre == np.eye(3)).all() and (post == np.eye(3)).all():
            factors.append(("axis", id(m), k, float(a[k])))
        elif m.coordinate < 0:  # a constant rotation: fold it completely
            value = float(m.function.numpy(np.zeros(1))[0])
            rotation = parts[0] + np.cos(value) * parts[1] + np.sin(value) * parts[2]
            factors.append((t(rotation)[..., None],))
        else:
            weights = np.stack([parts[1].ravel(), parts[2].ravel()], axis=1)
            factors.append((id(m), t(parts[0].reshape(9, 1)), t(weights)))
    return factors


def _coordinate_axis(a: np.ndarray) -> int:
    """``k`` where ``a`` is exactly ``+-e_k``, else -1."""
    k = int(np.argmax(np.abs(a)))
    return k if abs(a[k]) == 1.0 and np.count_nonzero(a) == 1 else -1
