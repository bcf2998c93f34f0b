"""The one place that imports ``opensim``: quiet logging, no ``opensim.log`` in the cwd."""

from __future__ import annotations

import functools
from types import ModuleType


@functools.cache
def opensim() -> ModuleType:
    """Return the ``opensim`` module with its file log sink removed and warnings only."""
    import opensim as osim

    osim.Logger.removeFileSink()
    osim.Logger.setLevelString("warn")
    return osim
