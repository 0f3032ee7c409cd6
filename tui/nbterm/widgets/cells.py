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
    drop: int = 0
    """Where the table is too narrow for every column, those with the highest ``drop`` go
    first; 0: always shown (the columns a row means nothing without)."""


PADDING = 2
"""What DataTable adds to each column (one cell of padding on either side)."""


class CellWriter(Generic[Key]):
    """Adds one table's columns, then writes its cells by row key and column key. At a width
    too narrow for every column it shows the most useful ones that fit (``fit``) rather than
    scroll sideways: the values of a column not shown are kept, for when it is shown again."""

    def __init__(
        self, table: DataTable[Text], columns: Sequence[Column[Key]], rows: set[str]
    ) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.shown = self.columns
        self.rows = rows
        self.order: list[str] = []
        self.cells: dict[tuple[str, Key], str] = {}
        for column in self.columns:
            table.add_column(column.label, width=column.width, key=column.key)

    def add_row(self, row: str, values: Mapping[Key, str]) -> None:
        """A row by its key; a column not in ``values`` shows as unknown."""
        self.order.append(row)
        for column in self.columns:
            self.cells[(row, column.key)] = values.get(column.key, UNKNOWN)
        self.table.add_row(*(plain_cell(self.cells[(row, c.key)]) for c in self.shown), key=row)

    def insert_row(self, row: str, values: Mapping[Key, str], *, after: str) -> None:
        """A row added later, placed after row ``after`` (and the rows placed after it before)."""
        if row in self.rows:
            return
        keep = self.cursor_key()
        self.rows.add(row)
        at = self.order.index(after) + 1 if after in self.order else len(self.order)
        while at < len(self.order) and self.order[at].startswith(after + "/"):
            at += 1  # (a host's own rows stay together: "gpu", "gpu/tensorboard"...)
        self.order.insert(at, row)
        for column in self.columns:
            self.cells[(row, column.key)] = values.get(column.key, UNKNOWN)
        self._rebuild(keep)

    def remove_row(self, row: str) -> None:
        if row not in self.rows:
            return
        keep = self.cursor_key()
        self.rows.discard(row)
        self.order.remove(row)
        for column in self.columns:
            self.cells.pop((row, column.key), None)
        self._rebuild(keep)

    def cursor_key(self) -> str | None:
        """The row under the cursor."""
        cursor = self.table.cursor_row
        return self.order[cursor] if 0 <= cursor < len(self.order) else None

    def set(self, row: str, column: Key, value: str) -> None:
        if row not in self.rows or self.cells.get((row, column)) == value:
            return
        self.cells[(row, column)] = value
        if any(shown.key == column for shown in self.shown):
            self.table.update_cell(row, column, plain_cell(value))

    def _width(self, column: Column[Key]) -> int:
        if column.width is not None:
            return column.width + PADDING
        values = [self.cells.get((row, column.key), "") for row in self.order]
        return max([len(column.label), *map(len, values)]) + PADDING

    def fit(self, width: int) -> None:
        """Show the columns that fit in ``width`` cells, dropping by each column's ``drop``."""
        if width <= 0:
            return
        shown = list(self.columns)
        for column in sorted(self.columns, key=lambda c: -c.drop):
            if sum(map(self._width, shown)) <= width or column.drop == 0:
                break
            shown.remove(column)
        if tuple(shown) == self.shown:
            return
        self.shown = tuple(shown)
        self._rebuild(self.cursor_key())

    def _rebuild(self, keep: str | None) -> None:
        """The table again from its cells, the cursor on row ``keep`` (where it was)."""
        cursor = self.table.cursor_row
        self.table.clear(columns=True)
        for column in self.shown:
            self.table.add_column(column.label, width=column.width, key=column.key)
        for row in self.order:
            cells = (plain_cell(self.cells[(row, c.key)]) for c in self.shown)
            self.table.add_row(*cells, key=row)
        if self.order:
            at = self.order.index(keep) if keep in self.order else min(cursor, len(self.order) - 1)
            self.table.move_cursor(row=at)


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
