"""Positions of body-fixed points and their closed-form Jacobian, for the IK solvers.

Gauss-Newton needs, at every iteration and for every frame, the positions of the observed
points (markers, joint centres, mass centres) and their derivatives with respect to the
unknown coordinates (and optionally the body scale factors). Differentiating
:func:`biokin_nb.osim.forward_kinematics` (the model's reference FK, written joint by joint
for clarity and autograd) costs one FK per unknown. This module evaluates the same
kinematics of the same :class:`KinematicModel` with every motion function in one padded
table, every joint of a tree level in one tensor op, and the Jacobian in closed form:

- a rotation by ``theta`` about the world axis ``w`` through the joint centre ``p`` moves a
  downstream point ``x`` at ``dx/dtheta = w x (x - p)``;
- a joint translation of value ``v`` along the parent-frame axis ``a`` moves it at
  ``dx/dv = sigma R_F a`` (``sigma = a . s_parent`` for scaled CustomJoint axes);
- point positions are linear in the scale factors, so their Jacobian with respect to the
  scales is read off a run with the scales kept symbolic (coefficient matrices).

Conventions are :mod:`biokin_nb.osim.fk`'s: ``R_ground_body``, metres, radians; ``N`` is
the batch of poses. ``tests/test_ik.py`` checks positions against ``forward_kinematics``
and the Jacobians against finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from biokin_nb.osim.functions import PiecewisePolynomial
from biokin_nb.osim.model import KinematicModel

Tensor = torch.Tensor


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class FunctionTable:
    """``K`` piecewise polynomials padded to common pieces and degree, evaluated together.

    ``breaks`` (K, P-1) padded with +inf, ``origins`` (K, P), ``coefs`` (K, P, D+1) lowest
    order first, zero padded.
    """

    breaks: Tensor
    origins: Tensor
    coefs: Tensor

    @staticmethod
    def build(
        functions: list[PiecewisePolynomial], dtype: torch.dtype, device: torch.device
    ) -> FunctionTable:
        pieces = max([len(f.origins) for f in functions], default=1)
        width = max([f.coefs.shape[1] for f in functions], default=1)
        breaks = np.full((len(functions), pieces - 1), np.inf)
        origins = np.zeros((len(functions), pieces))
        coefs = np.zeros((len(functions), pieces, width))
        for k, f in enumerate(functions):
            p, d = f.coefs.shape
            breaks[k, : p - 1] = f.breaks
            origins[k, :p] = f.origins
            coefs[k, :p, :d] = f.coefs

        def t(a: np.ndarray) -> Tensor:
            return torch.as_tensor(a, dtype=dtype, device=device)

        return FunctionTable(t(breaks), t(origins), t(coefs))

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Values, first and second derivatives ``(N, K)`` at ``x`` ``(N, K)``."""
        if self.breaks.shape[1] == 0:
            c, t = self.coefs[:, 0].unsqueeze(0), x - self.origins[:, 0]
        else:
            piece = torch.searchsorted(self.breaks, x.detach().T.contiguous(), right=True)
            rows = torch.arange(len(self.breaks), device=x.device)[:, None]
            c = self.coefs[rows, piece].transpose(0, 1)  # (N, K, D+1)
            t = x - self.origins[rows, piece].T
        value, slope, curve = c[..., -1].expand_as(t), torch.zeros_like(t), torch.zeros_like(t)
        for k in range(c.shape[-1] - 2, -1, -1):
            curve = curve * t + 2 * slope
            slope = slope * t + value
            value = value * t + c[..., k]
        return value, slope, curve


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PointSet:
    """Points fixed in bodies: ``body`` (P,) index (``n_bodies`` = ground) and ``offset``
    (P, 3, 3) with the body-frame position ``offset @ s_body`` (m)."""

    body: Tensor
    offset: Tensor


