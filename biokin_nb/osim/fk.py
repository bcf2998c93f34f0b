"""Batched, differentiable forward kinematics of a :class:`KinematicModel` in PyTorch.

Convention: ``R`` maps body-frame vectors to ground (``R_ground_body``); positions in
ground, metres. Inputs take any leading batch dimensions ``...``; float32 or float64; any
device. Agrees with OpenSim's ``realizePosition`` on a model scaled by OpenSim's
``Model::scale`` (see ``tests/test_fk_opensim.py``).

Speed (``bench/fk.py``): on a CPU the FK of a large batch is bound by memory traffic and
per-op overhead, not arithmetic, so the batch is laid out last (every op streams over it),
all axis functions of one coordinate on the same spline knots are evaluated together
(:class:`~biokin_nb.osim.functions.PolynomialStack`), all cosines and sines in one op,
rotations are kept by columns so that a rotation about a coordinate axis rewrites two
contiguous columns instead of multiplying 3x3 matrices, each body's rotation columns and
origin form one (4, 3, n) block so that its markers and mass centre are one matrix
product, fixed offsets of all joints are scaled in one batched product, and without
autograd every result is written straight into its preallocated output (no copies, no
final stack). Together these took the generic model from 95-102x to 119-133x OpenSim's
speed on 2 cores.
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
    # Internally "batch last" (structure of arrays): vectors (3, n); rotations (3, 3, n)
    # stored by columns (``rc[j]`` is column j of R, so column updates are contiguous).
    n = int(np.prod(batch)) if batch else 1
    qt = q.expand(*batch, q.shape[-1]).reshape(n, q.shape[-1]).T.contiguous()  # (C, n): a copy
    if apply_couplers:
        qt = _couple_rows(model, qt)
    st = _scales_soa(scales, batch, n)
    values = _function_values(c, qt)
    trig = _cos_sin(c, values, n)
    out = _Outputs.allocate(model, qt, st, n)
    origins = _joint_origins(c, st)  # (J, 3, 1 or n) parent-frame offsets, (J, 3, .) child
    for j, (joint, jc) in enumerate(zip(model.joints, c["joints"], strict=True)):
        parent, child = joint.parent_body, joint.child_body
        r_par, p_par = (None, c["zero"]) if parent < 0 else (out.rots[parent], out.poss[parent])
        offset = origins["parent"][j]
        if jc["translations"]:
            offset = offset + _translation(jc, values, st[parent] if parent >= 0 else None)
        p_m = out.store("centres", j, _point(r_par, p_par, offset, out.slot("centres", j)))
        r_child = _chain(r_par, jc["factors"], trig, c["eye"], out.slot("rots", child), out)
        r_child = out.store("rots", child, c["eye"] if r_child is None else r_child)
        p_child = p_m
        if jc["has_m_c"]:
            p_child = _point(r_child, p_m, -origins["child"][j], out.slot("poss", child))
        out.store("poss", child, p_child)
    return _assemble(c, out, st, batch, n)


@dataclass
class _Outputs:
    """Per-body results, batch last: lists of tensors (autograd), or views into one
    preallocated tensor each (no autograd: results are written there directly, which
    spares copies and the final stack a pass over memory)."""

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
        frames = qt.new_empty(b, 4, 3, n)  # per body: rotation columns, then the origin
        buffers = {"frames": frames, "rots": frames[:, :3], "poss": frames[:, 3]}
        return _Outputs(*lists, {**buffers, "centres": qt.new_empty(b, 3, n)})

    @property
    def n_bodies(self) -> int:
        return len(self.rots)

    @property
    def direct(self) -> bool:
        """True when results are written into preallocated buffers (no autograd)."""
        return self.buffers is not None

    def slot(self, kind: str, index: int) -> torch.Tensor | None:
        """The buffer view for entry ``index`` of ``kind``, or None (autograd)."""
        return None if self.buffers is None else self.buffers[kind][index]

    def scratch(self, *shape: int) -> torch.Tensor | None:
        """A fresh tensor to write an intermediate into, or None (autograd)."""
        return None if self.buffers is None else self.buffers["poss"].new_empty(shape)

    def store(self, kind: str, index: int, value: torch.Tensor) -> torch.Tensor:
        """Keep ``value`` as entry ``index`` of ``kind`` (copied into its slot unless it is
        already there); returns what was kept."""
        if self.buffers is not None:
            slot = self.buffers[kind][index]
            if value.data_ptr() != slot.data_ptr() or value.shape != slot.shape:
                value = slot.copy_(value.expand_as(slot))
        getattr(self, kind)[index] = value
        return value

    def frames(self, n: int) -> torch.Tensor:
        """(B, 4, 3, n) every body's rotation columns, then its origin (contiguous)."""
        if self.buffers is not None:
            return self.buffers["frames"]
        return torch.cat([self.stacked("rots", n), self.stacked("poss", n)[:, None]], 1)

    def stacked(self, kind: str, n: int) -> torch.Tensor:
        """(K, ..., n) all entries of ``kind``."""
        if self.buffers is not None:
            return self.buffers[kind]
        items = getattr(self, kind)
        return torch.stack([x.expand(*x.shape[:-1], n) for x in items])


