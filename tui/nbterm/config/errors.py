"""Config errors that say where: file, dotted key, and line and column when known."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config file."""

    key: str
    """Dotted key, such as ``templates.gpu.ami`` or ``sync[1].host``; "" for the whole file."""
    message: str
    line: int | None = None
    """1-based line in the file, when the problem can be placed."""
    column: int | None = None
    """1-based column in the file, when the problem can be placed."""
    source_line: str | None = None


class ConfigError(Exception):
    """The config file cannot be used. ``str()`` gives the full, user-facing report."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(self.render())

    @property
    def first(self) -> Problem:
        return self.problems[0]

    def render(self) -> str:
        blocks = [_render_problem(self.path, problem) for problem in self.problems]
        count = len(self.problems)
        if count > 1:
            blocks.append(f"{count} problems in {self.path}")
        return "\n".join(blocks)


def _render_problem(path: Path, problem: Problem) -> str:
    where = str(path)
    if problem.line is not None:
        where += f":{problem.line}"
        if problem.column is not None:
            where += f":{problem.column}"
    head = (
        f"{where}: {problem.key}: {problem.message}"
        if problem.key
        else f"{where}: {problem.message}"
    )
    if problem.line is None or problem.source_line is None:
        return head
    number = str(problem.line)
    gutter = " " * len(number)
    text = problem.source_line.expandtabs(1)
    lines = [head, f"  {number} | {text}"]
    if problem.column is not None:
        lines.append(f"  {gutter} | {' ' * (problem.column - 1)}^")
    return "\n".join(lines)
