"""rsync's quick check hides a rewrite with the same size and the same modification time: kernels
that stamp at jiffy granularity, filesystems with 1-second times, ``cp -p``, ``tar x``,
``touch -r``. Content, not stat, decides what changed where the watcher saw a write.

Invariant: after a remote save the watcher reported, the local copy holds the new content
(0 stale) within the usual second or two, and no local edit is claimed where there was none.
The timing case runs RUNS times; the watch runs as in ``up`` (inotify on the remote), then as a
remote without inotify (the polling watch).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import close_quietly, connect, target_for
from nbterm.services.sync.events import ConflictKept
from nbterm.services.sync.watcher import RemoteWatcher, WatchMode
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World

RUNS = 10


def _same_size(text: str, size: int) -> bytes:
    data = notebook(text).encode()
    pad = size - len(data)
    assert pad >= 0
    return notebook(text + " " * pad).encode()


@pytest.mark.parametrize("mode", ["inotify", "poll"])
async def test_a_rewrite_with_the_same_size_and_mtime_comes_home(
    world: World, mode: WatchMode
) -> None:
    recorder = Recorder()
    engine = world.engine(recorder)
    target = world.local / "same.ipynb"
    remote = f"{world.remote.folder}/same.ipynb"
    world.remote.write("same.ipynb", _same_size("version 0", 400))
    world.remote.sh(f"touch -d '2026-01-01 12:00:00.123456789' {remote}")
    await engine.cycle()
    assert b"version 0" in target.read_bytes()
    config = world.config()
    known = KnownHosts(world.paths.known_hosts)
    link = await connect(target_for(config.hosts["box"], config), known)
    watcher = RemoteWatcher(
        lambda: asyncio.sleep(0, link), engine.rule.remote, engine.remote_changed, mode=mode,
        on_path=engine.remote_rewritten,
    )  # fmt: skip
    tasks = [asyncio.create_task(engine.run()), asyncio.create_task(watcher.run())]
    stale, took = 0, []
    try:
        await asyncio.sleep(1.5)  # the watch is in place
        for run in range(1, RUNS + 1):
            text = f"version {run}"
            data = _same_size(text, 400)
            # written, then stamped with the very same time: size and mtime are unchanged
            world.remote.write("same.ipynb", data)
            world.remote.sh(f"touch -d '2026-01-01 12:00:00.123456789' {remote}")
            started = time.monotonic()
            while text.encode() not in target.read_bytes() and time.monotonic() - started < 5:
                await asyncio.sleep(0.05)
            if text.encode() in target.read_bytes():
                took.append(time.monotonic() - started)
            else:
                stale += 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        close_quietly(link)
    assert stale == 0, f"{stale} of {RUNS} same-size, same-mtime rewrites stayed stale"
    assert max(took) < 3.0, took
    assert not recorder.of(ConflictKept), "a local edit was claimed where there was none"


async def test_the_watch_follows_a_remote_folder_deleted_and_made_again(world: World) -> None:
    """Before: inotifywait kept running on the deleted folder, watching nothing, and saves
    waited for the 30 s timer. Invariant: a save after the folder is made again is home in
    under 2 s, and no watch is left behind on the old folder."""
    recorder = Recorder()
    engine = world.engine(recorder)
    folder = world.remote.folder
    world.remote.write("first.ipynb", notebook("first"))
    await engine.cycle()
    config = world.config()
    link = await connect(
        target_for(config.hosts["box"], config), KnownHosts(world.paths.known_hosts)
    )
    watcher = RemoteWatcher(lambda: asyncio.sleep(0, link), engine.rule.remote,
                            engine.remote_changed, on_path=engine.remote_rewritten)  # fmt: skip
    tasks = [asyncio.create_task(engine.run()), asyncio.create_task(watcher.run())]
    watching = f"pgrep -c -f -u \"$(id -u)\" 'inotifywait.*/{folder}/$' || true"
    try:
        await asyncio.sleep(1.5)
        before = int(world.remote.sh(watching).strip())
        world.remote.sh(f"rm -rf {folder} && sleep 0.3 && mkdir {folder}")
        await asyncio.sleep(2.5)  # the watch notices, ends and starts again on the new folder
        world.remote.write("after.ipynb", notebook("after"))
        started = time.monotonic()
        target = world.local / "after.ipynb"
        while not target.is_file() and time.monotonic() - started < 10:
            await asyncio.sleep(0.05)
        took = time.monotonic() - started
        after = int(world.remote.sh(watching).strip())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        close_quietly(link)
    assert target.is_file(), "the save after the folder was made again never came home"
    assert took < 2.0, f"took {took:.1f}s (the timer, not the watch)"
    assert before == 1, f"{before} watches of the folder before it was deleted"
    assert after == 1, f"{after} watches of the folder after (the old one left behind?)"
