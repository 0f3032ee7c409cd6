"""The main screen: instances, tunnels and the sync log."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header

from nbterm.config import LoadedConfig
from nbterm.widgets.instances import InstancesPane
from nbterm.widgets.sync_log import SyncLogPane
from nbterm.widgets.tunnels import TunnelsPane


class MainScreen(Screen[None]):
    def __init__(self, config: LoadedConfig) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        yield Header()
        yield InstancesPane(self.config)
        yield TunnelsPane(self.config)
        yield SyncLogPane(self.config)
        yield Footer()
