"""The demo's stand-in for ``shutdown -h now``: the demo's "instances" all run on this machine,
so its idle guard must never power it off. It asks the demo's EC2 (moto, on 127.0.0.1) to stop
the instance instead, which is what a power-off from inside an instance with shutdown
behaviour "stop" does.

``python -m nbterm.demo.power_off ENDPOINT NAME``: stop the live instance whose Name tag is NAME.
"""

from __future__ import annotations

import sys

import boto3


def main(endpoint: str, name: str) -> int:
    client = boto3.client(
        "ec2", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="demo", aws_secret_access_key="demo",  # noqa: S106 - moto
    )  # fmt: skip
    found = client.describe_instances(
        Filters=[
            {"Name": "tag:Name", "Values": [name]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    ids = [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]
    if ids:
        client.stop_instances(InstanceIds=ids)
    print(f"demo power-off: stopped {', '.join(ids) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