@dataclass(frozen=True)
class Plan:
    """A model's kinematics as tensors (see the module docstring); build with :func:`plan`."""

    n_coordinates: int
    n_bodies: int
    functions: FunctionTable  # one per joint motion, K
    motion_coordinate: Tensor  # (K,) coordinate index, n_coordinates for a constant
    motion_joint: Tensor  # (K,)
    rot_ids: Tensor  # (Kr,) motions that rotate
    rot_slot: Tensor  # (Kr,) place among its joint's rotations
    rot_axis: Tensor  # (Kr, 3)
    rot_aat: Tensor  # (Kr, 3, 3)
    rot_perp: Tensor
    rot_skew: Tensor
    slot_table: Tensor  # (J, S) index into rotations, Kr = identity
    tr_ids: Tensor  # (Kt,) motions that translate
    tr_axis: Tensor  # (Kt, 3)
    tr_scaled: Tensor  # (Kt,) bool
    tr_to_joint: Tensor  # (J, Kt) 0/1
    parent: Tensor  # (J,) parent body, n_bodies = ground
    child: Tensor  # (J,)
    levels: tuple[Tensor, ...]  # joint indices per tree depth
    level_frames: tuple[dict[str, Tensor], ...]  # per level: parent, child, r_p, m_p, ...
    upstream: Tensor  # (K, K) 1 where rotation k acts before motion l on the same chain
    chains: tuple[tuple[int, ...], ...]  # per body (ground last): its joint and its ancestors'
    coupler_pairs: tuple[tuple[int, int], ...]  # (dependent, independent), generation order
    couplers: tuple[tuple[Tensor, Tensor, FunctionTable], ...]  # (dep, ind, fns) generations
    cache: dict = field(default_factory=dict, compare=False, repr=False)


def plan(model: KinematicModel, dtype: torch.dtype, device: torch.device | str) -> Plan:
    """The kinematics of ``model`` as tensors of ``dtype`` on ``device`` (cached)."""
    key = ("ik_plan", dtype, str(device))
    if key not in model._cache:
        with torch.inference_mode(False):  # cached constants: ordinary tensors
            model._cache[key] = _build_plan(model, dtype, torch.device(device))
    return model._cache[key]


def _build_plan(model: KinematicModel, dtype: torch.dtype, device: torch.device) -> Plan:
    def t(a) -> Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)

    def idx(a) -> Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)

    n_b, n_c = model.n_bodies, model.n_coordinates
    motions = [(j, m) for j, joint in enumerate(model.joints) for m in joint.motions]
    rot = [k for k, (_, m) in enumerate(motions) if m.kind == "rotation"]
    tr = [k for k, (_, m) in enumerate(motions) if m.kind == "translation"]
    slots, table = _rotation_slots(model, motions, rot)
    axes = np.array([motions[k][1].axis for k in rot]).reshape(-1, 3)
    skew = np.zeros((len(rot), 3, 3))
    skew[:, [2, 0, 1], [1, 2, 0]] = axes
    skew = skew - skew.transpose(0, 2, 1)
    aat = np.einsum("ki,kj->kij", axes, axes)
    to_joint = np.zeros((len(model.joints), len(tr)))
    to_joint[[motions[k][0] for k in tr], np.arange(len(tr))] = 1.0
    parent = [n_b if j.parent_body < 0 else j.parent_body for j in model.joints]
    return Plan(
        n_coordinates=n_c,
        n_bodies=n_b,
        functions=FunctionTable.build([m.function for _, m in motions], dtype, device),
        motion_coordinate=idx([n_c if m.coordinate < 0 else m.coordinate for _, m in motions]),
        motion_joint=idx([j for j, _ in motions]),
        rot_ids=idx(rot),
        rot_slot=idx(slots),
        rot_axis=t(axes),
        rot_aat=t(aat),
        rot_perp=t(np.eye(3) - aat),
        rot_skew=t(skew),
        slot_table=idx(table),
        tr_ids=idx(tr),
        tr_axis=t(np.array([motions[k][1].axis for k in tr]).reshape(-1, 3)),
        tr_scaled=torch.as_tensor(  # OpenSim scales no translation of a ground joint
            [motions[k][1].scales and parent[motions[k][0]] < n_b for k in tr], device=device
        ).reshape(-1),
        tr_to_joint=t(to_joint),
        parent=idx(parent),
        child=idx([j.child_body for j in model.joints]),
        levels=tuple(idx(level) for level in _levels(model)),
        level_frames=tuple(_level_frames(model, level, t, idx) for level in _levels(model)),
        upstream=t(_upstream(model, motions)),
        chains=_chains(model),
        coupler_pairs=tuple(
            (int(d), int(i))
            for dep, ind, _ in _coupler_generations(model, dtype, device)
            for d, i in zip(dep.tolist(), ind.tolist(), strict=True)
        ),
        couplers=_coupler_generations(model, dtype, device),
    )


