"""The Tunnels pane: per host, the local URL, tunnel state, latency and Jupyter activity."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from nbterm.config import LoadedConfig

UNKNOWN = "—"


class TunnelsPane(Vertical):
    COLUMNS = ("Host", "Local URL", "State", "Latency", "Kernels", "Activity", "Reconnects")

    def __init__(self, config: LoadedConfig) -> None:
        super().__init__(id="tunnels", classes="pane")
        self.config = config
        self.border_title = "Tunnels"

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="tunnels-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*self.COLUMNS)
        for host in self.config.hosts.values():
            url = f"http://127.0.0.1:{host.jupyter.local_port}/"
            table.add_row(host.name, url, "down", UNKNOWN, UNKNOWN, UNKNOWN, "0", key=host.name)
        yield table
