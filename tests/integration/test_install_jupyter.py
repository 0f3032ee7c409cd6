"""Jupyter on a host that has none: `up` installs JupyterLab in ~/.nbterm/jupyter when asked.

The loopback sshd's user plays a bare machine: its PATH has no `jupyter`. The install is real
(`python3 -m venv`, pip), from a wheelhouse `tests/setup.sh` downloads, passed through the
documented `install_pip_args` (`--no-index --find-links`): test traffic stays on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.cli.common import CliError
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.host.up import Face, open_host
from nbterm.services.remote import jupyter
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.install import VENV, remembered
from nbterm.services.remote.ssh import close_quietly, connect, target_for
from tests.harness.remote import api_status, remote_config_text, remote_shell
from tests.harness.sshd import REMOTE_VENV, SshServer

pytestmark = [pytest.mark.sshd, pytest.mark.e2e]

WHEELS = REMOTE_VENV.parent / "wheels"


async def test_up_installs_jupyter_when_asked_and_remembers_it(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    if not (WHEELS / ".complete").exists():
        pytest.fail(f"{WHEELS} is missing: run tests/setup.sh as root")
    text = (
        remote_config_text(sshd, command="jupyter lab", local_port=31557).replace(
            "[jupyter]\n",
            '[jupyter]\ninstall_python = "/usr/bin/python3"\n'
            f'install_pip_args = ["--no-index", "--find-links", "{WHEELS}"]\n',
        )
        + '[hosts.box.jupyter]\ntmux_session = "nbterm-install"\nremote_port = 18991\n'
    )
    config = load_config(write_config(text))
    KnownHosts(paths.known_hosts).add("box", sshd.host_key_pub)
    remote_shell(sshd, f"rm -rf {VENV}")
    notes: list[str] = []
    questions: list[str] = []

    async def yes(question: str) -> bool:
        questions.append(question)
        return True

    try:
        # without being asked, nothing is installed, and the CLI says how to ask
        from nbterm.cli import remote_cmds

        with pytest.raises(CliError, match="nbterm up box --install-jupyter"):
            await remote_cmds._up(config, paths, config.hosts["box"], accept_host_key=None,
                                  open_browser=False)  # fmt: skip
        opened = await open_host(config, paths, "box", Face(ask=None, on_event=lambda e: None,
                                 note=notes.append, install=yes))  # fmt: skip
        try:
            assert len(questions) == 1 and "~/.nbterm/jupyter" in questions[0]
            assert any(n.startswith("Successfully installed") for n in notes), notes
            assert "jupyterlab" in " ".join(notes)
            status = await asyncio.to_thread(
                api_status, opened.result.local_port, opened.result.server.token
            )
            assert "started" in status
        finally:
            await opened.session.down(final_sync=False)
        installed = remembered(paths, "box", "jupyter lab")
        assert installed is not None and installed.endswith("/.nbterm/jupyter/bin/jupyter lab")
        # the next up uses it without a question (Jupyter is still running: a reattach)
        again = await open_host(config, paths, "box", Face(ask=None, on_event=lambda e: None,
                                note=notes.append, install=None))  # fmt: skip
        await again.session.down(final_sync=False)
        assert len(questions) == 1
    finally:
        host = config.hosts["box"]
        link = await connect(target_for(host, config), KnownHosts(paths.known_hosts))
        try:
            await jupyter.stop(link, host.jupyter)  # found by its runtime folder
        finally:
            close_quietly(link)
        remote_shell(sshd, f"rm -rf {VENV} .nbterm/runtime/nbterm-install")
