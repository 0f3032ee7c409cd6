"""Notifications as a person in another tmux window gets them: the cockpit runs in window 0, the
person works in window 1, and a sync starts failing (the remote folder is unreadable).

tmux's own record says the bell rang in window 0 (``window_bell_flag``, what marks it in the
status line), and the bytes the app wrote (``pipe-pane``) hold the desktop notification, OSC 9
and OSC 777 wrapped for tmux's passthrough. A second failure of the same rule rings nothing.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import pytest

from tests.harness.tmux import TmuxScreen
from tests.harness.world import World, world

__all__ = ["world"]  # the fixture

pytestmark = [pytest.mark.sshd, pytest.mark.e2e]


def test_a_failing_sync_rings_the_cockpits_window_once(world: World, tmp_path: Path) -> None:
    world.config()
    world.remote.sh(f"chmod 000 {world.remote.folder}")
    written = tmp_path / "written by the app"
    screen = TmuxScreen(f"{shlex.quote(sys.executable)} -m nbterm", width=120, height=36)
    screen.start()
    try:
        screen.tmux("pipe-pane", "-o", "-t", "main:0", f"cat >> {shlex.quote(str(written))}")
        screen.wait_for("Sync log", timeout=30)
        screen.tmux("new-window", "-t", "main")  # the person works elsewhere now
        assert screen.tmux("display-message", "-p", "-t", "main:0",
                           "#{window_bell_flag}").stdout.strip() == "0"  # fmt: skip
        screen.tmux("send-keys", "-t", "main:0", "u")
        deadline = time.monotonic() + 60
        flag = "0"
        while time.monotonic() < deadline:
            flag = screen.tmux(
                "display-message", "-p", "-t", "main:0", "#{window_bell_flag}"
            ).stdout.strip()
            if flag == "1" and written.exists() and "\x1bPtmux;" in written.read_text("latin-1"):
                break
            time.sleep(0.2)
        raw = written.read_text("latin-1") if written.exists() else ""
        assert flag == "1", "tmux saw no bell in the cockpit's window"
        assert "\x1bPtmux;\x1b\x1b]9;nbterm: box:~/nbterm-faults-" in raw
        assert "\x1bPtmux;\x1b\x1b]777;notify;nbterm;box:~/" in raw
        assert "sync failed" in raw
        # the rule keeps failing on its timer: said once, not on every retry
        time.sleep(6)
        raw = written.read_text("latin-1")
        assert raw.count("\x1b\x1b]9;") == 1
    finally:
        world.remote.sh(f"chmod 755 {world.remote.folder}")
        screen.tmux("send-keys", "-t", "main:0", "q")
        time.sleep(2)
        screen.close()