def _rotation_slots(
    model: KinematicModel, motions: list, rot: list[int]
) -> tuple[list[int], np.ndarray]:
    """Each rotation's place in its joint, and the (J, S) table of rotations (Kr = none)."""
    count = [0] * len(model.joints)
    slots = []
    for k in rot:
        slots.append(count[motions[k][0]])
        count[motions[k][0]] += 1
    table = np.full((len(model.joints), max(count, default=0)), len(rot))
    for r, k in enumerate(rot):
        table[motions[k][0], slots[r]] = r
    return slots, table


def _level_frames(model: KinematicModel, level: list[int], t, idx) -> dict[str, Tensor]:
    """The constants of one tree level's joints, gathered once."""
    joints = [model.joints[j] for j in level]
    n_b = model.n_bodies
    return {
        "joints": idx(level),
        "parent": idx([n_b if j.parent_body < 0 else j.parent_body for j in joints]),
        "child": idx([j.child_body for j in joints]),
        "r_p": t([j.parent_frame.rotation for j in joints]),
        "m_p": t([j.parent_frame.origin_by_scale for j in joints]),
        "r_c_t": t([j.child_frame.rotation.T for j in joints]),
        "m_c": t([j.child_frame.origin_by_scale for j in joints]),
    }


def _levels(model: KinematicModel) -> list[list[int]]:
    """Joint indices grouped by depth: every joint's parent body is placed by an earlier group."""
    depth_of_body = {-1: 0}
    levels: list[list[int]] = []
    for j, joint in enumerate(model.joints):  # topological order, parents first
        depth = depth_of_body[joint.parent_body]
        depth_of_body[joint.child_body] = depth + 1
        levels.extend([] for _ in range(depth + 1 - len(levels)))
        levels[depth].append(j)
    return levels


def _chains(model: KinematicModel) -> tuple[tuple[int, ...], ...]:
    """Per body (and ground, last, with none): the joints from ground down to its own."""
    chains: dict[int, tuple[int, ...]] = {-1: ()}
    for j, joint in enumerate(model.joints):  # parents first
        chains[joint.child_body] = (*chains[joint.parent_body], j)
    return tuple(chains[b] for b in range(model.n_bodies)) + ((),)


def _upstream(model: KinematicModel, motions: list) -> np.ndarray:
    """(K, K): 1 where rotation k moves the axis of motion l (k's joint is a proper
    ancestor of l's joint, or k comes first among the rotations of the same joint)."""
    n_j = len(model.joints)
    child_joint = {j.child_body: i for i, j in enumerate(model.joints)}
    above = np.zeros((n_j, n_j), dtype=bool)  # above[a, b]: joint a is a proper ancestor of b
    for b, joint in enumerate(model.joints):  # parents first
        if joint.parent_body >= 0:
            a = child_joint[joint.parent_body]
            above[:, b] = above[:, a]
            above[a, b] = True
    joint_of = np.array([j for j, _ in motions], dtype=np.int64)
    rotation = np.array([m.kind == "rotation" for _, m in motions])
    order = np.arange(len(motions))  # motions of a joint are listed in their order
    same = (joint_of[:, None] == joint_of[None, :]) & (order[:, None] <= order[None, :])
    up = above[joint_of][:, joint_of] | (same & rotation[None, :])
    return (up & rotation[:, None]).astype(np.float64)


def _coupler_generations(
    model: KinematicModel, dtype: torch.dtype, device: torch.device
) -> tuple[tuple[Tensor, Tensor, FunctionTable], ...]:
    """Couplers grouped so that each group's independent coordinates are already final."""
    pending, done, out = list(model.couplers), set(), []
    dependents = {c.dependent for c in model.couplers}
    while pending:
        ready = [c for c in pending if c.independent not in dependents - done]
        if not ready:
            raise ValueError(f"coupler constraints of model {model.name!r} form a loop")
        out.append(
            (
                torch.as_tensor([c.dependent for c in ready], device=device),
                torch.as_tensor([c.independent for c in ready], device=device),
                FunctionTable.build([c.function for c in ready], dtype, device),
            )
        )
        done |= {c.dependent for c in ready}
        pending = [c for c in pending if c not in ready]
    return tuple(out)


