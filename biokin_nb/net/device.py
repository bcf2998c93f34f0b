"""Device choice: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch


def auto_device(requested: str | torch.device | None = None) -> torch.device:
    """``requested`` as a device, or the best available one (CUDA, MPS, CPU) when None."""
    if requested is not None:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
