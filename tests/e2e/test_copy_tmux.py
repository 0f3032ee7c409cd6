"""`c` says "copied" only where the URL was copied, as a person in tmux finds it.

The cockpit runs in real tmux and brings the loopback host up; `c` then copies its URL. With
tmux's default ``set-clipboard external`` an application's OSC 52 is ignored: before, the
cockpit said "URL copied (with its token)" and nothing arrived (no buffer). With the laptop's
clipboard tool (a stand-in ``xclip`` first on PATH, a desktop session in DISPLAY) the URL goes
through its standard input, never its command line, and tmux is not asked about its clipboard
(a ``tmux`` first on the cockpit's PATH records each call, then runs the real one).
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.harness.tmux import TmuxScreen
from tests.harness.world import World, world

__all__ = ["world"]  # the fixture

pytestmark = [pytest.mark.sshd, pytest.mark.e2e]


def _cockpit(tmp_path: Path, *, with_xclip: bool) -> tuple[TmuxScreen, Path]:
    stubs, received = tmp_path / "bin", tmp_path / "xclip got"
    stubs.mkdir()
    stub = stubs / "xclip"
    stub.write_text(f'#!/bin/sh\necho "$@" > {shlex.quote(str(received))}.args\n'
                    f"cat > {shlex.quote(str(received))}\n")  # fmt: skip
    stub.chmod(0o755)
    real_tmux = shutil.which("tmux")
    assert real_tmux is not None
    spy = stubs / "tmux"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(stubs / "tmux calls"))}\n'
                   f'exec {shlex.quote(real_tmux)} "$@"\n')  # fmt: skip
    spy.chmod(0o755)
    display = "DISPLAY=:99 " if with_xclip else ""
    env = f'env {display}PATH={shlex.quote(str(stubs))}:"$PATH" '
    command = f"{env}{shlex.quote(sys.executable)} -m nbterm"
    return TmuxScreen(command, width=120, height=36), received


@pytest.mark.parametrize("with_xclip", [False, True], ids=["tmux default", "xclip"])
def test_c_says_copied_only_where_the_url_was_copied(
    world: World, tmp_path: Path, with_xclip: bool
) -> None:
    world.config()
    screen, received = _cockpit(tmp_path, with_xclip=with_xclip)
    screen.start()
    try:
        screen.wait_for("Sync log", timeout=30)
        screen.send("u")
        screen.wait_for("box: up; press o to open", timeout=60)
        screen.send("c")
        if with_xclip:
            screen.wait_for("URL (with its token) copied (xclip)", timeout=10)
            deadline = time.monotonic() + 5
            while not received.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            url = received.read_text()
            assert url.startswith("http://127.0.0.1:") and "token=" in url, url
            assert "token" not in Path(f"{received}.args").read_text()  # stdin, not argv
            calls = tmp_path / "bin" / "tmux calls"
            assert "set-clipboard" not in (calls.read_text() if calls.exists() else "")
        else:
            screen.wait_for("The URL was not copied", "set-clipboard is external", timeout=10)
            # shown whole on one line, to select by hand
            assert re.search(
                r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]{20,}", screen.capture()
            )
            assert screen.tmux("show-buffer").returncode != 0  # and indeed nothing arrived
            assert "show-options -gv set-clipboard" in (tmp_path / "bin" / "tmux calls").read_text()
            screen.send("Escape")
    finally:
        screen.send("q")
        time.sleep(2)
        screen.close()
