"""The EC2 lifecycle against moto's server; what moto cannot do, with botocore's Stubber."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from nbterm.config import LoadedConfig, load_config
from nbterm.config.schema import AwsConfig
from nbterm.locations import Paths
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.aws import ec2_client
from nbterm.services.cloud.ec2 import HOST_TAG, Ec2, Ec2Error
from nbterm.services.cloud.pricing import parse_price_list, rate_of
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.procs import free_port

pytestmark = pytest.mark.moto

TEMPLATES = """
[templates.gpu]
ami = "ami-0abcdef1234567890"
instance_type = "g5.xlarge"
spot = true
max_price = 0.6

[templates.cpu]
ami = "ami-0abcdef1234567890"
instance_type = "m7i.large"
"""


@pytest.fixture
def config(moto_ec2: MotoEc2, write_config: Callable[[str], Path]) -> LoadedConfig:
    closed = free_port()
    text = (
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
        # moto's DNS names lead nowhere: SSH goes to a closed loopback port, never off the machine
        '[hosts.gpu]\ninstance = "nb-gpu"\ntemplate = "gpu"\n'
        f'address = "127.0.0.1"\nport = {closed}\n'
        f'[hosts.cpu]\ntemplate = "cpu"\naddress = "127.0.0.1"\nport = {closed}\n' + TEMPLATES
    )
    return load_config(write_config(text))


def notes() -> Callable[[str], None]:
    return lambda message: None


def test_launch_spot_and_on_demand_list_stop_start_terminate(
    config: LoadedConfig, paths: Paths
) -> None:
    ec2 = Ec2(config.aws)
    gpu, cpu = config.hosts["gpu"], config.hosts["cpu"]
    spot = ec2.launch(gpu, config.templates["gpu"])
    on_demand = ec2.launch(cpu, config.templates["cpu"])
    assert spot.spot
    assert not on_demand.spot
    assert (spot.name, spot.host) == ("nb-gpu", "gpu")  # Name from the host's instance
    assert (on_demand.name, on_demand.host) == ("cpu", "cpu")  # no instance name: the host's
    assert ec2.find(gpu) == ec2.get(spot.id)
    assert ec2.find(cpu) is not None
    managed = ec2.managed(list(config.hosts.values()))
    assert {i.id for i in managed} == {spot.id, on_demand.id}
    running = ec2.wait_for(spot.id, "running", delay=0.1)
    before = running.public_dns
    stopped = lifecycle.stop(ec2, gpu, note=notes(), delay=0.1)
    assert stopped.state == "stopped"
    started = ec2.wait_for(ec2.start(spot.id).id, "running", delay=0.1)
    assert started.public_dns
    assert started.public_dns != before  # a new address after stop/start, found live
    done = lifecycle.terminate(ec2, gpu, paths, note=notes(), delay=0.1)
    assert done.state == "terminated"
    assert ec2.find(gpu) is None


def test_spot_is_requested_persistent_with_stop_on_interruption(config: LoadedConfig) -> None:
    """So that `nbterm stop` works on spot instances, and an interruption keeps the disk."""
    client = ec2_client(config.aws)
    expected = {
        "ImageId": "ami-0abcdef1234567890",
        "InstanceType": "g5.xlarge",
        "MinCount": 1,
        "MaxCount": 1,
        # said, not left to the default: a power-off from inside (the idle guard) must stop it
        "InstanceInitiatedShutdownBehavior": "stop",
        "TagSpecifications": ANY,
        "InstanceMarketOptions": {
            "MarketType": "spot",
            "SpotOptions": {
                "SpotInstanceType": "persistent",
                "InstanceInterruptionBehavior": "stop",
                "MaxPrice": "0.6000",
            },
        },
    }
    with Stubber(client) as stubber:
        stubber.add_response(
            "run_instances",
            {
                "Instances": [
                    {
                        "InstanceId": "i-0123456789abcdef0",
                        "State": {"Name": "pending"},
                        "InstanceLifecycle": "spot",
                    }
                ]
            },
            expected,
        )
        launched = Ec2(config.aws, client).launch(config.hosts["gpu"], config.templates["gpu"])
        stubber.assert_no_pending_responses()
    assert launched.spot


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        ("InsufficientInstanceCapacity", "try another zone"),
        ("UnauthorizedOperation", "not allowed"),
        ("MaxSpotInstanceCountExceeded", "spot instance limit"),
        ("SpotMaxPriceTooLow", "raise it"),
        ("InvalidAMIID.NotFound", "check ami and region"),
        ("RequestLimitExceeded", "wait a minute"),
    ],
)
def test_launch_errors_say_what_to_do(config: LoadedConfig, code: str, advice: str) -> None:
    client = ec2_client(config.aws)
    with Stubber(client) as stubber:
        stubber.add_client_error("run_instances", service_error_code=code, service_message="x")
        with pytest.raises(Ec2Error) as caught:
            Ec2(config.aws, client).launch(config.hosts["gpu"], config.templates["gpu"])
    assert f"launching nb-gpu (g5.xlarge): {code}: " in str(caught.value)
    assert advice in str(caught.value)


def test_stopping_a_one_time_spot_instance_is_explained(config: LoadedConfig) -> None:
    client = ec2_client(config.aws)
    with Stubber(client) as stubber:
        stubber.add_client_error("stop_instances", service_error_code="UnsupportedOperation")
        with pytest.raises(Ec2Error, match="one-time spot instance cannot be stopped"):
            Ec2(config.aws, client).stop("i-0123456789abcdef0")


def test_an_instance_that_vanished(config: LoadedConfig) -> None:
    assert Ec2(config.aws).get("i-0123456789abcdef0") is None
    with pytest.raises(Ec2Error, match="no live instance named 'nb-gpu'"):
        lifecycle.find_or_fail(Ec2(config.aws), config.hosts["gpu"])


def test_a_spot_interruption_seen_from_outside_fails_the_wait_fast(config: LoadedConfig) -> None:
    client = ec2_client(config.aws)
    instance = {
        "InstanceId": "i-0123456789abcdef0",
        "State": {"Name": "shutting-down"},
        "StateReason": {"Code": "Server.SpotInstanceTermination",
                        "Message": "Server.SpotInstanceTermination: Spot instance termination"},
    }  # fmt: skip
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [instance]}]},
            {"InstanceIds": ["i-0123456789abcdef0"]},
        )
        with pytest.raises(Ec2Error, match=r"shutting-down .*Spot instance termination"):
            Ec2(config.aws, client).wait_for("i-0123456789abcdef0", "running", delay=0.01)


def test_no_credentials_is_explained(moto_ec2: MotoEc2, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    aws = AwsConfig(region="us-east-1", endpoint_url=moto_ec2.endpoint_url)
    with pytest.raises(Ec2Error, match="no AWS credentials"):
        Ec2(aws).get("i-0123456789abcdef0")


def test_on_demand_price_from_a_price_list() -> None:
    item = (
        '{"terms": {"OnDemand": {"X.Y": {"priceDimensions": {"X.Y.Z": '
        '{"unit": "Hrs", "pricePerUnit": {"USD": "1.0060000000"}}}}}}}'
    )
    assert parse_price_list([item]) == pytest.approx(1.006)
    assert parse_price_list([]) is None


def nbterm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbterm", *args], capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def test_the_cli_launches_shows_stops_and_terminates(config: LoadedConfig) -> None:
    launched = nbterm("launch", "gpu", "--no-wait-ssh")  # nothing listens on its address
    assert launched.returncode == 0, launched.stderr
    assert "gpu: launching g5.xlarge (spot) from ami-0abcdef1234567890" in launched.stdout
    assert "is running at 127.0.0.1" in launched.stdout
    again = nbterm("launch", "gpu", "--no-wait-ssh")
    assert again.returncode == 1
    assert "already has i-" in again.stderr
    status = nbterm("status")
    assert re.search(
        r"i-\w+ running g5\.xlarge spot us-east-1\w, \$0\.0000/h, up 0\.0 h", status.stdout
    ), status.stdout
    assert "running EC2 instances so far: $0.00" in status.stdout
    stopped = nbterm("stop", "gpu")
    assert stopped.returncode == 0, stopped.stderr
    assert "is stopped" in stopped.stdout
    refused = nbterm("terminate", "gpu")
    assert refused.returncode == 1
    assert "pass --yes" in refused.stderr
    gone = nbterm("terminate", "gpu", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert "is terminated" in gone.stdout
    # a stopped instance has nothing to sync, and nothing claims a sync was done
    assert "nothing to sync" in gone.stdout and "final sync done" not in gone.stdout
    assert "no live instance" in nbterm("status").stdout
    instances = Ec2(config.aws).client.describe_instances(
        Filters=[{"Name": f"tag:{HOST_TAG}", "Values": ["gpu"]}]
    )["Reservations"]
    assert [i["State"]["Name"] for r in instances for i in r["Instances"]] == ["terminated"]


def test_on_demand_price_is_asked_once_then_cached(tmp_path: Path) -> None:
    import boto3

    from nbterm.services.cloud.pricing import on_demand_price

    client = boto3.client("pricing", region_name="us-east-1")
    item = (
        '{"terms": {"OnDemand": {"A": {"priceDimensions": {"B": '
        '{"unit": "Hrs", "pricePerUnit": {"USD": "1.0060000000"}}}}}}}'
    )
    aws = AwsConfig(region="us-east-1")
    cache = tmp_path / "prices.json"
    with Stubber(client) as stubber:
        stubber.add_response("get_products", {"PriceList": [item]})
        assert on_demand_price(aws, "us-east-1", "g5.xlarge", cache, client) == pytest.approx(1.006)
        stubber.assert_no_pending_responses()
        # cached: no second request (the stubber would fail on one)
        assert on_demand_price(aws, "us-east-1", "g5.xlarge", cache, client) == pytest.approx(1.006)
    with Stubber(client) as stubber:
        stubber.add_client_error("get_products", service_error_code="AccessDeniedException")
        assert on_demand_price(aws, "us-east-1", "m7i.large", cache, client) is None  # unknown


def test_status_says_an_open_spot_request_with_no_instance(config: LoadedConfig) -> None:
    """A persistent request whose instance was terminated without cancelling it may launch a
    new one; moto models no persistent requests, so EC2's answer is stubbed."""
    from nbterm.cli.remote_cmds import spot_request_lines

    client = ec2_client(config.aws)
    with Stubber(client) as stubber:
        stubber.add_response("describe_spot_instance_requests", {"SpotInstanceRequests": [
            {"SpotInstanceRequestId": "sir-open0001", "State": "open"},
            {"SpotInstanceRequestId": "sir-active02", "State": "active",
             "InstanceId": "i-0123456789abcdef0"},
        ]})  # fmt: skip
        lines = spot_request_lines(Ec2(config.aws, client))
    assert len(lines) == 1
    assert lines[0].startswith("an open spot request with no instance: sir-open0001 (open)")
    assert "--spot-instance-request-ids sir-open0001" in lines[0]


