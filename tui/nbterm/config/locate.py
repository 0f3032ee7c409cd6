"""Find where a dotted key sits in a TOML document, for error messages.

``tomllib`` gives values, not positions, so this reads the text the way a person does: table
headers (``[hosts.gpu]``, ``[[sync]]``) open a table, ``key = value`` lines fill it. It understands
bare, quoted and dotted keys, arrays of tables and one level of inline table, and skips
multi-line strings. It is only used to place an error; when it cannot place one, the error still
names the dotted key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_WS = " \t"


@dataclass(frozen=True)
class Position:
    line: int
    """1-based line number."""
    column: int
    """1-based column of the key (or of the value, for ``value_column``)."""
    value_column: int | None = None


def _read_key(text: str, start: int) -> tuple[list[str], int] | None:
    """Read a dotted key starting at ``start``; return its parts and the index after it."""
    parts: list[str] = []
    i = start
    while True:
        while i < len(text) and text[i] in _WS:
            i += 1
        if i >= len(text):
            return None
        quote = text[i]
        if quote in "\"'":
            end = i + 1
            while end < len(text) and text[end] != quote:
                end += 2 if quote == '"' and text[end] == "\\" else 1
            if end >= len(text):
                return None
            raw = text[i + 1 : end]
            parts.append(raw.encode().decode("unicode_escape") if quote == '"' else raw)
            i = end + 1
        else:
            match = _BARE.match(text, i)
            if not match:
                return None
            parts.append(match.group())
            i = match.end()
        while i < len(text) and text[i] in _WS:
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return parts, i


@dataclass
class _Entry:
    path: KeyPath
    line: int
    column: int
    value_column: int | None


def _scan(source: str) -> list[_Entry]:
    entries: list[_Entry] = []
    table: KeyPath = ()
    array_counts: dict[tuple[str | int, ...], int] = {}
    in_multiline: str | None = None
    lines = source.splitlines()
    for number, line in enumerate(lines, start=1):
        if in_multiline is not None:
            if in_multiline in line:
                in_multiline = None
            continue
        stripped = line.lstrip(_WS)
        indent = len(line) - len(stripped)
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[["):
            key = _read_key(line, indent + 2)
            if key:
                base: KeyPath = tuple(key[0])
                index = array_counts.get(base, -1) + 1
                array_counts[base] = index
                table = (*base, index)
                entries.append(_Entry(table, number, indent + 1, None))
            continue
        if stripped.startswith("["):
            key = _read_key(line, indent + 1)
            if key:
                table = _resolve_arrays(tuple(key[0]), array_counts)
                entries.append(_Entry(table, number, indent + 1, None))
            continue
        key = _read_key(line, indent)
        if not key or key[1] >= len(line) or line[key[1]] != "=":
            continue
        parts, after = key
        value_start = after + 1
        while value_start < len(line) and line[value_start] in _WS:
            value_start += 1
        path = (*table, *parts)
        entries.append(_Entry(path, number, indent + 1, value_start + 1))
        rest = line[value_start:]
        for marker in ('"""', "'''"):
            if rest.startswith(marker) and rest.count(marker) == 1:
                in_multiline = marker
        if rest.startswith("{"):
            entries.extend(_inline_table(path, line, value_start + 1, number))
        elif rest.startswith("["):
            entries.extend(_inline_tables_in_array(path, lines, number, value_start + 1))
    return entries


def _inline_tables_in_array(
    parent: KeyPath, lines: list[str], number: int, start: int
) -> list[_Entry]:
    """``forwards = [{ name = "a" }, { name = "b" }]``, on one line or several: each inline table
    of the array by its index (strings holding brackets are not looked into)."""
    entries: list[_Entry] = []
    depth, index, quote = 1, 0, ""  # (start: just after the opening bracket)
    for at in range(number - 1, len(lines)):
        line = lines[at]
        column = start if at == number - 1 else 0
        while column < len(line):
            char = line[column]
            if quote:
                quote = "" if char == quote else quote
            elif char in "\"'":
                quote = char
            elif char == "#":
                break
            elif char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
                if depth == 0:
                    return entries
            elif char == "{" and depth == 1:
                path = (*parent, index)
                entries.append(_Entry(path, at + 1, column + 1, column + 1))
                entries.extend(_inline_table(path, line, column + 1, at + 1))
                index += 1
            column += 1
    return entries


def _resolve_arrays(path: KeyPath, counts: dict[tuple[str | int, ...], int]) -> KeyPath:
    """``[sync.options]`` after ``[[sync]]`` means the options of the newest sync entry."""
    resolved: list[str | int] = []
    for part in path:
        resolved.append(part)
        if tuple(resolved) in counts:
            resolved.append(counts[tuple(resolved)])
    return tuple(resolved)


def _inline_table(parent: KeyPath, line: str, start: int, number: int) -> list[_Entry]:
    entries: list[_Entry] = []
    i = start
    while i < len(line):
        key = _read_key(line, i)
        if key and key[1] < len(line) and line[key[1]] == "=":
            value_start = key[1] + 1
            while value_start < len(line) and line[value_start] in _WS:
                value_start += 1
            column = i + 1 + (len(line[i:]) - len(line[i:].lstrip(_WS)))
            entries.append(_Entry((*parent, *key[0]), number, column, value_start + 1))
            i = value_start
        comma = line.find(",", i)
        if comma < 0:
            break
        i = comma + 1
    return entries


def locate(source: str, path: Sequence[str | int], *, at_value: bool = False) -> Position | None:
    """Where ``path`` is written in ``source``, or where its nearest written parent is.

    With ``at_value`` the column points at the value rather than at the key.
    """
    entries = _scan(source)
    wanted = tuple(path)
    while wanted:
        for entry in entries:
            if entry.path == wanted:
                column = entry.column
                if at_value and entry.value_column is not None and wanted == tuple(path):
                    column = entry.value_column
                return Position(entry.line, column, entry.value_column)
        wanted = wanted[:-1]
    return None
