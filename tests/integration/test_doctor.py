"""`nbterm config check --online`: AWS credentials and instances (moto), SSH logins (real sshd);
an expired SSO session or rejected keys say how to sign in again (botocore's Stubber, which is
the only way to make AWS refuse credentials here)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import UnauthorizedSSOTokenError
from botocore.stub import Stubber

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.cloud.aws import ec2_client
from nbterm.services.cloud.ec2 import Ec2, Ec2Error, explain
from nbterm.services.remote.host_keys import KnownHosts
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import remote_config_text
from tests.harness.sshd import SshServer

ROOT = Path(__file__).resolve().parents[2]


def check_online() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbterm", "config", "check", "--online"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tui")},
    )  # fmt: skip


@pytest.mark.sshd
def test_a_plain_host_is_logged_into_and_an_unknown_key_is_not_trusted(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    write_config(remote_config_text(sshd))
    first = check_online()
    assert first.returncode == 1, first.stdout + first.stderr
    assert "FAIL box" in first.stdout
    assert "run `nbterm up box` once to check it" in first.stdout
    assert not paths.known_hosts.exists() or "box" not in paths.known_hosts.read_text()
    KnownHosts(paths.known_hosts).add("box", sshd.host_key_pub)
    second = check_online()
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"ok   box              SSH login works ({sshd.user}@" in second.stdout
    assert "tmux and Jupyter found" in second.stdout


@pytest.mark.moto
def test_aws_credentials_and_each_instance_are_checked(
    moto_ec2: MotoEc2, write_config: Callable[[str], Path]
) -> None:
    config = load_config(
        write_config(
            f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
            '[hosts.gpu]\ninstance = "nb-gpu"\ntemplate = "gpu"\naddress = "127.0.0.1"\n'
            '[hosts.cpu]\ntemplate = "cpu"\naddress = "127.0.0.1"\n'
            '[templates.gpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "g5.xlarge"\n'
            '[templates.cpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "m7i.large"\n'
        )
    )
    launched = Ec2(config.aws).launch(config.hosts["gpu"], config.templates["gpu"])
    done = check_online()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   AWS              the credentials are accepted: account 123456789012" in done.stdout
    assert f"ok   gpu              {launched.id} " in done.stdout
    assert "ok   cpu              no instance of template cpu yet (nbterm launch)" in done.stdout


def test_an_expired_sso_session_says_how_to_sign_in() -> None:
    said = str(explain(UnauthorizedSSOTokenError(), "listing instances", "research"))
    assert "aws sso login --profile research" in said


@pytest.mark.moto
def test_credentials_aws_refuses_say_how_to_sign_in_again(
    moto_ec2: MotoEc2, write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(
        write_config(
            f'[aws]\nregion = "us-east-1"\nprofile = "research"\n'
            f'endpoint_url = "{moto_ec2.endpoint_url}"\n'
            '[hosts.gpu]\ninstance = "i-0123456789abcdef0"\naddress = "127.0.0.1"\n'
        )
    )
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    aws = type(config.aws)(region="us-east-1", endpoint_url=moto_ec2.endpoint_url)
    client = ec2_client(aws)
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_instances",
        service_error_code="AuthFailure",
        service_message="AWS was not able to validate the provided access credentials",
        http_status_code=401,
    )
    with stubber, pytest.raises(Ec2Error) as caught:
        Ec2(config.aws, client=client).find(config.hosts["gpu"])
    said = str(caught.value)
    assert "AWS did not accept the credentials" in said
    assert "aws sso login --profile research" in said


@pytest.mark.sshd
def test_a_host_without_its_jupyter_command_is_named_with_the_fix(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    write_config(remote_config_text(sshd, command="/nonexistent/bin/jupyter lab"))
    KnownHosts(paths.known_hosts).add("box", sshd.host_key_pub)
    done = check_online()
    assert done.returncode == 1
    assert "FAIL box              SSH login works, but '/nonexistent/bin/jupyter'" in done.stdout
    assert "set jupyter.command to its full path" in done.stdout


@pytest.mark.moto
async def test_ssm_hosts_are_checked_for_the_plugin_and_the_agent_each_with_its_fix(
    moto_ec2: MotoEc2,
    write_config: Callable[[str], Path],
    paths: Paths,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`connect = "ssm"`: whether this laptop has the AWS CLI and session-manager-plugin (the
    stand-ins of tests/harness/ssm.py on PATH, or an empty PATH), and whether SSM sees each
    running instance's agent (Stubber: moto has no DescribeInstanceInformation)."""
    from nbterm.services.cloud import ssm as ssm_module
    from nbterm.services.cloud.aws import ssm_client
    from nbterm.services.doctor import online_findings
    from tests.harness import ssm as fake_ssm

    config = load_config(write_config(
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
        '[hosts.gpu]\ntemplate = "gpu"\n[hosts.cpu]\ntemplate = "cpu"\n'
        '[templates.gpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "g5.xlarge"\n'
        'connect = "ssm"\n'
        '[templates.cpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "m5.large"\n'
        'connect = "ssm"\n'
    ))  # fmt: skip
    ec2 = Ec2(config.aws)
    gpu = ec2.launch(config.hosts["gpu"], config.templates["gpu"])
    cpu = ec2.launch(config.hosts["cpu"], config.templates["cpu"])
    client = ssm_client(config.aws)
    monkeypatch.setattr(ssm_module, "ssm_client", lambda aws: client)

    def agents(*answers: tuple[str, str | None]) -> None:
        for instance_id, ping in answers:
            found = [] if ping is None else [{"InstanceId": instance_id, "PingStatus": ping,
                                              "AgentVersion": "3.3.1"}]  # fmt: skip
            stubber.add_response(
                "describe_instance_information", {"InstanceInformationList": found},
                {"Filters": [{"Key": "InstanceIds", "Values": [instance_id]}]},
            )  # fmt: skip

    fake_ssm.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with Stubber(client) as stubber:
        agents((gpu.id, "Online"), (cpu.id, None))
        found = {f.subject: f for f in await online_findings(config, paths)}
        stubber.assert_no_pending_responses()
    assert found["Systems Manager"].ok
    assert "session-manager-plugin are here" in found["Systems Manager"].detail
    assert found["gpu"].ok and "sees its agent online (agent 3.3.1)" in found["gpu"].detail
    assert not found["cpu"].ok
    assert "has never registered" in found["cpu"].detail
    assert "AmazonSSMManagedInstanceCore" in found["cpu"].detail  # the fix

    monkeypatch.setenv("PATH", str(tmp_path / "nothing here"))
    with Stubber(client) as stubber:
        agents((gpu.id, "ConnectionLost"), (cpu.id, "Online"))
        found = {f.subject: f for f in await online_findings(config, paths)}
    missing = found["Systems Manager"]
    assert not missing.ok
    assert "the AWS CLI (`aws`) is not on PATH: install version 2" in missing.detail
    assert "session-manager-plugin) is not on PATH: install it (https://" in missing.detail
    assert not found["gpu"].ok and "is ConnectionLost" in found["gpu"].detail
