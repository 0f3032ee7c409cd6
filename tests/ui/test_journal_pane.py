"""The cockpit keeps what its Sync log says in the journal, and opens with the journal's last
lines: after a quit, a person still reads why an instance stopped at 3 am."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Log

from nbterm.app import NbtermApp
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.screens.main import MainScreen
from nbterm.services.journal import Journal
from nbterm.services.remote.events import Decision, GuardDecisions, Notice
from nbterm.ui.messages import ServiceEvent
from tests.ui.test_app import CONFIG


async def test_the_sync_log_is_kept_and_opens_with_the_journal(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    MainScreen.auto_refresh = False
    try:
        earlier = time.time() - 8 * 3600
        Journal(paths).append("gpu", "gpu: stopped: today's spending $20.10 of $20.00", earlier)
        app = NbtermApp(paths, load_config(write_config(CONFIG)))
        async with app.run_test(size=(120, 36)) as pilot:
            log = app.screen.query_one("#sync-log", Log)
            await pilot.pause()
            assert any("the journal's last line (" in line for line in log.lines)
            assert any(line.endswith("gpu: stopped: today's spending $20.10 of $20.00")
                       for line in log.lines)  # fmt: skip
            decided = Decision(earlier + 60, False, "powering off: idle for 62 min")
            app.screen.post_message(ServiceEvent(Notice("gpu", "the spot price rose to $0.61/h")))
            app.screen.post_message(ServiceEvent(GuardDecisions("gpu", (decided,))))
            await pilot.pause()
        texts = [(e.host, e.text) for e in Journal(paths).entries("gpu")]
        assert ("gpu", "gpu: the spot price rose to $0.61/h") in texts  # what the log said
        assert ("gpu", "the idle guard: powering off: idle for 62 min") in texts
        assert Journal(paths).entries("gpu")[1].at == earlier + 60  # at the guard's own time
    finally:
        MainScreen.auto_refresh = True
