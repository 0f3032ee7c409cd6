"""The Jupyter token nbterm chooses for each host, kept in its state folder (0600).

A server nbterm starts reads it from a 0600 file on the remote (``JUPYTER_TOKEN_FILE``), so a
Jupyter restarted after a crash or a reboot answers at the same URL, and the browser tabs that
are open recover by themselves. A server that was already running keeps its own token (read
from its runtime file).
"""

from __future__ import annotations

import re
import secrets

from nbterm.files import write_private
from nbterm.locations import Paths


def host_token(paths: Paths, host: str) -> str:
    """This host's token: read, or made (32 random bytes, URL-safe) the first time."""
    path = paths.state_dir / "tokens" / (re.sub(r"[^A-Za-z0-9_-]", "_", host) + ".token")
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if re.fullmatch(r"[A-Za-z0-9_-]{32,128}", token):
        return token
    token = secrets.token_urlsafe(32)
    write_private(path, token)
    return token
