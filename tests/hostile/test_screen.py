"""What a hostile remote sends reaches the cockpit's screen only as visible text: file names
with escape sequences and newlines, failure messages, notices and spot-notice fields, in the
sync log, the toasts and the tunnel pane (Pilot; the tmux test reads the real terminal)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Log

from nbterm.app import NbtermApp
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.remote.events import Notice, RemoteEvent, SpotInterruption
from nbterm.services.sync.events import (
    ConflictKept,
    FileFailed,
    FileReceived,
    SyncEvent,
    SyncFailed,
    SyncWarning,
)
from nbterm.ui.messages import ServiceEvent

CONFIG = """
[hosts.gpu]
hostname = "127.0.0.1"

[[sync]]
host = "gpu"
remote = "~/nb/"
local = "/tmp/nbterm-hostile/nb/"
"""

TITLE = "\x1b]2;PWNED\x1b\\"
CLIP = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
CSI = "\x9b31m"  # a C1 control: the 8-bit CSI
NAME = f"{TITLE}x{CLIP}\nforged line{CSI}" + os.fsdecode(b"\xe9") + ".ipynb"
EVIL: list[RemoteEvent | SyncEvent] = [
    FileReceived("gpu:~/nb/", NAME, 10, True),
    ConflictKept("gpu:~/nb/", NAME, f"/tmp/b/{NAME}"),
    FileFailed("gpu:~/nb/", NAME, f"reason {TITLE}"),
    SyncFailed("gpu:~/nb/", 23, f"rsync said {CLIP}\nsecond line", 4.0),
    SyncWarning("gpu:~/nb/", f"git: {TITLE}"),
    Notice("gpu", f"Jupyter log tail {TITLE}\n{CLIP}"),
    SpotInterruption("gpu", f"stop{TITLE}", f"2026{CLIP}"),
]
BAD = ("\x1b", "\x9b", "\x07")


async def test_nothing_a_remote_sends_reaches_the_terminal_raw(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    app = NbtermApp(paths, load_config(write_config(CONFIG)))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        for event in EVIL:
            app.screen.post_message(ServiceEvent(event))
        await pilot.pause()
        await pilot.pause()
        lines = list(app.screen.query_one("#sync-log", Log).lines)
        toasts = [f"{n.title} {n.message}" for n in app._notifications]
        shown = "\n".join(lines + toasts)
        assert not [c for c in BAD if c in shown], shown
        assert not any(line.strip().startswith("forged line") for line in lines)
        assert "\\e]2;PWNED" in shown
        assert any("\\nforged line" in line for line in lines)
        assert len([line for line in lines if "x\\e]52" in line]) >= 3
