"""Two EC2 hosts up at once in one process, as in the cockpit (issue 13, item 1): bringing the
second up rewrites the generated ssh config, and the first one's sync must go on reaching its
own instance. Both instances are moto's, both answer at the loopback sshd (each under its own
instance id, its key checked under that alias); each host syncs its own folder."""

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
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.host.up import Face, OpenHost, open_host
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import remote_config_text, remote_shell, sync_rule, trust_all
from tests.harness.sshd import SshServer
from tests.integration.test_remote import Recorder

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


async def test_the_second_hosts_up_never_cuts_the_first_ones_sync(
    moto_ec2: MotoEc2,
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    tmp_path: Path,
) -> None:
    folders = {name: f"nbterm-two-{name}-{uuid.uuid4().hex[:6]}" for name in ("gpu", "cpu")}
    text = (
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
        "console_key_wait = 0\n" + remote_config_text(sshd).split("[hosts.box]")[0]
    )
    for index, name in enumerate(folders):
        text += (
            f'[hosts.{name}]\ninstance = "nb-{name}"\ntemplate = "{name}"\n'
            f'address = "127.0.0.1"\nport = {sshd.port}\nuser = "{sshd.user}"\n'
            f'identity_file = "{sshd.client_key}"\n'
            f'jupyter = {{ tmux_session = "nbterm-two-{name}", remote_port = {18980 + index} }}\n'
            f'[templates.{name}]\nami = "ami-0abcdef1234567890"\ninstance_type = "m7i.large"\n'
        )
    for name, folder in folders.items():
        text += sync_rule(folder, tmp_path / name, host=name, extra="interval = 2\n")
    config = load_config(write_config(text))
    ec2 = Ec2(config.aws)
    for name in folders:
        ec2.launch(config.hosts[name], config.templates[name])
        remote_shell(sshd, f"mkdir -p {folders[name]}")
    opened: list[OpenHost] = []
    try:
        for name in folders:  # the cockpit's order: u on gpu, then u on cpu
            host = await open_host(
                config, paths, name, Face(ask=trust_all, on_event=Recorder().any,
                note=lambda m: None, console_keys=False),
            )  # fmt: skip
            opened.append(host)
        for name, folder in folders.items():  # both keep syncing, each from its own instance
            remote_shell(sshd, f"cat > {folder}/{name}.ipynb", NOTEBOOK.encode())
        deadline = time.monotonic() + 30
        arrived: set[str] = set()
        while time.monotonic() < deadline and len(arrived) < 2:
            arrived = {n for n in folders if (tmp_path / n / f"{n}.ipynb").exists()}
            await asyncio.sleep(0.2)
        assert arrived == {"gpu", "cpu"}
    finally:
        for each in opened:
            await each.session.down(final_sync=False)
        for name, folder in folders.items():
            remote_shell(sshd, f"rm -rf {folder}; tmux kill-session -t nbterm-two-{name} || true")
