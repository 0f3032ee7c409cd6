"""First run: no config file yet. Offer a starter config or an import from ~/.ssh/config."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from nbterm.config.import_ssh import ImportSshError, import_hosts
from nbterm.config.starter import write_starter
from nbterm.locations import tildify
from nbterm.widgets.plain import marked, plain


class FirstRunScreen(Screen[None]):
    """Shown when the config file does not exist."""

    BINDINGS = [
        Binding("c", "create", "Create starter config", id="first_run.create"),
        Binding("i", "import_ssh", "Import ~/.ssh/config", id="first_run.import"),
    ]

    class ConfigWritten(Message):
        """The config file now exists; the app loads it and opens the main screen."""

        def __init__(self, note: str) -> None:
            super().__init__()
            self.note = note

    def __init__(self, config_file: Path, ssh_config: Path | None = None) -> None:
        super().__init__(id="first-run")
        self.config_file = config_file
        self.ssh_config = ssh_config or Path("~/.ssh/config").expanduser()

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="first-run-box"):
            yield Static("[b]Welcome to nbterm[/b]", id="first-run-title")
            yield Static(
                marked(
                    "There is no config file at [b]$path[/b] yet.\nnbterm needs one TOML file "
                    "that lists your hosts, launch templates and sync rules. Start from one of "
                    "these:",
                    path=tildify(self.config_file),
                ),
                id="first-run-text",
            )
            options = OptionList(
                Option("c  Create an annotated starter config", id="create"),
                Option(
                    plain(f"i  Import the hosts of {tildify(self.ssh_config)}"),
                    id="import",
                    disabled=not self.ssh_config.is_file(),
                ),
                Option("q  Quit (or run `nbterm config init` yourself)", id="quit"),
                id="first-run-options",
            )
            yield options
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        actions = {"create": self.action_create, "import": self.action_import_ssh}
        if event.option_id == "quit":
            self.app.exit()
        elif event.option_id in actions:
            actions[event.option_id]()

    def action_create(self) -> None:
        self._write(import_from=None)

    def action_import_ssh(self) -> None:
        if not self.ssh_config.is_file():
            self.notify(f"there is no {self.ssh_config} to import", severity="warning")
            return
        self._write(import_from=self.ssh_config)

    @work(thread=True, exclusive=True, group="first-run", exit_on_error=False)
    def _write(self, import_from: Path | None) -> None:
        extra, note = "", f"wrote a starter config to {self.config_file}"
        if import_from is not None:
            try:
                result = import_hosts(import_from)
            except ImportSshError as exc:
                self.app.call_from_thread(self.notify, str(exc), severity="error")
                return
            extra = result.to_toml(import_from)
            note = f"imported {len(result.hosts)} host(s) into {self.config_file}"
        try:
            write_starter(self.config_file, extra=extra)
        except Exception as exc:  # a clear notification, never a crash  # noqa: BLE001
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.post_message(self.ConfigWritten(note))
