"""An EC2 instance reached only through a jump host (issue 13, item 4): nbterm must not probe the
instance's (private) address from the laptop, which failed after 300 s; it waits through the
jump instead. The bastion is the suite's sshd; the instance is a second sshd that starts a few
seconds after EC2 (moto) says "running", as a booting machine does."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.host.up import Face, open_host
from nbterm.services.remote.events import ConnectionChanged
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import api_status, remote_config_text, trust_all
from tests.harness.sshd import SshServer, make_sshd
from tests.integration.test_remote import Recorder

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]


async def test_an_instance_behind_a_bastion_is_waited_for_through_it(
    moto_ec2: MotoEc2,
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance_sshd = make_sshd()
    bastion_keys = sshd.client_key.parent / "authorized_keys"
    bastion_keys.write_text(
        bastion_keys.read_text() + instance_sshd.client_key.with_suffix(".pub").read_text()
    )

    def direct_probe(address: str, port: int, **kwargs: object) -> None:
        raise AssertionError(f"probed {address}:{port} directly, not through the bastion")

    monkeypatch.setattr(lifecycle, "wait_for_ssh", direct_probe)
    text = (
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
        "console_key_wait = 0\n"
        + remote_config_text(sshd).split("[hosts.box]")[0]
        + '[hosts.gpu]\ninstance = "nb-gpu"\ntemplate = "gpu"\naddress = "127.0.0.1"\n'
        f'port = {instance_sshd.port}\nuser = "{instance_sshd.user}"\n'
        f'identity_file = "{instance_sshd.client_key}"\n'
        f'proxy_jump = "{sshd.user}@127.0.0.1:{sshd.port}"\n'
        '[templates.gpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "g5.xlarge"\n'
    )
    config = load_config(write_config(text))
    Ec2(config.aws).launch(config.hosts["gpu"], config.templates["gpu"])
    boot = threading.Timer(4.0, instance_sshd.start)  # its SSH answers a few seconds later
    boot.start()
    recorder = Recorder()
    try:
        opened = await open_host(
            config, paths, "gpu", Face(ask=trust_all, on_event=recorder.any, note=lambda m: None,
            console_keys=False),
        )  # fmt: skip
        try:
            waited = [
                e
                for e in recorder.of(ConnectionChanged)
                if isinstance(e, ConnectionChanged) and "waiting for SSH" in e.message
            ]
            assert waited  # it did wait, through the bastion, and then came up
            status = await asyncio.to_thread(
                api_status, opened.result.local_port, opened.result.server.token
            )
            assert "kernels" in status
        finally:
            await opened.session.down(final_sync=False)
    finally:
        boot.cancel()
        boot.join()
        instance_sshd.remove()
