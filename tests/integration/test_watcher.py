"""Remote watchers over the real sshd: they end with their channel, and start over when their
command ends by itself (a folder that does not exist yet)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.shell import WATCH_ENDED, until_disconnected
from nbterm.services.remote.ssh import Link, close_quietly, connect, run, target_for
from nbterm.services.sync.watcher import RemoteWatcher
from tests.harness.remote import remote_config_text, trust_all
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd


@pytest.fixture
async def link(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> AsyncIterator[Link]:
    config: LoadedConfig = load_config(write_config(remote_config_text(sshd)))
    opened = await connect(
        target_for(config.hosts["box"], config), KnownHosts(paths.known_hosts), trust_all
    )
    try:
        yield opened
    finally:
        close_quietly(opened)


async def remote_alive(link: Link, pid: int) -> bool:
    status, _out, _err = await run(link, f"kill -0 {pid}")  # a pid this test started
    return status == 0


async def test_a_command_that_ends_says_so_with_its_status(link: Link) -> None:
    process = await link.conn.create_process(until_disconnected("echo one; exit 3"))
    try:
        lines = [await asyncio.wait_for(process.stdout.readline(), 10) for _ in range(2)]
    finally:
        process.close()
    assert lines == ["one\n", f"{WATCH_ENDED} 3\n"]


async def test_closing_the_channel_ends_the_watch_on_the_remote(link: Link) -> None:
    marker = f"/tmp/nbterm-watch-{uuid.uuid4().hex[:8]}"
    process = await link.conn.create_process(
        until_disconnected(f"exec sh -c 'echo $$ > {marker}; exec sleep 300'")
    )
    try:
        for _ in range(100):
            _status, out, _err = await run(link, f"cat {marker} 2>/dev/null")
            if out.strip():
                break
            await asyncio.sleep(0.05)
        pid = int(out)
        assert await remote_alive(link, pid)
        process.close()
        await process.wait_closed()
        for _ in range(100):
            if not await remote_alive(link, pid):
                break
            await asyncio.sleep(0.05)
        assert not await remote_alive(link, pid), "the watch outlived its channel"
    finally:
        await run(link, f"rm -f {marker}")


async def test_inotify_on_a_missing_folder_watches_it_once_it_exists(link: Link) -> None:
    folder = f"nbterm-watch-{uuid.uuid4().hex[:8]}"
    changes: list[float] = []
    watcher = RemoteWatcher(
        lambda: _ready(link), f"~/{folder}/", lambda: changes.append(0.0), mode="inotify"
    )
    task = asyncio.create_task(watcher.run())
    try:
        for _ in range(100):  # inotifywait refused the folder, and the watcher said why
            if watcher.last_error and "No such file" in watcher.last_error:
                break
            await asyncio.sleep(0.05)
        assert watcher.last_error is not None
        assert "No such file" in watcher.last_error
        await run(link, f"mkdir -p {folder}")
        for _ in range(100):  # the next attempt is in place (it reports once when it is)
            if changes:
                break
            await asyncio.sleep(0.05)
        assert changes, "the watch never started on the new folder"
        seen = len(changes)
        await run(link, f"echo '{{}}' > {folder}/new.ipynb")
        for _ in range(100):
            if len(changes) > seen:
                break
            await asyncio.sleep(0.05)
        assert len(changes) > seen, "a save in the new folder was not noticed"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await run(link, f"rm -rf {folder}")


async def _ready(link: Link) -> Link:
    return link
