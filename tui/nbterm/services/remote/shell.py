"""Remote paths written into shell commands."""

from __future__ import annotations

import shlex


def shell_path(path: str) -> str:
    """A remote path for the shell: ``~/x/`` becomes ``"$HOME"/x``; anything else is quoted."""
    if path in ("~", "~/"):
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:].rstrip("/") or ".")
    return shlex.quote(path.rstrip("/") or "/")
