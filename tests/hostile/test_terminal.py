"""What a hostile file name does to a real terminal: `nbterm sync` in tmux (with tmux's
clipboard on, as OSC 52 copying needs) pulls names made of escape sequences. The pane's title,
tmux's paste buffers and the cells on screen (read with capture-pane -e, escapes kept) show that
nothing took effect."""

from __future__ import annotations

import shlex
import sys

import pytest

from tests.harness.sync import notebook
from tests.harness.tmux import TmuxScreen
from tests.harness.world import World

pytestmark = [pytest.mark.sshd, pytest.mark.e2e]


def test_escape_sequences_in_names_do_nothing_to_the_terminal(world: World) -> None:
    data = notebook("x")
    world.remote.sh(
        f"cd {world.remote.folder} && "
        f"printf %s '{data}' > \"$(printf 'a\\033]2;PWNED\\007.ipynb')\" && "
        f"printf %s '{data}' > \"$(printf 'b\\033]52;c;ZWNobyBwd25lZA==\\007.ipynb')\" && "
        f"printf %s '{data}' > \"$(printf 'c\\033[2J\\033[31mred.ipynb')\""
    )
    command = (
        f"sleep 0.5; {shlex.quote(sys.executable)} -m nbterm sync box; echo SYNC-OVER; sleep 60"
    )
    screen = TmuxScreen(command, width=160, height=30)
    screen.start()
    try:
        screen.tmux("set-option", "-s", "set-clipboard", "on")
        screen.tmux("set-option", "-g", "allow-rename", "on")
        before_title = screen.tmux("display-message", "-p", "#{pane_title}").stdout
        screen.wait_for("SYNC-OVER", timeout=60)
        cells = screen.tmux("capture-pane", "-p", "-e", "-t", "main").stdout
        title = screen.tmux("display-message", "-p", "#{pane_title}").stdout
        buffers = screen.tmux("list-buffers").stdout
    finally:
        screen.close()
    assert "PWNED" not in title
    assert title == before_title
    assert buffers.strip() == "", f"a paste buffer was set: {buffers}"
    assert "\x1b[31m" not in cells  # no colour escape from a name reached a cell
    assert "a\\e]2;PWNED\\x07.ipynb" in cells
    assert "b\\e]52;c;ZWNobyBwd25lZA==\\x07.ipynb" in cells
    assert "received" in cells
