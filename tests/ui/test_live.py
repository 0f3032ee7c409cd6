"""The cockpit driving a real host: Pilot against the loopback sshd, Jupyter and rsync."""

from __future__ import annotations

import asyncio
import json
import stat
import time
import urllib.parse
import uuid
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Log

from nbterm.app import NbtermApp
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.screens.host_key import HostKeyScreen
from nbterm.screens.main import MainScreen
from nbterm.services.remote import registry
from nbterm.services.remote.host_keys import KnownHosts
from tests.harness.remote import (
    api_status,
    remote_config_text,
    remote_shell,
    sync_rule,
)
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd


def cell(app: NbtermApp, table: str, row: str, column: int) -> str:
    widget = app.screen.query_one(table, DataTable)
    return str(widget.get_row(row)[column])


async def wait_until(pilot: object, predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the screen did not get there in time")
        await asyncio.sleep(0.05)


@pytest.fixture
def remote_folder(sshd: SshServer) -> Iterator[str]:
    """A fresh folder in the test user's home on the remote, removed afterwards."""
    folder = f"nbterm-ui-{uuid.uuid4().hex[:8]}"
    remote_shell(sshd, f"mkdir -p {folder}")
    try:
        yield folder
    finally:
        remote_shell(sshd, f"rm -rf {folder}")


def synced_config(sshd: SshServer, local_port: int, folder: str, local: Path) -> str:
    """The loopback host "box" with one sync rule from ``~/folder/`` into ``local``."""
    return remote_config_text(sshd, local_port=local_port) + sync_rule(folder, local)


async def test_up_asks_about_the_key_then_syncs_and_down_closes(
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    tmp_path: Path,
    remote_folder: str,
) -> None:
    folder, local = remote_folder, tmp_path / "nb"
    config = load_config(write_config(synced_config(sshd, 33157, folder, local)))
    app = NbtermApp(paths, config)
    async with app.run_test(size=(120, 36)) as pilot:
        assert isinstance(app.screen, MainScreen)
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, HostKeyScreen), 10)
        await pilot.press("y")
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "up", 20)
        assert app.controller is not None
        running = app.controller.running["box"]
        assert KnownHosts(paths.known_hosts).knows("box")
        token = running.url.split("token=")[1]
        status = await asyncio.to_thread(api_status, running.local_port, token)
        assert "kernels" in status
        assert cell(app, "#tunnels-table", "box", 1) == f"http://127.0.0.1:{running.local_port}/"

        notebook = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
        remote_shell(sshd, f"cat > {folder}/seen.ipynb", notebook.encode())
        log = app.screen.query_one("#sync-log", Log)
        await wait_until(
            pilot, lambda: any("received seen.ipynb" in line for line in log.lines), 10
        )
        assert (local / "seen.ipynb").read_text() == notebook

        assert registry.read_cockpit(paths, "box") is not None  # what `nbterm status` reads
        await pilot.press("d")
        await wait_until(pilot, lambda: "box" not in app.controller.running, 20)  # type: ignore[union-attr]
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "down", 10)
        assert registry.read_cockpit(paths, "box") is None
        # its up worker ended with it (it had waited for ever, and a second u said "already
        # coming up" and did nothing): u brings the host up again
        await wait_until(pilot, lambda: "box" not in app.controller.coming_up, 5)  # type: ignore[union-attr]
        await pilot.press("u")
        await wait_until(pilot, lambda: "box" in app.controller.running, 20)  # type: ignore[union-attr]
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "up", 20)
        await pilot.press("d")
        await wait_until(pilot, lambda: "box" not in app.controller.running, 20)  # type: ignore[union-attr]


async def test_a_refused_key_is_not_stored_and_says_so(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    config = load_config(write_config(remote_config_text(sshd, local_port=34157)))
    app = NbtermApp(paths, config)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, HostKeyScreen), 10)
        await pilot.press("n")
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "failed", 10)
        assert not KnownHosts(paths.known_hosts).knows("box")
        notes = [n.message for n in app._notifications]
        assert any("was not trusted" in note for note in notes)


async def test_sync_now_forget_key_and_a_remapped_key(
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    tmp_path: Path,
    remote_folder: str,
) -> None:
    text = synced_config(sshd, 35157, remote_folder, tmp_path / "nb")
    config = load_config(write_config(text + 'interval = 600\n[keymap]\n"host.sync" = "n"\n'))
    KnownHosts(paths.known_hosts).add("box", sshd.host_key_pub)  # known: no question this time
    app = NbtermApp(paths, config)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("u")
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "up", 20)
        log = app.screen.query_one("#sync-log", Log)
        before = len(log.lines)
        await pilot.press("n")  # "sync now", remapped from s by [keymap]
        await wait_until(pilot, lambda: any("now sync" in line for line in log.lines[before:]), 10)
        await pilot.press("f")  # while it is up: refused, and said (before: forgotten at once)
        await pilot.pause()
        assert KnownHosts(paths.known_hosts).knows("box")
        assert any("is up: press d first" in n.message for n in app._notifications)
        await pilot.press("d")
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "down", 20)
        await pilot.press("f")  # forget the key, on purpose: asked first
        await pilot.pause()
        assert KnownHosts(paths.known_hosts).knows("box")
        await pilot.press("n")  # no: kept
        await pilot.pause()
        assert KnownHosts(paths.known_hosts).knows("box")
        await pilot.press("f", "y")
        await wait_until(pilot, lambda: not KnownHosts(paths.known_hosts).knows("box"), 10)


async def test_open_and_copy_use_the_working_url(
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = load_config(write_config(remote_config_text(sshd, local_port=38157)))
    KnownHosts(paths.known_hosts).add("box", sshd.host_key_pub)
    app = NbtermApp(paths, config)
    opened: list[str] = []
    copied: list[str] = []
    # the browser is started with a private redirect page, never with the token on its argv
    monkeypatch.setattr(webbrowser, "open", lambda url, *args, **kwargs: opened.append(url))
    app.copy_to_clipboard = lambda text: copied.append(text)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("o")  # not up yet: says so, opens nothing
        assert opened == []
        await pilot.press("u")
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "up", 20)
        await pilot.press("o", "c")
        await wait_until(pilot, lambda: bool(opened), 10)
        assert app.controller is not None
        url = app.controller.running["box"].url
        [page] = opened
        assert page.startswith("file://") and "token" not in page
        redirect = Path(urllib.parse.unquote(urllib.parse.urlsplit(page).path))
        assert stat.S_IMODE(redirect.stat().st_mode) == 0o600
        assert json.dumps(url) in redirect.read_text()
        assert copied == [url]
        assert url.startswith("http://127.0.0.1:")
        assert "token=" in url
        await pilot.press("d")
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "down", 20)
