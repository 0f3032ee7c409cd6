"""Service events, carried to the screen as Textual messages."""

from __future__ import annotations

from typing import Literal

from textual.message import Message

from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.spending import Spend
from nbterm.services.remote.events import RemoteEvent, TunnelHealth
from nbterm.services.sync.events import Progress, SyncEvent


class ServiceEvent(Message):
    """One event from a host's services. Bursts of health and progress collapse to the newest."""

    def __init__(self, event: RemoteEvent | SyncEvent) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        if not isinstance(message, ServiceEvent):
            return False
        mine, theirs = self.event, message.event
        if isinstance(mine, TunnelHealth) and isinstance(theirs, TunnelHealth):
            return mine.host == theirs.host and mine.state == theirs.state
        if isinstance(mine, Progress) and isinstance(theirs, Progress):
            return mine.rule == theirs.rule
        return False


class InstancesRefreshed(Message):
    """A fresh look at EC2: instance per host name (None: no live instance), with prices now,
    what each run has cost so far at the prices it ran at (a host not in ``costs``: its price
    now times its hours), and what running instances have cost today (None: not known)."""

    def __init__(
        self,
        instances: dict[str, Instance | None],
        prices: dict[str, float | None],
        spend: Spend | None = None,
        costs: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.instances = instances
        self.prices = prices
        self.spend = spend
        self.costs = costs or {}


HostState = Literal["starting", "up", "waiting", "closing", "down", "failed", "terminated"]
"""A host's session as a whole, as the cockpit drives it."""


class HostStatus(Message):
    """A host's session changed state as a whole, with words on why (may be empty)."""

    def __init__(self, host: str, status: HostState, detail: str = "") -> None:
        super().__init__()
        self.host = host
        self.status = status
        self.detail = detail


class HostNote(Message):
    """Progress words about a host that change nothing of its state (a launch's steps)."""

    def __init__(self, host: str, text: str) -> None:
        super().__init__()
        self.host = host
        self.text = text
