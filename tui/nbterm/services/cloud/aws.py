"""boto3 clients from ``[aws]``: profile, region, endpoint, and botocore's standard retries."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotoConfig

from nbterm.config.schema import AwsConfig

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ssm import SSMClient

_BOTO_CONFIG = BotoConfig(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=10,
    read_timeout=30,
    user_agent_extra="nbterm",
)


def region(aws: AwsConfig) -> str | None:
    """``[aws] region``, else ``AWS_REGION`` (which the AWS CLI and newer SDKs read, but boto3
    does not), else None: boto3 then asks ``AWS_DEFAULT_REGION`` and the profile."""
    return aws.region or os.environ.get("AWS_REGION") or None


def _session(aws: AwsConfig) -> boto3.session.Session:
    return boto3.session.Session(profile_name=aws.profile, region_name=region(aws))


def ec2_client(aws: AwsConfig) -> EC2Client:
    """An EC2 client for ``[aws]`` (blocking; call it from a thread)."""
    return _session(aws).client("ec2", endpoint_url=aws.endpoint_url, config=_BOTO_CONFIG)


def ssm_client(aws: AwsConfig) -> SSMClient:
    """A Systems Manager client for ``[aws]`` (blocking; call it from a thread)."""
    return _session(aws).client("ssm", endpoint_url=aws.endpoint_url, config=_BOTO_CONFIG)


def caller_identity(aws: AwsConfig) -> str:
    """Who the credentials are (STS GetCallerIdentity: allowed to everyone who can sign in):
    ``account ACCOUNT (ARN)``. Raises botocore's errors (see ``ec2.explain``)."""
    sts = _session(aws).client("sts", endpoint_url=aws.endpoint_url, config=_BOTO_CONFIG)
    who = sts.get_caller_identity()
    return f"account {who.get('Account', '?')} ({who.get('Arn', '?')})"
