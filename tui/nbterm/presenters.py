"""What the services say, in words: the one place every event becomes text.

The sync log pane, the cockpit's toasts and the headless commands all take their words from
here, so the same event reads the same everywhere (no Textual, no Rich). ``words`` is one
``match`` over the event classes; ``quiet`` is the one rule for what is not said at all;
``toast`` picks what deserves a notification; ``Printer`` adds the one piece of memory (a
tunnel's state is said when it changes). Whatever part of a line came from a remote (names,
messages, reasons) is made safe here, where it becomes text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from nbterm.locations import tildify
from nbterm.safe_text import shown
from nbterm.services.cloud.spending import Spend
from nbterm.services.journal import Entry, Journal
from nbterm.services.remote.events import (
    ConnectionChanged,
    Decision,
    Gpu,
    GuardDecisions,
    GuardReport,
    HostKeyTrusted,
    IdleStopping,
    IdleWarning,
    JupyterReady,
    LimitStopping,
    LimitWarning,
    Notice,
    RemoteEvent,
    Signal,
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
    FileWaiting,
    NotebookRejected,
    RemoteDeleted,
    SyncEvent,
    SyncFailed,
    SyncRecovered,
    SyncWarning,
)

Event = RemoteEvent | SyncEvent
Severity = Literal["information", "warning", "error"]
AlertKind = Literal["spot", "idle", "sync_failed", "tunnel_down", "spending"]

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


def quiet(event: Event) -> bool:
    """Not said anywhere: a background cycle (the timer, a remote change) that brought nothing.
    A cycle that failed is said once, by its own failure event."""
    return (
        isinstance(event, CycleDone)
        and not event.files
        and event.trigger
        in (
            "timer",
            "remote change",
        )
    )


def words(event: Event) -> str | None:
    """The event as one line: ``rule: ...`` or ``host: ...`` (None: nothing to say)."""
    if quiet(event):
        return None
    if isinstance(event, SyncEvent):
        text = _sync_words(event)
        return shown(f"{event.rule}: {text}") if text else None
    text = _remote_words(event)
    return shown(f"{event.host}: {text}") if text else None


def _sync_words(event: SyncEvent) -> str | None:
    match event:
        case FileReceived():
            what = "restored" if event.restored else "received"
            extra = ", new" if event.new else ""
            return f"{what} {shown(event.path)} ({size(event.size)}{extra})"
        case ConflictKept():
            return (
                f"{shown(event.path)} {BACKUP_WORDS[event.why]}: that version is kept in "
                f"{shown(tildify(event.backup))}"
            )
        case NotebookRejected():
            return (
                f"not taking {shown(event.path)} ({shown(event.reason)}); the local copy stays, "
                "retrying"
            )
        case FileFailed():
            return f"not synced: {shown(event.path)}: {shown(event.reason)}"
        case FileWaiting():
            return f"waiting: {shown(event.path)}: {shown(event.reason)}"
        case RemoteDeleted():
            return f"{shown(event.path)} is gone on the remote; the local copy is kept"
        case SyncWarning():
            return f"warning: {shown(event.message)}"
        case SyncFailed():
            cause = "" if event.code is None else f" (rsync exit {event.code})"
            retry = "" if event.retry_in is None else f"; retrying in {event.retry_in:g}s"
            return f"sync failed{cause}: {shown(event.message)}{retry}"
        case SyncRecovered():
            return f"sync works again (after {event.failed_cycles} failed cycle(s))"
        case Committed():
            return f"committed {event.commit} ({len(event.files)} file(s))"
        case CycleDone():
            verdict = "done" if event.ok else "incomplete"
            if not event.files:
                text = f"{event.trigger} sync {verdict}: nothing new ({event.duration:.2f}s)"
            else:
                text = (
                    f"{event.trigger} sync {verdict}: {len(event.files)} file(s), "
                    f"{size(event.bytes)} in {event.duration:.2f}s"
                )
            if event.pending:
                text += f"; {len(event.pending)} not synced yet"
            return text
        case _:  # CycleStarted, Progress: shown as a bar, not as words
            return None


def _remote_words(event: RemoteEvent) -> str | None:
    match event:
        case ConnectionChanged():
            return _connection_words(event)
        case SpotInterruption():
            return (
                f"!!! SPOT INTERRUPTION: AWS will {event.action} this instance at {event.time}; "
                "syncing everything now"
            )
        case IdleWarning():
            return (
                f"idle for {event.idle_minutes:.0f} min{_seen(event.reason)}: it will be synced "
                f"and stopped in {event.stop_in_minutes:.0f} min unless it is used (a kernel, "
                "a terminal, the GPU, the CPU, an SSH session)"
            )
        case IdleStopping():
            return (
                f"idle for {event.idle_minutes:.0f} min{_seen(event.reason)}: final sync, then "
                "stopping the instance"
            )
        case LimitWarning():
            if event.stop_in_minutes is None:
                return f"{event.why}"
            return f"{event.why}: it will be synced and stopped in {event.stop_in_minutes:.0f} min"
        case LimitStopping():
            return f"{event.why}: final sync, then stopping the instance"
        case Notice():
            return event.message
        case HostKeyTrusted():
            return f"trusted host key {event.key_type} {event.sha256} (stored as {event.alias!r})"
        case JupyterReady():
            how = "started" if event.started else "reattached to running"
            return f"{how} Jupyter (pid {event.pid}, remote port {event.remote_port})"
        case TunnelOpened():
            if event.fell_back:
                return f"local port {event.wanted_port} is taken: using {event.local_port} instead"
            return None
        case GuardReport():
            if event.failed:
                return f"the idle guard could NOT power the instance off: {shown(event.failed)}"
            if event.armed and not event.running:
                return "the idle guard is armed but not running (the next up starts it)"
            return None
        case TunnelHealth():
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
        case _:
            return None


def _connection_words(event: ConnectionChanged) -> str | None:
    if event.state == "connecting":
        return f"connecting to {event.message}"
    if event.state == "reconnecting" and event.retry_in is not None and not event.message:
        return f"reconnecting (attempt {event.attempt}, in {event.retry_in:.1f}s)"
    if event.state in ("lost", "reconnecting", "down") and event.message:
        return f"{event.state}: {event.message}"
    if event.state == "connected" and event.attempt:
        return f"reconnected (reconnect #{event.attempt})"
    return None


def _seen(reason: str) -> str:
    """What the signals saw, in brackets ("" when nothing is known beyond the verdict)."""
    return f" ({shown(reason.removeprefix('idle: '))[:300]})" if reason.startswith("idle: ") else ""


def budget_words(spend: Spend) -> str:
    """Today's spending against the daily budget, as every face says it."""
    return spend.words


