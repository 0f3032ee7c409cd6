"""An EC2 instance as nbterm sees it (no boto3 here: the cockpit imports this at start-up)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Instance:
    id: str
    name: str
    host: str
    """The nbterm host it belongs to (its ``nbterm:host`` tag), or ""."""
    state: str
    type: str
    spot: bool
    az: str
    launch_time: dt.datetime | None
    public_dns: str
    public_ip: str
    private_ip: str
    state_reason: str = ""
    spot_request: str = ""
    """The spot request that keeps this instance (``sir-...``), or "": a persistent one launches
    a new instance when this one is terminated, unless it is cancelled first."""
    key_name: str = ""
    """The EC2 key pair it was launched with (the only key it lets in at first)."""
    stopped_by: str = ""
    """nbterm's record of who stopped it (``NAME|WHY|EPOCH``, its ``nbterm:stopped-by`` tag)."""

    def stopper(self) -> str | None:
        """Who stopped it, as the nbterm that did recorded it ("alice@mbp (the daily budget)"),
        or None: no record, or one from before its last start."""
        name, _, rest = self.stopped_by.partition("|")
        why, _, when = rest.partition("|")
        try:
            at = float(when)
        except ValueError:
            return None
        if not name or (self.launch_time is not None and at < self.launch_time.timestamp() - 1):
            return None
        return f"{name} ({why})" if why else name

    @property
    def spot_interrupted(self) -> bool:
        """EC2 names a spot interruption in the instance's state reason."""
        return "spot" in self.state_reason.lower()

    @property
    def address(self) -> str:
        return self.public_dns or self.public_ip or self.private_ip

    def uptime_hours(self, now: dt.datetime | None = None) -> float:
        if self.state != "running" or self.launch_time is None:
            return 0.0
        now = now or dt.datetime.now(dt.UTC)
        return max(0.0, (now - self.launch_time).total_seconds() / 3600)
