"""A host's other ports in the cockpit: rows under the host, o / c choosing among them, p adding
one for the session and x closing it; against the loopback sshd and real servers."""

from __future__ import annotations

import json
import urllib.parse
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from nbterm.app import NbtermApp
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.screens.main import MainScreen
from nbterm.screens.ports import AddPortScreen, ChoosePortScreen, parse_ports
from nbterm.services.remote.host_keys import KnownHosts
from tests.harness.remote import remote_config_text
from tests.harness.services import RemoteServices, remote_services
from tests.harness.sshd import SshServer
from tests.integration.test_forwards import free_port
from tests.ui.test_live import cell, wait_until

pytestmark = pytest.mark.sshd


@pytest.fixture(scope="module")
def services() -> Iterator[RemoteServices]:
    with remote_services() as running:
        yield running


def rows(app: NbtermApp) -> list[str]:
    table = app.screen.query_one("#tunnels-table", DataTable)
    return [str(key.value) for key in table.rows]


def page_url(page: str) -> str:
    """The URL a redirect page opens."""
    text = Path(urllib.parse.unquote(urllib.parse.urlsplit(page).path)).read_text()
    return str(json.loads(text.split("window.location.replace(", 1)[1].split(");", 1)[0]))


async def test_ports_of_a_host_are_rows_chosen_added_and_closed(
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    services: RemoteServices,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web = free_port()
    text = remote_config_text(sshd, local_port=free_port()) + (
        f'forwards = [{{ name = "tensorboard", remote_port = {services.http}, '
        f"local_port = {web} }}]\n"
    )
    KnownHosts(paths.known_hosts).add("box", sshd.host_key_pub)
    app = NbtermApp(paths, load_config(write_config(text)))
    opened: list[str] = []
    copied: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *args, **kwargs: opened.append(url))
    app.copy_to_clipboard = lambda text: copied.append(text)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        assert rows(app) == ["box", "box/tensorboard"]
        assert cell(app, "#tunnels-table", "box/tensorboard", 0) == " └ tensorboard"
        assert cell(app, "#tunnels-table", "box/tensorboard", 2) == "down"
        await pilot.press("u")
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "up", 20)
        await wait_until(
            pilot, lambda: cell(app, "#tunnels-table", "box/tensorboard", 2) == "up · HTTP 200", 10
        )
        assert cell(app, "#tunnels-table", "box/tensorboard", 1) == f"http://127.0.0.1:{web}/"
        # o asks which port: Jupyter first, then tensorboard
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoosePortScreen), 5)
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: bool(opened), 10)
        assert page_url(opened[-1]) == f"http://127.0.0.1:{web}/"
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoosePortScreen), 5)
        await pilot.press("enter")  # Jupyter's, with its token
        await wait_until(pilot, lambda: len(opened) == 2, 10)
        assert app.controller is not None
        assert page_url(opened[-1]) == app.controller.running["box"].url
        # p: one more port, for the session; its row comes under the host's
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, AddPortScreen), 5)
        app.screen.query_one(Input).value = "99999"
        await pilot.press("enter")  # not a port: said, the dialog stays
        assert isinstance(app.screen, AddPortScreen)
        echo = free_port()
        app.screen.query_one(Input).value = f"{services.echo} {echo}"
        await pilot.press("enter")
        row = f"box/port {services.echo}"
        await wait_until(pilot, lambda: row in rows(app), 10)
        assert rows(app) == ["box", "box/tensorboard", row]
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", row, 2) == "up · TCP", 10)
        assert cell(app, "#tunnels-table", row, 1) == f"http://127.0.0.1:{echo}/"
        # in the Tunnels pane, the row under the cursor is the one c copies and x closes
        table = app.screen.query_one("#tunnels-table", DataTable)
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("c")
        await wait_until(pilot, lambda: bool(copied), 10)
        assert copied == [f"http://127.0.0.1:{web}/"]
        table.move_cursor(row=2)
        await pilot.press("x")
        await wait_until(pilot, lambda: row not in rows(app), 10)
        assert isinstance(app.screen, MainScreen)
        await pilot.press("d")
        await wait_until(pilot, lambda: cell(app, "#tunnels-table", "box", 2) == "down", 20)
        assert cell(app, "#tunnels-table", "box/tensorboard", 2) == "down"


def test_the_ports_typed_are_read_or_refused_in_words() -> None:
    assert parse_ports("6006") == (6006, None)
    assert parse_ports(" 6006  16006 ") == (6006, 16006)
    assert parse_ports("6006:16006") == (6006, 16006)
    assert "between 1 and 65535" in str(parse_ports("0"))
    assert "remote port" in str(parse_ports("tensorboard"))
    assert "remote port" in str(parse_ports("1 2 3"))
