"""What starts a sync cycle, and what the log will call it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nbterm.config.schema import SyncRule
from nbterm.locations import Paths
from nbterm.services.sync.engine import DEBOUNCE_QUIET, SyncEngine


def engine(paths: Paths, tmp_path: Path) -> SyncEngine:
    rule = SyncRule(host="box", remote="~/nb/", local=str(tmp_path / "nb"), interval=600)
    return SyncEngine(rule, paths, paths.ssh_config, lambda event: None)


async def test_sync_now_pressed_while_a_burst_settles_is_called_now(
    paths: Paths, tmp_path: Path
) -> None:
    sync = engine(paths, tmp_path)
    sync.remote_changed()
    waiting = asyncio.ensure_future(sync._next_trigger())
    await asyncio.sleep(DEBOUNCE_QUIET / 2)
    sync.request("now")
    assert await asyncio.wait_for(waiting, 5) == "now"


async def test_a_remote_change_after_sync_now_does_not_rename_it(
    paths: Paths, tmp_path: Path
) -> None:
    sync = engine(paths, tmp_path)
    sync.request("now")
    sync.remote_changed()
    assert await asyncio.wait_for(sync._next_trigger(), 5) == "now"


async def test_a_burst_of_remote_changes_is_one_cycle(paths: Paths, tmp_path: Path) -> None:
    sync = engine(paths, tmp_path)
    sync.remote_changed()
    waiting = asyncio.ensure_future(sync._next_trigger())
    for _ in range(3):
        await asyncio.sleep(DEBOUNCE_QUIET / 3)
        sync.remote_changed()
    assert await asyncio.wait_for(waiting, 5) == "remote change"
    assert not sync._wake.is_set()  # the burst left nothing pending
