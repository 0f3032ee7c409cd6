"""Whose rules the guard follows when laptops come and go (guard_script.rules_in_force, on a
folder laid out as the guard's): the most patient attached laptop wins, and a laptop's rules
lapse once it has been gone longer than they would have kept the machine up.

Before: rules files never lapsed: a laptop that armed the guard once with 120 idle minutes and
left ruled every later session of every other laptop.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from nbterm.services.cloud import guard_script
from nbterm.services.cloud.guard import parse_state

NOW = time.time()


def _laptop(folder: Path, laptop: str, left_minutes_ago: float, **rule: object) -> None:
    (folder / "rules").mkdir(parents=True, exist_ok=True)
    (folder / "leases").mkdir(parents=True, exist_ok=True)
    rules = folder / "rules" / f"{laptop}.json"
    rules.write_text(json.dumps({"by": laptop, "lease_minutes": 10, "grace_minutes": 5} | rule))
    lease = folder / "leases" / laptop
    lease.write_text(laptop)
    at = NOW - 60 * left_minutes_ago
    for path in (rules, lease):
        os.utime(path, (at, at))


@pytest.mark.parametrize(
    ("patient_left", "expected"),
    [(0, "patient"), (120, "patient"), (134, "patient"), (136, "hasty"), (7 * 24 * 60, "hasty")],
)
def test_a_patient_laptop_rules_until_its_own_rules_would_have_let_the_machine_stop(
    tmp_path: Path, patient_left: float, expected: str
) -> None:
    """patient: idle 120 + grace 5 + lease 10 = 135 min after it left; hasty is attached."""
    _laptop(tmp_path, "patient", patient_left, idle_minutes=120)
    _laptop(tmp_path, "hasty", 0, idle_minutes=1)
    rules = guard_script.rules_in_force(tmp_path, {"by": "config"}, NOW)
    assert rules["by"] == expected
    assert rules["laptops"] == (2 if expected == "patient" else 1)


def test_a_laptop_that_asked_never_to_stop_lapses_a_day_after_it_left(tmp_path: Path) -> None:
    _laptop(tmp_path, "never", 23 * 60, idle_minutes=None)
    _laptop(tmp_path, "hasty", 0, idle_minutes=1)
    assert guard_script.rules_in_force(tmp_path, {}, NOW)["idle_limit_minutes"] is None
    _laptop(tmp_path, "never", 25 * 60, idle_minutes=None)
    assert guard_script.rules_in_force(tmp_path, {}, NOW)["idle_limit_minutes"] == 6.0


def test_when_every_laptop_has_lapsed_the_last_armed_config_rules(tmp_path: Path) -> None:
    _laptop(tmp_path, "gone", 10_000, idle_minutes=30)
    config = {"by": "last", "idle_minutes": 45, "grace_minutes": 0, "lease_minutes": 10}
    rules = guard_script.rules_in_force(tmp_path, config, NOW)
    assert (rules["by"], rules["idle_limit_minutes"]) == ("last", 45.0)


def test_the_guards_last_stop_is_data_and_said_only_for_the_run_it_ended() -> None:
    state = parse_state(
        '{"armed": true}',
        json.dumps({"last_stop": {"at": NOW - 3600, "why": "idle for 62 min (kernels idle)"}}),
        user_off=False,
        alive=True,
    )
    assert state.last_stop_why == "idle for 62 min (kernels idle)"
    words = state.stopped_before(NOW)
    assert words is not None and words.endswith(": idle for 62 min (kernels idle)")
    assert state.stopped_before(NOW - 7200) is None  # a stop after this boot is not its cause
    hostile = parse_state("{}", '{"last_stop": {"at": "soon", "why": ["x"]}}', False, True)
    assert (hostile.last_stop_at, hostile.last_stop_why) == (None, "")
