"""The OpenSim layer: model reading, torch forward kinematics, file IO, scaling."""

from biokin_nb.osim.fk import (
    FKResult,
    apply_coupler_constraints,
    forward_kinematics,
    root_relative_keypoints,
)
from biokin_nb.osim.functions import PiecewisePolynomial, UnsupportedModelError
from biokin_nb.osim.model import KinematicModel
from biokin_nb.osim.reader import load_model

__all__ = [
    "FKResult",
    "KinematicModel",
    "PiecewisePolynomial",
    "UnsupportedModelError",
    "apply_coupler_constraints",
    "forward_kinematics",
    "load_model",
    "root_relative_keypoints",
]
