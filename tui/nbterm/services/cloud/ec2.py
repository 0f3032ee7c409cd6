"""EC2 with boto3 (blocking: callers run these in threads).

Instances are found live, by id or Name tag, and the ones nbterm launches carry an ``nbterm:host``
tag. Addresses are read afresh after every state change; nobody pastes a DNS name again. Every
AWS error a user can meet becomes an :class:`Ec2Error` that says what to do.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from nbterm.config import Host
from nbterm.config.schema import AwsConfig, TemplateConfig
from nbterm.services.cloud.aws import ec2_client
from nbterm.services.cloud.instance import Instance

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

HOST_TAG = "nbterm:host"
STOPPED_BY_TAG = "nbterm:stopped-by"
"""Which nbterm stopped the instance and why (``NAME|WHY|EPOCH``): every attached nbterm reads
it and says who stopped the instance under it."""
LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]
SPOT_HISTORY_PAGES = 10
"""Pages of spot price history read for one run's cost (10,000 price changes at most)."""


class Ec2Error(Exception):
    """An EC2 request failed; the message says why and what to do."""


_ADVICE = {
    "UnauthorizedOperation": "your AWS identity is not allowed to do this: check its IAM policy",
    "AuthFailure": "AWS rejected the credentials: check the profile, or refresh expired keys",
    "InsufficientInstanceCapacity": "AWS has no capacity for this instance type in this "
    "availability zone right now: try another zone (subnet_id) or another instance type",
    "MaxSpotInstanceCountExceeded": "you have reached your account's spot instance limit: stop "
    "or terminate one, or ask AWS for a higher limit",
    "SpotMaxPriceTooLow": "max_price is below the current spot price: raise it or leave it out",
    "InvalidAMIID.NotFound": "the AMI does not exist in this region: check ami and region",
    "InvalidAMIID.Malformed": "the AMI id is malformed: check ami",
    "RequestLimitExceeded": "AWS is throttling requests: wait a minute and try again",
    "InvalidInstanceID.NotFound": "the instance no longer exists (terminated and gone?)",
    "IncorrectInstanceState": "the instance is not in a state that allows this right now",
    "UnsupportedOperation": "EC2 does not allow this for this instance (a one-time spot instance "
    "cannot be stopped: terminate it, or launch spot instances as nbterm does, persistent with "
    "stop on interruption)",
    "InvalidKeyPair.NotFound": "the key pair named by key_name does not exist in this region",
    "InvalidGroup.NotFound": "a security group in security_group_ids does not exist",
    "InvalidSubnetID.NotFound": "the subnet_id does not exist in this region",
    "VcpuLimitExceeded": "you have reached your account's vCPU limit for this instance family",
}


_EXPIRED = {
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "AuthFailure",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
}
"""Codes for credentials that AWS no longer accepts (an expired session, a revoked key)."""


def _profile_name(profile: str | None) -> str:
    """The profile boto3 signs in with: ``[aws] profile``, else AWS_PROFILE, else default."""
    return profile or os.environ.get("AWS_PROFILE") or "default"


def _login_advice(profile: str | None) -> str:
    name = _profile_name(profile)
    return (
        f"sign in again: `aws sso login --profile {name}` for an SSO profile, or renew the "
        f"keys of profile {name!r} (`aws configure --profile {name}`)"
    )


def explain(exc: Exception, doing: str, profile: str | None = None) -> Ec2Error:
    """What went wrong, in words that say what to do. ``profile``: ``[aws] profile``."""
    if isinstance(exc, Ec2Error):
        return exc
    if isinstance(exc, (SSOTokenLoadError, UnauthorizedSSOTokenError, TokenRetrievalError)):
        name = _profile_name(profile)
        return Ec2Error(
            f"{doing}: the AWS SSO session of profile {name!r} has expired or was never "
            f"started: run `aws sso login --profile {name}`, then try again"
        )
    if isinstance(exc, NoCredentialsError):
        return Ec2Error(
            f"{doing}: no AWS credentials: set [aws] profile in the config, or AWS_PROFILE, "
            "or run `aws configure`"
        )
    if isinstance(exc, NoRegionError):
        return Ec2Error(f"{doing}: no AWS region: set [aws] region in the config, or AWS_REGION")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        advice = _ADVICE.get(code, str(error.get("Message", "")) or "see the AWS message")
        if code in _EXPIRED:
            advice = f"AWS did not accept the credentials ({advice}); {_login_advice(profile)}"
        return Ec2Error(f"{doing}: {code}: {advice}")
    if isinstance(exc, BotoCoreError):
        return Ec2Error(f"{doing}: {exc}")
    return Ec2Error(f"{doing}: {exc}")


