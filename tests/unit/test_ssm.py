"""`connect = "ssm"`: the config's rules, both SSH stacks' proxy command, SSM's agent status.

SSM's DescribeInstanceInformation is one of what no local server does (moto has no such call):
botocore's Stubber answers it, in the order an instance's agent registers."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.stub import Stubber

from nbterm.config import ConfigError, parse_config
from nbterm.config.schema import AwsConfig
from nbterm.locations import resolve_paths
from nbterm.services.cloud.aws import ssm_client
from nbterm.services.cloud.ec2 import Ec2Error
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.lifecycle import reach_for, ssh_address
from nbterm.services.cloud.ssm import Ssm
from nbterm.services.remote.addresses import Ec2Address
from nbterm.services.remote.ssh import ssm_proxy_command
from nbterm.services.remote.ssh_config import render_host

AWS = '[aws]\nregion = "eu-west-1"\nprofile = "work"\n'
TEMPLATE = '[templates.gpu]\nami = "ami-0abc"\ninstance_type = "g5.xlarge"\nconnect = "ssm"\n'
INSTANCE = "i-0123456789abcdef0"


def _problems(text: str, tmp_path: Path) -> list[tuple[str, str, int | None]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "config.toml", check_files=False)
    return [(p.key, p.message, p.line) for p in caught.value.problems]


def test_ssm_needs_an_ec2_host_and_no_other_way_in(tmp_path: Path) -> None:
    plain = '[hosts.box]\nhostname = "example.org"\nconnect = "ssm"\n'
    assert _problems(plain, tmp_path) == [
        ("hosts.box.connect", 'connect = "ssm" reaches an EC2 instance by its id: this is a '
         "plain SSH host (hostname = ...)", 3),
    ]  # fmt: skip
    own = '[hosts.gpu]\ninstance = "i-1"\nconnect = "ssm"\naddress = "10.0.0.5"\n'
    assert _problems(own, tmp_path) == [
        ("hosts.gpu.address", 'connect = "ssm" is the way in already: remove address', 4)
    ]
    inherited = TEMPLATE + '[hosts.gpu]\ntemplate = "gpu"\nproxy_jump = "bastion.example.org"\n'
    [(key, message, line)] = _problems(inherited, tmp_path)
    assert key == "hosts.gpu.proxy_jump"
    assert "its template 'gpu' says connect = \"ssm\"" in message
    assert line == 7
    wrong = TEMPLATE.replace('"ssm"', '"ssh-please"') + '[hosts.gpu]\ntemplate = "gpu"\n'
    assert [(k, m) for k, m, _ in _problems(wrong, tmp_path)] == [
        ("templates.gpu.connect", "expected ssh or ssm, got 'ssh-please'")
    ]


def test_the_region_and_profile_must_be_words_a_command_line_carries(tmp_path: Path) -> None:
    text = '[aws]\nprofile = "a b;rm"\n' + TEMPLATE + '[hosts.gpu]\ntemplate = "gpu"\n'
    [(key, message, line)] = _problems(text, tmp_path)
    assert (key, line) == ("aws.profile", 2)
    assert "cannot carry" in message


def test_both_ssh_stacks_reach_the_instance_by_id_through_ssm(tmp_path: Path) -> None:
    config = parse_config(AWS + TEMPLATE + '[hosts.gpu]\ntemplate = "gpu"\n',
                          tmp_path / "config.toml", check_files=False)  # fmt: skip
    host = config.hosts["gpu"]
    assert host.via_ssm and host.reached_through == "AWS Systems Manager"
    instance = Instance(id=INSTANCE, name="gpu", host="gpu", state="running", type="g5.xlarge",
                        spot=False, az="eu-west-1a", launch_time=None, public_dns="",
                        public_ip="", private_ip="10.0.0.5")  # fmt: skip
    assert ssh_address(host, instance) == INSTANCE  # no address at all: the id is enough
    command = (
        "aws ssm start-session --target %h --document-name AWS-StartSSHSession "
        "--parameters portNumber=%p --region eu-west-1 --profile work"
    )
    assert ssm_proxy_command(config) == command
    # asyncssh's stack: the command with the id and port in it, run by /bin/sh
    target = reach_for(config, host, instance).target
    assert (target.address, target.alias, target.port) == (INSTANCE, INSTANCE, 22)
    assert target.proxy_argv() == [
        "/bin/sh", "-c",
        f"exec aws ssm start-session --target {INSTANCE} --document-name AWS-StartSSHSession "
        "--parameters portNumber=22 --region eu-west-1 --profile work",
    ]  # fmt: skip
    # OpenSSH's: rsync and `nbterm ssh` go the same way, the key checked under the id
    lines = render_host(host, resolve_paths(), Ec2Address(INSTANCE, INSTANCE), (), command)
    assert f"    HostName {INSTANCE}" in lines
    assert f"    ProxyCommand {command}" in lines
    assert f"    HostKeyAlias {INSTANCE}" in lines


def _stubbed(*pings: str | None) -> tuple[Ssm, Stubber]:
    client = ssm_client(AwsConfig(region="us-east-1"))
    stubber = Stubber(client)
    asked = {"Filters": [{"Key": "InstanceIds", "Values": [INSTANCE]}]}
    for ping in pings:
        found = [] if ping is None else [{"InstanceId": INSTANCE, "PingStatus": ping,
                                          "AgentVersion": "3.3.1"}]  # fmt: skip
        stubber.add_response("describe_instance_information",
                             {"InstanceInformationList": found}, asked)  # fmt: skip
    stubber.activate()
    return Ssm(AwsConfig(region="us-east-1"), client), stubber


def test_the_wait_after_a_start_is_ssm_saying_the_agent_is_online() -> None:
    ssm, stubber = _stubbed(None, "ConnectionLost", "Online")
    ssm.wait_online(INSTANCE, timeout=10, delay=0.01)
    stubber.assert_no_pending_responses()  # asked until online, and no more


def test_an_agent_that_never_registers_is_said_with_its_fix() -> None:
    ssm, _stubber = _stubbed(*[None] * 50)
    with pytest.raises(Ec2Error) as caught:
        ssm.wait_online(INSTANCE, timeout=0.2, delay=0.01)
    said = str(caught.value)
    assert f"Systems Manager does not see {INSTANCE} online" in said
    assert "has never registered" in said
    assert "AmazonSSMManagedInstanceCore" in said
