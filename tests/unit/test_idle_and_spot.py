"""Idle judgement and spot notices, without a network."""

from __future__ import annotations

import datetime as dt

from nbterm.services.cloud.idle import IdlePolicy
from nbterm.services.cloud.spot import parse_notice, watch_command

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def ago(minutes: float) -> str:
    return (NOW - dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def test_idle_policy_warns_then_stops() -> None:
    policy = IdlePolicy(60)
    assert policy.warn_at == 55
    assert policy.judge(ago(10), 0, NOW).state == "active"
    assert policy.judge(ago(56), 0, NOW).state == "warn"
    verdict = policy.judge(ago(61), 0, NOW)
    assert verdict.state == "stop"
    assert round(verdict.idle_minutes) == 61


def test_a_busy_kernel_is_never_idle() -> None:
    assert IdlePolicy(60).judge(ago(600), 1, NOW).state == "active"


def test_an_unreadable_activity_time_is_not_idle() -> None:
    assert IdlePolicy(60).judge("", 0, NOW).state == "active"
    assert IdlePolicy(60).judge("yesterday", 0, NOW).state == "active"


def test_short_limits_warn_at_three_quarters() -> None:
    assert IdlePolicy(4).warn_at == 3


def test_spot_notices() -> None:
    notice = parse_notice('{"action": "stop", "time": "2026-11-25T12:02:00Z"}')
    assert notice is not None
    assert (notice.action, notice.time) == ("stop", "2026-11-25T12:02:00Z")
    assert parse_notice("<html>404</html>") is None
    assert parse_notice("[]") is None


def test_the_watch_uses_imdsv2() -> None:
    command = watch_command("http://127.0.0.1:9", every=5)
    assert "X-aws-ec2-metadata-token-ttl-seconds" in command
    assert "X-aws-ec2-metadata-token: $T" in command
    assert "latest/meta-data/spot/instance-action" in command
    assert "sleep 5" in command
