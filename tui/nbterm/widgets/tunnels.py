"""The Tunnels pane: per host, the working local URL, tunnel state, latency and Jupyter activity."""

from __future__ import annotations

import datetime as dt
from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from nbterm.config import LoadedConfig
from nbterm.services.cloud.idle import parse_time
from nbterm.services.remote.events import ConnectionChanged, TunnelHealth, TunnelOpened
from nbterm.widgets.cells import CellWriter, add_columns

UNKNOWN = "—"
SPARKS = "▁▂▃▄▅▆▇█"
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


class TunnelsPane(Vertical):
    COLUMNS = ("Host", "Local URL", "State", "Latency", "History", "Kernels", "Activity", "Re")
    WIDTHS = (None, None, 18, 9, HISTORY, 7, 8, 3)

    def __init__(self, config: LoadedConfig) -> None:
        super().__init__(id="tunnels", classes="pane")
        self.config = config
        self.border_title = "Tunnels"
        self.latency: dict[str, deque[float]] = {}

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="tunnels-table", cursor_type="row", zebra_stripes=True)
        self._cells = CellWriter(
            table, add_columns(table, self.COLUMNS, self.WIDTHS), set(self.config.hosts)
        )
        for host in self.config.hosts.values():
            url = f"http://127.0.0.1:{host.jupyter.local_port}/"
            table.add_row(host.name, url, "down", UNKNOWN, "", UNKNOWN, UNKNOWN, "0", key=host.name)
        yield table

    def _set(self, host: str, column: int, value: str) -> None:
        self._cells.set(host, column, value)

    def set_state(self, host: str, state: str) -> None:
        self._set(host, 2, state)

    def apply(self, event: object) -> None:
        if isinstance(event, TunnelOpened):
            url = f"http://127.0.0.1:{event.local_port}/"
            if event.fell_back:
                url += f" ({event.wanted_port} taken)"
            self._set(event.host, 1, url)
        elif isinstance(event, TunnelHealth):
            self._set(event.host, 2, state_words(event))
            if event.latency_ms is not None:
                history = self.latency.setdefault(event.host, deque(maxlen=HISTORY))
                history.append(event.latency_ms)
                self._set(event.host, 3, f"{event.latency_ms:.1f} ms")
                self._set(event.host, 4, sparkline(list(history)))
            if event.kernels is not None:
                self._set(event.host, 5, str(event.kernels))
            if event.last_activity:
                self._set(event.host, 6, ago(event.last_activity))
            self._set(event.host, 7, str(event.reconnects))
        elif isinstance(event, ConnectionChanged) and event.state == "reconnecting":
            self._set(event.host, 2, "reconnecting")
