"""A failure on one file is that file's failure: the other notebooks arrive, the cycle and the
task go on, the failure is said once with its reason, and one-shot sync exits non-zero.

Invariants (checker): no local file vanished; every other notebook home byte-identical.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from nbterm.services.sync.events import CycleDone, FileReceived, SyncEvent, SyncFailed
from tests.faults.checker import check_home, files_under, said
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World


async def test_a_remote_notebook_that_became_a_folder(world: World) -> None:
    world.remote.write("a.ipynb", notebook("a"))
    world.remote.write("b.ipynb", notebook("b"))
    recorder = Recorder()
    engine = world.engine(recorder)
    await engine.cycle()
    world.remote.sh(f"cd {world.remote.folder} && rm a.ipynb && mkdir a.ipynb")
    world.remote.write("a.ipynb/inner.ipynb", notebook("inner"))
    world.remote.write("b.ipynb", notebook("b2"))
    world.remote.write("c.ipynb", notebook("c"))
    done = await engine.cycle()
    check_home(world.local, remote={"b.ipynb": notebook("b2").encode(),
                                    "c.ipynb": notebook("c").encode()},
               before=["a.ipynb"])  # fmt: skip
    assert not done.ok
    text = said(recorder)
    assert "a.ipynb/inner.ipynb" in text
    assert "in the way" in text
    again = await engine.cycle()  # said once, not every cycle
    assert not again.ok
    assert said(recorder).count("in the way") == 1


async def test_a_local_folder_where_the_remote_has_a_notebook(world: World) -> None:
    world.local.mkdir(parents=True)
    (world.local / "x.ipynb").mkdir()
    (world.local / "x.ipynb" / "mine.txt").write_text("my own file")
    world.remote.write("x.ipynb", notebook("x"))
    world.remote.write("y.ipynb", notebook("y"))
    recorder = Recorder()
    done = await world.engine(recorder).cycle()
    check_home(world.local, remote={"y.ipynb": notebook("y").encode()},
               before=["x.ipynb/mine.txt"])  # fmt: skip
    assert not done.ok
    assert "x.ipynb" in said(recorder)


def test_one_shot_sync_says_what_was_not_synced(world: World) -> None:
    world.local.mkdir(parents=True)
    (world.local / "x.ipynb").mkdir()
    world.remote.write("x.ipynb", notebook("x"))
    world.remote.write("y.ipynb", notebook("y"))
    done = world.nbterm("sync", "box")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "not synced" in done.stdout
    assert "x.ipynb" in done.stdout
    assert "retrying next cycle" not in done.stdout
    assert (world.local / "y.ipynb").read_text() == notebook("y")


def test_a_local_path_that_is_a_file(world: World, tmp_path: Path) -> None:
    target = tmp_path / "a file"
    target.write_text("mine")
    world.config(target)
    world.remote.write("y.ipynb", notebook("y"))
    done = world.nbterm("sync", "box")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "not a folder" in done.stdout + done.stderr
    assert target.read_text() == "mine"


async def test_the_engine_task_survives_a_promotion_error(world: World) -> None:
    world.remote.write("a.ipynb", notebook("a"))
    recorder = Recorder()
    engine = world.engine(recorder)
    await engine.cycle()
    world.remote.sh(f"cd {world.remote.folder} && rm a.ipynb && mkdir a.ipynb")
    world.remote.write("a.ipynb/inner.ipynb", notebook("inner"))
    task = asyncio.create_task(engine.run())
    try:
        await asyncio.sleep(2)
        assert not task.done(), task.exception() if task.done() else None
        world.remote.write("later.ipynb", notebook("later"))
        engine.request("now")
        for _ in range(100):
            if (world.local / "later.ipynb").exists():
                break
            await asyncio.sleep(0.1)
        assert (world.local / "later.ipynb").read_text() == notebook("later")
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _can_mount() -> bool:
    probe = Path("/tmp") / "nbterm-mount-probe"
    probe.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode == 0:
        subprocess.run(["umount", str(probe)], check=False)
    probe.rmdir()
    return done.returncode == 0


needs_mount = pytest.mark.skipif(
    not shutil.which("mount") or not _can_mount(),
    reason="a small filesystem needs `mount -t tmpfs` (root, outside a restricted container)",
)


@pytest.fixture
def small_fs(tmp_path: Path) -> object:
    folder = tmp_path / "small fs"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@needs_mount
async def test_a_full_disk(world: World, small_fs: Path) -> None:
    local = small_fs / "nb"
    world.config(local)
    world.remote.write("small.ipynb", notebook("small"))
    world.remote.write("big.ipynb", notebook("big", pad=3_000_000))
    recorder = Recorder()
    engine = world.engine(recorder)
    done = await engine.cycle()
    assert not done.ok
    assert (local / "small.ipynb").read_text() == notebook("small")
    assert not (local / "big.ipynb").exists()
    assert not [rel for rel in files_under(local) if "nbterm-tmp" in rel]
    assert "No space left" in said(recorder) or "disk is full" in said(recorder)
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_fs)], check=True)
    done = await engine.cycle()
    assert done.ok
    check_home(local, remote={"big.ipynb": notebook("big", pad=3_000_000).encode(),
                              "small.ipynb": notebook("small").encode()})  # fmt: skip


@needs_mount
async def test_a_read_only_folder(world: World, small_fs: Path) -> None:
    local = small_fs / "nb"
    world.config(local)
    world.remote.write("a.ipynb", notebook("a"))
    recorder = Recorder()
    engine = world.engine(recorder)
    await engine.cycle()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    world.remote.write("a.ipynb", notebook("a2"))
    world.remote.write("b.ipynb", notebook("b"))
    done = await engine.cycle()
    assert not done.ok
    assert (local / "a.ipynb").read_text() == notebook("a")
    assert "read-only" in said(recorder).lower()
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    done = await engine.cycle()  # staged, not re-sent by rsync: still promoted
    assert done.ok
    check_home(local, remote={"a.ipynb": notebook("a2").encode(),
                              "b.ipynb": notebook("b").encode()})  # fmt: skip


def _events(recorder: Recorder, kind: type[SyncEvent]) -> list[SyncEvent]:
    return recorder.of(kind)


async def test_failures_are_said_once_not_every_cycle(world: World) -> None:
    world.local.mkdir(parents=True)
    (world.local / "x.ipynb").mkdir()
    world.remote.write("x.ipynb", notebook("x"))
    recorder = Recorder()
    engine = world.engine(recorder)
    for _ in range(5):
        await engine.cycle("timer")
    assert said(recorder).count("x.ipynb") == 1
    assert not [e for e in _events(recorder, FileReceived)]
    assert all(isinstance(e, CycleDone) and not e.ok for e in _events(recorder, CycleDone))
    assert not _events(recorder, SyncFailed) or len(_events(recorder, SyncFailed)) == 1
