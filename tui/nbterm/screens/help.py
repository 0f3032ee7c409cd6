"""Help: what every key does."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from nbterm.widgets.cells import CellWriter, Column


class HelpScreen(ModalScreen[None]):
    """Lists the bindings of the screen below it. Closed with Escape, q or ?."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, bindings: list[tuple[str, str, str, str]]) -> None:
        super().__init__(id="help")
        self.rows = bindings

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("[b]nbterm keys[/b]", id="help-title")
            table: DataTable[Text] = DataTable(
                id="help-table", cursor_type="none", show_cursor=False
            )
            columns = [Column(key, key) for key in ("Key", "Action", "Id (for keymap)",
                                                     "What it does")]  # fmt: skip
            cells = CellWriter(table, columns, {str(n) for n in range(len(self.rows))})
            for number, row in enumerate(self.rows):
                cells.add_row(str(number), dict(zip((c.key for c in columns), row, strict=True)))
            yield table
            yield Static(
                markup=False,
                content="Quitting closes the tunnels; Jupyter keeps running on the remote in tmux, "
                "so kernels survive. Change any key in a [keymap] table of the config, by its id. "
                "Close this help with q, ? or Escape.",
                id="help-footer",
            )

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
