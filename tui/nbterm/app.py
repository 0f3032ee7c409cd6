"""The Textual app: wiring only. Screens and widgets own their rendering and bindings."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding

from nbterm.config import ConfigError, LoadedConfig, load_config
from nbterm.locations import Paths, tildify
from nbterm.screens.first_run import FirstRunScreen
from nbterm.screens.help import HelpScreen
from nbterm.screens.main import MainScreen


class NbtermApp(App[None]):
    TITLE = "nbterm"
    CSS_PATH = "nbterm.tcss"
    BINDINGS = [
        # Not a priority binding: inside a dialog, q closes the dialog (Escape is slow in tmux).
        Binding(
            "q",
            "quit",
            "Quit",
            id="app.quit",
            tooltip="Close tunnels and quit; remote Jupyter keeps running",
        ),
        Binding(
            "question_mark",
            "help",
            "Help",
            key_display="?",
            id="app.help",
            tooltip="Show every key",
        ),
        Binding(
            "r", "reload", "Reload config", id="app.reload", tooltip="Read the config file again"
        ),
    ]

    def __init__(self, paths: Paths, config: LoadedConfig | None) -> None:
        super().__init__()
        self.paths = paths
        self.config = config

    def on_mount(self) -> None:
        self.sub_title = tildify(self.paths.config_file)
        if self.config is None:
            self.push_screen(FirstRunScreen(self.paths.config_file))
        else:
            self.push_screen(MainScreen(self.config))

    def on_first_run_screen_config_written(self, message: FirstRunScreen.ConfigWritten) -> None:
        self.notify(message.note)
        self.action_reload()

    def action_reload(self) -> None:
        try:
            config = load_config(self.paths.config_file)
        except ConfigError as exc:
            self.notify(str(exc), title="Config not reloaded", severity="error", timeout=15)
            return
        except FileNotFoundError:
            return
        except Exception as exc:  # ConfigNotFoundError and friends  # noqa: BLE001
            self.notify(str(exc), severity="warning")
            return
        self.config = config
        self.switch_screen(MainScreen(config))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        rows = [
            (binding.key_display or binding.key, binding.description, binding.tooltip or "")
            for binding in self._visible_bindings()
        ]
        rows += [
            ("tab / shift+tab", "Next pane", "Move between the panes"),
            ("arrows", "Move", "Move the selection in a pane"),
            ("ctrl+p", "Command palette", "Search every action by name"),
            ("ctrl+q", "Quit", "Quit from anywhere, even inside a dialog"),
        ]
        self.push_screen(HelpScreen(rows))

    def _visible_bindings(self) -> list[Binding]:
        seen: dict[str, Binding] = {}
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if binding.show and binding.description:
                seen.setdefault(binding.action, binding)
        return list(seen.values())
