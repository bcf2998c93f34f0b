"""The biomechanics-aware network of Lin et al.: modules, losses, config presets."""

from biokin_nb.net.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    network_from_checkpoint,
    save_checkpoint,
)
from biokin_nb.net.config import NetConfig
from biokin_nb.net.device import auto_device
from biokin_nb.net.layout import CoordinateLayout
from biokin_nb.net.losses import LossTerms, Target, kinematics_loss
from biokin_nb.net.model import FrameEncoding, KinematicsNet, NetOutput
from biokin_nb.net.points import PointSet, sample_points

__all__ = [
    "CheckpointMismatchError",
    "CoordinateLayout",
    "FrameEncoding",
    "KinematicsNet",
    "LossTerms",
    "NetConfig",
    "NetOutput",
    "PointSet",
    "Target",
    "auto_device",
    "kinematics_loss",
    "load_checkpoint",
    "network_from_checkpoint",
    "sample_points",
    "save_checkpoint",
]
