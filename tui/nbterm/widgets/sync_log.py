"""The Sync log pane: live sync activity per rule, newest at the bottom, with transfer progress."""

from __future__ import annotations

import time
from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Log, ProgressBar

from nbterm.config import LoadedConfig
from nbterm.locations import tildify
from nbterm.presenters import Printer, journal_line
from nbterm.safe_text import shown
from nbterm.services.journal import Journal, host_of
from nbterm.services.sync.events import (
    CycleDone,
    CycleStarted,
    Progress,
    SyncEvent,
    SyncFailed,
    SyncRecovered,
)
from nbterm.widgets.plain import plain

MAX_LINES = 2000
JOURNAL_LINES = 8


def clock() -> str:
    return time.strftime("%H:%M:%S")


class SyncLogPane(Vertical):
    clock = staticmethod(clock)
    """The time shown on each line (screenshots and snapshot tests freeze it)."""

    def __init__(
        self, config: LoadedConfig, history: Sequence[str] = (), journal: Journal | None = None
    ) -> None:
        """``history``: the lines of the log before a config reload (kept: a reload must not
        wipe what a person reads, a terminate's record among them). ``journal``: where every
        line is kept too, whose last lines open the log (``nbterm log`` prints more)."""
        super().__init__(id="sync", classes="pane")
        self.config = config
        self.history = list(history)
        self.journal = journal
        self.border_title = "Sync log"
        self.printer = Printer()
        self.last: dict[str, float] = {}
        self.failing: set[str] = set()
        """Rules whose last cycle failed as a whole: named in the pane's subtitle until one
        completes."""

    def compose(self) -> ComposeResult:
        yield Log(id="sync-log", max_lines=MAX_LINES, auto_scroll=True)
        yield ProgressBar(id="sync-progress", total=100, show_eta=False)

    def on_mount(self) -> None:
        log = self.query_one(Log)
        self.query_one(ProgressBar).display = False
        if self.history:
            log.write_lines(self.history)
            log.write_line(f"{self.clock()} config reloaded")
        elif self.journal is not None and (earlier := self.journal.entries()[-JOURNAL_LINES:]):
            count = f"{len(earlier)} lines" if len(earlier) != 1 else "line"
            log.write_line(f"the journal's last {count} (`nbterm log` prints more):")
            log.write_lines([journal_line(entry) for entry in earlier])
            log.write_line("--")
        if not self.config.sync:
            log.write_line("no sync rules: add a [[sync]] table to keep local copies of notebooks")
            return
        for rule in self.config.sync:
            patterns = " ".join(rule.include)
            log.write_line(
                f"{rule.host}: {rule.remote} -> {tildify(rule.local)} ({patterns}) every "
                f"{rule.interval}s, idle until the host is up"
            )

    def write(self, text: str) -> None:
        self.query_one(Log).write_line(f"{self.clock()} {shown(text)}")
        if self.journal is not None:
            self.journal.append(host_of(text, set(self.config.hosts)), text)

    def apply(self, event: SyncEvent) -> None:
        bar = self.query_one(ProgressBar)
        if isinstance(event, Progress):
            if event.bytes == 0:
                return  # nothing is moving: every idle cycle reports one such line
            if not bar.display:
                bar.display = True  # showing or hiding it lays the screen out again
            bar.update(progress=event.percent)
            return
        if isinstance(event, CycleStarted):
            return
        if isinstance(event, SyncFailed):
            self.failing.add(event.rule)
        elif isinstance(event, SyncRecovered):
            self.failing.discard(event.rule)
        if isinstance(event, CycleDone):
            if bar.display:
                bar.display = False
            self.last[event.rule] = time.time()
            subtitle = f"last sync {self.clock()} ({event.rule})"
            if self.failing:
                subtitle += f" · FAILING: {', '.join(sorted(self.failing))}"
            self.border_subtitle = plain(subtitle)  # rule names are the config's words
        line = self.printer.line(event)  # presenters.quiet keeps empty background cycles out
        if line:
            self.write(line)
