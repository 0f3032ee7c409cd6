"""The cockpit and `nbterm up` are two faces of one service (services/host/up.py): the same
real scenario through each gives the same events.

Against the loopback sshd and a real Jupyter, each face in turn: a new host key trusted by the
face's own way of deciding (the CLI's --accept-host-key, the cockpit's dialog), Jupyter started,
the tunnel opened, a notebook saved on the remote brought home, then closed with a final sync
(Ctrl-C for the CLI, quitting for the cockpit). The events each face received are compared
after dropping what depends on timing alone (health samples, progress, background cycles).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shlex
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.presenters import Event, Printer
from nbterm.services.remote.events import (
    HostKeyTrusted,
    JupyterReady,
    TunnelHealth,
    TunnelOpened,
)
from nbterm.services.remote.host_keys import HostKeyQuestion
from nbterm.services.sync.events import CycleDone, FileReceived
from nbterm.ui.messages import ServiceEvent
from tests.harness.remote import (
    remote_config_text,
    remote_shell,
    stop_remote_jupyter,
    sync_rule,
)
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
Step = tuple[object, ...]


def sha256_of(public_key: str) -> str:
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def story(events: list[Event]) -> list[Step]:
    """What happened, in order, without what depends on timing alone."""
    steps: list[Step] = []
    for event in events:
        match event:
            case HostKeyTrusted():
                steps.append(("host key trusted", event.alias, event.sha256))
            case JupyterReady():
                steps.append(("jupyter", "started" if event.started else "reattached"))
            case TunnelOpened():
                steps.append(("tunnel opened", event.local_port))
            case FileReceived():
                steps.append(("received", event.path, event.new))
            case CycleDone(trigger="start" | "final"):
                steps.append((f"{event.trigger} sync", event.ok, event.files))
    return steps


async def wait_for(events: list[Event], found: Callable[[Event], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(found(event) for event in list(events)):
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout}s; seen: {story(events)}")
        await asyncio.sleep(0.05)


@pytest.fixture
def folder() -> str:
    return f"nbterm-faces-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def config_for(
    sshd: SshServer, write_config: Callable[[str], Path], tmp_path: Path, folder: str
) -> Callable[[str], LoadedConfig]:
    """The same host and rule for each face, each into a local folder of its own."""

    def config(face: str) -> LoadedConfig:
        text = remote_config_text(sshd, local_port=30457)
        text += sync_rule(folder, tmp_path / f"{face} folder", extra="interval = 600\n")
        return load_config(write_config(text))

    return config


async def scenario(
    sshd: SshServer, paths: Paths, folder: str, events: list[Event], name: str
) -> None:
    """Wait for the face to be up and synced once, then save a notebook on the remote."""
    await wait_for(events, lambda e: isinstance(e, CycleDone) and e.trigger == "start", 60)
    path = shlex.quote(f"{folder}/{name}")
    await asyncio.to_thread(remote_shell, sshd, f"cat > {path}", NOTEBOOK.encode())
    await wait_for(events, lambda e: isinstance(e, FileReceived) and e.path == name, 30)


async def fresh_remote(sshd: SshServer, paths: Paths, folder: str) -> None:
    """Each face meets the host as new: no stored key, no Jupyter running, an empty folder."""
    await stop_remote_jupyter(sshd, paths.state_dir / "cleanup" / "known_hosts")
    paths.known_hosts.unlink(missing_ok=True)
    await asyncio.to_thread(remote_shell, sshd, f"rm -rf {folder} && mkdir -p {folder}")


async def through_the_cli(
    config: LoadedConfig, paths: Paths, sshd: SshServer, folder: str, name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> list[Event]:  # fmt: skip
    from nbterm.cli import remote_cmds

    events: list[Event] = []

    class Recording(Printer):
        def __call__(self, event: Event) -> None:
            events.append(event)
            super().__call__(event)

    monkeypatch.setattr(remote_cmds, "Printer", Recording)
    up = asyncio.create_task(
        remote_cmds._up(
            config, paths, config.hosts["box"], accept_host_key=sha256_of(sshd.host_key_pub),
            open_browser=False,
        )
    )  # fmt: skip
    try:
        await scenario(sshd, paths, folder, events, name)
    finally:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: `nbterm up` handles it on its loop
        code = await asyncio.wait_for(up, 60)
    assert code == 0
    return events


async def through_the_cockpit(
    config: LoadedConfig, paths: Paths, sshd: SshServer, folder: str, name: str
) -> list[Event]:
    from nbterm.ui.controller import Controller

    events: list[Event] = []
    asked: list[HostKeyQuestion] = []

    class Screen:
        def post_message(self, message: object) -> bool:
            if isinstance(message, ServiceEvent):
                events.append(message.event)
            return True

    async def dialog(question: HostKeyQuestion) -> bool:
        asked.append(question)
        return question.sha256 == sha256_of(sshd.host_key_pub)  # the person compared it

    controller = Controller(Screen(), config, paths)  # type: ignore[arg-type]
    controller.attach(Screen(), dialog)  # type: ignore[arg-type]
    up = asyncio.create_task(controller.up("box"))
    try:
        await scenario(sshd, paths, folder, events, name)
    finally:
        up.cancel()  # quitting: the app cancels the host's worker, then closes every host
        await asyncio.gather(up, return_exceptions=True)
        await controller.close_all()
    assert [q.alias for q in asked] == ["box"]
    return events


async def test_the_cli_and_the_cockpit_tell_the_same_story(
    config_for: Callable[[str], LoadedConfig], paths: Paths, sshd: SshServer, folder: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    name = "same story.ipynb"
    try:
        await fresh_remote(sshd, paths, folder)
        cli = await through_the_cli(config_for("cli"), paths, sshd, folder, name, monkeypatch)
        await fresh_remote(sshd, paths, folder)
        cockpit = await through_the_cockpit(config_for("cockpit"), paths, sshd, folder, name)
    finally:
        await stop_remote_jupyter(sshd, paths.state_dir / "cleanup" / "known_hosts")
        await asyncio.to_thread(remote_shell, sshd, f"rm -rf {folder}")
    expected: list[Step] = [
        ("host key trusted", "box", sha256_of(sshd.host_key_pub)),
        ("jupyter", "started"),
        ("tunnel opened", 30457),
        ("start sync", True, ()),
        ("received", name, True),
        ("final sync", True, ()),
    ]
    assert story(cli) == expected
    assert story(cockpit) == expected
    for events in (cli, cockpit):  # both saw the tunnel healthy, from the same probes
        assert any(isinstance(e, TunnelHealth) and e.state == "up" for e in events)
