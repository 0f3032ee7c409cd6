"""What the sync engine reports, as immutable events (the sync log pane shows them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Trigger = Literal["start", "timer", "remote change", "now", "final"]


@dataclass(frozen=True)
class SyncEvent:
    rule: str
    """The rule's label, ``HOST:REMOTE``."""


@dataclass(frozen=True)
class CycleStarted(SyncEvent):
    trigger: Trigger


@dataclass(frozen=True)
class FileReceived(SyncEvent):
    path: str
    size: int
    new: bool


@dataclass(frozen=True)
class Progress(SyncEvent):
    bytes: int
    percent: int
    rate: str


@dataclass(frozen=True)
class ConflictKept(SyncEvent):
    """A local file differed from what nbterm last pulled; it was backed up before replacing."""

    path: str
    backup: str


@dataclass(frozen=True)
class NotebookRejected(SyncEvent):
    """A received notebook was not valid (caught mid-save?): the good local copy stays."""

    path: str
    reason: str


@dataclass(frozen=True)
class RemoteDeleted(SyncEvent):
    """A file is gone on the remote; the local copy is kept."""

    path: str


@dataclass(frozen=True)
class SyncWarning(SyncEvent):
    message: str


@dataclass(frozen=True)
class SyncFailed(SyncEvent):
    code: int
    message: str


@dataclass(frozen=True)
class Committed(SyncEvent):
    commit: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class CycleDone(SyncEvent):
    trigger: Trigger
    files: tuple[str, ...]
    """Files that reached the local folder this cycle."""
    bytes: int
    duration: float
    ok: bool
