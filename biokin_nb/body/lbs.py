"""Functional core of posing a skinned mesh from world bone rotations (any backend).

A pose gives each bone ``c`` its world rotation ``G_c`` from rest and the root's head
position; each bone's head follows its parent. The rigid transform of bone ``c`` is then
``x -> G_c x + t_c`` with ``t_c = t_p + (G_p - G_c) h_c`` (``h`` the rest heads, ``p`` the
parent), ``t_0 = root - G_0 h_0``. Unrolled along the tree, ``t = Anc @ u`` with ``Anc``
the ancestor-or-self matrix, so the whole chain is one matrix product. Vertices follow by
linear blend skinning. Shapes: ``...`` leading batch dimensions, NB bones, K vertices.
"""

from __future__ import annotations

import torch


def ancestor_matrix(parents: tuple[int, ...] | list[int]) -> torch.Tensor:
    """(NB, NB) float matrix with ``[c, a] = 1`` when bone ``a`` is ``c`` or an ancestor.

    ``parents[c]`` is the parent of bone ``c`` (-1 for the root, which must be bone 0, and
    parents must come before their children).
    """
    n = len(parents)
    anc = torch.zeros(n, n)
    for c in range(n):
        p = parents[c]
        if c > 0 and not 0 <= p < c:
            raise ValueError(f"bone {c} has parent {p}: parents must precede their children")
        if c > 0:
            anc[c] = anc[p]
        anc[c, c] = 1.0
    return anc


def bone_transforms(
    rotations: torch.Tensor,
    heads: torch.Tensor,
    root: torch.Tensor,
    parents: torch.Tensor,
    ancestors: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Translations (..., NB, 3) of the bone transforms and posed heads (..., NB, 3).

    Args:
        rotations: (..., NB, 3, 3) world rotations from rest.
        heads: (..., NB, 3) rest heads; root: (..., 3) posed root head.
        parents: (NB,) long, the root's entry any valid index (it is replaced).
        ancestors: (NB, NB) from :func:`ancestor_matrix`.
    """
    rotated = (rotations @ heads.unsqueeze(-1)).squeeze(-1)  # G_c h_c
    parent_rotated = (rotations[..., parents, :, :] @ heads.unsqueeze(-1)).squeeze(-1)
    u = parent_rotated - rotated
    u = torch.cat([(root - rotated[..., 0, :]).unsqueeze(-2), u[..., 1:, :]], dim=-2)
    translations = torch.einsum("ca,...ad->...cd", ancestors.to(u), u)
    return translations, rotated + translations


def skin(
    vertices: torch.Tensor,
    weights: torch.Tensor,
    rotations: torch.Tensor,
    translations: torch.Tensor,
) -> torch.Tensor:
    """(..., K, 3) linear blend skinning of rest ``vertices`` (..., K, 3).

    Args:
        weights: (K, NB) dense skinning weights (rows sum to 1).
        rotations: (..., NB, 3, 3); translations: (..., NB, 3), the bone transforms.
    """
    used = torch.nonzero(weights.abs().sum(0) > 0).flatten()
    if len(used) < weights.shape[1]:  # skin with the bones these vertices use only
        weights = weights[:, used]
        rotations, translations = rotations[..., used, :, :], translations[..., used, :]
    w = weights.to(rotations)
    blended_r = torch.einsum("kn,...nij->...kij", w, rotations)
    blended_t = torch.einsum("kn,...nd->...kd", w, translations)
    return (blended_r @ vertices.unsqueeze(-1)).squeeze(-1) + blended_t
