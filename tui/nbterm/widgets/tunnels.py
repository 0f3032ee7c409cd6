"""The Tunnels pane: per host, the working local URL, tunnel state, latency and Jupyter activity;
below a host, a row for each of its other ports (its ``forwards``, and those added for the
session), with what its server answered."""

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
from nbterm.services.remote.events import (
    ConnectionChanged,
    ForwardClosed,
    ForwardHealth,
    ForwardOpened,
    TunnelHealth,
    TunnelOpened,
)
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


def forward_state_words(health: ForwardHealth) -> str:
    """A forward's State cell: its state, and what its server answered (``up · HTTP 200``)."""
    if health.state in ("up", "degraded") and health.answer:
        return f"{health.state} · {health.answer}"
    return health.state


def forward_row(host: str, name: str) -> str:
    """A forward's row key: under its host (a host's name has no '/')."""
    return f"{host}/{name}"


def row_label(name: str) -> str:
    return f" └ {name}"


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
            for forward in host.forwards:
                row = forward_row(host.name, forward.name)
                self._cells.rows.add(row)
                self._cells.add_row(row, self._forward_cells(forward.name, forward.local_port))
        yield table

    @staticmethod
    def _forward_cells(name: str, port: int) -> dict[TunnelColumn, str]:
        return {"host": row_label(name), "url": f"http://127.0.0.1:{port}/", "state": "down",
                "history": "", "kernels": "", "activity": "", "reconnects": ""}  # fmt: skip

    def picked(self) -> tuple[str, str] | None:
        """With the pane focused: the host and port of the row under the cursor (``jupyter``
        for a host's own row); None otherwise."""
        table = self.query_one(DataTable)
        if not table.has_focus:
            return None
        row = self._cells.cursor_key()
        if row is None:
            return None
        host, _, name = row.partition("/")
        return host, name or "jupyter"

    def on_resize(self) -> None:
        self._cells.fit(self.content_size.width)

    def set_state(self, host: str, state: str) -> None:
        self._cells.set(host, "state", state)

    def _apply_forward(self, event: ForwardOpened | ForwardHealth | ForwardClosed) -> None:
        row, cell = forward_row(event.host, event.name), self._cells.set
        if isinstance(event, ForwardOpened):
            if row not in self._cells.rows:  # one added for the session
                self._cells.insert_row(row, self._forward_cells(event.name, event.local_port),
                                       after=event.host)  # fmt: skip
                self._cells.fit(self.content_size.width)
            url = event.url + (f" ({event.wanted_port} taken)" if event.fell_back else "")
            cell(row, "url", url)
            cell(row, "state", "connecting")
        elif isinstance(event, ForwardHealth):
            cell(row, "state", forward_state_words(event))
            if event.latency_ms is not None:
                history = self.latency.setdefault(row, deque(maxlen=HISTORY))
                history.append(event.latency_ms)
                cell(row, "latency", f"{event.latency_ms:.1f} ms")
                cell(row, "history", sparkline(list(history)))
            else:
                cell(row, "latency", UNKNOWN)
        elif event.session_only:
            self.latency.pop(row, None)
            self._cells.remove_row(row)
        else:
            cell(row, "state", "closed")

    def apply(self, event: object) -> None:
        cell = self._cells.set
        if isinstance(event, ForwardOpened | ForwardHealth | ForwardClosed):
            self._apply_forward(event)
        elif isinstance(event, TunnelOpened):
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
