"""The Tunnels pane: per host, the working local URL, tunnel state, latency and Jupyter activity."""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from nbterm.config import LoadedConfig
from nbterm.presenters import LEVELS
from nbterm.services.cloud.idle import parse_time
from nbterm.services.remote.events import ConnectionChanged, TunnelHealth, TunnelOpened
from nbterm.widgets.cells import UNKNOWN, CellWriter, Column

SPARKS = LEVELS
HISTORY = 12


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1)))] for v in values)


def ago(iso: str | None, now: dt.datetime | None = None) -> str:
    """Jupyter's last activity as an age: ``just now``, ``12m ago``, ``3h ago``."""
    since = parse_time(iso or "")
    if since is None:
        return UNKNOWN
    seconds = ((now or dt.datetime.now(dt.UTC)) - since).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h ago"
    return f"{seconds // 86400:.0f}d ago"


def state_words(health: TunnelHealth) -> str:
    """The State cell: the tunnel's state, and what an "up" must not hide."""
    if health.state == "up" and health.kernels_lost:
        return "up, kernels lost"  # nbterm restarted Jupyter: the notebooks must be re-run
    if health.state == "up" and health.needs_password:
        return "up, needs password"
    return health.state


TunnelColumn = Literal[
    "host", "url", "state", "latency", "history", "kernels", "activity", "reconnects"
]
COLUMNS: tuple[Column[TunnelColumn], ...] = (
    Column("host", "Host"),
    Column("url", "Local URL"),
    Column("state", "State", 18),
    Column("latency", "Latency", 9, drop=2),
    Column("history", "History", HISTORY, drop=5),
    Column("kernels", "Kernels", 7, drop=4),
    Column("activity", "Activity", 8, drop=3),
    Column("reconnects", "Reconnects", 10, drop=1),
)


class TunnelsPane(Vertical):
    def __init__(self, config: LoadedConfig) -> None:
        super().__init__(id="tunnels", classes="pane")
        self.config = config
        self.border_title = "Tunnels"
        self.latency: dict[str, deque[float]] = {}

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(
            id="tunnels-table", cursor_type="row", zebra_stripes=True
        )
        self._cells = CellWriter(table, COLUMNS, set(self.config.hosts))
        for host in self.config.hosts.values():
            url = f"http://127.0.0.1:{host.jupyter.local_port}/"
            self._cells.add_row(
                host.name,
                {"host": host.name, "url": url, "state": "down", "history": "", "reconnects": "0"},
            )
        yield table

    def on_resize(self) -> None:
        self._cells.fit(self.content_size.width)

    def set_state(self, host: str, state: str) -> None:
        self._cells.set(host, "state", state)

    def apply(self, event: object) -> None:
        cell = self._cells.set
        if isinstance(event, TunnelOpened):
            url = f"http://127.0.0.1:{event.local_port}/"
            if event.fell_back:
                url += f" ({event.wanted_port} taken)"
            cell(event.host, "url", url)
        elif isinstance(event, TunnelHealth):
            cell(event.host, "state", state_words(event))
            if event.latency_ms is not None:
                history = self.latency.setdefault(event.host, deque(maxlen=HISTORY))
                history.append(event.latency_ms)
                cell(event.host, "latency", f"{event.latency_ms:.1f} ms")
                cell(event.host, "history", sparkline(list(history)))
            if event.kernels is not None:
                cell(event.host, "kernels", str(event.kernels))
            if event.last_activity:
                cell(event.host, "activity", ago(event.last_activity))
            cell(event.host, "reconnects", str(event.reconnects))
        elif isinstance(event, ConnectionChanged) and event.state == "reconnecting":
            cell(event.host, "state", "reconnecting")