def test_a_spot_runs_cost_is_the_prices_it_ran_at(config: LoadedConfig, paths: Paths) -> None:
    """Three spot prices over the hours of a moto instance (moto's history is one fixed fake
    price, so the zone's history comes from Stubber, in two pages as EC2 may send it)."""
    ec2 = Ec2(config.aws)
    launched = ec2.launch(config.hosts["gpu"], config.templates["gpu"])
    instance = ec2.wait_for(launched.id, "running", delay=0.1)
    assert instance.spot
    assert instance.launch_time is not None
    started = instance.launch_time
    now = started + dt.timedelta(hours=5)
    hour = dt.timedelta(hours=1)
    asked = {
        "InstanceTypes": ["g5.xlarge"], "AvailabilityZone": instance.az,
        "ProductDescriptions": ["Linux/UNIX"], "StartTime": started, "EndTime": now,
    }  # fmt: skip

    def record(at: dt.datetime, price: str) -> dict[str, Any]:
        return {"Timestamp": at, "SpotPrice": price, "InstanceType": "g5.xlarge",
                "AvailabilityZone": instance.az, "ProductDescription": "Linux/UNIX"}  # fmt: skip

    with Stubber(ec2.client) as stubber:  # newest first, as EC2 sends them
        stubber.add_response(
            "describe_spot_price_history",
            {"SpotPriceHistory": [record(started + 3 * hour, "0.4000"),
                                  record(started + hour, "0.5000")], "NextToken": "page-2"},
            asked,
        )  # fmt: skip
        # the last change before the start: the price the run began at
        stubber.add_response(
            "describe_spot_price_history",
            {"SpotPriceHistory": [record(started - 2 * hour, "0.3000")]},
            {**asked, "NextToken": "page-2"},
        )
        rate = rate_of(ec2, config.aws, instance, paths.state_dir / "prices.json", now)
        stubber.assert_no_pending_responses()
    assert rate is not None
    assert rate.now == 0.40  # the $/h column: the price from now on
    # by hand: 1 h at $0.30 + 2 h at $0.50 + 2 h at $0.40 = $2.10 (the latest price times the
    # hours, as before, said $2.00)
    assert round(rate.cost(started, now), 6) == 2.10
    assert round(rate.cost(started + 2 * hour, now), 6) == 0.50 + 0.80  # from 2 h in: $1.30
    with Stubber(ec2.client) as stubber:  # EC2 cannot say: unknown, never a guess
        stubber.add_client_error("describe_spot_price_history", service_error_code="Throttling")
        assert rate_of(ec2, config.aws, instance, paths.state_dir / "prices.json", now) is None


