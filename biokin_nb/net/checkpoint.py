"""Checkpoints: weights plus the config and the kinematic model they were built for.

A checkpoint is a ``torch.save`` dict ``{"format", "config", "coordinates", "bodies",
"state_dict", "extra"}``, written atomically. Loading it into a network built with another
config or for another model raises :class:`CheckpointMismatchError` naming every difference.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from biokin_nb._files import atomic_write
from biokin_nb.net.config import NetConfig
from biokin_nb.net.model import KinematicsNet
from biokin_nb.osim import KinematicModel

FORMAT = "biokin_nb.net/1"


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the network it is loaded into."""


def save_checkpoint(net: KinematicsNet, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``net``'s weights, config and model names (and ``extra``, e.g. optimizer state
    and epoch) to ``path``; returns the path."""
    model = net.kinematic_model
    payload = {
        "format": FORMAT,
        "config": net.config.to_dict(),
        "coordinates": model.coordinate_names,
        "bodies": model.body_names,
        "state_dict": net.state_dict(),
        "extra": extra or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())
    return Path(path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path`` (tensors on ``map_location``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointMismatchError(
            f"{path} is not a readable biokin_nb network checkpoint ({type(error).__name__}); "
            "write checkpoints with biokin_nb.net.save_checkpoint"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointMismatchError(
            f"{path} is not a biokin_nb network checkpoint (format {FORMAT!r}); "
            "write checkpoints with biokin_nb.net.save_checkpoint"
        )
    return payload


def load_checkpoint(net: KinematicsNet, path: str | Path) -> dict[str, Any]:
    """Load the weights at ``path`` into ``net``; returns the checkpoint's ``extra``.

    Raises:
        CheckpointMismatchError: the checkpoint has another config or model than ``net``.
    """
    payload = read_checkpoint(path, map_location=next(net.parameters()).device)
    _check_fits(net, payload, Path(path))
    net.load_state_dict(payload["state_dict"])
    return payload["extra"]


def network_from_checkpoint(
    path: str | Path, model: KinematicModel, device: str | torch.device = "cpu"
) -> KinematicsNet:
    """A network built with the checkpoint's own config for ``model``, weights loaded."""
    payload = read_checkpoint(path)
    net = KinematicsNet(NetConfig.from_dict(payload["config"]), model)
    _check_fits(net, payload, Path(path))
    net.load_state_dict(payload["state_dict"])
    return net.to(device)


def _check_fits(net: KinematicsNet, payload: dict, path: Path) -> None:
    stored = NetConfig.from_dict(payload["config"])
    problems = [
        f"{k}: checkpoint {a!r}, network {b!r}"
        for k, (a, b) in stored.differences(net.config).items()
    ]
    model = net.kinematic_model
    if payload["coordinates"] != model.coordinate_names or payload["bodies"] != model.body_names:
        problems.append(
            f"the checkpoint was trained for other coordinates or bodies than {model.name!r}"
        )
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint {path} does not fit this network: {'; '.join(problems)}. Build the "
            "network from the checkpoint instead: network_from_checkpoint(path, model)"
        )
