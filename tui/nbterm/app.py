"""The Textual app: wiring only. Screens and widgets own their rendering and bindings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel

if TYPE_CHECKING:  # screens shown now and then are imported when shown (start-up stays light)
    from nbterm.screens.first_run import FirstRunScreen

from nbterm import startup
from nbterm.config import ConfigError, LoadedConfig, load_config
from nbterm.locations import Paths, tildify
from nbterm.safe_text import shown, shown_lines
from nbterm.screens.main import MainScreen, log_lines
from nbterm.services.journal import Journal
from nbterm.ui.controller import Controller


class NbtermApp(App[None]):
    TITLE = "nbterm"
    CSS_PATH = "nbterm.tcss"
    BINDINGS = [
        # Not a priority binding: inside a dialog, q closes the dialog (Escape is slow in tmux).
        Binding("q", "quit", "Quit", id="app.quit",
                tooltip="Close tunnels and quit; remote Jupyter keeps running"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help",
                tooltip="Show every key"),
        Binding("r", "reload", "Reload config", id="app.reload", show=False,
                tooltip="Read the config file again"),
    ]  # fmt: skip

    def __init__(self, paths: Paths, config: LoadedConfig | None) -> None:
        super().__init__()
        self.paths = paths
        self.config = config
        self.controller: Controller | None = None

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every toast passes here (``Screen.notify`` and ``Widget.notify`` too, which pass
        their own ``markup=True``), and every toast is plain text, whatever it was asked: a
        message may quote a remote's words (``[/]`` would end the app) or config keys like
        [aws]. Controls are made visible, so nothing can steer the terminal from one."""
        del markup  # never markup: see widgets/plain.py
        super().notify(
            shown_lines(message), title=shown(title), severity=severity, timeout=timeout,
            markup=False,
        )  # fmt: skip

    def on_mount(self) -> None:
        self.sub_title = tildify(self.paths.config_file)
        if self.config is None:
            from nbterm.screens.first_run import FirstRunScreen

            self.push_screen(FirstRunScreen(self.paths.config_file))
        else:
            self._open(self.config)

    def on_ready(self) -> None:
        startup.resume()  # the first frame is on screen: collections go on (nbterm/startup.py)

    def _open(self, config: LoadedConfig) -> None:
        self.config = config
        self.controller = Controller(self, config, self.paths)
        self._apply_keymap(config.keymap)
        journal = Journal(self.paths)  # what the Sync log says, kept (`nbterm log`)
        if isinstance(self.screen, MainScreen) or self.screen.id == "first-run":  # a reload
            self.switch_screen(MainScreen(config, log_lines(self.screen), journal))  # keeps them
        else:
            self.push_screen(MainScreen(config, journal=journal))

    def _apply_keymap(self, keymap: dict[str, str]) -> None:
        known = {b.id for b in [*self.BINDINGS, *MainScreen.BINDINGS] if isinstance(b, Binding)}
        unknown = sorted(set(keymap) - known)
        if unknown:
            self.notify(
                f"[keymap] unknown binding id(s): {', '.join(unknown)} "
                f"(known: {', '.join(sorted(i for i in known if i))})",
                severity="warning",
                timeout=20,
            )
        self.set_keymap({k: v for k, v in keymap.items() if k in known})

    def on_first_run_screen_config_written(self, message: FirstRunScreen.ConfigWritten) -> None:
        self.notify(message.note)
        self.action_reload()

    def action_reload(self) -> None:
        if self.controller is not None and self.controller.running:
            self.notify("hosts are up: bring them down before reloading the config",
                        severity="warning")  # fmt: skip
            return
        try:
            config = load_config(self.paths.config_file)
        except ConfigError as exc:
            self.notify(str(exc), title="Config not reloaded", severity="error", timeout=15)
            return
        except Exception as exc:  # ConfigNotFoundError and friends  # noqa: BLE001
            self.notify(str(exc), severity="warning")
            return
        self._open(config)

    async def action_quit(self) -> None:
        """Close every tunnel (after a final sync); Jupyter keeps running on each remote."""
        running = sorted(self.controller.running) if self.controller else []
        if running and self.controller is not None:
            self.notify("final sync and closing tunnels…", timeout=60)
            await self.controller.close_all()
            self.exit(message=f"tunnels closed; Jupyter keeps running on {', '.join(running)}")
            return
        self.exit()

    def action_help(self) -> None:
        from nbterm.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        rows = [(binding.key_display or binding.key, binding.description, binding.id or "",
                 binding.tooltip or "") for binding in self._visible_bindings()]  # fmt: skip
        rows += [
            ("tab / shift+tab", "Next pane", "", "Move between the panes"),
            ("arrows", "Move", "", "Move the selection in a pane"),
            ("ctrl+p", "Command palette", "", "Search every action by name"),
            ("ctrl+q", "Quit", "", "Quit from anywhere, even inside a dialog"),
        ]
        self.push_screen(HelpScreen(rows))

    def _visible_bindings(self) -> list[Binding]:
        seen: dict[str, Binding] = {}
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if binding.description and (binding.show or binding.id):
                seen.setdefault(binding.action, binding)
        return list(seen.values())