def test_an_ssm_launch_has_its_instance_profile_and_no_public_address(
    moto_ec2: MotoEc2, write_config: Callable[[str], Path]
) -> None:
    """Asserted from EC2's side: what moto holds, not what nbterm said. SSM's agent status is
    Stubber's (moto has no DescribeInstanceInformation)."""
    import boto3

    from nbterm.services.cloud.aws import ssm_client
    from nbterm.services.cloud.ssm import Ssm

    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=moto_ec2.endpoint_url)
    iam.create_role(RoleName="nbterm-ssm", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="nbterm-ssm")
    iam.add_role_to_instance_profile(InstanceProfileName="nbterm-ssm", RoleName="nbterm-ssm")
    config = load_config(write_config(
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
        '[hosts.gpu]\ntemplate = "gpu"\n'
        '[templates.gpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "g5.xlarge"\n'
        'connect = "ssm"\ninstance_profile = "nbterm-ssm"\n'
    ))  # fmt: skip
    client = ssm_client(config.aws)
    notes: list[str] = []
    with Stubber(client) as stubber:

        def answers(instance_id: str) -> None:  # once EC2 named it: never registered, online
            asked = {"Filters": [{"Key": "InstanceIds", "Values": [instance_id]}]}
            for ping in (None, "Online"):
                found = [] if ping is None else [{"InstanceId": instance_id, "PingStatus": ping}]
                stubber.add_response("describe_instance_information",
                                     {"InstanceInformationList": found}, asked)  # fmt: skip

        instance = lifecycle.launch(
            Ec2(config.aws), config.hosts["gpu"], config.templates["gpu"], note=notes.append,
            delay=0.1, ssm=Ssm(config.aws, client), on_launched=answers,
        )  # fmt: skip
        stubber.assert_no_pending_responses()
    raw = ec2_client(config.aws).describe_instances(InstanceIds=[instance.id])
    seen = raw["Reservations"][0]["Instances"][0]
    assert "PublicIpAddress" not in seen or not seen["PublicIpAddress"], seen
    assert seen["IamInstanceProfile"]["Arn"].endswith("instance-profile/nbterm-ssm")
    assert any("waiting for Systems Manager to see its agent online" in n for n in notes), notes
