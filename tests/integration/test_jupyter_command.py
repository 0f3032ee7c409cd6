"""How `jupyter.command` runs on the remote: ``login_shell`` finds a `jupyter` that only the
login profile puts on PATH (conda, pyenv), and without it the error says to set it; ``{flags}``
places nbterm's flags inside a wrapper command."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nbterm.services.remote import jupyter
from tests.harness.remote import own_runtime, remote_shell
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
    try:
        async with own_runtime(
            sshd, tmp_path, "nbterm-login", command="jupyter-lo server", remote_port=18995
        ) as (link, settings, _folder):
            with pytest.raises(jupyter.JupyterError, match="login_shell = true"):
                await jupyter.ensure(link, settings, token="tok")
            login = dataclasses.replace(settings, login_shell=True)
            server = await jupyter.ensure(link, login, token="tok", start_timeout=60)
            assert (server.port, server.token) == (18995, "tok")
            assert await jupyter.stop(link, login)
    finally:
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
    async with own_runtime(sshd, tmp_path, "nbterm-flags", command=command, remote_port=18994) as (
        link,
        settings,
        _folder,
    ):
        server = await jupyter.ensure(link, settings, token="flagged", start_timeout=60)
        assert (server.port, server.token) == (18994, "flagged")
        assert server.root_dir.endswith("/nbterm-test-notebooks")
        assert await jupyter.stop(link, settings)
