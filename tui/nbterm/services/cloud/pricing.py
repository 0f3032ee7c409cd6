"""What an instance costs: spot from the price history of its zone and type (a run's cost is the
prices it was charged over its hours, not the latest price times them), on-demand from the AWS
Pricing API (cached for a week). Unknown rather than a guess when a price cannot be had."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from nbterm.config.schema import AwsConfig
from nbterm.files import write_private
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.cloud.instance import Instance

CACHE_SECONDS = 7 * 24 * 3600


def _cached(cache: Path, key: str) -> float | None:
    try:
        entry = json.loads(cache.read_text()).get(key)
    except (OSError, ValueError):
        return None
    if not entry or time.time() - float(entry[1]) > CACHE_SECONDS:
        return None
    return float(entry[0])


def _remember(cache: Path, key: str, price: float) -> None:
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        data = {}
    data[key] = [price, time.time()]
    write_private(cache, json.dumps(data))


def parse_price_list(items: list[str]) -> float | None:
    """The hourly USD price in a Pricing API ``PriceList`` (its on-demand term)."""
    for item in items:
        product = json.loads(item)
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if usd is not None and float(usd) > 0:
                    return float(usd)
    return None


def on_demand_price(
    aws: AwsConfig, region: str, instance_type: str, cache: Path, client: Any = None
) -> float | None:
    if aws.endpoint_url and client is None:
        return None  # an EC2-compatible endpoint (moto, the demo) has no AWS Pricing API
    key = f"{region}/{instance_type}"
    cached = _cached(cache, key)
    if cached is not None:
        return cached
    try:
        client = client or boto3.session.Session(profile_name=aws.profile).client(
            "pricing",
            region_name="us-east-1",  # the Pricing API lives in a few regions only
            endpoint_url=aws.endpoint_url,
            config=BotoConfig(retries={"mode": "standard", "max_attempts": 2}, read_timeout=10),
        )
        filters = [
            ("instanceType", instance_type),
            ("regionCode", region),
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
            ("preInstalledSw", "NA"),
            ("capacitystatus", "Used"),
        ]
        response = client.get_products(
            ServiceCode="AmazonEC2",
            Filters=[{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in filters],
            MaxResults=10,
        )
        price = parse_price_list(list(response.get("PriceList", [])))
    except Exception:  # noqa: BLE001 - a price is information: unknown rather than a failure
        return None
    if price is not None:
        _remember(cache, key, price)
    return price


@dataclass(frozen=True)
class Rate:
    """What an instance's hours cost: the prices it ran at, each from its time until the next
    (oldest first). A list price or the config's own is one price for all time; a spot price
    is the zone's history, as EC2 charges it."""

    changes: tuple[tuple[dt.datetime, float], ...]

    @classmethod
    def flat(cls, price: float) -> Rate:
        return cls(((dt.datetime.min.replace(tzinfo=dt.UTC), price),))

    @property
    def now(self) -> float:
        """The price an hour from now on (the latest)."""
        return self.changes[-1][1]

    def cost(self, start: dt.datetime, end: dt.datetime) -> float:
        """USD for the hours from ``start`` to ``end``: each price times the part of them it
        held. Before the first known change (a history EC2 no longer keeps: 90 days), the
        first known price."""
        total = 0.0
        for index, (since, price) in enumerate(self.changes):
            until = self.changes[index + 1][0] if index + 1 < len(self.changes) else end
            begin = start if index == 0 else max(since, start)
            seconds = (min(until, end) - begin).total_seconds()
            if seconds > 0:
                total += price * seconds / 3600
        return total


def run_cost(rate: Rate, instance: Instance, now: dt.datetime) -> float:
    """What the instance's run has cost so far, from its last start (EC2 always dates it; an
    undated run is not guessed at)."""
    return rate.cost(instance.launch_time, now) if instance.launch_time else 0.0


def rate_of(
    ec2: Ec2, aws: AwsConfig, instance: Instance, cache: Path, now: dt.datetime | None = None
) -> Rate | None:
    """The prices the instance has run at since it last started: the config's own price for
    its type when it sets one (``on_demand_prices``, ``spot_prices``), else AWS's (for spot,
    the zone's history since the start). None when no price can be had."""
    if instance.spot:
        if instance.type in aws.spot_prices:
            return Rate.flat(aws.spot_prices[instance.type])
        now = now or dt.datetime.now(dt.UTC)
        start = instance.launch_time or now
        history = ec2.spot_price_history(instance.type, instance.az, start, now)
        return Rate(tuple(history)) if history else None
    if instance.type in aws.on_demand_prices:
        return Rate.flat(aws.on_demand_prices[instance.type])
    region = instance.az[:-1] if instance.az else (aws.region or "us-east-1")
    price = on_demand_price(aws, region, instance.type, cache)
    return None if price is None else Rate.flat(price)


def price_per_hour(ec2: Ec2, aws: AwsConfig, instance: Instance, cache: Path) -> float | None:
    """The hourly price the instance runs at now (see ``rate_of``)."""
    rate = rate_of(ec2, aws, instance, cache)
    return None if rate is None else rate.now
