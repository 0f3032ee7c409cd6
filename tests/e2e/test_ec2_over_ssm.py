"""An EC2 instance with no address at all, reached through AWS Systems Manager (issue 25):
launched with no public address, waited for by SSM's word on its agent, then the whole `up`
(host key pinned under the instance id, Jupyter in tmux, the tunnel) over asyncssh's proxy
command, and the notebooks synced home by rsync over OpenSSH's ProxyCommand, both through
`aws ssm start-session --target i-...`.

The `aws` on PATH is tests/harness/ssm.py's stand-in: it checks the arguments it is given and
joins its standard input and output to the loopback sshd, as the AWS-StartSSHSession document
joins them to the instance's sshd. moto plays EC2 (it has no SSM agent status); Stubber
answers DescribeInstanceInformation. nbterm is made to see no address of any kind for the
instance, so nothing could have reached it but its id."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.cloud import ec2 as ec2_module
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud import ssm as ssm_module
from nbterm.services.cloud.aws import ec2_client, ssm_client
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.host.up import Face, open_host
from nbterm.services.remote.forward import ForwardMode
from nbterm.services.remote.host_keys import KnownHosts
from tests.harness import ssm as fake_ssm
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import api_status, remote_config_text, remote_shell, sync_rule, trust_all
from tests.harness.sshd import SshServer
from tests.integration.test_remote import Recorder

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _no_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever moto holds (it gives every instance a private address), nbterm sees none."""
    parse = ec2_module._instance

    def bare(raw: Any) -> Any:
        return dataclasses.replace(parse(raw), public_dns="", public_ip="", private_ip="")

    monkeypatch.setattr(ec2_module, "_instance", bare)


@pytest.mark.parametrize("forward", ["inline", "process"])
async def test_an_instance_with_no_address_comes_up_and_syncs_through_ssm(
    forward: ForwardMode,
    moto_ec2: MotoEc2,
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stand_in = fake_ssm.install(tmp_path / "bin with space")
    monkeypatch.setenv("PATH", f"{stand_in.bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(fake_ssm.LOG_VARIABLE, str(stand_in.log))
    _no_address(monkeypatch)
    folder = f"nbterm-ssm-{uuid.uuid4().hex[:8]}"
    local = tmp_path / "local notebooks"
    text = (
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
        + remote_config_text(sshd, local_port=31357).split("[hosts.box]")[0]
        + '[hosts.gpu]\ntemplate = "gpu"\n'
        f'port = {sshd.port}\nuser = "{sshd.user}"\nidentity_file = "{sshd.client_key}"\n'
        '[templates.gpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "g5.xlarge"\n'
        'connect = "ssm"\n'
    ) + sync_rule(folder, local, host="gpu")
    config = load_config(write_config(text))
    host = config.hosts["gpu"]
    client = ssm_client(config.aws)
    monkeypatch.setattr(ssm_module, "ssm_client", lambda aws: client)
    remote_shell(sshd, f"mkdir -p {folder}")
    notes: list[str] = []
    recorder = Recorder()
    with Stubber(client) as stubber:

        def agent(instance_id: str, *pings: str | None) -> None:
            asked = {"Filters": [{"Key": "InstanceIds", "Values": [instance_id]}]}
            for ping in pings:
                found = [] if ping is None else [{"InstanceId": instance_id, "PingStatus": ping}]
                stubber.add_response("describe_instance_information",
                                     {"InstanceInformationList": found}, asked)  # fmt: skip

        def launched(instance_id: str) -> None:
            monkeypatch.setenv(fake_ssm.TARGET_VARIABLE, instance_id)  # SSM can reach it now
            agent(instance_id, None, "ConnectionLost", "Online")  # the launch's wait
            agent(instance_id, "Online")  # the up's

        try:
            instance = await asyncio.to_thread(
                lifecycle.launch, Ec2(config.aws), host, config.templates["gpu"],
                note=notes.append, delay=0.1, on_launched=launched,
            )  # fmt: skip
            assert instance.address == ""  # nothing to reach but its id
            opened = await open_host(
                config, paths, "gpu",
                Face(ask=trust_all, on_event=recorder.any, note=notes.append, forward=forward,
                     console_keys=False),
            )  # fmt: skip
            try:
                stubber.assert_no_pending_responses()  # SSM's word, asked until online
                assert opened.session.ec2["gpu"].address == instance.id
                assert KnownHosts(paths.known_hosts).keys_for(instance.id) == [sshd.host_key_pub]
                status = await asyncio.to_thread(
                    api_status, opened.result.local_port, opened.result.server.token
                )
                assert "kernels" in status
                remote_shell(sshd, f"cat > {folder}/experiment.ipynb", NOTEBOOK.encode())
                deadline = time.monotonic() + 15
                while not (local / "experiment.ipynb").exists() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert (local / "experiment.ipynb").read_text() == NOTEBOOK, recorder.events
            finally:
                final = await opened.session.down()
            assert final.ok
        finally:
            remote_shell(sshd, f"rm -rf {folder}")
    assert any("waiting for Systems Manager to see its agent online" in n for n in notes), notes
    assert not any("waiting for SSH on" in n for n in notes), notes  # no port 22 was probed
    raw = ec2_client(config.aws).describe_instances(InstanceIds=[instance.id])
    seen = raw["Reservations"][0]["Instances"][0]
    assert not seen.get("PublicIpAddress"), seen  # from EC2's side: launched with none
    calls = stand_in.calls()
    wanted = ["ssm", "start-session", "--target", instance.id, "--document-name",
              "AWS-StartSSHSession", "--parameters", f"portNumber={sshd.port}",
              "--region", "us-east-1"]  # fmt: skip
    assert calls and all(call["args"] == wanted for call in calls), calls
    parents = {str(call["parent"]) for call in calls}
    assert "ssh" in parents, parents  # OpenSSH's stack: rsync's transport
    assert parents - {"ssh"}, parents  # asyncssh's: the session's own connection
    # the forwarder process (the cockpit's and headless up's tunnel) dials its own, too
    forwarder = {p for p in parents if "nbterm.services.remote.forwarder" in p}
    assert bool(forwarder) == (forward == "process"), parents
