"""The Instances pane: every configured host and EC2 instance, with state and cost."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from nbterm.config import Host, LoadedConfig
from nbterm.services.cloud.instance import Instance
from nbterm.widgets.cells import CellWriter, add_columns

UNKNOWN = "—"


def hours(value: float) -> str:
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} d"


class InstancesPane(Vertical):
    """Name, kind, where, state, type, market, price, cost, uptime and idle time per host."""

    COLUMNS = ("Name", "Kind", "Where", "State", "Type", "Market", "$/h", "Cost", "Up", "Idle")
    WIDTHS = (None, 4, 20, 12, 12, 9, 7, 8, 7, 7)

    def __init__(self, config: LoadedConfig) -> None:
        super().__init__(id="instances", classes="pane")
        self.config = config
        self.border_title = "Instances"
        self.costs: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(
            id="instances-table", cursor_type="row", zebra_stripes=True
        )
        self._cells = CellWriter(
            table, add_columns(table, self.COLUMNS, self.WIDTHS), set(self.config.hosts)
        )
        for host in self.config.hosts.values():
            table.add_row(*self._row(host), key=host.name)
        yield table

    def on_mount(self) -> None:
        self._subtitle()

    def _subtitle(self) -> None:
        count = len(self.config.hosts)
        if not count:
            self.border_subtitle = "no hosts yet: add [hosts.NAME] to the config, then press r"
            return
        text = f"{count} host{'s' if count != 1 else ''}"
        if self.costs:
            text += f" · running EC2 so far ${sum(self.costs.values()):.2f}"
        self.border_subtitle = text

    def _row(self, host: Host) -> tuple[str, ...]:
        if host.is_ec2:
            template = self.config.templates.get(host.template or "")
            where = host.instance or f"(new, from {host.template})"
            itype = template.instance_type if template else UNKNOWN
            market = ("spot" if template.spot else "on-demand") if template else UNKNOWN
            return (host.name, "EC2", where, UNKNOWN, itype, market, UNKNOWN, UNKNOWN,
                    UNKNOWN, UNKNOWN)  # fmt: skip
        where = f"{host.hostname}:{host.port}" if host.port != 22 else str(host.hostname)
        return (host.name, "SSH", where, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN,
                UNKNOWN)  # fmt: skip

    def _set(self, host: str, column: int, value: str) -> None:
        self._cells.set(host, column, value)

    def set_state(self, host: str, state: str) -> None:
        self._set(host, 3, state)

    def set_idle(self, host: str, minutes: float) -> None:
        self._set(host, 9, f"{minutes:.0f} min")

    def apply_instances(
        self, instances: dict[str, Instance | None], prices: dict[str, float | None]
    ) -> None:
        for name, instance in instances.items():
            if instance is None:
                self.set_state(name, "none")
                self.costs.pop(name, None)
                for column in (6, 7, 8):
                    self._set(name, column, UNKNOWN)
                continue
            self._set(name, 2, instance.id)
            self.set_state(name, instance.state)
            self._set(name, 4, instance.type)
            self._set(name, 5, "spot" if instance.spot else "on-demand")
            uptime = instance.uptime_hours()
            self._set(name, 8, hours(uptime) if instance.state == "running" else UNKNOWN)
            price = prices.get(name)
            if price is None:
                self._set(name, 6, "unknown" if instance.state == "running" else UNKNOWN)
                self.costs.pop(name, None)
            else:
                self._set(name, 6, f"{price:.3f}")
                self._set(name, 7, f"${price * uptime:.2f}")
                self.costs[name] = price * uptime
        self._subtitle()

    @property
    def selected_host(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None