def guard_cell(report: GuardReport) -> str:
    """The Instances pane's Guard cell: short, and true now."""
    if report.failed:
        return "CANNOT stop"
    if not report.armed:
        return "off"
    if not report.running:
        return "not running"
    if report.attached or report.stop_at is None:
        if report.reason.startswith("busy: "):  # what keeps it up, the first of them
            first = report.reason[6:].split(", ")[0]
            first = "kernel" if first == "a kernel is busy" else first.removesuffix(" cores")
            return shown("busy " + first)[:14]
        if report.idle_minutes is not None and report.idle_limit_minutes is not None:
            return f"idle {report.idle_minutes:.0f}/{report.idle_limit_minutes:.0f} min"
        return "armed"
    return "stops " + time.strftime("%H:%M", time.localtime(report.stop_at))


LEVELS = "▁▂▃▄▅▆▇█"


def level(percent: float) -> str:
    """A percentage as one block of eight heights (0% the lowest, 100% the highest)."""
    return LEVELS[max(0, min(len(LEVELS) - 1, round(percent / 100 * (len(LEVELS) - 1))))]


def gpu_cell(gpus: Sequence[Gpu], history: Sequence[float] = (), width: int = 5) -> str:
    """A host's GPUs in one short cell: one GPU as its utilisation, a sparkline of the last
    minutes and its memory ("97% ▂▅███ 19.5/24G"); several as one block each (their
    utilisation now), the mean and the memory of all ("▁█▁▁ 24% 19.6/96G")."""
    if not gpus:
        return ""
    used = sum(card.used for card in gpus) / 1024
    total = sum(card.total for card in gpus) / 1024
    memory = f"{used:.1f}/{total:.0f}G" if used < 100 else f"{used:.0f}/{total:.0f}G"
    if len(gpus) == 1:
        recent = list(history)[-width:] or [gpus[0].util]
        return f"{gpus[0].util}% {''.join(level(value) for value in recent)} {memory}"
    mean = sum(card.util for card in gpus) / len(gpus)
    return f"{''.join(level(card.util) for card in gpus[:16])} {mean:.0f}% {memory}"


def gpu_lines(gpus: Sequence[Gpu]) -> list[str]:
    """Each GPU on a line of its own (``nbterm status``)."""
    return [f"GPU {card.index}: {card.util}% busy, {card.used}/{card.total} MiB" for card in gpus]


def signal_lines(signals: Sequence[Signal], now: float | None = None) -> list[str]:
    """What each signal saw at the guard's last check, as a short table of plain lines
    (``nbterm guard status``): signal, value, since, busy or idle."""
    now = time.time() if now is None else now
    rows = [("signal", "value", "since", "")]
    for item in signals:
        since = "-" if item.since is None else _clock(item.since, now)
        rows.append((shown(item.name), shown(item.value), since, "BUSY" if item.busy else "idle"))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, [*widths, 0], strict=True)
                      ).rstrip() for row in rows]  # fmt: skip


def _clock(at: float, now: float) -> str:
    """A moment as a person reads it: the time today, the day and time before."""
    if now - at > 20 * 3600:
        return time.strftime("%a %H:%M", time.localtime(at))
    return time.strftime("%H:%M", time.localtime(at))


