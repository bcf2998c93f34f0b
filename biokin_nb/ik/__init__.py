"""Inverse kinematics: frame and temporal IK, OpenSim IK setups, the OpenSim baseline."""

from biokin_nb.ik.filters import butterworth_lowpass, butterworth_min_length
from biokin_nb.ik.opensim_tool import run_opensim_ik
from biokin_nb.ik.setup import (
    CoordinateTask,
    IKSetup,
    MarkerTask,
    read_ik_setup,
    select_time_range,
)
from biokin_nb.ik.solver import IKResult, ik_cost, solve_ik

__all__ = [
    "CoordinateTask",
    "IKResult",
    "IKSetup",
    "MarkerTask",
    "butterworth_lowpass",
    "butterworth_min_length",
    "ik_cost",
    "read_ik_setup",
    "run_opensim_ik",
    "select_time_range",
    "solve_ik",
]
