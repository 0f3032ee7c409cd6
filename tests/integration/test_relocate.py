"""A host that moved or went away while a session is up (issue 13, item 5).

When reconnecting keeps failing, nbterm asks the host's owner (EC2) where it is: an instance
started again elsewhere is followed (same local port, for both the session and the cockpit's
forwarder process), and a stopped or interrupted one ends the session with the reason, instead
of dialling the old address for ever while `u` believes the host is still up."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.cloud.instance import Instance
from nbterm.services.host.up import Face, gone_words, open_host
from nbterm.services.remote.connection import Backoff, Relocation
from nbterm.services.remote.events import ConnectionChanged, TunnelHealth
from nbterm.services.remote.forward import ForwardMode
from nbterm.services.remote.session import Session
from nbterm.services.remote.ssh import target_for
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.procs import free_port
from tests.harness.remote import api_status, remote_config_text, trust_all
from tests.harness.sshd import SshServer
from tests.integration.test_remote import Recorder

pytestmark = pytest.mark.sshd


@pytest.fixture
def config(sshd: SshServer, write_config: Callable[[str], Path]) -> LoadedConfig:
    return load_config(write_config(remote_config_text(sshd)))


@pytest.mark.parametrize("forward", ["inline", "process"])
async def test_a_host_at_a_new_address_is_followed_on_the_same_local_port(
    config: LoadedConfig, paths: Paths, sshd: SshServer, forward: ForwardMode
) -> None:
    host = config.hosts["box"]
    asked: list[int] = []

    async def relocate() -> Relocation:  # what EC2 says after a stop and start: a new address
        asked.append(sshd.port)
        return Relocation(target=dataclasses.replace(target_for(host, config), port=sshd.port))

    recorder = Recorder()
    session = Session(
        host, target_for(host, config), paths, verifier=trust_all, on_event=recorder,
        probe_interval=0.5, probe_timeout=2.0, backoff=Backoff(base=0.2, cap=1.0),
        forward=forward, relocate=relocate,
    )  # fmt: skip
    before = sshd.port
    try:
        result = await session.up()
        sshd.move(free_port())
        moved = await recorder.wait_for(
            lambda e: isinstance(e, ConnectionChanged) and "moved from" in e.message, 20
        )
        assert isinstance(moved, ConnectionChanged)
        assert f":{before} to " in moved.message
        assert f":{sshd.port}" in moved.message
        mark = recorder.events.index(moved)
        await recorder.wait_for(
            lambda e: isinstance(e, TunnelHealth) and e.state == "up", 20, since=mark
        )
        status = await asyncio.to_thread(api_status, result.local_port, result.server.token, 20)
        assert "kernels" in status  # the browser's URL works again, on the same port
        assert asked
    finally:
        await session.down()
        sshd.move(before)  # (the server is shared by the tests that follow)


@pytest.mark.moto
async def test_an_instance_stopped_under_the_session_ends_it_with_the_reason(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    text = (
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
        "console_key_wait = 0\n"
        + remote_config_text(sshd).split("[hosts.box]")[0]
        + '[hosts.gpu]\ninstance = "nb-gpu"\ntemplate = "gpu"\naddress = "127.0.0.1"\n'
        f'port = {sshd.port}\nuser = "{sshd.user}"\nidentity_file = "{sshd.client_key}"\n'
        '[templates.gpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "g5.xlarge"\n'
    )
    config = load_config(write_config(text))
    ec2 = Ec2(config.aws)
    launched = ec2.launch(config.hosts["gpu"], config.templates["gpu"])
    recorder = Recorder()
    opened = await open_host(
        config, paths, "gpu", Face(ask=trust_all, on_event=recorder.any, note=lambda m: None,
        console_keys=False),
    )  # fmt: skip
    session = opened.session
    try:
        ec2.stop(launched.id)
        sshd.stop()  # the machine is off: its SSH is gone with it
        await asyncio.wait_for(session.ended.wait(), 30)
        assert session.reason.startswith(f"{launched.id} is stopp")
        down = [
            e for e in recorder.events if isinstance(e, ConnectionChanged) and e.state == "down"
        ]
        assert any(launched.id in e.message for e in down)
    finally:
        await session.down(final_sync=False)
        sshd.start()  # (the fixture ends the remote Jupyter through it)


def test_a_spot_interruption_is_named_as_such() -> None:
    def instance(state: str, reason: str) -> Instance:
        return Instance(
            "i-1", "nb", "gpu", state, "g5.xlarge", True, "us-east-1a",
            dt.datetime.now(dt.UTC), "", "", "", reason,
        )  # fmt: skip

    spot = instance("stopped", "Server.SpotInstanceShutdown: Spot Instance shutdown")
    assert gone_words(spot, "i-1") == "i-1 is stopped (spot interruption)"
    user = instance("stopping", "Client.UserInitiatedShutdown: User initiated shutdown")
    assert gone_words(user, "i-1") == (
        "i-1 is stopping (Client.UserInitiatedShutdown: User initiated shutdown): not by nbterm "
        "(the console, the AWS CLI or another tool)"
    )
    assert gone_words(None, "i-1") == "i-1 was terminated"
    assert gone_words(instance("running", ""), "i-1") is None
