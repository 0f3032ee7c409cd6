"""Atomic, private writes for the files nbterm owns."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from nbterm.locations import ensure_private_dir


def write_private(path: Path, data: str | bytes, *, own_folder: bool = True) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600.

    The data goes to a temporary file in the same directory, is flushed and fsynced, and then
    renamed over ``path``: a reader sees the old file or the new one, never half of one.
    ``own_folder``: the folder is one of nbterm's own (state, runtime) and is made 0700. For a
    path the user chose (``--output``, their config file) missing folders are created 0700, but
    an existing folder is theirs and its mode is never changed (``/tmp`` keeps its sticky bit).
    """
    if own_folder:
        ensure_private_dir(path.parent)
    else:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
