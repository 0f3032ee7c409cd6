"""Jupyter on the remote: run inside tmux, bound to 127.0.0.1, found again from its runtime file.

The server runs in a named tmux session so it survives nbterm quitting and the laptop
disconnecting; kernels live on. Its URL and token come from the runtime JSON files in a directory
of nbterm's own (``~/.nbterm/runtime/SESSION`` on the remote), never from logs and never from
``jupyter server list`` (which costs over a second of CPU per call).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode, urlunsplit

from nbterm.config import JupyterSettings
from nbterm.services.remote.shell import shell_path
from nbterm.services.remote.ssh import Link, run
from nbterm.untrusted_json import Unusable, load_object

REMOTE_DIR = ".nbterm"


def runtime_dir(settings: JupyterSettings) -> str:
    """The remote JUPYTER_RUNTIME_DIR, relative to home: one per tmux session, so each server
    nbterm runs is found under its own name."""
    return f"{REMOTE_DIR}/runtime/{settings.tmux_session}"


_SEPARATOR = "\x1e"
RUNTIME_FILE_LIMIT = 64 << 10
"""What is read of one runtime file (Jupyter's are under 1 KiB): a bigger one is cut on the remote
and not used."""
LOG_TAIL_LIMIT = 64 << 10
"""What is read of the end of Jupyter's log, however long its lines."""
_TOKEN = re.compile(r"(token=)[^\s&\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide Jupyter tokens (``token=...``) in text that may be shown or logged."""
    return _TOKEN.sub(r"\1…", text)


@dataclass(frozen=True)
class JupyterServer:
    """A running Jupyter server on the remote."""

    port: int
    pid: int
    root_dir: str
    base_url: str = "/"
    token: str = field(default="", repr=False)
    started: bool = False
    """True if nbterm started it just now; False if it was already running (reattached)."""
    version: str = ""

    def local_url(self, local_port: int) -> str:
        """The URL to open locally through the tunnel, with the token (never log it).

        Built from parts, never pasted: the host is always 127.0.0.1 whatever the remote's
        runtime file says (``base_url`` is checked where it is read), and the token is encoded.
        """
        query = urlencode({"token": self.token}) if self.token else ""
        return urlunsplit(("http", f"127.0.0.1:{local_port}", self.base_url, query, ""))


class JupyterError(Exception):
    """Jupyter could not be found or started; the message says what to do."""

    def __init__(
        self,
        message: str,
        *,
        missing: Literal["tmux", "jupyter"] | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = missing
        """What the remote lacks, when that is the trouble (nbterm can offer to install it)."""
        self.fix = fix
        """The command that installs it, when nbterm may run it (passwordless sudo)."""


INSTALL_TMUX = {
    "apt-get": "sudo -n apt-get install -y tmux",
    "dnf": "sudo -n dnf install -y tmux",
    "yum": "sudo -n yum install -y tmux",
    "apk": "sudo -n apk add tmux",
    "zypper": "sudo -n zypper --non-interactive install tmux",
}
"""How each system's package manager installs tmux (the first one the remote has is used)."""


def parse_runtime_files(output: str) -> list[dict[str, object]]:
    """Parse the concatenated runtime files printed by :func:`discover`: ``jpserver-*.json``
    (Jupyter Server: JupyterLab, Notebook 7) and ``nbserver-*.json`` (classic Notebook < 7)."""
    servers = []
    for chunk in output.split(_SEPARATOR)[1:]:
        _name, _, body = chunk.partition("\n")
        info = load_object(body, "a runtime file", limit=RUNTIME_FILE_LIMIT)
        if isinstance(info, Unusable):
            continue  # a file being written right now (the next look sees it whole), or a bomb
        if _well_formed(info):
            servers.append(info)
    return servers


SAFE_BASE_URL = re.compile(r"/(?!/)[A-Za-z0-9._~/%-]*")


def _well_formed(info: dict[str, object]) -> bool:
    """A runtime file is the remote's to write: only a whole, plain one is used (a port and a
    pid that are numbers, a path-only base_url, text where text belongs)."""
    port, pid = info.get("port"), info.get("pid")
    if not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536):
        return False
    if not (isinstance(pid, int) and not isinstance(pid, bool) and pid > 0):
        return False
    base_url = info.get("base_url", "/")
    if not isinstance(base_url, str) or not SAFE_BASE_URL.fullmatch(base_url or "/"):
        return False
    return all(
        isinstance(info.get(key, ""), str)
        for key in ("root_dir", "notebook_dir", "token", "version")
    )


async def discover(link: Link, settings: JupyterSettings) -> JupyterServer | None:
    """The live server in nbterm's runtime directory, preferring the configured port."""
    listing = (  # newest first: a stale file (its server killed) is older than a live one's
        f"cd && for f in $(ls -t {_runtime_files(settings)} 2>/dev/null); do "
        f'[ -f "$f" ] && printf \'{_SEPARATOR}%s\\n\' "$f" && '
        f'head -c {RUNTIME_FILE_LIMIT + 1} "$f"; done; true'
    )
    _status, out, _err = await run(link, listing)
    candidates = parse_runtime_files(out)
    if not candidates:
        return None
    pids = " ".join(str(int(str(info["pid"]))) for info in candidates)
    _status, out, _err = await run(link, _ALIVE.format(pids=pids))
    alive = {int(word) for word in out.split() if word.isdigit()}  # (a greeting is not a pid)
    live = [info for info in candidates if int(str(info["pid"])) in alive]
    if not live:
        return None
    # the configured port first, then the newest file (the listing's order; sort is stable)
    live.sort(key=lambda info: int(str(info["port"])) != settings.remote_port)
    info = live[0]
    return JupyterServer(
        port=int(str(info["port"])),
        pid=int(str(info["pid"])),
        root_dir=str(info.get("root_dir") or info.get("notebook_dir") or ""),
        base_url=str(info.get("base_url", "/")) or "/",
        token=str(info.get("token", "")),
        version=str(info.get("version", "")),
    )


# A server killed with SIGKILL (or by the OOM killer) leaves its runtime file behind. Its pid
# may be a zombie for a moment (`kill -0` still succeeds), and later another process's (pids
# wrap: 32768 on many systems). Either way its old token would be taken for the one of the
# server now on that port: 403 for ever. So a pid counts only if it runs, is not a zombie, and
# is a server nbterm started (its arguments hold the --ip nbterm gives); without `ps`, kill -0.
_ALIVE = (
    "for p in {pids}; do kill -0 $p 2>/dev/null || continue; "
    "command -v ps >/dev/null || {{ echo $p; continue; }}; "
    's=$(ps -o stat= -p $p 2>/dev/null); case "$s" in Z*) continue;; esac; '
    'case "$(ps -o args= -p $p 2>/dev/null)" in *--ip=127.0.0.1*) echo $p;; esac; done; true'
)


RUNTIME_FILES = ("jpserver-*.json", "nbserver-*.json")
"""What a server writes in its runtime folder: Jupyter Server (JupyterLab, Notebook 7), and
classic Notebook (< 7)."""


def _runtime_files(settings: JupyterSettings) -> str:
    """The shell patterns of the runtime files in nbterm's runtime folder for ``settings``."""
    return " ".join(f"{runtime_dir(settings)}/{pattern}" for pattern in RUNTIME_FILES)


def _log_file(settings: JupyterSettings) -> str:
    return f"{REMOTE_DIR}/{settings.tmux_session}.log"


async def preflight(link: Link, settings: JupyterSettings) -> bool:
    """Check that tmux and the Jupyter command exist; return whether the login user is root."""
    program = shlex.split(settings.command)[0]
    found = f"command -v {shlex.quote(program)} >/dev/null || echo no-jupyter"
    managers = " ".join(INSTALL_TMUX)
    no_tmux = (
        "command -v tmux >/dev/null || { echo no-tmux; "
        f"for m in {managers}; do command -v $m >/dev/null && {{ echo pm-$m; break; }}; done; "
        "sudo -n true 2>/dev/null && echo sudo-ok; }; "
    )
    check = f"{no_tmux}{_in_login_shell(found) if settings.login_shell else found}; id -u"
    _status, out, _err = await run(link, check)
    words = out.split()
    if "no-tmux" in words:
        manager = next((w[3:] for w in words if w.startswith("pm-")), None)
        command = INSTALL_TMUX.get(manager or "")
        how = (
            f"Install it there: {command.replace('sudo -n ', 'sudo ')}"
            if command
            else "Install it there with the system's package manager"
        )
        raise JupyterError(
            "tmux is not installed on the remote: nbterm runs Jupyter inside tmux so it survives "
            f"disconnects. {how}.",
            missing="tmux",
            fix=command if command and "sudo-ok" in words else None,
        )
    if "no-jupyter" in words:
        shell = "a login shell" if settings.login_shell else "a non-login shell"
        hint = (
            ""
            if settings.login_shell
            else (
                ", or set jupyter.login_shell = true if your ~/.profile puts it on PATH "
                "(conda, pyenv)"
            )
        )
        raise JupyterError(
            f"{program!r} was not found on the remote (tried: {settings.command!r} in {shell}, "
            "whose PATH may lack conda or ~/.local/bin). Install Jupyter there, "
            "or set jupyter.command to its full path, for example "
            '"/home/ubuntu/.local/bin/jupyter lab" (run `command -v jupyter` on the remote)'
            f"{hint}.",
            missing="jupyter",
        )
    return bool(words) and words[-1] == "0"


async def _session_alive(link: Link, settings: JupyterSettings) -> bool:
    status, _out, _err = await run(
        link, f"tmux has-session -t {shlex.quote('=' + settings.tmux_session)} 2>/dev/null"
    )
    return status == 0


async def kernels_left(link: Link, settings: JupyterSettings, pid: int) -> int | None:
    """How many kernels the dead server ``pid`` had when it died: the connection files it
    wrote after it started (``kernel-*.json`` newer than its own runtime file) and never
    removed, as a server does when it shuts a kernel down. None: it left no runtime file to
    go by."""
    folder = runtime_dir(settings)
    own = f"{folder}/jpserver-{int(pid)}.json"
    status, out, _err = await run(
        link,
        f"cd && [ -f {own} ] || exit 3; "
        f"find {folder} -maxdepth 1 -name 'kernel-*.json' -newer {own} | wc -l",
    )
    if status != 0:
        return None
    try:
        return int(out.strip())
    except ValueError:
        return None


async def log_tail(link: Link, settings: JupyterSettings, lines: int = 15) -> str:
    _status, out, _err = await run(
        link, f"cd && tail -c {LOG_TAIL_LIMIT} {_log_file(settings)} 2>/dev/null | tail -n {lines}"
    )
    return redact(out.strip())


def token_file(settings: JupyterSettings) -> str:
    """The remote file (0600, relative to home) that holds the token nbterm chose for this
    server: Jupyter reads it through ``JUPYTER_TOKEN_FILE``, so the token never appears on a
    command line or in an environment, and a restarted server keeps the same URL."""
    return f"{REMOTE_DIR}/{settings.tmux_session}.token"


async def _hand_token(link: Link, settings: JupyterSettings, token: str) -> None:
    status, _out, err = await run(
        link,
        f"cd && umask 077 && mkdir -p {REMOTE_DIR} && cat > {token_file(settings)}",
        input=token,
    )
    if status != 0:
        raise JupyterError(f"could not hand Jupyter its token: {redact(err.strip())}")


FLAGS = "{flags}"
"""Where nbterm's flags go in ``jupyter.command``, if not at its end."""


def _in_login_shell(command: str) -> str:
    """``command`` run by the user's login shell (which reads ~/.profile or ~/.bash_profile)."""
    return f'"${{SHELL:-/bin/sh}}" -lc {shlex.quote(command)}'


def start_command(settings: JupyterSettings, *, as_root: bool, with_token: bool = False) -> str:
    """The remote shell command that starts Jupyter in a detached tmux session.

    nbterm's flags (loopback only, the port, the folder) go at the end of ``jupyter.command``,
    or where it says ``{flags}``: as a word of its own, or inside a word that is itself a shell
    line (``bash -c 'conda activate ml && jupyter lab {flags}'``)."""
    flags = ["--no-browser", "--ip=127.0.0.1", f"--port={settings.remote_port}"]
    if as_root:
        flags.append("--allow-root")
    flag_text = (
        " ".join(shlex.quote(flag) for flag in flags)
        + f" --ServerApp.root_dir={shell_path(settings.notebook_dir)}"
    )
    words = shlex.split(settings.command)
    if any(FLAGS in word for word in words):
        command = " ".join(
            flag_text if word == FLAGS else shlex.quote(word.replace(FLAGS, flag_text))
            for word in words
        )
    else:
        command = " ".join(shlex.quote(word) for word in words) + " " + flag_text
    token_env = f'JUPYTER_TOKEN_FILE="$HOME"/{token_file(settings)} ' if with_token else ""
    inner = f'{token_env}JUPYTER_RUNTIME_DIR="$HOME"/{runtime_dir(settings)} exec {command}'
    if settings.login_shell:
        inner = "exec " + _in_login_shell(inner)
    inner += f' >"$HOME"/{_log_file(settings)} 2>&1'

    return (
        f"cd && umask 077 && mkdir -p {runtime_dir(settings)} && chmod 700 {REMOTE_DIR} && "
        f"mkdir -p {shell_path(settings.notebook_dir)} && "
        f"tmux new-session -d -s {shlex.quote(settings.tmux_session)} {shlex.quote(inner)}"
    )


async def ensure(
    link: Link,
    settings: JupyterSettings,
    *,
    start_timeout: float = 60.0,
    token: str | None = None,
) -> JupyterServer:
    """Reattach to nbterm's Jupyter on the remote, or start it; return where it listens.

    ``token``: the token nbterm keeps for this host; a server started now uses it, so its URL
    is the one the user already has.
    """
    found = await discover(link, settings)
    if found is not None:
        return found
    as_root = await preflight(link, settings)
    if not await _session_alive(link, settings):
        # none of the runtime files left here belongs to a live server (discover said so):
        # they are what servers killed without warning left, and one whose pid came back
        # (pids wrap) would be taken for the server about to start, with its old token
        folder = runtime_dir(settings)
        await run(link, f"cd && rm -f {_runtime_files(settings)} {folder}/jpserver-*-open.html; "
                        "true")  # fmt: skip
        if token:
            await _hand_token(link, settings, token)
        command = start_command(settings, as_root=as_root, with_token=bool(token))
        status, _out, err = await run(link, command)
        if status != 0:
            raise JupyterError(f"could not start Jupyter in tmux: {redact(err.strip())}")
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = await discover(link, settings)
        if found is not None:
            return JupyterServer(
                port=found.port,
                pid=found.pid,
                root_dir=found.root_dir,
                base_url=found.base_url,
                token=found.token,
                started=True,
                version=found.version,
            )
        if not await _session_alive(link, settings):
            tail = await log_tail(link, settings)
            raise JupyterError(
                f"Jupyter exited as it started ({settings.command!r}). Its last output:\n{tail}"
            )
    tail = await log_tail(link, settings)
    raise JupyterError(
        f"Jupyter did not come up within {start_timeout:g}s. Its last output:\n{tail}"
    )


STOP_WAIT_TENTHS = 100
"""Tenths of a second a server gets to end on SIGTERM before SIGKILL."""


async def _alive(link: Link, pid: int) -> bool:
    _status, out, _err = await run(link, _ALIVE.format(pids=pid))
    return str(pid) in out.split()


async def stop(link: Link, settings: JupyterSettings) -> bool:
    """Stop nbterm's Jupyter on the remote (an explicit action: quitting nbterm never does)."""
    server = await discover(link, settings)
    found = server is not None
    while server is not None:  # (there may be more than one: each is ended)
        await run(link, f"kill {server.pid} 2>/dev/null; true")
        for _ in range(STOP_WAIT_TENTHS):
            if not await _alive(link, server.pid):
                break
            await asyncio.sleep(0.1)
        else:  # it did not end on SIGTERM (kernels or extensions shutting down slowly)
            await run(link, f"kill -9 {server.pid} 2>/dev/null; true")
        again = await discover(link, settings)
        if again is not None and again.pid == server.pid:
            break  # (a zombie its parent has not reaped yet is filtered by discover)
        server = again
    await run(
        link, f"tmux kill-session -t {shlex.quote('=' + settings.tmux_session)} 2>/dev/null; true"
    )
    return found
