"""The Sync log pane: live rsync activity per sync rule, newest at the bottom."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Log

from nbterm.config import LoadedConfig
from nbterm.locations import tildify

MAX_LINES = 2000


class SyncLogPane(Vertical):
    def __init__(self, config: LoadedConfig) -> None:
        super().__init__(id="sync", classes="pane")
        self.config = config
        self.border_title = "Sync log"

    def compose(self) -> ComposeResult:
        yield Log(id="sync-log", max_lines=MAX_LINES, auto_scroll=True)

    def on_mount(self) -> None:
        log = self.query_one(Log)
        if not self.config.sync:
            log.write_line("no sync rules: add a [[sync]] table to keep local copies of notebooks")
            return
        for rule in self.config.sync:
            patterns = " ".join(rule.include)
            local = tildify(rule.local)
            log.write_line(
                f"{rule.host}: {rule.remote} -> {local} ({patterns}) every {rule.interval}s, "
                "idle until the host is up"
            )