@dataclass(frozen=True)
class UnknownMap:
    """How the unknown coordinates move the bodies (static for a model and unknown set).

    A *pair* is (joint, unknown): the twist of a joint per unit change of one unknown, summed
    over the joint's motions that the unknown drives (directly or through couplers).
    ``inc_*`` (I,) list the incidences (motion k, unknown i): the motion, the flat index
    ``c_k * n + i`` into ``dq`` (N, C+1, n) and the pair. ``body_table`` (B+1, n, S) lists
    per body and unknown the pairs on the body's chain (``n_pairs`` pads).
    """

    inc_motion: Tensor
    inc_dq: Tensor
    inc_pair: Tensor
    n_pairs: int
    body_table: Tensor
    inc_upstream: Tensor  # (I, I) ``Plan.upstream`` of the incidences' motions
    inc_same: Tensor  # (I, I) 1 where two incidences share a motion
    inc_hessian: Tensor  # (I * I,) flat index ``i_e * n + i_f`` into an (n, n) Hessian


def unknown_map(p: Plan, free: Tensor) -> UnknownMap:
    """The :class:`UnknownMap` of the unknowns ``free`` (n,) (cached on the plan)."""
    key = ("unknowns", tuple(free.tolist()))
    if key not in p.cache:
        with torch.inference_mode(False):  # cached constants: ordinary tensors
            p.cache[key] = _build_unknown_map(p, free.tolist())
    return p.cache[key]


def _build_unknown_map(p: Plan, free: list[int]) -> UnknownMap:
    n = len(free)
    drives: list[set[int]] = [set() for _ in range(p.n_coordinates + 1)]
    for i, c in enumerate(free):
        drives[c].add(i)
    for dep, ind in p.coupler_pairs:
        drives[dep] |= drives[ind]
    pairs: dict[tuple[int, int], int] = {}
    inc = []
    for k, (c, j) in enumerate(
        zip(p.motion_coordinate.tolist(), p.motion_joint.tolist(), strict=True)
    ):
        for i in sorted(drives[c]):
            inc.append((k, c * n + i, pairs.setdefault((j, i), len(pairs))))
    per_body = [
        [[pairs[(j, i)] for j in chain if (j, i) in pairs] for i in range(n)] for chain in p.chains
    ]
    width = max([len(cell) for row in per_body for cell in row], default=0) or 1
    table = np.full((len(per_body), n, width), len(pairs), dtype=np.int64)
    for b, row in enumerate(per_body):
        for i, cell in enumerate(row):
            table[b, i, : len(cell)] = cell
    device = p.motion_joint.device
    motion, flat, pair = np.array(inc, dtype=np.int64).reshape(-1, 3).T
    unknown = flat % max(n, 1)
    same = (motion[:, None] == motion[None, :]).astype(np.float64)
    index = torch.as_tensor(motion, device=device)
    return UnknownMap(
        inc_motion=index,
        inc_dq=torch.as_tensor(flat, device=device),
        inc_pair=torch.as_tensor(pair, device=device),
        n_pairs=len(pairs),
        body_table=torch.as_tensor(table, device=device),
        inc_upstream=p.upstream.index_select(0, index).index_select(1, index),
        inc_same=torch.as_tensor(same, dtype=p.upstream.dtype, device=device),
        inc_hessian=torch.as_tensor(
            (unknown[:, None] * n + unknown[None, :]).ravel(), device=device
        ),
    )


def point_set(
    model: KinematicModel, names: list[str], dtype: torch.dtype, device: torch.device | str
) -> PointSet:
    """Markers, joint centres (``<joint>``) and mass centres (``<body>_com``) by name.

    Raises:
        KeyError: names that are neither markers nor keypoints of the model, all listed.
    """
    markers = {m.name: (m.body, m.origin_by_scale) for m in model.markers}
    joints = {j.name: (j.child_body, j.child_frame.origin_by_scale) for j in model.joints}
    coms = {f"{b.name}_com": (i, np.diag(b.com)) for i, b in enumerate(model.bodies)}
    known = {**coms, **joints, **markers}  # markers win a name clash
    missing = [n for n in names if n not in known]
    if missing:
        raise KeyError(
            f"points not in model {model.name!r}: {', '.join(missing)} (give marker names, "
            f"joint names for joint centres or '<body>_com'; markers: "
            f"{', '.join(model.marker_names) or 'none'})"
        )
    body = [model.n_bodies if known[n][0] < 0 else known[n][0] for n in names]
    offset = np.array([known[n][1] for n in names], dtype=np.float64).reshape(-1, 3, 3)
    return PointSet(
        torch.as_tensor(body, dtype=torch.long, device=device),
        torch.as_tensor(offset, dtype=dtype, device=device),
    )


