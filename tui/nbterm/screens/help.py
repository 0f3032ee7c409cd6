"""Help: what every key does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from nbterm.widgets.cells import wrapping_table


class HelpScreen(ModalScreen[None]):
    """Lists the bindings of the screen below it. Closed with Escape, q or ?."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, bindings: list[tuple[str, str, str, str]]) -> None:
        super().__init__(id="help")
        self.rows = bindings

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static("[b]nbterm keys[/b]", id="help-title")
            headers = ("Key", "Action", "Id (for keymap)", "What it does")  # the last one wraps
            yield Static(wrapping_table(headers, self.rows), id="help-table", markup=False)
            yield Static(
                markup=False,
                content="Quitting closes the tunnels; Jupyter keeps running on the remote in tmux, "
                "so kernels survive. Change any key in a [keymap] table of the config, by its id. "
                "Close this help with q, ? or Escape.",
                id="help-footer",
            )

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