def decision_lines(decisions: Sequence[Decision], now: float | None = None) -> list[str]:
    """The guard's last decisions (busy to idle and back, a power-off), oldest first."""
    now = time.time() if now is None else now
    return [f"{_clock(item.at, now)}  {shown(item.reason)}" for item in decisions]


def guard_words(report: GuardReport) -> str:
    """The guard as ``nbterm guard status`` and ``nbterm status`` say it."""
    if report.user_off:
        return f"off, by `nbterm guard off` (`nbterm guard on {report.host}` arms it again)"
    if not report.armed:
        return "off"
    text = "armed" if report.running else "armed, NOT running (the next `nbterm up` starts it)"
    if report.reason.startswith("busy"):
        text += f"; {shown(report.reason)}"
    elif report.idle_minutes is not None:
        seen = f" ({shown(report.reason[6:])})" if report.reason.startswith("idle: ") else ""
        text += f"; idle for {report.idle_minutes:.0f} min{seen}"
    if report.attached:
        text += "; an nbterm is attached, so it waits"
    elif report.stop_at is not None and report.running:
        text += "; powers off at " + time.strftime("%H:%M", time.localtime(report.stop_at))
        text += " unless work starts (a kernel, a GPU, the CPU) or nbterm attaches"
    if report.extended_until is not None and report.extended_until > time.time():
        until = time.strftime("%a %H:%M", time.localtime(report.extended_until))
        text += f"; its idle stop is postponed until {until} (`nbterm guard extend`)"
    if report.failed:
        text += f"; its last power-off FAILED: {shown(report.failed)}"
    return text


@dataclass(frozen=True)
class Toast:
    """A notification in the cockpit (a line in the log is not enough for these)."""

    text: str
    title: str = ""
    severity: Severity = "warning"
    timeout: float = 30.0


def toast(event: Event) -> Toast | None:
    """The events that must reach a person who is not watching the log."""
    match event:
        case SyncFailed() | FileFailed():
            return Toast(_sync_words(event) or "", f"Sync failing: {shown(event.rule)}", "error")
        case SpotInterruption():
            text = f"AWS will {event.action} {event.host} at {event.time}: syncing now"
            return Toast(shown(text), "SPOT INTERRUPTION", "error", timeout=120.0)
        case IdleWarning() | IdleStopping() | Notice():
            line = words(event)
            return Toast(line) if line else None
        case LimitWarning() | LimitStopping():
            return Toast(words(event) or "", "Spending limit", "error", timeout=120.0)
        case _:
            return None


def alert(event: Event) -> tuple[AlertKind, str] | None:
    """The events worth a bell and a desktop notification, with their words."""
    match event:
        case SpotInterruption():
            return (
                "spot",
                f"SPOT INTERRUPTION: AWS will {event.action} {shown(event.host)} at "
                f"{shown(event.time)}; syncing now",
            )
        case IdleWarning() | IdleStopping():
            return "idle", words(event) or ""
        case SyncFailed():
            return "sync_failed", words(event) or ""
        case LimitWarning() | LimitStopping():
            return "spending", words(event) or ""
        case _:
            return None


class Printer:
    """Events as lines, with a memory for what arrives all the time: a tunnel's health and the
    idle guard's report are said when they change. ``line()`` for the sync log; calling it
    prints (the CLI)."""

    def __init__(self, journal: Journal | None = None) -> None:
        self.last_state: dict[str, str] = {}
        self.last_guard: dict[str, str | None] = {}
        self.journal = journal
        """Where each printed line is kept too (``nbterm log``), with the guard's decisions."""

    def line(self, event: Event) -> str | None:
        if isinstance(event, TunnelHealth):
            if event.state == self.last_state.get(event.host):
                return None
            self.last_state[event.host] = event.state
        if isinstance(event, GuardReport):  # read every minute: said when it changes
            said = words(event)
            if said == self.last_guard.get(event.host, None):
                return None
            self.last_guard[event.host] = said
            return said
        return words(event)

    def __call__(self, event: Event) -> None:
        text = self.line(event)
        if text:
            print(text, flush=True)
        if self.journal is not None:
            host = event.host if isinstance(event, RemoteEvent) else event.rule.partition(":")[0]
            if isinstance(event, GuardDecisions):
                journal_decisions(self.journal, event)
            elif text:
                self.journal.append(host, text)


def journal_decisions(journal: Journal, event: GuardDecisions) -> None:
    """The guard's decisions into the journal, each at its own time and once."""
    for decision in event.decisions:
        journal.guard_decided(event.host, decision.at, f"the idle guard: {decision.reason}")


def journal_line(entry: Entry, now: float | None = None) -> str:
    """One entry as ``nbterm log`` and the Sync log's first lines print it (made safe: part
    of it may be the remote's words)."""
    now = time.time() if now is None else now
    fmt = "%H:%M:%S" if now - entry.at < 20 * 3600 else "%Y-%m-%d %H:%M:%S"
    text = entry.text if not entry.host or entry.text.startswith(entry.host + ":") else (
        f"{entry.host}: {entry.text}"
    )  # fmt: skip
    return f"{time.strftime(fmt, time.localtime(entry.at))} {shown(text)}"
