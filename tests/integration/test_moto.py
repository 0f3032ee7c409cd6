"""The EC2 client nbterm builds from [aws] reaches moto's server through endpoint_url."""

from __future__ import annotations

import pytest

from nbterm.config.schema import AwsConfig
from nbterm.services.cloud.aws import ec2_client
from tests.harness.moto_ec2 import MotoEc2

pytestmark = pytest.mark.moto


def test_launch_a_spot_instance_and_find_it_by_tag(moto_ec2: MotoEc2) -> None:
    client = ec2_client(AwsConfig(region="us-east-1", endpoint_url=moto_ec2.endpoint_url))
    assert client.meta.endpoint_url == moto_ec2.endpoint_url
    retries = getattr(client.meta.config, "retries", None)
    assert retries is not None
    assert retries["mode"] == "standard"
    launched = client.run_instances(
        ImageId="ami-0abcdef1234567890",
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        InstanceMarketOptions={"MarketType": "spot"},
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Name", "Value": "nb-gpu"}, {"Key": "nbterm", "Value": "1"}],
            }
        ],
    )
    instance_id = launched["Instances"][0]["InstanceId"]
    found = client.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["nb-gpu"]}])
    instances = [i for r in found["Reservations"] for i in r["Instances"]]
    assert [i["InstanceId"] for i in instances] == [instance_id]
    assert instances[0].get("InstanceLifecycle") == "spot"


def test_each_test_starts_from_an_empty_ec2(moto_ec2: MotoEc2) -> None:
    client = ec2_client(AwsConfig(region="us-east-1", endpoint_url=moto_ec2.endpoint_url))
    assert client.describe_instances()["Reservations"] == []


def test_aws_region_alone_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_REGION (what the AWS CLI reads) without AWS_DEFAULT_REGION: boto3 alone finds no
    region; nbterm passes it on."""
    from nbterm.config.schema import AwsConfig
    from nbterm.services.cloud.aws import ec2_client

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert ec2_client(AwsConfig()).meta.region_name == "eu-west-3"
    assert ec2_client(AwsConfig(region="us-east-2")).meta.region_name == "us-east-2"
