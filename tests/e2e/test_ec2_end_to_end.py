"""Both worlds joined: an instance launched in moto, reached at the loopback sshd through the
host's documented `address` override, its host key verified from a console block, Jupyter up, a
notebook synced, then terminated after the final sync."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.console_keys import console_verifier
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.host.session import HostSession
from nbterm.services.remote.events import HostKeyTrusted, JupyterReady, RemoteEvent
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.sync.events import SyncEvent
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import (
    api_status,
    remote_config_text,
    remote_shell,
    sync_rule,
)
from tests.harness.sshd import SshServer

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]


class ConsoleOf(Ec2):
    """moto's console output is a fixed fake: this instance prints cloud-init's key block."""

    def __init__(self, aws: object, host_key_pub: str) -> None:
        super().__init__(aws)  # type: ignore[arg-type]
        self.host_key_pub = host_key_pub

    def console_output(self, instance_id: str) -> str:
        return (
            "[  8.2] cloud-init[700]: Generating public/private ed25519 key pair.\n"
            "-----BEGIN SSH HOST KEY KEYS-----\n"
            f"ec2: {self.host_key_pub} root@ip-10-0-0-5\n"
            "-----END SSH HOST KEY KEYS-----\n"
        )


async def test_launch_up_sync_terminate(
    moto_ec2: MotoEc2,
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    tmp_path: Path,
) -> None:
    folder = f"nbterm-e2e-{uuid.uuid4().hex[:8]}"
    local = tmp_path / "notebooks"
    text = (
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
        + remote_config_text(sshd, local_port=31157)
        + "[hosts.gpu]\n"
        'instance = "nb-gpu"\n'
        'template = "gpu"\n'
        'address = "127.0.0.1"\n'
        f"port = {sshd.port}\n"
        f'user = "{sshd.user}"\n'
        f'identity_file = "{sshd.client_key}"\n'
        "[templates.gpu]\n"
        'ami = "ami-0abcdef1234567890"\n'
        'instance_type = "g5.xlarge"\n'
        "spot = true\n"
    ) + sync_rule(folder, local, host="gpu")
    config = load_config(write_config(text))
    host = config.hosts["gpu"]
    ec2 = ConsoleOf(config.aws, sshd.host_key_pub)
    remote_shell(sshd, f"mkdir -p {folder}")
    try:
        launched = ec2.launch(host, config.templates["gpu"])
        ready = await asyncio.to_thread(
            lifecycle.bring_up, ec2, config, paths, host, note=lambda m: None, delay=0.1
        )
        assert ready.instance is not None
        assert ready.instance.id == launched.id
        assert ready.target.address == "127.0.0.1"
        assert ready.target.alias == launched.id
        events: list[RemoteEvent | SyncEvent] = []
        session = HostSession(
            config,
            "gpu",
            paths,
            verifier=console_verifier(ec2, launched.id, fallback=None, wait=5, delay=0.1),
            on_event=events.append,
            reach=ready,
        )
        result = await session.up()
        trusted = [e for e in events if isinstance(e, HostKeyTrusted)]
        assert [(e.alias, e.sha256) for e in trusted] == [(launched.id, trusted[0].sha256)]
        assert KnownHosts(paths.known_hosts).keys_for(launched.id) == [sshd.host_key_pub]
        assert any(isinstance(e, JupyterReady) for e in events)
        status = await asyncio.to_thread(api_status, result.local_port, result.server.token)
        assert "kernels" in status

        saved = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
        remote_shell(sshd, f"cat > {folder}/experiment.ipynb", saved.encode())
        deadline = time.monotonic() + 10
        while not (local / "experiment.ipynb").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert (local / "experiment.ipynb").exists(), "\n".join(map(repr, events))
        assert (local / "experiment.ipynb").read_text() == saved

        last = saved.replace('"cells": []', '"cells": [{"cell_type": "raw", "metadata": {}, '
                             '"source": "the last edit"}]')  # fmt: skip
        remote_shell(sshd, f"cat > {folder}/experiment.ipynb", last.encode())
        final = await session.down()  # the final sync, before anything is torn down
        assert final.ok
        assert (local / "experiment.ipynb").read_text() == last

        gone = await asyncio.to_thread(
            lifecycle.terminate, ec2, host, paths, note=lambda m: None, delay=0.1
        )
        assert gone.state == "terminated"
        assert not KnownHosts(paths.known_hosts).knows(launched.id)  # never trusted again
        raw = ec2.client.describe_instances(InstanceIds=[launched.id])["Reservations"]
        assert raw[0]["Instances"][0]["State"]["Name"] == "terminated"
    finally:
        remote_shell(sshd, f"rm -rf {folder}")
