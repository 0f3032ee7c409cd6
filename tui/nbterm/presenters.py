"""Service events as one line of plain text each: for the headless commands and the sync log
pane alike (no Textual, no Rich)."""

from __future__ import annotations

from nbterm.locations import tildify
from nbterm.safe_text import shown
from nbterm.services.remote.events import (
    ConnectionChanged,
    HostKeyTrusted,
    IdleStopping,
    IdleWarning,
    JupyterReady,
    Notice,
    RemoteEvent,
    SpotInterruption,
    TunnelHealth,
    TunnelOpened,
)
from nbterm.services.sync.events import (
    Committed,
    ConflictKept,
    CycleDone,
    FileFailed,
    FileReceived,
    NotebookRejected,
    RemoteDeleted,
    SyncEvent,
    SyncFailed,
    SyncRecovered,
    SyncWarning,
)

BACKUP_WORDS = {
    "edited": "was edited locally",
    "being written": "was being written locally while the new copy arrived",
    "unknown": "differs from the remote and nbterm's record of it was lost",
    "already there": "was already there before nbterm synced it",
    "interrupted": "was set aside by an interrupted sync",
}


def size(count: int) -> str:
    """Bytes for people: 812 B, 1.2 kB, 20.0 MB."""
    value = float(count)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


class Printer:
    """Turns events into lines; ``line()`` for widgets, calling it prints (the CLI)."""

    def __init__(self, *, quiet_cycles: bool = True) -> None:
        self.last_state: dict[str, str] = {}
        self.quiet_cycles = quiet_cycles

    def line(self, event: RemoteEvent | SyncEvent) -> str | None:
        """One printable line: whatever part of it came from a remote (names, messages, reasons)
        can neither break the line nor steer the terminal."""
        if isinstance(event, SyncEvent):
            text = self._sync(event)
            return shown(f"{event.rule}: {text}") if text else None
        text = self._remote(event)
        return shown(f"{event.host}: {text}") if text else None

    def __call__(self, event: RemoteEvent | SyncEvent) -> None:
        text = self.line(event)
        if text:
            print(text, flush=True)

    def _sync(self, event: SyncEvent) -> str | None:
        if isinstance(event, FileReceived):
            what = "restored" if event.restored else "received"
            extra = ", new" if event.new else ""
            return f"{what} {shown(event.path)} ({size(event.size)}{extra})"
        if isinstance(event, ConflictKept):
            return (
                f"{shown(event.path)} {BACKUP_WORDS[event.why]}: that version is kept in "
                f"{shown(tildify(event.backup))}"
            )
        if isinstance(event, NotebookRejected):
            return (
                f"not taking {shown(event.path)} ({shown(event.reason)}); the local copy stays, "
                "retrying"
            )
        if isinstance(event, FileFailed):
            return f"not synced: {shown(event.path)}: {shown(event.reason)}"
        if isinstance(event, RemoteDeleted):
            return f"{shown(event.path)} is gone on the remote; the local copy is kept"
        if isinstance(event, SyncWarning):
            return f"warning: {shown(event.message)}"
        if isinstance(event, SyncFailed):
            cause = "" if event.code is None else f" (rsync exit {event.code})"
            retry = "" if event.retry_in is None else f"; retrying in {event.retry_in:g}s"
            return f"sync failed{cause}: {shown(event.message)}{retry}"
        if isinstance(event, SyncRecovered):
            return f"sync works again (after {event.failed_cycles} failed cycle(s))"
        if isinstance(event, Committed):
            return f"committed {event.commit} ({len(event.files)} file(s))"
        if isinstance(event, CycleDone):
            if self.quiet_cycles and not event.files:  # failures are said once, by their own events
                return None
            verdict = "done" if event.ok else "incomplete"
            if not event.files:
                text = f"{event.trigger} sync {verdict}: nothing new ({event.duration:.2f}s)"
            else:
                text = (
                    f"{event.trigger} sync {verdict}: {len(event.files)} file(s), "
                    f"{size(event.bytes)} in {event.duration:.2f}s"
                )
            if event.pending and not self.quiet_cycles:
                text += f"; {len(event.pending)} not synced yet"
            return text
        return None

    def _remote(self, event: RemoteEvent) -> str | None:
        if isinstance(event, ConnectionChanged):
            if event.state == "connecting":
                return f"connecting to {event.message}"
            if event.state == "reconnecting" and event.retry_in is not None and not event.message:
                return f"reconnecting (attempt {event.attempt}, in {event.retry_in:.1f}s)"
            if event.state in ("lost", "reconnecting", "down") and event.message:
                return f"{event.state}: {event.message}"
            if event.state == "connected" and event.attempt:
                return f"reconnected (reconnect #{event.attempt})"
            return None
        if isinstance(event, SpotInterruption):
            return (
                f"!!! SPOT INTERRUPTION: AWS will {event.action} this instance at {event.time}; "
                "syncing everything now"
            )
        if isinstance(event, IdleWarning):
            return (
                f"idle for {event.idle_minutes:.0f} min: it will be synced and stopped in "
                f"{event.stop_in_minutes:.0f} min unless Jupyter is used"
            )
        if isinstance(event, IdleStopping):
            return f"idle for {event.idle_minutes:.0f} min: final sync, then stopping the instance"
        if isinstance(event, Notice):
            return event.message
        if isinstance(event, HostKeyTrusted):
            return f"trusted host key {event.key_type} {event.sha256} (stored as {event.alias!r})"
        if isinstance(event, JupyterReady):
            how = "started" if event.started else "reattached to running"
            return f"{how} Jupyter (pid {event.pid}, remote port {event.remote_port})"
        if isinstance(event, TunnelOpened):
            if event.fell_back:
                return f"local port {event.wanted_port} is taken: using {event.local_port} instead"
            return None
        if isinstance(event, TunnelHealth):
            if event.state == self.last_state.get(event.host):
                return None
            self.last_state[event.host] = event.state
            parts = []
            if event.latency_ms is not None:
                parts.append(f"{event.latency_ms:.1f} ms")
            if event.kernels is not None:
                parts.append(f"{event.kernels} kernel(s)")
            if event.needs_password:
                parts.append("needs password")
            if event.message:
                parts.append(event.message)
            return f"tunnel {event.state}" + (f" ({', '.join(parts)})" if parts else "")
        return None
