"""The cockpit and `nbterm up` bring a host up through the same service (services/host/up.py):
what one face gains (the outside spot check, stop notes, following a moved instance), the other
has too. Each face is driven up to that call and the call is compared."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.host import up as host_up


class Reached(Exception):
    pass


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    from nbterm.cli import remote_cmds

    seen: list[dict[str, Any]] = []

    async def fake_open_host(*args: Any, **kwargs: Any) -> Any:
        seen.append({"args": args, **kwargs})
        raise Reached

    monkeypatch.setattr(host_up, "open_host", fake_open_host)  # the cockpit imports it late
    monkeypatch.setattr(remote_cmds, "open_host", fake_open_host)
    return seen


def _config(write_config: Any) -> Any:
    return load_config(write_config('[hosts.box]\nhostname = "127.0.0.1"\n'))


def test_both_faces_go_through_open_host(
    calls: list[dict[str, Any]], write_config: Any, paths: Paths
) -> None:
    from nbterm.cli import remote_cmds
    from nbterm.ui.controller import Controller

    config = _config(write_config)
    with pytest.raises(Reached):
        asyncio.run(
            remote_cmds._up(
                config, paths, config.hosts["box"], accept_host_key=None, open_browser=False
            )
        )

    class App:
        def post_message(self, message: object) -> None:
            return None

    async def the_screens_question(question: object) -> bool:
        return False

    async def the_screens_yes_no(question: str) -> bool:
        return False

    controller = Controller(App(), config, paths)  # type: ignore[arg-type]
    controller.attach(App(), the_screens_question, the_screens_yes_no)  # type: ignore[arg-type]
    with pytest.raises(Reached):
        asyncio.run(controller.up("box"))

    cli_call, cockpit_call = calls
    assert cli_call["args"][2] == cockpit_call["args"][2] == "box"
    assert cli_call["args"][0] is cockpit_call["args"][0] is config
    cli, cockpit = cli_call["args"][3], cockpit_call["args"][3]
    assert isinstance(cli, host_up.Face)
    assert isinstance(cockpit, host_up.Face)
    # both in the forwarder process: the screen's redraws, a sync or a probe never delay packets
    assert cli.forward == cockpit.forward == "process"
    assert cockpit.ask is the_screens_question  # the screen's host-key question
    assert cockpit.install is the_screens_yes_no  # asked before installing Jupyter
    assert cli.install is None  # only with --install-jupyter
    assert cli.budget  # headless: the session applies the daily budget to its own instance
    assert not cockpit.budget  # the cockpit applies it to every instance at once


def test_down_with_a_stop_says_the_instance_stopped_not_that_jupyter_runs(
    write_config: Any, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every message about the remote is true when shown: after `d` stopped the instance, its
    Jupyter went with it (the cockpit said "Jupyter keeps running on the remote")."""
    import datetime as dt

    from nbterm.services.cloud import lifecycle
    from nbterm.services.cloud.instance import Instance
    from nbterm.ui.controller import Controller
    from nbterm.ui.messages import HostStatus

    config = load_config(
        write_config('[aws]\nregion = "us-east-1"\n[hosts.gpu]\ninstance = "i-0123456789abcdef0"\n')
    )
    stopped = Instance("i-0123456789abcdef0", "gpu", "gpu", "stopped", "g5.xlarge", False,
                       "us-east-1a", dt.datetime.now(dt.UTC), "", "", "")  # fmt: skip
    monkeypatch.setattr(lifecycle, "stop", lambda *args, **kwargs: stopped)
    said: list[HostStatus] = []

    class App:
        def post_message(self, message: object) -> None:
            if isinstance(message, HostStatus):
                said.append(message)

    controller = Controller(App(), config, paths)  # type: ignore[arg-type]
    asyncio.run(controller.down("gpu", stop_instance=True))
    assert (said[-1].status, said[-1].detail) == (
        "down",
        "i-0123456789abcdef0 is stopped (its disk is kept)",
    )
    assert not any("Jupyter keeps running" in message.detail for message in said)
