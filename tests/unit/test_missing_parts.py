"""A remote without tmux or Jupyter: what nbterm says, and what it offers to run.

The loopback test machine has tmux, so the remote's answers to the preflight check are played
by a stand-in link here; the Jupyter install itself is tested for real in
tests/integration/test_install_jupyter.py.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from nbterm.config import load_config
from nbterm.config.model import JupyterSettings
from nbterm.locations import Paths
from nbterm.services.host import up as host_up
from nbterm.services.remote import jupyter
from nbterm.services.remote.jupyter import JupyterError
from nbterm.services.remote.ssh import Link

SETTINGS = JupyterSettings("jupyter lab", 8888, 8157, "~/notebooks", "nbterm-jupyter")


class Said:
    """An asyncssh reader (``encoding=None``) that has ``data`` to give, then its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self, _n: int) -> bytes:
        data, self.data = self.data, b""
        return data


def remote_saying(out: str) -> Link:
    """A link whose every command prints ``out`` and succeeds."""

    async def create_process(command: str, encoding: str | None = "utf-8") -> Any:
        assert encoding is None  # remote output is read as bytes (ssh.run)

        async def wait() -> Any:
            return SimpleNamespace(exit_status=0)

        return SimpleNamespace(
            stdout=Said(out.encode()), stderr=Said(b""), wait=wait, close=lambda: None
        )

    return cast(Link, SimpleNamespace(conn=SimpleNamespace(create_process=create_process)))


@pytest.mark.parametrize(
    ("answer", "named", "fix"),
    [
        ("no-tmux pm-apt-get sudo-ok 1000", "sudo apt-get install -y tmux",
         "sudo -n apt-get install -y tmux"),
        ("no-tmux pm-dnf 1000", "sudo dnf install -y tmux", None),  # sudo asks: only named
        ("no-tmux 1000", "with the system's package manager", None),
    ],
)  # fmt: skip
def test_a_missing_tmux_is_named_with_the_exact_command(
    answer: str, named: str, fix: str | None
) -> None:
    with pytest.raises(JupyterError) as caught:
        asyncio.run(jupyter.preflight(remote_saying(answer), SETTINGS))
    assert caught.value.missing == "tmux"
    assert named in str(caught.value)
    assert caught.value.fix == fix


def test_tmux_then_jupyter_are_installed_when_the_person_says_yes(
    write_config: Any, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_config('[hosts.box]\nhostname = "127.0.0.1"\n'))
    attempts: list[str] = []
    ran: list[str] = []

    async def fake_open(config: Any, paths: Any, name: str, *parts: Any) -> Any:
        attempts.append(config.hosts[name].jupyter.command)
        if len(attempts) == 1:
            raise JupyterError("no tmux", missing="tmux", fix="sudo -n apt-get install -y tmux")
        if len(attempts) == 2:
            raise JupyterError("no jupyter", missing="jupyter")
        return "up"

    async def fake_fix(config: Any, paths: Any, name: str, command: str, note: Any) -> None:
        ran.append(command)

    async def fake_install(*args: Any) -> str:
        ran.append("venv")
        return "/home/u/.nbterm/jupyter/bin/jupyter lab"

    monkeypatch.setattr(host_up, "_open", fake_open)
    monkeypatch.setattr(host_up, "_fix", fake_fix)
    monkeypatch.setattr(host_up, "_install", fake_install)
    questions: list[str] = []

    async def yes(question: str) -> bool:
        questions.append(question)
        return True

    face = host_up.Face(ask=None, on_event=print, note=print, install=yes)
    opened = asyncio.run(host_up.open_host(config, paths, "box", face))
    assert cast(object, opened) == "up"
    assert ran == ["sudo -n apt-get install -y tmux", "venv"]
    assert "`sudo -n apt-get install -y tmux`" in questions[0] and "Jupyter" in questions[1]
    assert attempts[-1] == "/home/u/.nbterm/jupyter/bin/jupyter lab"

    async def no(question: str) -> bool:
        return False

    attempts.clear()
    face = host_up.Face(ask=None, on_event=print, note=print, install=no)
    with pytest.raises(JupyterError, match="no tmux"):
        asyncio.run(host_up.open_host(config, paths, "box", face))
    assert ran == ["sudo -n apt-get install -y tmux", "venv"]  # nothing more was run
