"""The collector is held on the way to the first screen, and goes on once it is drawn."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

from nbterm import startup
from nbterm.app import NbtermApp
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.screens.main import MainScreen
from tests.ui.test_app import CONFIG


async def test_collections_resume_with_the_first_frame(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    MainScreen.auto_refresh = False
    frozen = gc.get_freeze_count()
    startup.hold()  # as run_app does before its imports
    try:
        assert not gc.isenabled()
        app = NbtermApp(paths, load_config(write_config(CONFIG)))
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, MainScreen)
            assert gc.isenabled()  # the first frame is on screen: collections go on
            assert gc.get_freeze_count() > frozen  # over what is new only
    finally:
        gc.unfreeze()  # the rest of the test run collects as before
        gc.enable()
        MainScreen.auto_refresh = True


def test_resume_without_hold_changes_nothing() -> None:
    frozen = gc.get_freeze_count()
    gc.disable()  # held by someone else (a test runner, a profiler): not nbterm's to undo
    try:
        startup.resume()
        assert not gc.isenabled()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.enable()
