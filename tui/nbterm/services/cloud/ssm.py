"""AWS Systems Manager, for instances reached through it (``connect = "ssm"``).

What nbterm asks SSM is one thing: whether an instance's agent is online (it registers a while
after the instance runs, and only with an instance profile that lets it). The SSH session itself
runs through ``aws ssm start-session`` (``ssh.ssm_proxy_command``), whose plugin this laptop
needs: ``local_tools`` says whether it is there.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbterm.config.schema import AwsConfig
from nbterm.services.cloud.aws import ssm_client
from nbterm.services.cloud.ec2 import Ec2Error, explain

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

PLUGIN = "session-manager-plugin"
PLUGIN_DOCS = (
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
    "session-manager-working-with-install-plugin.html"
)
AGENT_ADVICE = (
    "its agent registers only with an instance profile whose role has the "
    "AmazonSSMManagedInstanceCore policy (instance_profile in its template), and a way out to "
    "SSM's endpoints (a NAT gateway, or VPC endpoints for ssm, ssmmessages and ec2messages)"
)


@dataclass(frozen=True)
class AgentStatus:
    """What SSM says of an instance's agent: ``Online``, ``ConnectionLost``, ``Inactive``, or
    ``unknown`` while it has never registered."""

    ping: str
    agent_version: str = ""
    platform: str = ""

    @property
    def online(self) -> bool:
        return self.ping == "Online"


def local_tools() -> list[str]:
    """What this laptop lacks to open an SSM session, each with its fix (empty: nothing)."""
    missing = []
    if shutil.which("aws") is None:
        missing.append(
            "the AWS CLI (`aws`) is not on PATH: install version 2 "
            "(https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
        )
    if shutil.which(PLUGIN) is None:
        missing.append(
            f"the AWS CLI's Session Manager plugin ({PLUGIN}) is not on PATH: install it "
            f"({PLUGIN_DOCS})"
        )
    return missing


class Ssm:
    """The SSM calls nbterm makes. Blocking; ``client`` may be injected (tests)."""

    def __init__(self, aws: AwsConfig, client: SSMClient | None = None) -> None:
        self.aws = aws
        self._client = client

    @property
    def client(self) -> SSMClient:
        if self._client is None:
            try:
                self._client = ssm_client(self.aws)
            except Exception as exc:
                raise explain(exc, "connecting to Systems Manager", self.aws.profile) from exc
        return self._client

    def agent(self, instance_id: str) -> AgentStatus:
        """The agent's status on ``instance_id`` as SSM sees it now."""
        try:
            answer = self.client.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
            )
        except Exception as exc:
            raise explain(exc, f"asking Systems Manager about {instance_id}",
                          self.aws.profile) from exc  # fmt: skip
        for info in answer.get("InstanceInformationList", []):
            if info.get("InstanceId") == instance_id:
                return AgentStatus(
                    str(info.get("PingStatus", "unknown"))[:32],
                    str(info.get("AgentVersion", ""))[:32],
                    str(info.get("PlatformName", ""))[:64],
                )
        return AgentStatus("unknown")

    def wait_online(self, instance_id: str, timeout: float = 300, delay: float = 5.0) -> None:
        """Until SSM sees the instance's agent online (bounded): SSM's word replaces a probe of
        port 22, which an instance with no public address never answers."""
        deadline = time.monotonic() + timeout
        status = AgentStatus("unknown")
        while time.monotonic() < deadline:
            status = self.agent(instance_id)
            if status.online:
                return
            time.sleep(delay)
        said = "has never registered" if status.ping == "unknown" else f"is {status.ping}"
        raise Ec2Error(
            f"Systems Manager does not see {instance_id} online within {timeout:g}s (its agent "
            f"{said}): {AGENT_ADVICE}"
        )
