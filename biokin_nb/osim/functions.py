"""One representation for every OpenSim scalar function of one coordinate.

OpenSim moves joint axes and coupled coordinates through ``Function`` objects:
``LinearFunction``, ``Constant``, ``PolynomialFunction``, ``SimmSpline``,
``NaturalCubicSpline``, ``GCVSpline`` and ``MultiplierFunction`` wrapping any of them.
Each is a piecewise polynomial of one variable, so each becomes a
:class:`PiecewisePolynomial`: breakpoints and, per piece, coefficients of a polynomial in
the local variable ``t = x - origin``. Evaluation is a torch bucketize plus Horner, hence
batched and differentiable.

Closed-form types are read from their parameters. Splines are read by sampling OpenSim's
own ``calcValue`` at ``degree + 1`` points per piece (the interpolating polynomial of a
polynomial piece is the piece itself) and checked at extra points, so the result agrees
with OpenSim to rounding, extrapolation beyond the knots included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

_SPLINE_DEGREE = {"SimmSpline": 3, "NaturalCubicSpline": 3}
SUPPORTED_FUNCTIONS = (
    "Constant",
    "LinearFunction",
    "PolynomialFunction",
    "MultiplierFunction",
    "SimmSpline",
    "NaturalCubicSpline",
    "GCVSpline",
)


class UnsupportedModelError(ValueError):
    """A model element (joint, function, frame) that biokin_nb cannot represent."""


@dataclass(frozen=True)
class PiecewisePolynomial:
    """``f(x) = sum_k coefs[p, k] * (x - origins[p]) ** k`` on piece ``p``.

    Pieces are split at ``breaks`` (P-1,), sorted: piece ``p`` holds
    ``breaks[p-1] <= x < breaks[p]``. ``coefs`` is (P, D+1), lowest order first.
    """

    breaks: np.ndarray
    origins: np.ndarray
    coefs: np.ndarray
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def polynomial(coefs_low_first: np.ndarray | list[float]) -> PiecewisePolynomial:
        """A single polynomial piece, coefficients lowest order first."""
        c = np.asarray(coefs_low_first, dtype=np.float64).reshape(1, -1)
        return PiecewisePolynomial(np.zeros(0), np.zeros(1), c)

    @property
    def is_constant(self) -> bool:
        return self.coefs.shape == (1, 1)

    @property
    def is_identity(self) -> bool:
        return self.coefs.shape == (1, 2) and self.coefs[0, 0] == 0.0 and self.coefs[0, 1] == 1.0

    def scaled(self, factor: float) -> PiecewisePolynomial:
        """``factor * f``."""
        return PiecewisePolynomial(self.breaks, self.origins, self.coefs * factor)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate at ``x`` (any shape); differentiable in ``x``."""
        if "stack" not in self._cache:
            self._cache["stack"] = PolynomialStack.of([self])
        return self._cache["stack"](x)[0]

    @property
    def pieces_key(self) -> bytes:
        """Identifies the pieces (breaks and origins): functions with equal keys stack."""
        return self.breaks.tobytes() + b"|" + self.origins.tobytes()

    def numpy(self, x: np.ndarray) -> np.ndarray:
        """Evaluate on a float64 numpy array."""
        return self(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


@dataclass(frozen=True)
class PolynomialStack:
    """``F`` piecewise polynomials on the same pieces, evaluated together.

    One bucketize and one gather serve all ``F``: the knee of Rajagopal2016 moves seven
    axes by splines of one coordinate on the same knots. Degrees may differ (zero padded:
    Horner steps with a zero leading coefficient are exact).
    """

    breaks: np.ndarray
    origins: np.ndarray
    coefs: np.ndarray  # (F, P, D+1), lowest order first
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def of(functions: list[PiecewisePolynomial]) -> PolynomialStack:
        """Stack ``functions``; they must share breaks and origins (``pieces_key``)."""
        if not functions or len({f.pieces_key for f in functions}) != 1:
            raise ValueError("PolynomialStack needs one or more functions on the same pieces")
        width = max(f.coefs.shape[1] for f in functions)
        coefs = np.zeros((len(functions), len(functions[0].origins), width))
        for k, f in enumerate(functions):
            coefs[k, :, : f.coefs.shape[1]] = f.coefs
        return PolynomialStack(functions[0].breaks, functions[0].origins, coefs)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(F, *x.shape) values at ``x`` (any shape); differentiable in ``x``."""
        breaks, origins, table = self._tensors(x.dtype, x.device)
        n_fun, width = self.coefs.shape[0], self.coefs.shape[2]
        flat = x.reshape(-1)
        if len(self.origins) == 1:  # one piece: coefficients broadcast over x
            t = flat if self.origins[0] == 0.0 else flat - origins[0]
            c = table.reshape(n_fun, width, 1)
        else:
            piece = torch.bucketize(flat.detach().contiguous(), breaks, right=True)
            t = flat - origins.index_select(0, piece)
            c = table.index_select(1, piece).reshape(n_fun, width, -1)
        out = c[:, -1]
        for k in range(width - 2, -1, -1):
            out = torch.addcmul(c[:, k], out, t)
        return out.expand(n_fun, flat.shape[0]).reshape(n_fun, *x.shape)

    def _tensors(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        """breaks (P-1,), origins (P,), coefficient table (F * (D+1), P)."""
        key = (dtype, str(device))
        if key not in self._cache:
            table = self.coefs.transpose(0, 2, 1).reshape(-1, len(self.origins))
            self._cache[key] = tuple(
                torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)
                for a in (self.breaks, self.origins, table)
            )
        return self._cache[key]


def from_opensim(fn: Any) -> PiecewisePolynomial:
    """Convert an ``opensim.Function`` to a :class:`PiecewisePolynomial`.

    Raises:
        UnsupportedModelError: the function type is not one of ``SUPPORTED_FUNCTIONS``.
    """
    from biokin_nb.osim._opensim import opensim

    osim = opensim()
    kind = fn.getConcreteClassName()
    if kind == "Constant":
        return PiecewisePolynomial.polynomial([osim.Constant.safeDownCast(fn).getValue()])
    if kind == "LinearFunction":
        lin = osim.LinearFunction.safeDownCast(fn)
        return PiecewisePolynomial.polynomial([lin.getIntercept(), lin.getSlope()])
    if kind == "PolynomialFunction":
        coefs = osim.PolynomialFunction.safeDownCast(fn).getCoefficients()
        return PiecewisePolynomial.polynomial([coefs.get(i) for i in range(coefs.size())][::-1])
    if kind == "MultiplierFunction":
        mult = osim.MultiplierFunction.safeDownCast(fn)
        return from_opensim(mult.getFunction()).scaled(mult.getScale())
    if kind in _SPLINE_DEGREE or kind == "GCVSpline":
        return _spline_from_opensim(fn, kind)
    raise UnsupportedModelError(
        f"unsupported OpenSim function type {kind!r}: biokin_nb reads "
        f"{', '.join(SUPPORTED_FUNCTIONS)}; convert it to a SimmSpline in the .osim"
    )


def _spline_knots(fn: Any, kind: str) -> tuple[np.ndarray, int]:
    from biokin_nb.osim._opensim import opensim

    osim = opensim()
    spline = getattr(osim, kind).safeDownCast(fn)
    size = spline.getNumberOfPoints() if kind == "GCVSpline" else spline.getSize()
    x = np.array([spline.getX(i) for i in range(size)], dtype=np.float64)
    degree = _SPLINE_DEGREE.get(kind) or int(spline.getDegree())
    return x, degree


def _spline_from_opensim(fn: Any, kind: str) -> PiecewisePolynomial:
    knots, degree = _spline_knots(fn, kind)
    span = max(float(knots[-1] - knots[0]), 1e-3)
    lefts = np.concatenate([[knots[0]], knots])  # the first piece extrapolates leftwards
    widths = np.concatenate([[-span], np.diff(knots), [span]])
    coefs = np.stack([_fit_piece(fn, x0, h, degree) for x0, h in zip(lefts, widths, strict=True)])
    return PiecewisePolynomial(knots.copy(), lefts, coefs)


def _fit_piece(fn: Any, x0: float, width: float, degree: int) -> np.ndarray:
    """Coefficients (degree+1,) in ``t = x - x0`` of the polynomial ``fn`` is on the piece."""
    n = degree + 1
    t = width * 0.5 * (1 - np.cos(np.pi * (np.arange(n) + 0.5) / n))  # Chebyshev nodes
    coefs = np.linalg.solve(np.vander(t, n, increasing=True), _calc(fn, x0 + t))
    t_check = width * np.array([0.1, 0.55, 0.93])
    fit = np.vander(t_check, n, increasing=True) @ coefs
    truth = _calc(fn, x0 + t_check)
    if not np.allclose(fit, truth, rtol=1e-9, atol=1e-12):
        raise UnsupportedModelError(
            f"{fn.getConcreteClassName()} {fn.getName()!r} is not a piecewise polynomial of "
            f"degree {degree} near x={x0:.6g}; biokin_nb cannot represent it exactly"
        )
    return coefs


def _calc(fn: Any, xs: np.ndarray) -> np.ndarray:
    from biokin_nb.osim._opensim import opensim

    osim = opensim()
    return np.array([fn.calcValue(osim.Vector(1, float(x))) for x in xs])
