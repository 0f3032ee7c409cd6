"""The baseline for the start-up benchmark: a bare Textual app with the cockpit's widgets."""

from __future__ import annotations

import sys

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Log

CSS = """
.pane { border: round $primary 60%; height: 1fr; }
#instances, #sync { height: 2fr; }
"""


class BareApp(App[None]):
    CSS = CSS
    BINDINGS = [("q", "quit", "Quit"), ("question_mark", "help", "Help")]  # noqa: RUF012

    def __init__(self, hosts: list[str]) -> None:
        super().__init__()
        self.hosts = hosts

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="instances", classes="pane"):
            table: DataTable[str] = DataTable()
            table.add_columns("Name", "Kind", "Where", "State", "Type", "Market", "$/h", "Cost",
                              "Up", "Idle")  # fmt: skip
            for host in self.hosts:
                table.add_row(host, "SSH", "127.0.0.1", "—", "—", "—", "—", "—", "—", "—")
            yield table
        with Vertical(id="tunnels", classes="pane"):
            tunnels: DataTable[str] = DataTable()
            tunnels.add_columns("Host", "Local URL", "State", "Latency", "History", "Kernels",
                                "Activity", "Reconnects")  # fmt: skip
            for host in self.hosts:
                tunnels.add_row(host, "http://127.0.0.1:8157/", "down", "—", "", "—", "—", "0")
            yield tunnels
        with Vertical(id="sync", classes="pane"):
            log = Log()
            yield log
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Log).write_line("Sync log")


if __name__ == "__main__":
    BareApp(sys.argv[1:]).run()
