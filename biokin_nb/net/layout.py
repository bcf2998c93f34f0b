"""Which coordinates the network predicts, and how its outputs become model coordinates.

Of a model's C coordinates the network predicts every one that is not translational (36 of
the generic model's 39: all but pelvis_tx/ty/tz). Among them the *free* ones (no range
limit; the paper's 9) come out as (cos, sin) pairs, the *dependent* ones (set by a
coupler: ``knee_angle_*_beta = knee_angle_*``) are copied through the model's couplers,
and the rest, the *constrained* ones, come out as angles (rad) and have a range of motion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from biokin_nb.osim import KinematicModel, apply_coupler_constraints


@dataclass(frozen=True)
class CoordinateLayout:
    """Index sets into the model's coordinates (model order).

    Attributes:
        model: the kinematic model.
        predicted: the non-translational coordinates (P = 36 for the generic model).
        free: coordinates predicted as (cos, sin) (F = 9).
        constrained: independent coordinates predicted as angles (rad) (25).
        translations: translational coordinates, not predicted (pelvis tx, ty, tz).
    """

    model: KinematicModel
    predicted: tuple[int, ...]
    free: tuple[int, ...]
    constrained: tuple[int, ...]
    translations: tuple[int, ...]

    @classmethod
    def build(cls, model: KinematicModel, free_names: Sequence[str]) -> CoordinateLayout:
        """The layout of ``model`` with ``free_names`` as the free coordinates.

        Raises:
            KeyError: free names that are not rotational, independent coordinates of ``model``.
        """
        names = model.coordinate_names
        allowed = model.rotational & ~model.dependent
        bad = [n for n in free_names if n not in names or not allowed[names.index(n)]]
        if bad:
            raise KeyError(
                f"free coordinates {', '.join(bad)} are not independent rotational coordinates "
                f"of model {model.name!r}; set NetConfig.free_coordinates to names among "
                f"{', '.join(np.asarray(names)[allowed])}"
            )
        translational = model.translational
        free = tuple(names.index(n) for n in free_names)
        predicted = tuple(int(i) for i in np.flatnonzero(~translational))
        dependent = model.dependent
        constrained = tuple(i for i in predicted if i not in free and not dependent[i])
        translations = tuple(int(i) for i in np.flatnonzero(translational))
        return cls(model, predicted, free, constrained, translations)

    @property
    def n_outputs(self) -> int:
        """Raw outputs of the angle head: two per free, one per constrained coordinate."""
        return 2 * len(self.free) + len(self.constrained)

    @property
    def predicted_names(self) -> list[str]:
        return [self.model.coordinate_names[i] for i in self.predicted]

    def constrained_ranges(self, like: torch.Tensor) -> torch.Tensor:
        """(K, 2) lower and upper limits (rad) of the constrained coordinates."""
        return like.new_tensor(self.model.ranges[list(self.constrained)])

    def coordinates(
        self,
        free_cos_sin: torch.Tensor,
        constrained: torch.Tensor,
        translations: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(..., C) model coordinates from (..., F, 2) unit (cos, sin), (..., K) angles (rad)
        and (..., 3) translations (m; zero when None); coupled coordinates set by couplers."""
        lead = constrained.shape[:-1]
        q = constrained.new_zeros(*lead, self.model.n_coordinates)
        q[..., list(self.free)] = torch.atan2(free_cos_sin[..., 1], free_cos_sin[..., 0])
        q[..., list(self.constrained)] = constrained
        if translations is not None:
            q[..., list(self.translations)] = translations
        return apply_coupler_constraints(self.model, q)

    def split(self, coordinates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., F, 2) (cos, sin) of the free and (..., K) constrained coordinates (rad) of
        ``coordinates`` (..., C): the inverse of :meth:`coordinates`."""
        free = coordinates[..., list(self.free)]
        cos_sin = torch.stack([torch.cos(free), torch.sin(free)], dim=-1)
        return cos_sin, coordinates[..., list(self.constrained)]
