"""Help: what every key does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


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
            yield Static(self.table(), id="help-table")
            yield Static(
                markup=False,
                content="Quitting closes the tunnels; Jupyter keeps running on the remote in tmux, "
                "so kernels survive. Change any key in a [keymap] table of the config, by its id. "
                "Close this help with q, ? or Escape.",
                id="help-footer",
            )

    def table(self) -> Table:
        """Every key, its words whole at any width: the last column wraps, none is cut."""
        table = Table(box=None, expand=True, show_edge=False, pad_edge=False, header_style="bold")
        for name, wraps in (("Key", False), ("Action", False), ("Id (for keymap)", False),
                            ("What it does", True)):  # fmt: skip
            table.add_column(name, no_wrap=not wraps, ratio=1 if wraps else None,
                             overflow="fold" if wraps else "ellipsis")  # fmt: skip
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row))  # plain text, never markup
        return table

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
