"""Jupyter for a bare instance: a per-user environment with JupyterLab, made when asked.

When the remote has no Jupyter (a fresh Ubuntu or Amazon Linux image), ``up`` can offer to make
one: ``~/.nbterm/jupyter``, a virtual environment (``uv`` when the remote has it, otherwise
``python3 -m venv``) with JupyterLab, ipykernel and the template's ``packages``. No root is
needed and nothing outside that folder changes. Its progress goes to the caller line by line,
and its command is remembered for that host (``installed.json`` in nbterm's state folder), but
only instead of the configured command it replaced: change ``jupyter.command`` and yours wins.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Sequence

from nbterm.files import write_private
from nbterm.locations import Paths
from nbterm.safe_text import shown
from nbterm.services.remote.jupyter import REMOTE_DIR, JupyterError
from nbterm.services.remote.output import lines
from nbterm.services.remote.ssh import Link, run

VENV = f"{REMOTE_DIR}/jupyter"
BASE_PACKAGES = ("jupyterlab", "ipykernel")
INSTALL_SECONDS = 1800.0


async def install_jupyter(
    link: Link,
    *,
    packages: Sequence[str] = (),
    python: str = "python3",
    pip_args: Sequence[str] = (),
    note: Callable[[str], None],
) -> str:
    """Make ``~/.nbterm/jupyter`` and install into it; return the Jupyter command to use."""
    wanted = [*BASE_PACKAGES, *packages]
    quoted = " ".join(shlex.quote(p) for p in wanted)
    extra = " ".join(shlex.quote(a) for a in pip_args)
    status, _out, _err = await run(link, "command -v uv >/dev/null")
    if status == 0:
        note(f"making {VENV} with uv")
        steps = [
            f"uv venv --python {shlex.quote(python)} {VENV}",
            f"uv pip install --python {VENV}/bin/python {extra} {quoted}",
        ]
    else:
        note(f"making {VENV} with {python} -m venv")
        steps = [
            f"{shlex.quote(python)} -m venv {VENV}",
            f"{VENV}/bin/python -m pip install --disable-pip-version-check --progress-bar off "
            f"{extra} {quoted}",
        ]
    note(f"installing {', '.join(wanted)} (this takes a minute or two)")
    for step in steps:
        await _stream(link, f"cd && {step} 2>&1", note)
    status, home, err = await run(
        link, f'cd && test -x {VENV}/bin/jupyter-lab && printf %s "$HOME"'
    )
    if status != 0 or not home.startswith("/"):
        raise JupyterError(f"the install did not leave a JupyterLab in ~/{VENV}: {err.strip()}")
    note(f"JupyterLab is installed in ~/{VENV}")
    return f"{shlex.quote(f'{home}/{VENV}/bin/jupyter')} lab"  # the full path: no PATH needed


async def _stream(link: Link, command: str, note: Callable[[str], None]) -> None:
    """Run ``command``, handing on the lines worth reading (the remote's words, made safe)."""
    process = await link.conn.create_process(command, encoding=None)
    tail: list[str] = []
    async for raw in lines(process.stdout):
        line = raw.strip()
        if not line:
            continue
        tail = [*tail[-9:], line]
        if line.startswith(("Collecting", "Successfully", "Installed", "Resolved", "ERROR")):
            note(shown(line)[:200])
    completed = await process.wait()
    if completed.exit_status != 0:
        said = shown(" / ".join(tail[-3:]))[:600]
        raise JupyterError(f"installing Jupyter on the remote failed: {said}")


def _read(paths: Paths) -> dict[str, object]:
    try:
        data = json.loads((paths.state_dir / "installed.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remembered(paths: Paths, host: str, configured: str) -> str | None:
    """The command nbterm installed for ``host``, if it replaced this configured one."""
    entry = _read(paths).get(host)
    if isinstance(entry, dict) and entry.get("instead_of") == configured:
        command = entry.get("command")
        return command if isinstance(command, str) else None
    return None


def remember(paths: Paths, host: str, configured: str, command: str) -> None:
    data = _read(paths)
    data[host] = {"instead_of": configured, "command": command}
    write_private(paths.state_dir / "installed.json", json.dumps(data))
