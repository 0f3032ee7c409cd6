"""The Instances pane: every configured host and EC2 instance, with state and cost."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from nbterm.config import Host, LoadedConfig

UNKNOWN = "—"


class InstancesPane(Vertical):
    """Name, kind, where, state, type, market, price, cost, uptime and idle time per host."""

    COLUMNS = ("Name", "Kind", "Where", "State", "Type", "Market", "$/h", "Cost", "Up", "Idle")

    def __init__(self, config: LoadedConfig) -> None:
        super().__init__(id="instances", classes="pane")
        self.config = config
        self.border_title = "Instances"

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(
            id="instances-table", cursor_type="row", zebra_stripes=True
        )
        table.add_columns(*self.COLUMNS)
        for host in self.config.hosts.values():
            table.add_row(*self._row(host), key=host.name)
        yield table

    def on_mount(self) -> None:
        count = len(self.config.hosts)
        self.border_subtitle = (
            f"{count} host{'s' if count != 1 else ''}"
            if count
            else ("no hosts yet: add [hosts.NAME] to the config, then press r")
        )

    def _row(self, host: Host) -> tuple[str, ...]:
        if host.is_ec2:
            template = self.config.templates.get(host.template or "")
            where = host.instance or f"(new, from {host.template})"
            itype = template.instance_type if template else UNKNOWN
            market = ("spot" if template.spot else "on-demand") if template else UNKNOWN
            return (
                host.name,
                "EC2",
                where,
                UNKNOWN,
                itype,
                market,
                UNKNOWN,
                UNKNOWN,
                UNKNOWN,
                UNKNOWN,
            )
        where = f"{host.hostname}:{host.port}" if host.port != 22 else str(host.hostname)
        return (
            host.name,
            "SSH",
            where,
            UNKNOWN,
            UNKNOWN,
            UNKNOWN,
            UNKNOWN,
            UNKNOWN,
            UNKNOWN,
            UNKNOWN,
        )

    @property
    def selected_host(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None
