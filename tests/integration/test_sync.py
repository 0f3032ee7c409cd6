"""The sync engine with real rsync over real OpenSSH to the loopback sshd."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.remote.ssh_config import write_ssh_config
from nbterm.services.sync.engine import SyncEngine
from nbterm.services.sync.events import (
    Committed,
    ConflictKept,
    CycleDone,
    FileReceived,
    NotebookRejected,
    RemoteDeleted,
    SyncFailed,
)
from nbterm.services.sync.promote import BACKUP_DIR, PARTIAL_DIR
from tests.harness.remote import remote_config_text, sync_rule
from tests.harness.sshd import SshServer
from tests.harness.sync import Recorder, Remote, notebook

pytestmark = pytest.mark.sshd


@pytest.fixture
def setup(
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    trust_sshd: Callable[[str], None],
    tmp_path: Path,
) -> Iterator[tuple[LoadedConfig, Remote, Path]]:
    folder = f"nbterm-sync-{uuid.uuid4().hex[:8]}"
    local = tmp_path / "local notebooks"
    text = remote_config_text(sshd) + sync_rule(folder, local, extra='exclude = ["scratch/"]\n')
    config = load_config(write_config(text))
    trust_sshd("box")
    remote = Remote(write_ssh_config(config, paths), folder)
    remote.sh(f"mkdir -p {folder}")
    try:
        yield config, remote, local
    finally:
        remote.sh(f"rm -rf {folder}")
        remote.end_master()


def engine_for(
    config: LoadedConfig, paths: Paths, recorder: Recorder, **kwargs: object
) -> SyncEngine:
    rule = config.sync[0]
    if kwargs:
        rule = dataclasses.replace(rule, **kwargs)  # type: ignore[arg-type]
    return SyncEngine(rule, paths, paths.ssh_config, recorder, io_timeout=5)


async def test_a_pull_honours_filters_and_odd_names(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths
) -> None:
    config, remote, local = setup
    names = ["top.ipynb", "deep/er/nested.ipynb", "with space.ipynb", "ünïcødé ☃.ipynb"]
    for name in names:
        remote.write(name, notebook(name))
    remote.write("notes.txt", "not a notebook")
    remote.write(".~top.ipynb", notebook("jupyter's temporary copy"))
    remote.write(".ipynb_checkpoints/top-checkpoint.ipynb", notebook("checkpoint"))
    remote.write("scratch/skip.ipynb", notebook("excluded by the rule"))
    remote.sh(f"mkdir -p {remote.folder}/empty/dir")
    recorder = Recorder()
    done = await engine_for(config, paths, recorder).cycle()
    assert done.ok
    assert sorted(done.files) == sorted(names)
    found = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert found == sorted(names)
    assert not (local / "empty").exists()
    assert (local / "ünïcødé ☃.ipynb").read_text() == notebook("ünïcødé ☃.ipynb")
    received = recorder.of(FileReceived)
    assert all(isinstance(e, FileReceived) and e.new for e in received)


async def test_a_20_mb_notebook_and_an_idle_cycle(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths
) -> None:
    config, remote, local = setup
    big = notebook("big", pad=20_000_000)
    remote.write("big.ipynb", big)
    recorder = Recorder()
    engine = engine_for(config, paths, recorder)
    first = await engine.cycle()
    assert first.files == ("big.ipynb",)
    assert first.bytes >= 20_000_000
    assert (local / "big.ipynb").stat().st_size == len(big)
    second = await engine.cycle()
    assert second.ok
    assert second.files == ()
    assert second.bytes == 0


async def test_a_local_edit_survives_in_the_backup_folder(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths
) -> None:
    config, remote, local = setup
    remote.write("a.ipynb", notebook("v1"))
    recorder = Recorder()
    engine = engine_for(config, paths, recorder)
    await engine.cycle()
    (local / "a.ipynb").write_text(notebook("edited here"))
    remote.write("a.ipynb", notebook("v2 from remote"))
    await engine.cycle()
    conflicts = recorder.of(ConflictKept)
    assert len(conflicts) == 1
    conflict = conflicts[0]
    assert isinstance(conflict, ConflictKept)
    assert Path(conflict.backup).read_text() == notebook("edited here")
    assert Path(conflict.backup).is_relative_to(local / BACKUP_DIR)
    assert (local / "a.ipynb").read_text() == notebook("v2 from remote")


async def test_a_notebook_truncated_mid_save_is_rejected_and_the_good_copy_stays(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths
) -> None:
    config, remote, local = setup
    remote.write("a.ipynb", notebook("good"))
    recorder = Recorder()
    engine = engine_for(config, paths, recorder)
    await engine.cycle()
    remote.write("a.ipynb", notebook("good and longer")[:30])  # what a reader sees mid-save
    done = await engine.cycle()
    assert done.files == ()
    rejected = recorder.of(NotebookRejected)
    assert [e.path for e in rejected if isinstance(e, NotebookRejected)] == ["a.ipynb"]
    assert (local / "a.ipynb").read_text() == notebook("good")
    remote.write("a.ipynb", notebook("good and longer"))
    done = await engine.cycle()
    assert done.files == ("a.ipynb",)
    assert (local / "a.ipynb").read_text() == notebook("good and longer")


async def test_a_remote_deletion_keeps_the_local_file(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths
) -> None:
    config, remote, local = setup
    remote.write("gone.ipynb", notebook("soon deleted"))
    recorder = Recorder()
    engine = engine_for(config, paths, recorder)
    await engine.cycle()
    remote.sh(f"rm {remote.folder}/gone.ipynb")
    await engine.cycle()
    assert (local / "gone.ipynb").read_text() == notebook("soon deleted")
    assert [e.path for e in recorder.of(RemoteDeleted) if isinstance(e, RemoteDeleted)] == [
        "gone.ipynb"
    ]


async def test_git_commits_only_real_changes(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths
) -> None:
    config, remote, local = setup
    remote.write("a.ipynb", notebook("v1"))
    recorder = Recorder()
    engine = engine_for(config, paths, recorder, git_commit=True, git_init=True)
    await engine.cycle()
    await engine.cycle()  # nothing changed: no commit
    (local / "a.ipynb").write_text(notebook("local edit"))
    remote.write("a.ipynb", notebook("v2"))
    await engine.cycle()  # a conflict: the backup must not be committed
    commits = [e for e in recorder.of(Committed) if isinstance(e, Committed)]
    assert [c.files for c in commits] == [("a.ipynb",), ("a.ipynb",)]
    log = subprocess.run(
        ["git", "-C", str(local), "log", "--format=%s", "--name-only"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert log.count("nbterm: 1 file(s) from box") == 2
    assert BACKUP_DIR not in log
    status = subprocess.run(
        ["git", "-C", str(local), "status", "--porcelain"], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    assert status == ""  # the backup folder is excluded, not left untracked


async def test_the_remote_made_unreachable_mid_transfer_loses_nothing(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths, sshd: SshServer
) -> None:
    config, remote, local = setup
    remote.write("big.ipynb", notebook("v1", pad=1000))
    recorder = Recorder()
    engine = engine_for(config, paths, recorder)
    await engine.cycle()
    good = (local / "big.ipynb").read_text()
    remote.write("big.ipynb", notebook("v2", pad=20_000_000))
    engine.bwlimit_kib = 2000  # about 10 s for 20 MB: time to cut the link mid-transfer
    task = asyncio.create_task(engine.cycle())
    await asyncio.sleep(1.5)
    sshd.pause()
    started = time.monotonic()
    try:
        done = await asyncio.wait_for(task, 30)
    finally:
        sshd.resume()
    assert time.monotonic() - started < 15  # ServerAlive 1 s x 3 and rsync's I/O timeout bound it
    assert not done.ok
    failures = [e for e in recorder.of(SyncFailed) if isinstance(e, SyncFailed)]
    assert failures
    assert failures[0].code in (12, 30, 255)
    assert (local / "big.ipynb").read_text() == good
    assert sorted(p.name for p in local.iterdir()) == ["big.ipynb"]  # nothing half-written here
    assert PARTIAL_DIR not in {p.name for p in local.rglob("*")}


async def test_final_sync_has_a_bound(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths, sshd: SshServer
) -> None:
    config, remote, _local = setup
    remote.write("a.ipynb", notebook("v1"))
    engine = engine_for(config, paths, Recorder())
    remote.end_master()
    sshd.pause()
    started = time.monotonic()
    try:
        done = await engine.final_sync(timeout=2)
    finally:
        sshd.resume()
    assert not done.ok
    assert done.trigger == "final"
    assert time.monotonic() - started < 6


def test_cycle_done_is_reported_last(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths
) -> None:
    config, remote, _local = setup
    remote.write("a.ipynb", notebook("v1"))
    recorder = Recorder()
    asyncio.run(engine_for(config, paths, recorder).cycle())
    assert isinstance(recorder.events[-1], CycleDone)


async def test_two_saves_of_the_same_size_within_one_second_both_arrive(
    setup: tuple[LoadedConfig, Remote, Path], paths: Paths
) -> None:
    config, remote, local = setup
    engine = engine_for(config, paths, Recorder())
    remote.write("a.ipynb", notebook("v1"))
    await engine.cycle()
    remote.write("a.ipynb", notebook("v2"))  # same size, same second
    await engine.cycle()
    assert (local / "a.ipynb").read_text() == notebook("v2")


async def test_an_rsync_too_old_for_the_flags_is_named_with_the_fix(
    setup: tuple[LoadedConfig, Remote, Path],
    paths: Paths,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """macOS's rsync 2.6.9 rejects --info=progress2 with a usage error (exit 1), which read as
    'a bug in nbterm'. The version is checked first and the fix named."""
    from nbterm.services.sync.rsync_version import local_rsync_problem

    config, remote, _local = setup
    remote.write("a.ipynb", notebook("v1"))
    bin_dir = tmp_path / "old rsync"
    bin_dir.mkdir()
    fake = bin_dir / "rsync"
    fake.write_text("#!/bin/sh\necho 'rsync  version 2.6.9  protocol version 29'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    local_rsync_problem.cache_clear()
    try:
        recorder = Recorder()
        done = await engine_for(config, paths, recorder).cycle()
    finally:
        local_rsync_problem.cache_clear()
    assert not done.ok
    [failure] = recorder.of(SyncFailed)
    assert isinstance(failure, SyncFailed)
    assert "rsync 2.6.9" in failure.message
    assert "brew install rsync" in failure.message