# --------------------------------------------------------------------------- evaluation


@dataclass
class PointKinematics:
    """Points and Jacobians for a batch of ``N`` poses (``n`` unknown coordinates).

    Attributes:
        q: (N, C) all coordinates (couplers applied), rad / m.
        points: (N, P, 3) positions in ground (m).
        jacobian: (N, P, 3, n) ``d points / d x`` for the unknown coordinates ``x``.
        coordinate_jacobian: (N, C, n) ``d q / d x`` (1 for an unknown, the coupler slope
            for a coupled coordinate, 0 for a fixed one).
        scale_jacobian: (N, P, 3, 3B) ``d points / d scales`` (row-major ``(body, axis)``)
            when asked for, else None.
        twists: (N, K, 6) angular and linear (at the ground origin) velocity of each motion
            per unit of its value; ``slope``, ``curvature`` (N, K): first and second
            derivative of each motion's value in its coordinate (for :func:`second_order`).
    """

    q: Tensor
    points: Tensor
    jacobian: Tensor | None
    coordinate_jacobian: Tensor
    scale_jacobian: Tensor | None
    twists: Tensor | None
    slope: Tensor
    curvature: Tensor
    dq: Tensor


def full_coordinates(p: Plan, base: Tensor, free: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """All coordinates from the unknowns, and ``d q / d x``.

    Args:
        base: (N, C) or (C,) values of the coordinates that are not unknowns.
        free: (n,) indices of the unknown coordinates.
        x: (N, n) their values.

    Returns:
        q (N, C) and dq/dx (N, C + 1, n) (the last row, for constant motions, is 0).
    """
    n_frames, n_c = x.shape[0], p.n_coordinates
    q = base.expand(n_frames, n_c).clone()
    q[:, free] = x
    dq = torch.zeros(n_frames, n_c + 1, x.shape[1], dtype=x.dtype, device=x.device)
    dq[:, free, torch.arange(len(free), device=x.device)] = 1.0
    for dep, ind, fns in p.couplers:
        value, slope, _ = fns(q[:, ind])
        q[:, dep] = value
        dq[:, dep] = slope.unsqueeze(-1) * dq[:, ind]
    return q, dq


def evaluate(
    p: Plan,
    points: PointSet,
    free: Tensor,
    q: Tensor,
    dq: Tensor,
    scales: Tensor | None = None,
    *,
    jacobian: bool = True,
    scale_jacobian: bool = False,
) -> PointKinematics:
    """Positions of ``points`` at ``q`` and their Jacobians.

    Args:
        p: the plan of the model.
        points: the points to place.
        free: (n,) indices of the unknown coordinates.
        q: (N, C) all coordinates (couplers already applied, see :func:`full_coordinates`).
        dq: (N, C + 1, n) ``d q / d x`` with a zero last row.
        scales: (B, 3) or (N, B, 3) scale factors; None means 1.
        jacobian: compute the Jacobian (else ``jacobian`` and ``twists`` are None).
        scale_jacobian: also return ``d points / d scales``.
    """
    n_frames = q.shape[0]
    s_plain = _scales_with_ground(p, q, scales)  # (N|1, B+1, 3)
    basis, s_aug = _scale_basis(p, s_plain, scale_jacobian)
    q_pad = torch.cat([q, q.new_zeros(n_frames, 1)], dim=1)
    value, slope, curvature = p.functions(q_pad[:, p.motion_coordinate])
    joint = _joints(p, value, basis)
    rots, poss, r_f, p_m = _traverse(p, joint, basis, n_frames)
    local = points.offset @ basis[:, points.body]  # (N|1, P, 3, S)
    coef = poss[:, points.body] + rots[:, points.body] @ local
    x = (coef @ s_aug.unsqueeze(-1)).squeeze(-1)  # (N, P, 3)
    pivot = (p_m @ s_aug.unsqueeze(-1)).squeeze(-1)  # (N, J, 3)
    twists, jac = None, None
    if jacobian:
        twists = _motion_twists(p, joint, r_f, pivot, s_plain)
        jac = _point_jacobian(unknown_map(p, free), points, twists, slope, dq, x)
    s_jac = coef[..., :-1] if scale_jacobian else None
    return PointKinematics(q, x, jac, dq[:, :-1], s_jac, twists, slope, curvature, dq)


def _scales_with_ground(p: Plan, q: Tensor, scales: Tensor | None) -> Tensor:
    ones = q.new_ones(1, p.n_bodies + 1, 3)
    if scales is None:
        return ones
    s = torch.as_tensor(scales, dtype=q.dtype, device=q.device)
    s = s.unsqueeze(0) if s.ndim == 2 else s
    return torch.cat([s, ones[:, :1].expand(s.shape[0], 1, 3)], dim=1)


def _scale_basis(p: Plan, s_plain: Tensor, symbolic: bool) -> tuple[Tensor, Tensor]:
    """Scales as coefficient matrices (.., B+1, 3, S) and the vector (.., S) they act on.

    Plain: ``S = 1`` and the matrices hold the scales. Symbolic: ``S = 3B + 1``, the matrices
    select scale ``(b, i)`` (ground: the constant last entry) and the vector holds the values.
    """
    if not symbolic:
        return s_plain.unsqueeze(-1), s_plain.new_ones(s_plain.shape[0], 1)
    n_b = p.n_bodies
    basis = s_plain.new_zeros(1, n_b + 1, 3, 3 * n_b + 1)
    rows = torch.arange(3 * n_b, device=s_plain.device)
    basis[0, rows // 3, rows % 3, rows] = 1.0
    basis[0, n_b, :, -1] = 1.0
    s_aug = torch.cat([s_plain[:, :n_b].reshape(-1, 3 * n_b), s_plain.new_ones(len(s_plain), 1)], 1)
    return basis, s_aug


def _joints(p: Plan, value: Tensor, basis: Tensor) -> dict[str, Tensor]:
    """Per joint: rotation (N, J, 3, 3), exclusive rotation prefixes (N, J, S, 3, 3) and
    translation coefficients (N, J, 3, S)."""
    angle = value[:, p.rot_ids, None, None]
    rk = p.rot_aat + torch.cos(angle) * p.rot_perp + torch.sin(angle) * p.rot_skew
    eye = torch.eye(3, dtype=value.dtype, device=value.device)
    rk = torch.cat([rk, eye.expand(rk.shape[0], 1, 3, 3)], dim=1)
    slots = rk[:, p.slot_table]  # (N, J, S, 3, 3)
    prefix = [eye.expand_as(slots[:, :, 0]) if slots.shape[2] else None]
    for s in range(slots.shape[2]):
        prefix.append(slots[:, :, 0] if s == 0 else prefix[-1] @ slots[:, :, s])
    n_j = len(p.parent)
    rot = prefix[-1] if slots.shape[2] else eye.expand(value.shape[0], n_j, 3, 3)
    prefixes = torch.stack(prefix[:-1], dim=2) if slots.shape[2] else None
    trans = _translations(p, value, basis)
    return {"rotation": rot, "prefix": prefixes, "translation": trans}


def _translations(p: Plan, value: Tensor, basis: Tensor) -> Tensor:
    """(N, J, 3, S) joint translations in the parent frame, as scale coefficients."""
    n_s = basis.shape[-1]
    axis = p.tr_axis  # (Kt, 3)
    s_par = basis[:, p.parent[p.motion_joint[p.tr_ids]]]  # (N|1, Kt, 3, S)
    scaled = (axis.unsqueeze(-1) * s_par).sum(-2)  # (N|1, Kt, S): a . s_parent
    unit = basis.new_zeros(n_s)
    unit[-1] = 1.0
    factor = torch.where(p.tr_scaled[:, None], scaled, unit)  # (N|1, Kt, S)
    t_k = value[:, p.tr_ids, None, None] * axis[:, :, None] * factor.unsqueeze(-2)
    return torch.einsum("jk,nkds->njds", p.tr_to_joint, t_k)


def _traverse(
    p: Plan, joint: dict[str, Tensor], basis: Tensor, n_frames: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Body rotations (N, B+1, 3, 3) and position coefficients (N, B+1, 3, S), ground last;
    per joint the parent offset frame's rotation R_F and the joint centre p_M (N, J, 3, S)."""
    dtype, device, n_b, n_s = basis.dtype, basis.device, p.n_bodies, basis.shape[-1]
    rots = torch.empty(n_frames, n_b + 1, 3, 3, dtype=dtype, device=device)
    poss = torch.zeros(n_frames, n_b + 1, 3, n_s, dtype=dtype, device=device)
    rots[:, n_b] = torch.eye(3, dtype=dtype, device=device)
    n_j = len(p.parent)
    r_f = torch.empty(n_frames, n_j, 3, 3, dtype=dtype, device=device)
    p_m = torch.empty(n_frames, n_j, 3, n_s, dtype=dtype, device=device)
    for c in p.level_frames:
        js, par, chi = c["joints"], c["parent"], c["child"]
        r_par = rots.index_select(1, par)
        rf = r_par @ c["r_p"]
        pf = poss.index_select(1, par) + r_par @ (c["m_p"] @ basis.index_select(1, par))
        pm = pf + rf @ joint["translation"].index_select(1, js)
        rc = rf @ joint["rotation"].index_select(1, js) @ c["r_c_t"]
        rots.index_copy_(1, chi, rc)
        poss.index_copy_(1, chi, pm - rc @ (c["m_c"] @ basis.index_select(1, chi)))
        r_f.index_copy_(1, js, rf)
        p_m.index_copy_(1, js, pm)
    return rots, poss, r_f, p_m


def _motion_twists(
    p: Plan, joint: dict[str, Tensor], r_f: Tensor, pivot: Tensor, s_plain: Tensor
) -> Tensor:
    """(N, K, 6): angular ``w_k`` and linear ``v_k`` (at the ground origin) velocity of the
    bodies a motion moves, per unit of its value; a point ``x`` moves at ``w_k x x + v_k``."""
    n_frames = r_f.shape[0]
    twist = r_f.new_zeros(n_frames, len(p.motion_joint), 6)
    if len(p.rot_ids):
        j = p.motion_joint.index_select(0, p.rot_ids)
        prefix = joint["prefix"].index_select(1, j)[:, torch.arange(len(j)), p.rot_slot]
        w = (r_f.index_select(1, j) @ (prefix @ p.rot_axis.unsqueeze(-1))).squeeze(-1)
        twist[:, p.rot_ids, :3] = w
        twist[:, p.rot_ids, 3:] = _cross(pivot.index_select(1, j), w)
    if len(p.tr_ids):
        j = p.motion_joint.index_select(0, p.tr_ids)
        sigma = (p.tr_axis * s_plain.index_select(1, p.parent.index_select(0, j))).sum(-1)
        sigma = torch.where(p.tr_scaled, sigma, torch.ones_like(sigma))
        axis = (r_f.index_select(1, j) @ p.tr_axis.unsqueeze(-1)).squeeze(-1)
        twist[:, p.tr_ids, 3:] = axis * sigma.unsqueeze(-1)
    return twist


def _point_jacobian(
    u: UnknownMap, points: PointSet, twists: Tensor, slope: Tensor, dq: Tensor, x: Tensor
) -> Tensor:
    """(N, P, 3, n) point velocities per unit change of each unknown: the pair twists of
    each point's chain, ``dx = w x x + v``."""
    n_frames = dq.shape[0]
    rate = slope.index_select(1, u.inc_motion) * dq.flatten(1).index_select(1, u.inc_dq)
    per_inc = twists.index_select(1, u.inc_motion) * rate.unsqueeze(-1)  # (N, I, 6)
    pairs = twists.new_zeros(n_frames, u.n_pairs + 1, 6).index_add_(1, u.inc_pair, per_inc)
    table = u.body_table.index_select(0, points.body)  # (P, n, S)
    z = pairs.index_select(1, table.flatten()).unflatten(1, table.shape)  # (N, P, n, S, 6)
    z = z.sum(3) if table.shape[-1] > 1 else z.squeeze(3)
    w0, w1, w2, v0, v1, v2 = z.unbind(-1)  # (N, P, n) each
    x0, x1, x2 = (c.unsqueeze(-1) for c in x.unbind(-1))
    return torch.stack([w1 * x2 - w2 * x1 + v0, w2 * x0 - w0 * x2 + v1, w0 * x1 - w1 * x0 + v2], 2)


def second_order(
    p: Plan,
    points: PointSet,
    free: Tensor,
    k: PointKinematics,
    rho: Tensor,
    coordinate_grad: Tensor,
) -> Tensor:
    """(N, n, n) ``sum_i rho_i . d2 x_i / dx2 + sum_c coordinate_grad_c d2 q_c / dx2``.

    The part of the Hessian of ``0.5 |r|^2`` that Gauss-Newton leaves out, for residuals
    ``r_i = sqrt(w_i) (x_i - y_i)`` (then ``rho_i = sqrt(w_i) r_i``, (N, P, 3)) and
    coordinate terms with gradient ``coordinate_grad`` (N, C). With twists
    ``xi_l(x) = w_l x x + v_l``, ``d2 x / dv_k dv_l = w_k x xi_l(x)`` when motion k acts
    before l, so the motion-space term is ``w_k . m_l`` with ``m_l = sum_i xi_l(x_i) x rho_i``
    over l's subtree; it is summed into unknown space over the (motion, unknown) incidences.
    """
    u = unknown_map(p, free)
    n_frames, n = k.dq.shape[0], k.dq.shape[2]
    w, v = k.twists.split(3, dim=-1)  # (N, K, 3)
    outer, total = _subtree_sums(p, points, k.points, rho)
    b = p.child.index_select(0, p.motion_joint)
    a_k, c_k = outer.index_select(1, b), total.index_select(1, b)  # (N, K, 3, 3), (N, K, 3)
    trace = a_k.diagonal(dim1=-2, dim2=-1).sum(-1, keepdim=True)
    m = (a_k @ w.unsqueeze(-1)).squeeze(-1) - w * trace + _cross(v, c_k)
    axial = torch.stack(
        [
            a_k[..., 1, 2] - a_k[..., 2, 1],
            a_k[..., 2, 0] - a_k[..., 0, 2],
            a_k[..., 0, 1] - a_k[..., 1, 0],
        ],
        dim=-1,
    )
    grad_v = (w * axial).sum(-1) + (v * c_k).sum(-1)  # (N, K) d(0.5|r|^2)/dv_k
    dq_e = k.dq.flatten(1).index_select(1, u.inc_dq)  # (N, I)
    rate = k.slope.index_select(1, u.inc_motion) * dq_e
    w_e, m_e = w.index_select(1, u.inc_motion), m.index_select(1, u.inc_motion)
    t = (w_e @ m_e.transpose(1, 2)) * u.inc_upstream  # (N, I, I)
    s_ee = (t + t.transpose(1, 2) - t * u.inc_same) * rate.unsqueeze(-1) * rate.unsqueeze(-2)
    bend = (grad_v * k.curvature).index_select(1, u.inc_motion) * dq_e
    s_ee = s_ee + u.inc_same * bend.unsqueeze(-1) * dq_e.unsqueeze(-2)
    out = s_ee.new_zeros(n_frames, n * n).index_add_(1, u.inc_hessian, s_ee.flatten(1))
    out = out.view(n_frames, n, n)
    if not p.couplers:
        return out
    grad_q = torch.cat([coordinate_grad, coordinate_grad.new_zeros(n_frames, 1)], dim=1)
    grad_q = grad_q.index_add(1, p.motion_coordinate, grad_v * k.slope)
    for dep, ind, fns in reversed(p.couplers):
        _, slope, curve = fns(k.q[:, ind])
        dq_i = k.dq[:, ind]  # (N, Kc, n)
        out = out + dq_i.transpose(1, 2) @ ((grad_q[:, dep] * curve).unsqueeze(-1) * dq_i)
        grad_q = grad_q.index_add(1, ind, grad_q[:, dep] * slope)
    return out


def _subtree_sums(p: Plan, points: PointSet, x: Tensor, rho: Tensor) -> tuple[Tensor, Tensor]:
    """Per body, over the points of it and its descendants: ``sum x rho^T`` (N, B+1, 3, 3)
    and ``sum rho`` (N, B+1, 3)."""
    n_frames, n_b = x.shape[0], p.n_bodies + 1
    outer = x.new_zeros(n_frames, n_b, 3, 3).index_add_(
        1, points.body, x.unsqueeze(-1) * rho.unsqueeze(-2)
    )
    total = x.new_zeros(n_frames, n_b, 3).index_add_(1, points.body, rho)
    for js in reversed(p.levels):
        par, chi = p.parent.index_select(0, js), p.child.index_select(0, js)
        outer.index_add_(1, par, outer.index_select(1, chi))
        total.index_add_(1, par, total.index_select(1, chi))
    return outer, total


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """``a x b`` over the last axis (3)."""
    return (_skew(a) @ b.unsqueeze(-1)).squeeze(-1)


def _skew(v: Tensor) -> Tensor:
    """(..., 3, 3) matrices with ``skew(v) @ u = v x u``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).unflatten(-1, (3, 3))
