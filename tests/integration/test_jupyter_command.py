"""How `jupyter.command` runs on the remote: ``login_shell`` finds a `jupyter` that only the
login profile puts on PATH (conda, pyenv), and without it the error says to set it; ``{flags}``
places nbterm's flags inside a wrapper command."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nbterm.config import parse_config
from nbterm.services.remote import jupyter
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import close_quietly, connect, target_for
from tests.harness.remote import remote_config_text, remote_shell
from tests.harness.sshd import TEST_USER, SshServer

pytestmark = pytest.mark.sshd


async def test_a_jupyter_on_the_login_path_only_needs_login_shell(
    sshd: SshServer, tmp_path: Path
) -> None:
    if sshd.user != TEST_USER:
        pytest.skip("writes the remote user's ~/.bash_profile: only as the dedicated test user")
    venv_bin = sshd.remote_python.parent
    remote_shell(
        sshd,
        "mkdir -p ~/login-only-bin && "
        f"printf '#!/bin/sh\\nexec {venv_bin}/jupyter \"$@\"\\n' > ~/login-only-bin/jupyter-lo && "
        "chmod +x ~/login-only-bin/jupyter-lo && "
        "printf 'export PATH=\"$HOME/login-only-bin:$PATH\"\\n' > ~/.bash_profile",
    )
    config = parse_config(
        remote_config_text(sshd, command="jupyter-lo server"), tmp_path / "c.toml"
    )
    settings = dataclasses.replace(
        config.hosts["box"].jupyter, tmux_session="nbterm-login", remote_port=18995
    )
    known = KnownHosts(tmp_path / "known_hosts")
    known.add("box", sshd.host_key_pub)
    link = await connect(target_for(config.hosts["box"], config), known)
    try:
        with pytest.raises(jupyter.JupyterError, match="login_shell = true"):
            await jupyter.ensure(link, settings, token="tok")
        login = dataclasses.replace(settings, login_shell=True)
        server = await jupyter.ensure(link, login, token="tok", start_timeout=60)
        assert (server.port, server.token) == (18995, "tok")
        assert await jupyter.stop(link, login)
    finally:
        close_quietly(link)
        remote_shell(sshd, "rm -rf ~/login-only-bin ~/.bash_profile")


@pytest.mark.parametrize(
    "shape",
    [
        "{bin}/jupyter-server {{flags}} --ServerApp.open_browser=False",  # a word of its own
        "/bin/sh -c 'cd /tmp && exec {bin}/jupyter server {{flags}}'",  # inside a shell line
    ],
)
async def test_the_flags_go_where_the_command_says(
    sshd: SshServer, tmp_path: Path, shape: str
) -> None:
    """``{flags}`` in jupyter.command: a wrapper (conda run, a shell line that activates an
    environment first) gets nbterm's flags where they belong, not after its last word."""
    command = shape.format(bin=sshd.remote_python.parent)
    config = parse_config(remote_config_text(sshd, command=command), tmp_path / "c.toml")
    settings = dataclasses.replace(
        config.hosts["box"].jupyter, tmux_session="nbterm-flags", remote_port=18994
    )
    known = KnownHosts(tmp_path / "known_hosts")
    known.add("box", sshd.host_key_pub)
    link = await connect(target_for(config.hosts["box"], config), known)
    try:
        server = await jupyter.ensure(link, settings, token="flagged", start_timeout=60)
        assert (server.port, server.token) == (18994, "flagged")
        assert server.root_dir.endswith("/nbterm-test-notebooks")
        assert await jupyter.stop(link, settings)
    finally:
        close_quietly(link)
