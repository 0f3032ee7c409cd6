"""Remote paths and long-running commands written into shell commands."""

from __future__ import annotations

import shlex


def shell_path(path: str) -> str:
    """A remote path for the shell: ``~/x/`` becomes ``"$HOME"/x``; anything else is quoted."""
    if path in ("~", "~/"):
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:].rstrip("/") or ".")
    return shlex.quote(path.rstrip("/") or "/")


WATCH_ENDED = "nbterm:watch-ended"
"""The last line of a watch whose command ended by itself (followed by its exit status)."""


def until_disconnected(command: str) -> str:
    """Run ``command`` in the background for as long as the SSH channel is open.

    If nbterm goes away (quit, crash, a dead network), sshd closes the channel's stdin and the
    watch is killed instead of lingering on the remote. If the command ends by itself (inotifywait
    refusing a folder that does not exist yet), the last line says so, since the channel stays
    open while the shell waits for its stdin: the client then closes it and starts over.
    A long-running program should be started with ``exec`` (it is then what is killed); a loop
    is killed between its short-lived steps.
    """
    watch = (
        f"trap 'kill $c 2>/dev/null' TERM; {{ {command}; }} & c=$!; "
        f'wait $c; echo "{WATCH_ENDED} $?"'
    )
    return f"( {watch} ) & w=$!; cat >/dev/null; kill $w 2>/dev/null; wait $w 2>/dev/null"
