"""Helpers for tests that run Jupyter on the loopback "remote" (the test sshd's user)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nbterm.config import LoadedConfig, parse_config
from nbterm.config.model import JupyterSettings
from nbterm.services.remote import jupyter
from nbterm.services.remote.host_keys import HostKeyQuestion, KnownHosts
from nbterm.services.remote.ssh import Link, close_quietly, connect, run, target_for
from tests.harness.sshd import TEST_USER, SshServer

SESSION = "nbterm-test-jupyter"
REMOTE_PORT = 18888


def remote_config_text(
    sshd: SshServer, *, command: str | None = None, local_port: int = 28157
) -> str:
    jupyter_command = command or f"{sshd.remote_python.parent}/jupyter server"
    return (
        "[defaults]\n"
        "keepalive_interval = 1\n"
        "keepalive_count_max = 3\n"
        "connect_timeout = 3\n"
        "[jupyter]\n"
        f'command = "{jupyter_command}"\n'
        f"remote_port = {REMOTE_PORT}\n"
        f"local_port = {local_port}\n"
        f'tmux_session = "{SESSION}"\n'
        'notebook_dir = "~/nbterm-test-notebooks"\n'
        "[hosts.box]\n"
        f'hostname = "{sshd.host}"\n'
        f"port = {sshd.port}\n"
        f'user = "{sshd.user}"\n'
        f'identity_file = "{sshd.client_key}"\n'
    )


def ec2_config_text(
    endpoint_url: str,
    sshd: SshServer,
    *,
    local_port: int,
    host: str = "",
    template: str = "",
    own_key: bool = False,
    command: str | None = None,
    jupyter: str = "",
) -> str:
    """moto's EC2 and one EC2 host, ``gpu``, whose instance the loopback sshd plays (reached
    through the documented ``address`` override). ``host``/``template``: extra TOML lines for
    them; ``own_key``: no ``identity_file`` (nbterm's own key); ``command``, ``jupyter``: the
    Jupyter command, and extra ``[jupyter]`` lines."""
    key = "" if own_key else f'identity_file = "{sshd.client_key}"\n'
    return (
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{endpoint_url}"\nconsole_key_wait = 0\n'
        + remote_config_text(sshd, local_port=local_port, command=command).replace(
            "[jupyter]\n", f"[jupyter]\n{jupyter}"
        )
        + '[hosts.gpu]\ntemplate = "gpu"\naddress = "127.0.0.1"\n'
        + f'port = {sshd.port}\nuser = "{sshd.user}"\n{key}{host}'
        + '[templates.gpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "g5.xlarge"\n'
        + template
    )


def http_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def api_status(port: int, token: str, timeout: float = 10) -> dict[str, object]:
    code, body = http_get(
        f"http://127.0.0.1:{port}/api/status", {"Authorization": f"token {token}"}, timeout
    )
    assert code == 200, body
    result: dict[str, object] = json.loads(body)
    return result


async def stop_remote_jupyter(sshd: SshServer, known_hosts: Path) -> None:
    """End what the tests started on the remote: Jupyter (by pid), then the user's tmux server."""
    config: LoadedConfig = parse_config(remote_config_text(sshd), known_hosts.parent / "c.toml")
    known = KnownHosts(known_hosts)
    if not known.knows("box"):
        known.add("box", sshd.host_key_pub)
    link = await connect(target_for(config.hosts["box"], config), known)
    try:
        await jupyter.stop(link, config.hosts["box"].jupyter)
        if sshd.user != TEST_USER:
            return  # a developer's own account: their tmux server is theirs, not ours to end
        _status, out, _err = await run(link, "tmux display-message -p '#{pid}' 2>/dev/null; true")
        if out.strip().isdigit():
            await run(link, f"tmux kill-server; sleep 0.2; kill {out.strip()} 2>/dev/null; true")
    finally:
        close_quietly(link)


def stop_remote_jupyter_sync(sshd: SshServer, known_hosts: Path) -> None:
    asyncio.run(stop_remote_jupyter(sshd, known_hosts))


def sync_rule(folder: str, local: Path | str, *, host: str = "box", extra: str = "") -> str:
    """A ``[[sync]]`` table pulling ``~/folder/`` on ``host`` into ``local`` (``extra``: more
    keys of the rule, one per line)."""
    return f'\n[[sync]]\nhost = "{host}"\nremote = "~/{folder}/"\nlocal = "{local}"\n{extra}'


def remote_shell(sshd: SshServer, command: str, data: bytes | None = None) -> str:
    """Run ``command`` as the test sshd's user with plain OpenSSH (no nbterm involved)."""
    done = subprocess.run(
        ["ssh", *sshd.openssh_args(), command],
        input=data, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"remote command failed: {command}: {done.stderr.decode()}")
    return done.stdout.decode()


async def trust_all(question: HostKeyQuestion) -> bool:
    """A verifier for tests against the loopback sshd, whose key the test made itself."""
    return True


@contextlib.asynccontextmanager
async def own_runtime(
    sshd: SshServer, tmp_path: Path, session: str, *, command: str | None = None, **changes: Any
) -> AsyncIterator[tuple[Link, JupyterSettings, str]]:
    """A link to the test sshd, and Jupyter settings with a runtime folder of the test's own
    (another test's real Jupyter may be running in the shared one); the folder goes after."""
    config = parse_config(remote_config_text(sshd, command=command), tmp_path / "c.toml")
    settings = dataclasses.replace(config.hosts["box"].jupyter, tmux_session=session, **changes)
    known = KnownHosts(tmp_path / "known_hosts")
    known.add("box", sshd.host_key_pub)
    link = await connect(target_for(config.hosts["box"], config), known)
    folder = jupyter.runtime_dir(settings)
    try:
        yield link, settings, folder
    finally:
        await run(link, f"rm -rf {folder}; true")
        close_quietly(link)


async def end_guard(link: Link) -> None:
    """End the idle guard a test armed on the loopback "remote" (by its pid) and remove it."""
    from nbterm.services.cloud import guard

    await guard.turn_off(link)
    _s, out, _e = await run(link, f"cat {guard.GUARD_DIR}/state.json 2>/dev/null")
    pid = out.split('"pid": ')[1].split(",")[0] if '"pid": ' in out else ""
    await asyncio.sleep(1.0)  # it reads "off" at its next check and ends
    if pid.isdigit():
        await run(link, f"kill {pid} 2>/dev/null; true")
    await run(link, f"rm -rf {guard.GUARD_DIR}; true")
