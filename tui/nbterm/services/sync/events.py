"""What the sync engine reports, as immutable events (the sync log pane shows them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Trigger = Literal["start", "timer", "remote change", "now", "final"]
BackupReason = Literal["edited", "being written", "unknown", "already there", "interrupted"]
"""Why a local file was kept in the backup folder before a replacement: edited since nbterm
placed it; written to while the new copy arrived; nbterm's record of it was lost; it was there
before nbterm ever synced it; left aside by a sync that was interrupted."""


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
    """Relative to the rule's folders; bytes that are not UTF-8 are kept (``os.fsdecode``)."""
    size: int
    new: bool
    restored: bool = False
    """The local copy had disappeared (moved or deleted) and came back from the remote."""


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
    why: BackupReason = "edited"


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
class FileWaiting(SyncEvent):
    """A staged file is not home yet, for a reason that is not a failure (being written
    locally, in its back-off): said once per reason, in every face; its arrival is said by the
    FileReceived that follows."""

    path: str
    reason: str


@dataclass(frozen=True)
class FileFailed(SyncEvent):
    """One file could not be brought home (a folder in the way, a full disk, a refused name);
    said once per reason, retried, and listed as not synced until it arrives."""

    path: str
    reason: str


@dataclass(frozen=True)
class SyncFailed(SyncEvent):
    """A whole cycle failed (said once while it keeps failing the same way)."""

    code: int | None
    """rsync's exit code, or None when the problem is local (the folder cannot be used)."""
    message: str
    retry_in: float | None = None
    """Seconds until the next try; None when nothing will retry (one-shot sync)."""


@dataclass(frozen=True)
class SyncRecovered(SyncEvent):
    """A rule that was failing completed a cycle again."""

    failed_cycles: int


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
    """rsync completed and no file failed locally."""
    pending: tuple[tuple[str, str], ...] = ()
    """(path, why) of each staged file that is not home yet."""
