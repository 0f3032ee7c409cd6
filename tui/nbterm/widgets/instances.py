"""The Instances pane: every configured host and EC2 instance, with state and cost."""

from __future__ import annotations

import time
from collections import deque
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from nbterm.config import Host, LoadedConfig
from nbterm.presenters import gpu_cell, guard_cell
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.spending import Spend, dollars_down
from nbterm.services.remote.events import GpuSample, GuardReport
from nbterm.widgets.cells import UNKNOWN, CellWriter, Column
from nbterm.widgets.plain import plain

InstanceColumn = Literal[
    "name",
    "kind",
    "where",
    "state",
    "type",
    "gpu",
    "market",
    "price",
    "cost",
    "uptime",
    "idle",
    "guard",
]
COLUMNS: tuple[Column[InstanceColumn], ...] = (  # by a narrow width, the highest drop goes first
    Column("name", "Name"),
    Column("kind", "Kind", 4, drop=10),
    Column("where", "Where", 19, drop=5),
    Column("state", "State", 10),
    Column("type", "Type", 11, drop=6),
    Column("gpu", "GPU", 18, drop=2),
    Column("market", "Market", 9, drop=9),
    Column("price", "$/h", 7, drop=7),
    Column("cost", "Cost", 8, drop=3),
    Column("uptime", "Up", 6, drop=4),
    Column("idle", "Idle", 7, drop=8),
    Column("guard", "Guard", 14),
)


GPU_HISTORY = 60
"""Samples kept for the GPU sparkline (5 min at nvidia-smi's 5 s)."""


def hours(value: float) -> str:
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} d"


class InstancesPane(Vertical):
    """Name, kind, where, state, type, its GPUs, market, price, cost, uptime, idle time and the
    idle guard on the instance, per host."""

    def __init__(self, config: LoadedConfig) -> None:
        super().__init__(id="instances", classes="pane")
        self.config = config
        self.border_title = "Instances"
        self.costs: dict[str, float] = {}
        self.spend: Spend | None = None
        self.gpu_history: dict[str, deque[float]] = {}
        self.active: dict[str, tuple[float | None, float | None]] = {}
        """Per host, the last activity Jupyter saw and the guard saw (epoch seconds)."""

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(
            id="instances-table", cursor_type="row", zebra_stripes=True
        )
        self._cells = CellWriter(table, COLUMNS, set(self.config.hosts))
        for host in self.config.hosts.values():
            self._cells.add_row(host.name, self._row(host))
        yield table

    def on_mount(self) -> None:
        self._subtitle()

    def on_resize(self) -> None:
        self._cells.fit(self.content_size.width)

    def _subtitle(self) -> None:
        count = len(self.config.hosts)
        if not count:
            self.border_subtitle = "no hosts yet: add [hosts.NAME] to the config, then press r"
            return
        text = f"{count} host{'s' if count != 1 else ''}"
        if self.costs:
            text += f" · running EC2 so far ${sum(self.costs.values()):.2f}"
        if self.spend is not None and self.spend.budget is not None:
            text += f" · today {dollars_down(self.spend.today)} of ${self.spend.budget:.2f}"
        self.border_subtitle = plain(text)

    def _row(self, host: Host) -> dict[InstanceColumn, str]:
        if host.is_ec2:
            template = self.config.templates.get(host.template or "")
            return {
                "name": host.name,
                "kind": "EC2",
                "where": host.instance or f"(new, from {host.template})",
                "type": template.instance_type if template else UNKNOWN,
                "market": ("spot" if template.spot else "on-demand") if template else UNKNOWN,
            }
        where = f"{host.hostname}:{host.port}" if host.port != 22 else str(host.hostname)
        return {"name": host.name, "kind": "SSH", "where": where}

    def set_state(self, host: str, state: str) -> None:
        self._cells.set(host, "state", state)

    def set_jupyter_activity(self, host: str, at: float) -> None:
        """Jupyter's own last activity (epoch seconds): one of the moments the Idle cell
        counts from."""
        self.active[host] = (at, self.active.get(host, (None, None))[1])
        self._show_idle(host)

    def _show_idle(self, host: str) -> None:
        """Idle since the latest activity anything saw: Jupyter's, or any signal of the guard
        (an SSH session, the GPU, the CPU), the moment the laptop's own idle stop counts from."""
        moments = [at for at in self.active.get(host, (None, None)) if at is not None]
        if moments:
            idle = max(0.0, time.time() - max(moments)) / 60
            self._cells.set(host, "idle", f"{idle:.0f} min")

    def set_gpu(self, sample: GpuSample) -> None:
        """The host's GPUs now, and a sparkline of their use over the last minutes."""
        history = self.gpu_history.setdefault(sample.host, deque(maxlen=GPU_HISTORY))
        history.append(sum(card.util for card in sample.gpus) / len(sample.gpus))
        self._cells.set(sample.host, "gpu", gpu_cell(sample.gpus, history))

    def clear_gpu(self, host: str) -> None:
        """Its machine does not run (or its session ended): no GPU figure from before."""
        self.gpu_history.pop(host, None)
        self._cells.set(host, "gpu", UNKNOWN)

    def set_guard(self, report: GuardReport) -> None:
        self._cells.set(report.host, "guard", guard_cell(report))
        if report.running and report.active_at is not None:
            self.active[report.host] = (self.active.get(report.host, (None, None))[0],
                                        report.active_at)  # fmt: skip
            self._show_idle(report.host)

    def apply_instances(
        self,
        instances: dict[str, Instance | None],
        prices: dict[str, float | None],
        spend: Spend | None = None,
        costs: dict[str, float] | None = None,
    ) -> None:
        """``costs``: each run's so far at the prices it ran at (a spot run's from its zone's
        history); a host not in it costs its price now times its hours."""
        cell = self._cells.set
        for name, instance in instances.items():
            if instance is None or instance.state != "running":
                # a machine that does not run is neither idle nor guarded now: no stale words
                cell(name, "idle", UNKNOWN)
                self.active.pop(name, None)
                cell(name, "guard", UNKNOWN)
                self.clear_gpu(name)
            if instance is None:
                self.set_state(name, "none")
                self.costs.pop(name, None)
                for column in ("price", "cost", "uptime"):
                    cell(name, column, UNKNOWN)
                continue
            cell(name, "where", instance.id)
            self.set_state(name, instance.state)
            cell(name, "type", instance.type)
            cell(name, "market", "spot" if instance.spot else "on-demand")
            uptime = instance.uptime_hours()
            cell(name, "uptime", hours(uptime) if instance.state == "running" else UNKNOWN)
            price = prices.get(name)
            if price is None:
                cell(name, "price", "unknown" if instance.state == "running" else UNKNOWN)
                self.costs.pop(name, None)
            else:
                cost = (costs or {}).get(name, price * uptime)
                cell(name, "price", f"{price:.3f}")
                cell(name, "cost", f"${cost:.2f}")
                self.costs[name] = cost
        self.spend = spend
        self._subtitle()

    @property
    def selected_host(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None
