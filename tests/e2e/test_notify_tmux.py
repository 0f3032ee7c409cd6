"""Notifications as a person in another tmux window gets them: the cockpit runs in window 0, the
person works in window 1, and a sync starts failing (the remote folder is unreadable).

tmux's own record says the bell rang in window 0 (``window_bell_flag``, what marks it in the
status line); the laptop's notifier (a stand-in ``notify-send`` first on PATH, with a desktop
session in DISPLAY) was run with the words, as arguments. No OSC 9/777 goes into tmux (3.3a
drops them from a hidden pane). A second failure of the same rule notifies nothing.
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
    stubs, shown_by = tmp_path / "bin", tmp_path / "notify-send was run with"
    stubs.mkdir()
    stub = stubs / "notify-send"
    record = shlex.quote(str(shown_by))
    stub.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s|" "$a"; done >> {record}\n'
                    f"echo >> {record}\n")  # fmt: skip
    stub.chmod(0o755)
    command = (f"env DISPLAY=:99 PATH={shlex.quote(str(stubs))}:\"$PATH\" "
               f"{shlex.quote(sys.executable)} -m nbterm")  # fmt: skip
    screen = TmuxScreen(command, width=120, height=36)
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
            if flag == "1" and shown_by.exists():
                break
            time.sleep(0.2)
        assert flag == "1", "tmux saw no bell in the cockpit's window"
        calls = shown_by.read_text().splitlines() if shown_by.exists() else []
        assert len(calls) == 1, calls
        assert calls[0].startswith("--app-name=nbterm|--|nbterm|box:~/nbterm-faults-"), calls
        assert "sync failed" in calls[0]
        # the rule keeps failing on its timer: said once, not on every retry
        time.sleep(6)
        assert len(shown_by.read_text().splitlines()) == 1
        raw = written.read_text("latin-1") if written.exists() else ""
        assert "]9;" not in raw and "]777;" not in raw  # nothing smuggled through tmux
    finally:
        world.remote.sh(f"chmod 755 {world.remote.folder}")
        screen.tmux("send-keys", "-t", "main:0", "q")
        time.sleep(2)
        screen.close()
