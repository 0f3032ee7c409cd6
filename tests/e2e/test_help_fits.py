"""The help screen as a person reads it in tmux at 80, 120 and 200 columns: every key's words
whole (they wrap; nothing is cut), read back with capture-pane.

Before: a 90-column table whose last column was cut even at 200 columns ("Copy the URL with its
token (OSC 5").
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.screens.main import MainScreen
from tests.harness.tmux import TmuxScreen

pytestmark = pytest.mark.e2e

WORDS = [b.tooltip for b in MainScreen.BINDINGS if not isinstance(b, tuple) and b.tooltip]


def _descriptions(screen: str) -> list[str]:
    """The "What it does" column, each row's wrapped lines joined."""
    # inside the help box's borders (the main screen shows around it at 200 columns)
    lines = [line[line.index("█") + 2 : line.rindex("█")] for line in screen.splitlines()
             if line.count("█") >= 2]  # fmt: skip
    header = next(i for i, line in enumerate(lines) if "What it does" in line)
    start = lines[header].index("What it does")
    rows: list[str] = []
    for line in lines[header + 1 :]:
        if not line.strip() or line.startswith("Quitting"):
            break
        cell = line[start:].strip()
        if line[:start].strip():
            rows.append(cell)
        elif rows:
            rows[-1] += " " + cell
    return rows


@pytest.mark.parametrize("width", [80, 120, 200])
def test_every_keys_words_are_whole_at_any_width(
    width: int, write_config: Callable[[str], Path]
) -> None:
    write_config('[hosts.box]\nhostname = "127.0.0.1"\n')
    screen = TmuxScreen(f"{shlex.quote(sys.executable)} -m nbterm", width=width, height=70)
    screen.start()
    try:
        screen.wait_for("Instances", "Tunnels")
        screen.send("?")
        screen.wait_for("nbterm keys", "What it does")
        shown = _descriptions(screen.capture())
        assert WORDS and set(WORDS) <= set(shown), (set(WORDS) - set(shown), shown)
        screen.send("q")
    finally:
        screen.send("q")
        screen.close()
