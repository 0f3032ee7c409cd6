"""The attached nbterm's idle stop: from Jupyter's own activity record and what the guard on the
instance saw, warn, then (after a final sync) stop.

Jupyter's ``/api/status`` gives ``last_activity`` (reading it does not reset it). A kernel that is
busy (a long computation printing nothing) is never idle, whatever ``last_activity`` says; nor is
a machine whose guard saw work (:mod:`signals`: a GPU, the CPU, an SSH session's keystrokes).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal


def parse_time(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class IdleVerdict:
    state: Literal["active", "warn", "stop"]
    idle_minutes: float


@dataclass
class IdlePolicy:
    stop_after_minutes: float
    warn_before_minutes: float = 5.0
    warned: bool = False

    @property
    def warn_at(self) -> float:
        return max(0.0, self.stop_after_minutes - min(self.warn_before_minutes,
                                                      self.stop_after_minutes / 4))  # fmt: skip

    def judge(
        self, last_activity: str | None, busy_kernels: int, now: dt.datetime | None = None,
        *, active_at: float | None = None,
    ) -> IdleVerdict:  # fmt: skip
        """``active_at``: the latest activity the guard on the instance saw (a terminal, an SSH
        session's keystroke, a GPU's work: :mod:`signals`), epoch seconds; idle counts from the
        later of it and Jupyter's."""
        now = now or dt.datetime.now(dt.UTC)
        since = parse_time(last_activity or "")
        if since is not None and active_at is not None:
            since = max(since, dt.datetime.fromtimestamp(min(active_at, now.timestamp()), dt.UTC))
        if since is None or busy_kernels > 0:
            self.warned = False
            return IdleVerdict("active", 0.0)
        idle = max(0.0, (now - since).total_seconds() / 60)
        if idle >= self.stop_after_minutes:
            return IdleVerdict("stop", idle)
        if idle >= self.warn_at:
            return IdleVerdict("warn", idle)
        self.warned = False
        return IdleVerdict("active", idle)
