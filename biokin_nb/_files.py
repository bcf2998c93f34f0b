"""Atomic file writing: every writer in the project goes through :func:`atomic_write`.

The data is written to a temporary file in the destination folder and moved over the
destination with :func:`os.replace` only when the ``with`` block finishes without an
exception, so an interrupted or failed job never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_MODES = ("w", "wt", "wb")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open ``path`` for writing so that it appears complete or not at all.

    Args:
        path: destination file; its folder must exist.
        mode: ``"w"`` / ``"wt"`` (text, UTF-8, ``"\\n"`` line endings unless given in
            ``open_kwargs``) or ``"wb"`` (binary).
        open_kwargs: passed on to :func:`open` (e.g. ``encoding``).

    Yields:
        The open temporary file. On success it is flushed, synced and renamed to ``path``;
        on an exception it is removed and the exception propagates (an existing ``path``
        is left untouched).
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_write mode must be one of {_MODES}, got {mode!r}")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {path}: folder {path.parent} does not exist; create it first "
            "(e.g. Path(...).parent.mkdir(parents=True, exist_ok=True))"
        )
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
        open_kwargs.setdefault("newline", "\n")
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        # "x": exclusive create, with the user's umask (unlike tempfile.mkstemp's 0600).
        with open(tmp, mode.replace("w", "x"), **open_kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
