"""Tables whose cells are named (a column key, never an index) and updated only when their text
changes (health arrives all the time). The one place that writes DataTable cells: each is plain
text (``plain_cell``), never a str that DataTable would parse as markup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable

from nbterm.widgets.plain import plain_cell

UNKNOWN = "—"

Key = TypeVar("Key", bound=str)


@dataclass(frozen=True)
class Column(Generic[Key]):
    key: Key
    label: str
    width: int | None = None


class CellWriter(Generic[Key]):
    """Adds one table's columns, then writes its cells by row key and column key."""

    def __init__(
        self, table: DataTable[Text], columns: Sequence[Column[Key]], rows: set[str]
    ) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.rows = rows
        self.cells: dict[tuple[str, Key], str] = {}
        for column in self.columns:
            table.add_column(column.label, width=column.width, key=column.key)

    def add_row(self, row: str, values: Mapping[Key, str]) -> None:
        """A row by its key; a column not in ``values`` shows as unknown."""
        cells = (plain_cell(values.get(c.key, UNKNOWN)) for c in self.columns)
        self.table.add_row(*cells, key=row)

    def set(self, row: str, column: Key, value: str) -> None:
        if row not in self.rows or self.cells.get((row, column)) == value:
            return
        self.cells[(row, column)] = value
        self.table.update_cell(row, column, plain_cell(value))


def wrapping_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """A table whose last column wraps (nothing is cut at any width), every cell plain Text:
    never parsed as markup."""
    table = Table(box=None, expand=True, show_edge=False, pad_edge=False, header_style="bold")
    for number, name in enumerate(headers):
        last = number == len(headers) - 1
        table.add_column(name, no_wrap=not last, ratio=1 if last else None,
                         overflow="fold" if last else "ellipsis")  # fmt: skip
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table
