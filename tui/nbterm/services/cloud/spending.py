"""The spending guard: a daily budget across instances, from the prices nbterm already reads.

What running instances cost today is kept in a small ledger in nbterm's state folder
(``spend.json``, 0600): for each run of an instance (its id and the time it last started), the
most it was seen to have cost since local midnight, at the prices it ran at (a spot run's from
the zone's price history). A run that nbterm never saw running (the laptop was off all day) is
not in it: the ledger is a floor, and the README says so. At 80% of ``[aws] daily_budget`` the
cockpit warns; at 100% it stops every running instance, each after a final sync.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nbterm.files import write_private
from nbterm.services.cloud.instance import Instance

if TYPE_CHECKING:
    from nbterm.services.cloud.pricing import Rate

WARN_AT = 0.8
Verdict = Literal["ok", "warn", "stop"]


@dataclass(frozen=True)
class Spend:
    today: float
    """USD spent today by the runs nbterm saw."""
    budget: float | None

    @property
    def verdict(self) -> Verdict:
        if self.budget is None:
            return "ok"
        if self.today >= self.budget:
            return "stop"
        return "warn" if self.today >= WARN_AT * self.budget else "ok"

    @property
    def words(self) -> str:
        """Today's spending against the daily budget (the event a limit carries says this)."""
        text = f"today's spending {dollars_down(self.today)}"
        if self.budget is None:
            return text
        if self.verdict == "stop":
            return f"{text} reached the daily budget (${self.budget:.2f})"
        share = math.floor(100 * self.today / self.budget + 1e-9)
        return f"{text} is {share}% of the daily budget (${self.budget:.2f})"


def dollars_down(amount: float) -> str:
    """A day's spending in dollars, rounded down to the cent, as the ledger is a floor: $3.997 is
    "$3.99", so that "$4.00 of $5.00" is never on screen before the warning at 80% has come."""
    return f"${math.floor(100 * amount + 1e-6) / 100:.2f}"


def _midnight(now: dt.datetime) -> dt.datetime:
    local = now.astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, float]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # unreadable: started afresh (a floor, never a false alarm)
        if not isinstance(data, dict):
            return {}
        return {
            day: {k: float(v) for k, v in runs.items() if isinstance(v, (int, float))}
            for day, runs in data.items()
            if isinstance(day, str) and isinstance(runs, dict)
        }

    def observe(
        self,
        instances: Mapping[str, Instance | None],
        rates: Mapping[str, Rate | None],
        *,
        budget: float | None,
        now: dt.datetime | None = None,
    ) -> Spend:
        """Add what the running instances have cost today, and return the day's total."""
        now = now or dt.datetime.now(dt.UTC)
        midnight = _midnight(now)
        day = midnight.date().isoformat()
        runs = self._read().get(day, {})
        for name, instance in instances.items():
            rate = rates.get(name)
            if instance is None or instance.state != "running" or rate is None:
                continue
            if instance.launch_time is None:
                continue  # EC2 always says; a run nbterm cannot date is not guessed at
            cost = rate.cost(max(instance.launch_time, midnight), now)  # the prices charged
            key = f"{instance.id}@{instance.launch_time.isoformat()}"
            runs[key] = max(runs.get(key, 0.0), round(cost, 6))
        write_private(self.path, json.dumps({day: runs}))  # earlier days are not kept
        return Spend(sum(runs.values()), budget)