def _with_ground(st: torch.Tensor) -> torch.Tensor:
    """(B + 1, 3, k) scales with an unscaled row for ground at index B (the compiled
    ``*_index`` / ``marker_body`` tensors point there for ground)."""
    return torch.cat([st, st.new_ones(1, 3, st.shape[-1])])


def _joint_origins(c: dict, st: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scaled fixed offsets of every joint, in two batched products: ``parent`` (J, 3, k)
    the parent frame's origin with constant translations folded in (parent body frame),
    ``child`` (J, 3, k) the child frame's origin (child body frame); ``k`` is 1 or n."""
    ext = _with_ground(st)
    parent = torch.baddbmm(c["c_p"], c["m_p"], ext.index_select(0, c["parent_index"]))
    child = torch.bmm(c["m_c"], ext.index_select(0, c["child_index"]))
    return {"parent": parent, "child": child}


def _point(
    r: torch.Tensor | None, p: torch.Tensor, v: torch.Tensor, out: torch.Tensor | None
) -> torch.Tensor:
    """``p + R v`` (3, n): ``r`` (3, 3, n) by columns or None (identity), ``p`` and ``v``
    (3, n or 1); written into ``out`` when given."""
    if r is None:
        return p + v
    return _rotate(r, v, out).add_(p)


def _chain(
    r: torch.Tensor | None,
    factors: list[tuple],
    trig: dict[int, torch.Tensor],
    eye: torch.Tensor,
    slot: torch.Tensor | None,
    out: _Outputs,
) -> torch.Tensor | None:
    """``r @ F_1 @ ... @ F_k`` (3, 3, n) by columns; the last product goes into ``slot``
    and the others into scratch tensors when results are written directly."""
    for i, factor in enumerate(factors):
        target = slot if i == len(factors) - 1 else out.scratch(*slot.shape) if out.direct else None
        r = _apply_factor(r, factor, trig, eye, target)
    return r


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


def _couple_rows(model: KinematicModel, qt: torch.Tensor) -> torch.Tensor:
    """``qt`` (C, n) with the coupled rows set from their independent ones: in place
    without autograd (``qt`` is the FK's own copy), else a new tensor."""
    if torch.is_grad_enabled() and qt.requires_grad:
        return apply_coupler_constraints(model, qt, dim=0)
    for coupler in model.couplers:
        qt[coupler.dependent] = coupler.function(qt[coupler.independent])
    return qt


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


def _mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``A @ B`` per column n, by columns: ``a``, ``b`` (3, 3, n or 1) with ``x[j]`` column
    j, so that column j of the product is ``sum_k a[k] b[j, k]`` (3 broadcast products)."""
    out = torch.mul(a[0:1], b[:, 0:1], out=out)  # fresh or ``out``: in place is safe
    return out.addcmul_(a[1:2], b[:, 1:2]).addcmul_(a[2:3], b[:, 2:3])


def _rotate(r: torch.Tensor, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """(3, 3, n) by columns applied to (3, n or 1) -> (3, n): ``sum_j r[j] v[j]``."""
    out = torch.mul(r[0], v[0], out=out)
    return out.addcmul_(r[1], v[1]).addcmul_(r[2], v[2])


def _apply_factor(
    r: torch.Tensor | None,
    factor: tuple,
    trig: dict[int, torch.Tensor],
    eye: torch.Tensor,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``r @ factor`` (3, 3, n) by columns, into ``out`` when given; ``r`` None stands for
    the identity."""
    if factor[0] == "axis":  # about a coordinate axis, no constant rotation around it
        _, key, k, sign = factor
        return _rotate_about_axis(eye if r is None else r, trig[key], k, sign, out)
    if len(factor) == 1:  # constant
        f = factor[0]
        if r is not None:
            return _mm(r, f, out)
        return f if out is None else out.copy_(f.expand_as(out))
    key, a, w = factor  # ``A + W [cos; sin]``: flat (9, n), by columns
    cos_sin = trig[key]
    n = cos_sin.shape[-1]
    if r is None:
        flat = torch.addmm(a, w, cos_sin, out=None if out is None else out.view(9, n))
        return flat.view(3, 3, n)
    return _mm(r, torch.addmm(a, w, cos_sin).view(3, 3, n), out)


def _rotate_about_axis(
    r: torch.Tensor, cos_sin: torch.Tensor, k: int, sign: float, out: torch.Tensor | None
) -> torch.Tensor:
    """``r @ Rot(sign * e_k, theta)`` (3, 3, n) by columns from ``r`` (3, 3, n or 1) and
    ``cos_sin`` (2, n): two columns change, ``u' = c u + sign s v``, ``v' = c v - sign s u``;
    into ``out`` when given."""
    cos, sin = cos_sin[0], cos_sin[1]
    u, v = (k + 1) % 3, (k + 2) % 3
    if out is not None:
        torch.mul(r[u], cos, out=out[u]).addcmul_(r[v], sin, value=sign)
        torch.mul(r[v], cos, out=out[v]).addcmul_(r[u], sin, value=-sign)
        out[k].copy_(r[k].expand_as(out[k]))
        return out
    cols = list(r.unbind(0))  # (3, n or 1) each
    new_u = torch.addcmul(cols[u] * cos, cols[v], sin, value=sign)
    new_v = torch.addcmul(cols[v] * cos, cols[u], sin, value=-sign)
    cols[u], cols[v] = new_u, new_v
    return torch.stack([x.expand_as(new_u) for x in cols])


def _cos_sin(c: dict, values: dict[int, torch.Tensor], n: int) -> dict[int, torch.Tensor]:
    """``{id(motion): (2, n) [cos; sin]}`` of every rotation's angle, in two batched ops."""
    keys = c["rotation_keys"]
    if not keys:
        return {}
    angles = torch.stack([values[k].expand(n) for k in keys])  # (K, n)
    if torch.is_grad_enabled() and angles.requires_grad:
        trig = torch.stack([angles.cos(), angles.sin()], 1)
    else:
        trig = angles.new_empty(len(keys), 2, n)
        torch.cos(angles, out=trig[:, 0])
        torch.sin(angles, out=trig[:, 1])
    return dict(zip(keys, trig.unbind(0), strict=True))


def _translation(
    jc: dict, values: dict[int, torch.Tensor], s_par: torch.Tensor | None
) -> torch.Tensor:
    """(3, n) the joint's moving translation in the parent body frame (m)."""
    total = None
    for key, scales, axis in jc["translations"]:
        value = values[key]
        if s_par is not None and scales:
            value = value * (axis["a"] @ s_par)
        term = value * axis["pa"][:, None]
        total = term if total is None else total.add_(term)
    return total


def _assemble(c: dict, out: _Outputs, st: torch.Tensor, batch: tuple, n: int) -> FKResult:
    frames = out.frames(n)  # (B, 4, 3, n): rotation columns, then the origin
    coms = _body_points(frames, (c["com"][..., None] * st)[:, None])[:, 0]  # (B, 3, n)
    return FKResult(
        rotations=frames[:, :3].permute(3, 0, 2, 1).reshape(*batch, out.n_bodies, 3, 3),
        positions=_unsoa(frames[:, 3], batch),
        joint_centres=_unsoa(out.stacked("centres", n), batch),
        coms=_unsoa(coms, batch),
        markers=_unsoa(_markers(c, frames, st, n, out.direct), batch),
    )


def _markers(c: dict, frames: torch.Tensor, st: torch.Tensor, n: int, direct: bool):
    """(M, 3, n) markers in ground from body ``frames`` (B, 4, 3, n), computed per body
    (``direct``: each run of a body's markers is written to its place in the result)."""
    ext = _with_ground(st)
    local = torch.bmm(c["marker_m"], ext.index_select(0, c["marker_body"]))  # (M, 3, .)
    markers = st.new_empty(local.shape[0], 3, n) if direct else None
    blocks = []
    for body, start, runs in c["marker_groups"]:
        frame = c["ground_frame"] if body < 0 else frames[body]
        loc = local[start : start + sum(r[2] for r in runs)]  # (k, 3, n or 1)
        if markers is None:
            blocks.append(_body_points(frame, loc).expand(-1, 3, n))
            continue
        for j, i, length in runs:
            _body_points(frame, loc[j : j + length], markers[i : i + length])
    if markers is not None:
        return markers
    if not blocks:
        return st.new_zeros(0, 3, n)
    return torch.cat(blocks).index_select(0, c["marker_order"])


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


def _body_points(
    frame: torch.Tensor, local: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``p + R local`` of body-fixed points: ``frame`` (..., 4, 3, n) the columns of ``R``
    then ``p`` (contiguous), ``local`` (..., k, 3, n or 1) body-frame coordinates ->
    (..., k, 3, n), into ``out`` when given (contiguous)."""
    n = frame.shape[-1]
    if out is not None and out.shape[-1] != n:  # ground-fixed points
        return out.copy_(_body_points(frame, local).expand_as(out))
    if local.shape[-1] == 1:  # shared scales: [local, 1] (k, 4) @ frame (4, 3n)
        k, lead = local.shape[-3], frame.shape[:-3]
        m = int(np.prod(lead)) if lead else 1
        homogeneous = torch.cat([local[..., 0], local.new_ones(*local.shape[:-2], 1)], -1)
        flat = frame.reshape(m, 4, 3 * n)
        if out is None:
            prod = torch.bmm(homogeneous.expand(*lead, k, 4).reshape(m, k, 4), flat)
            return prod.reshape(*lead, k, 3, n)
        torch.mm(homogeneous.reshape(k, 4), flat[0], out=out.view(k, 3 * n))
        return out
    r, p = frame[..., :3, :, :], frame[..., 3, :, :]
    res = torch.addcmul(p[..., None, :, :], local[..., :, 0:1, :], r[..., None, 0, :, :], out=out)
    for j in (1, 2):
        res = res.addcmul_(local[..., :, j : j + 1, :], r[..., None, j, :, :])
    return res


def _unsoa(x: torch.Tensor, batch: tuple[int, ...]) -> torch.Tensor:
    """(K, 3, n) -> (*batch, K, 3) (a view)."""
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

    joints, m_p, c_p, m_c = [], [], [], []
    for j in model.joints:
        r_p = j.parent_frame.rotation
        moving = [m for m in j.motions if m.kind == "translation" and m.coordinate >= 0]
        origin, constant = _constant_translations(j)
        m_p.append(origin)
        c_p.append(constant)
        m_c.append(j.child_frame.origin_by_scale)
        joints.append(
            {
                "has_m_c": bool(m_c[-1].any()),
                "translations": [
                    (id(m), m.scales, {"a": t(m.axis), "pa": t(r_p @ m.axis)}) for m in moving
                ],
                "factors": _rotation_factors(j, t),
            }
        )
    b = model.n_bodies

    def body_index(bodies: list[int]) -> torch.Tensor:  # ground (-1) -> b, an unscaled row
        return torch.as_tensor([i if i >= 0 else b for i in bodies], device=device)

    return {
        "eye": t(np.eye(3))[..., None],
        "zero": t(np.zeros((3, 1))),
        "ground_frame": t(np.concatenate([np.eye(3), np.zeros((1, 3))]))[..., None],
        "joints": joints,
        "m_p": t(np.stack(m_p)),
        "c_p": t(np.stack(c_p))[..., None],
        "m_c": t(np.stack(m_c)),
        "parent_index": body_index([j.parent_body for j in model.joints]),
        "child_index": body_index([j.child_body for j in model.joints]),
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
    """Markers grouped by body: ``marker_groups`` ``[(body, start, runs)]`` (``start``: the
    group's first row in the grouped order; ``runs``: where its markers go in the model's
    order, :func:`_runs`), ``marker_m`` (M, 3, 3) origin-by-scale matrices and
    ``marker_body`` (M,) body indices (ground: B) in the grouped order, and
    ``marker_order``, the order that restores the model's from the grouped one."""
    bodies = sorted({m.body for m in model.markers})
    groups, concatenated = [], []
    for body in bodies:
        members = [i for i, m in enumerate(model.markers) if m.body == body]
        groups.append((body, len(concatenated), _runs(members)))
        concatenated += members
    grouped = [model.markers[i] for i in concatenated]
    matrices = [m.origin_by_scale for m in grouped] or [np.zeros((0, 3, 3))]
    body = [m.body if m.body >= 0 else model.n_bodies for m in grouped]
    order = np.argsort(np.asarray(concatenated, dtype=np.int64))
    return {
        "marker_groups": groups,
        "marker_m": t(np.concatenate([np.reshape(x, (-1, 3, 3)) for x in matrices])),
        "marker_body": torch.as_tensor(body, dtype=torch.long, device=device),
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
    W (9, 2))``: the rotation by ``theta`` is ``A + W @ [cos theta, sin theta]`` (flat 3x3).
    Matrices are stored by columns (transposed), as the FK keeps rotations."""
    rotations = [m for m in joint.motions if m.kind == "rotation"]
    left, right = joint.parent_frame.rotation, joint.child_frame.rotation.T
    if not rotations:
        return [(t((left @ right).T)[..., None],)]
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
            factors.append((t(rotation.T)[..., None],))
        else:
            weights = np.stack([parts[1].T.ravel(), parts[2].T.ravel()], axis=1)
            factors.append((id(m), t(parts[0].T.reshape(9, 1)), t(weights)))
    return factors


def _coordinate_axis(a: np.ndarray) -> int:
    """``k`` where ``a`` is exactly ``+-e_k``, else -1."""
    k = int(np.argmax(np.abs(a)))
    return k if abs(a[k]) == 1.0 and np.count_nonzero(a) == 1 else -1