def _tags(raw: Mapping[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in raw.get("Tags", []) or []}


def _instance(raw: Mapping[str, Any]) -> Instance:
    tags = _tags(raw)
    reason = raw.get("StateReason", {}) or {}
    return Instance(
        id=str(raw["InstanceId"]),
        name=tags.get("Name", ""),
        host=tags.get(HOST_TAG, ""),
        state=str(raw.get("State", {}).get("Name", "unknown")),
        type=str(raw.get("InstanceType", "")),
        spot=raw.get("InstanceLifecycle") == "spot",
        az=str(raw.get("Placement", {}).get("AvailabilityZone", "")),
        launch_time=raw.get("LaunchTime"),
        public_dns=str(raw.get("PublicDnsName", "") or ""),
        public_ip=str(raw.get("PublicIpAddress", "") or ""),
        private_ip=str(raw.get("PrivateIpAddress", "") or ""),
        state_reason=str(reason.get("Message", "") or reason.get("Code", "")),
        spot_request=str(raw.get("SpotInstanceRequestId", "") or ""),
        key_name=str(raw.get("KeyName", "") or ""),
        stopped_by=tags.get(STOPPED_BY_TAG, "")[:256],
    )


class Ec2:
    """The EC2 calls nbterm makes. Blocking; ``client`` may be injected (tests, the demo)."""

    def __init__(self, aws: AwsConfig, client: EC2Client | None = None) -> None:
        self.aws = aws
        self._client = client

    def _explain(self, exc: Exception, doing: str) -> Ec2Error:
        return explain(exc, doing, self.aws.profile)

    @property
    def client(self) -> EC2Client:
        if self._client is None:
            try:
                self._client = ec2_client(self.aws)
            except Exception as exc:
                raise self._explain(exc, "connecting to EC2") from exc
        return self._client

    def _describe(self, doing: str, **kwargs: Any) -> list[Instance]:
        try:
            pages = self.client.get_paginator("describe_instances").paginate(**kwargs)
            return [
                _instance(i) for page in pages for r in page["Reservations"] for i in r["Instances"]
            ]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
                return []
            raise self._explain(exc, doing) from exc
        except Exception as exc:
            raise self._explain(exc, doing) from exc

    def get(self, instance_id: str) -> Instance | None:
        found = self._describe(f"looking up {instance_id}", InstanceIds=[instance_id])
        return found[0] if found else None

    def find(self, host: Host) -> Instance | None:
        """The live instance of ``host``: by id, by Name tag, or by nbterm's own tag."""
        if host.instance and host.instance.startswith("i-"):
            one = self.get(host.instance)
            return one if one is not None and one.state != "terminated" else None
        states = {"Name": "instance-state-name", "Values": LIVE_STATES}
        by_host = {"Name": f"tag:{HOST_TAG}", "Values": [host.name]}
        found: list[Instance] = []
        if host.instance:
            by_name = {"Name": "tag:Name", "Values": [host.instance]}
            found = self._describe(f"looking up {host.name}", Filters=[by_name, states])
        if not found:  # launched by nbterm for this host, under another name
            found = self._describe(f"looking up {host.name}", Filters=[by_host, states])
        if len(found) > 1:
            ids = ", ".join(i.id for i in found)
            raise Ec2Error(
                f"{host.name}: {len(found)} live instances match ({ids}); name one by its "
                'instance id in the config (instance = "i-...")'
            )
        return found[0] if found else None

    def managed(self, hosts: list[Host]) -> list[Instance]:
        """Instances of the configured EC2 hosts, and any others nbterm launched."""
        states = {"Name": "instance-state-name", "Values": LIVE_STATES}
        tagged = self._describe(
            "listing instances", Filters=[{"Name": "tag-key", "Values": [HOST_TAG]}, states]
        )
        by_id = {i.id: i for i in tagged}
        for host in hosts:
            if not host.is_ec2:
                continue
            instance = self.find(host)
            if instance is not None:
                by_id.setdefault(instance.id, instance)
        return sorted(by_id.values(), key=lambda i: (i.host or i.name, i.id))

    def _root_device(self, ami: str) -> str:
        try:
            images = self.client.describe_images(ImageIds=[ami])["Images"]
        except Exception as exc:
            raise self._explain(exc, f"reading AMI {ami}") from exc
        if not images:
            raise Ec2Error(f"AMI {ami} not found in this region")
        return str(images[0].get("RootDeviceName") or "/dev/sda1")

    def launch(
        self,
        host: Host,
        template: TemplateConfig,
        name: str | None = None,
        *,
        key_name: str | None = None,
    ) -> Instance:
        """``key_name``: the key pair to install (default: the template's)."""
        label = name or host.instance or host.name
        tags = [
            {"Key": "Name", "Value": label},
            {"Key": HOST_TAG, "Value": host.name},
            *({"Key": k, "Value": v} for k, v in template.tags.items()),
        ]
        request: dict[str, Any] = {
            "ImageId": template.ami,
            "InstanceType": template.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            # said, not left to a default: a power-off from inside (the idle guard, `sudo
            # shutdown`) stops it, disk kept, and a spot instance keeps its persistent request
            "InstanceInitiatedShutdownBehavior": "stop",
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
        }
        if key_name or template.key_name:
            request["KeyName"] = key_name or template.key_name
        if template.security_group_ids:
            request["SecurityGroupIds"] = list(template.security_group_ids)
        if template.subnet_id:
            request["SubnetId"] = template.subnet_id
        if template.user_data:
            request["UserData"] = template.user_data
        if template.instance_profile:
            profile = template.instance_profile
            request["IamInstanceProfile"] = (
                {"Arn": profile} if profile.startswith("arn:") else {"Name": profile}
            )
        if host.via_ssm:  # SSM's agent dials out: no public address, nothing to let in
            interface: dict[str, Any] = {"DeviceIndex": 0, "AssociatePublicIpAddress": False}
            if "SubnetId" in request:
                interface["SubnetId"] = request.pop("SubnetId")
            if "SecurityGroupIds" in request:
                interface["Groups"] = request.pop("SecurityGroupIds")
            request["NetworkInterfaces"] = [interface]
        if template.volume_gb:
            request["BlockDeviceMappings"] = [
                {
                    "DeviceName": self._root_device(template.ami),
                    "Ebs": {"VolumeSize": template.volume_gb, "VolumeType": "gp3",
                            "DeleteOnTermination": True},
                }
            ]  # fmt: skip
        if template.spot:
            # persistent + stop on interruption: the instance can be stopped and started like an
            # on-demand one, and an interruption stops it (disk kept) instead of deleting it
            options: dict[str, Any] = {
                "SpotInstanceType": "persistent",
                "InstanceInterruptionBehavior": "stop",
            }
            if template.max_price is not None:
                options["MaxPrice"] = f"{template.max_price:.4f}"
            request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}
        try:
            raw = self.client.run_instances(**request)["Instances"][0]
        except Exception as exc:
            raise self._explain(exc, f"launching {label} ({template.instance_type})") from exc
        return _instance(raw)

    def _act(self, doing: str, call: Callable[..., Any], instance_id: str) -> Instance:
        try:
            call(InstanceIds=[instance_id])
        except Exception as exc:
            raise self._explain(exc, doing) from exc
        found = self.get(instance_id)
        if found is None:
            raise Ec2Error(f"{doing}: the instance {instance_id} vanished")
        return found

    def start(self, instance_id: str) -> Instance:
        return self._act(f"starting {instance_id}", self.client.start_instances, instance_id)

    def mark_stopped_by(self, instance_id: str, value: str | None) -> None:
        """Record who stops the instance (None: forget it, as a start does). Best effort: an
        account that may not tag still stops, only without the name."""
        try:
            if value is None:
                self.client.delete_tags(Resources=[instance_id], Tags=[{"Key": STOPPED_BY_TAG}])
            else:
                self.client.create_tags(
                    Resources=[instance_id], Tags=[{"Key": STOPPED_BY_TAG, "Value": value[:256]}]
                )
        except Exception:  # noqa: BLE001, S110 - the stop matters, its label does not
            pass

    def stop(self, instance_id: str) -> Instance:
        return self._act(f"stopping {instance_id}", self.client.stop_instances, instance_id)

    def terminate(self, instance_id: str) -> Instance:
        return self._act(f"terminating {instance_id}", self.client.terminate_instances, instance_id)

    def cancel_spot_request(self, request_id: str) -> None:
        """Cancel a spot request (the instance it launched keeps running until terminated)."""
        try:
            self.client.cancel_spot_instance_requests(SpotInstanceRequestIds=[request_id])
        except Exception as exc:
            raise self._explain(exc, f"cancelling the spot request {request_id}") from exc

    def open_spot_requests(self) -> list[tuple[str, str, str]]:
        """Spot requests that can still launch an instance and bill for it: (request id, state,
        instance id or "")."""
        try:
            found = self.client.describe_spot_instance_requests(
                Filters=[{"Name": "state", "Values": ["open", "active", "disabled"]}]
            )
        except Exception as exc:
            raise self._explain(exc, "listing spot requests") from exc
        return [
            (str(r.get("SpotInstanceRequestId", "")), str(r.get("State", "")),
             str(r.get("InstanceId", "") or ""))
            for r in found.get("SpotInstanceRequests", [])
        ]  # fmt: skip

    def wait_for(
        self,
        instance_id: str,
        wanted: str,
        *,
        timeout: float = 600,
        delay: float = 2.0,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Instance:
        """Poll until the instance reaches ``wanted``; fail fast if it is going away instead."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.get(instance_id)
            if found is None:
                raise Ec2Error(f"{instance_id} vanished while waiting for it to be {wanted}")
            if found.state == wanted:
                return found
            if wanted != "terminated" and found.state in ("shutting-down", "terminated"):
                reason = f" ({found.state_reason})" if found.state_reason else ""
                raise Ec2Error(f"{instance_id} is {found.state}{reason}, not {wanted}")
            if time.monotonic() > deadline or cancelled():
                raise Ec2Error(
                    f"{instance_id} is still {found.state} after {timeout:g}s, not {wanted}"
                )
            time.sleep(delay)

    def console_output(self, instance_id: str) -> str:
        try:
            return str(self.client.get_console_output(InstanceId=instance_id).get("Output", ""))
        except Exception as exc:
            raise self._explain(exc, f"reading the console of {instance_id}") from exc

    def spot_price_history(
        self, instance_type: str, az: str, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[dt.datetime, float]] | None:
        """The zone's Linux spot prices from ``start`` to ``end``, oldest first: each price holds
        from its time until the next one. EC2 includes the last change before ``start``, so the
        first price is the one a run that started then was charged. None when EC2 cannot say.
        Bounded: ``SPOT_HISTORY_PAGES`` pages of at most 1,000 changes (a price changes a few
        times a day)."""
        changes: list[tuple[dt.datetime, float]] = []
        asked: dict[str, Any] = {
            "InstanceTypes": [instance_type], "AvailabilityZone": az,
            "ProductDescriptions": ["Linux/UNIX"], "StartTime": start, "EndTime": end,
        }  # fmt: skip
        try:
            for _ in range(SPOT_HISTORY_PAGES):
                page = self.client.describe_spot_price_history(**asked)
                for record in page["SpotPriceHistory"]:
                    changes.append((record["Timestamp"], float(record["SpotPrice"])))
                asked["NextToken"] = page.get("NextToken", "")
                if not asked["NextToken"]:
                    break
        except Exception:  # noqa: BLE001 - a price is information: unknown rather than a failure
            return None
        return sorted(changes) or None


def wait_for_ssh(address: str, port: int, timeout: float = 300, delay: float = 2.0) -> None:
    """Until something on ``address:port`` greets like an SSH server (bounded)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=5) as sock:
                sock.settimeout(5)
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(delay)
    raise Ec2Error(f"SSH on {address}:{port} did not answer within {timeout:g}s ({last})")
