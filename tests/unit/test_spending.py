"""The daily budget's ledger: what running instances cost today, as nbterm saw them."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

from nbterm.presenters import budget_words
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.pricing import Rate
from nbterm.services.cloud.spending import Ledger, Spend


def instance(iid: str, state: str, started: dt.datetime) -> Instance:
    return Instance(iid, iid, "gpu", state, "g5.xlarge", False, "us-east-1a", started, "", "", "")


def test_running_time_today_at_the_shown_price_adds_up(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "state" / "spend.json")
    now = dt.datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    yesterday = now - dt.timedelta(hours=20)  # started yesterday at 16:00: counted from midnight
    runs = {"gpu": instance("i-1", "running", yesterday),
            "cpu": instance("i-2", "running", now - dt.timedelta(hours=2)),
            "old": instance("i-3", "stopped", now - dt.timedelta(hours=5))}  # fmt: skip
    prices: dict[str, Rate | None] = {"gpu": Rate.flat(1.0), "cpu": Rate.flat(0.5),
                                      "old": Rate.flat(9.0)}  # fmt: skip
    spend = ledger.observe(runs, prices, budget=20.0, now=now)
    assert round(spend.today, 4) == 12 * 1.0 + 2 * 0.5
    assert spend.verdict == "ok"
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    # gpu stopped at 13:00 and started again at 14:00: the first run keeps what it cost
    later = now + dt.timedelta(hours=3)
    again = {"gpu": instance("i-1", "running", now + dt.timedelta(hours=2)),
             "cpu": instance("i-2", "stopped", now - dt.timedelta(hours=2))}  # fmt: skip
    spend = ledger.observe(again, prices, budget=20.0, now=later)
    assert round(spend.today, 4) == 12 + 1 + 1  # 12 h before, 1 h of cpu, 1 h of the new run
    assert spend.verdict == "ok"
    # the price went up (spot): each run keeps the most it was seen to cost
    spend = ledger.observe(again, {"gpu": Rate.flat(4.0)}, budget=20.0, now=later)
    assert (round(spend.today, 4), spend.verdict) == (12 + 1 + 4, "warn")
    spend = ledger.observe(again, {"gpu": Rate.flat(8.0)}, budget=20.0, now=later)
    assert (round(spend.today, 4), spend.verdict) == (12 + 1 + 8, "stop")


def test_the_verdicts_and_their_words() -> None:
    assert Spend(5.0, None).verdict == "ok"
    assert Spend(15.99, 20.0).verdict == "ok"
    assert Spend(16.0, 20.0).verdict == "warn"
    assert Spend(20.0, 20.0).verdict == "stop"
    assert budget_words(Spend(16.0, 20.0)) == (
        "today's spending $16.00 is 80% of the daily budget ($20.00)"
    )
    assert budget_words(Spend(20.5, 20.0)) == (
        "today's spending $20.50 reached the daily budget ($20.00)"
    )
    # rounded down, as the ledger is a floor: never "$4.00" or "80%" before the warning
    assert Spend(3.998, 5.0).verdict == "ok"
    assert budget_words(Spend(3.998, 5.0)) == (
        "today's spending $3.99 is 79% of the daily budget ($5.00)"
    )
    assert budget_words(Spend(0.29, 5.0)).startswith("today's spending $0.29 is 5% ")


def test_a_ledger_it_cannot_read_starts_afresh_and_old_days_go(tmp_path: Path) -> None:
    path = tmp_path / "spend.json"
    path.write_text("{not json")
    now = dt.datetime.now().astimezone()
    assert Ledger(path).observe({}, {}, budget=None, now=now).today == 0.0
    path.write_text(json.dumps({"1999-01-01": {"i-9@x": 500.0}}))
    assert Ledger(path).observe({}, {}, budget=None, now=now).today == 0.0
    assert list(json.loads(path.read_text())) == [now.date().isoformat()]


def test_the_configs_own_prices_come_before_aws(tmp_path: Path) -> None:
    """``on_demand_prices`` and ``spot_prices``: a private rate, or an endpoint with no Pricing
    API and no real price history (the demo's); AWS is not asked for a type they name."""
    from nbterm.config import load_config
    from nbterm.services.cloud.pricing import price_per_hour

    path = tmp_path / "config.toml"
    path.write_text(
        '[aws]\nendpoint_url = "http://127.0.0.1:9"\n'
        'on_demand_prices = { "g5.xlarge" = 1.006 }\nspot_prices = { "g5.xlarge" = 0.4213 }\n'
    )
    aws = load_config(path).aws

    class NoEc2:
        def spot_price_history(self, *args: object) -> list[tuple[dt.datetime, float]] | None:
            raise AssertionError("EC2 was asked for a price the config gives")

    def instance(spot: bool, itype: str = "g5.xlarge") -> Instance:
        return Instance("i-1", "nb", "gpu", "running", itype, spot, "us-east-1a", None, "", "", "")

    cache = tmp_path / "prices.json"
    assert price_per_hour(NoEc2(), aws, instance(True), cache) == 0.4213  # type: ignore[arg-type]
    assert price_per_hour(NoEc2(), aws, instance(False), cache) == 1.006  # type: ignore[arg-type]
    # a type it does not name: unknown at an endpoint with no Pricing API, never a guess
    assert price_per_hour(NoEc2(), aws, instance(False, "m7i.large"), cache) is None  # type: ignore[arg-type]
    path.write_text('[aws]\non_demand_prices = { "g5.xlarge" = -1 }\n')
    import pytest

    from nbterm.config import ConfigError

    with pytest.raises(ConfigError, match=r"config.toml:2:\d+: aws.on_demand_prices"):
        load_config(path)


def test_todays_spend_of_a_spot_run_is_the_prices_it_ran_at_since_midnight(
    tmp_path: Path,
) -> None:
    midnight = dt.datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    started = midnight - dt.timedelta(hours=2)  # yesterday at 22:00
    rate = Rate(((midnight - dt.timedelta(hours=3), 0.30),  # the price it started at
                 (midnight + dt.timedelta(hours=1), 0.50),
                 (midnight + dt.timedelta(hours=2, minutes=30), 0.40)))  # fmt: skip
    now = midnight + dt.timedelta(hours=3)
    spend = Ledger(tmp_path / "spend.json").observe(
        {"gpu": instance("i-1", "running", started)}, {"gpu": rate}, budget=20.0, now=now
    )
    # by hand, since midnight: 1 h at $0.30 + 1.5 h at $0.50 + 0.5 h at $0.40 = $1.25 (at the
    # latest price times the hours: $1.20)
    assert round(spend.today, 6) == 1.25
