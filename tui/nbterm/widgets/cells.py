"""A table whose cells are updated only when their text changes (health arrives all the time)."""

from __future__ import annotations

from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey


class CellWriter:
    """Writes cells of one DataTable by row key and column index, skipping unchanged ones."""

    def __init__(self, table: DataTable[str], columns: list[ColumnKey], rows: set[str]) -> None:
        self.table = table
        self.columns = columns
        self.rows = rows
        self.cells: dict[tuple[str, int], str] = {}

    def set(self, row: str, column: int, value: str) -> None:
        if row not in self.rows or self.cells.get((row, column)) == value:
            return
        self.cells[(row, column)] = value
        self.table.update_cell(row, self.columns[column], value)


def add_columns(
    table: DataTable[str], labels: tuple[str, ...], widths: tuple[int | None, ...]
) -> list[ColumnKey]:
    return [
        table.add_column(label, width=width) for label, width in zip(labels, widths, strict=True)
    ]
