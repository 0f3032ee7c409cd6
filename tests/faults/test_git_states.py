"""The user's git states: nbterm never resolves a conflict for them, never commits in the middle
of a merge or rebase or on a detached HEAD (it says why, once), waits out a short index.lock, and
commits later what an earlier failed commit missed.

Invariant: the user's git state is theirs (no conflict marked resolved, no commit on a detached
HEAD); every synced notebook is committed once git allows it.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from nbterm.services.sync.events import Committed
from tests.faults.checker import said
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World


def git(folder: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def _synced_repo(world: World) -> tuple[Recorder, object]:
    world.remote.write("a.ipynb", notebook("v1"))
    world.remote.write("b.ipynb", notebook("b1"))
    recorder = Recorder()
    engine = world.engine(recorder, git_commit=True, git_init=True)
    await engine.cycle()
    return recorder, engine


async def test_a_conflicted_notebook_is_never_marked_resolved(world: World) -> None:
    recorder, engine = await _synced_repo(world)
    local = world.local
    git(local, "checkout", "-q", "-b", "side")
    (local / "a.ipynb").write_text(notebook("side edit"))
    git(local, "commit", "-qam", "side")
    git(local, "checkout", "-q", "-")
    (local / "a.ipynb").write_text(notebook("main edit"))
    git(local, "commit", "-qam", "main")
    git(local, "merge", "side", check=False)  # a conflict on a.ipynb
    assert "a.ipynb" in git(local, "diff", "--name-only", "--diff-filter=U")
    world.remote.write("a.ipynb", notebook("v2"))
    world.remote.write("b.ipynb", notebook("b2"))
    await engine.cycle()  # type: ignore[attr-defined]
    assert "a.ipynb" in git(local, "diff", "--name-only", "--diff-filter=U")
    assert (local / ".git" / "MERGE_HEAD").exists()
    assert "merge" in said(recorder)
    await engine.cycle()  # type: ignore[attr-defined]
    assert said(recorder).count("merge") == 1  # said once


async def test_no_commit_on_a_detached_head(world: World) -> None:
    recorder, engine = await _synced_repo(world)
    local = world.local
    head = git(local, "rev-parse", "HEAD").strip()
    git(local, "checkout", "-q", "--detach")
    world.remote.write("a.ipynb", notebook("v2"))
    await engine.cycle()  # type: ignore[attr-defined]
    assert git(local, "rev-parse", "HEAD").strip() == head
    assert "detached" in said(recorder)
    git(local, "checkout", "-q", "-")
    world.remote.write("b.ipynb", notebook("b2"))
    await engine.cycle()  # type: ignore[attr-defined]
    # the commit catches up what the refused one missed
    assert git(local, "status", "--porcelain") == ""
    assert git(local, "show", "HEAD:a.ipynb") == notebook("v2")


async def test_a_corrupt_branch_ref_is_named_never_called_a_detached_head(world: World) -> None:
    """A branch ref whose content is garbage (a disk fault, a bad edit) was said to be "HEAD is
    detached" (issue 21): git's own words name it, and nothing is committed until it is fixed."""
    recorder, engine = await _synced_repo(world)
    local = world.local
    branch = git(local, "branch", "--show-current").strip()
    ref = local / ".git" / "refs" / "heads" / branch
    good = ref.read_text()
    ref.write_text("garbage\n")
    world.remote.write("a.ipynb", notebook("v2"))
    await engine.cycle()  # type: ignore[attr-defined]
    words = said(recorder)
    assert "detached" not in words
    assert f"git cannot read HEAD in {local}" in words and "repaired" in words, words
    ref.write_text(good)
    await engine.cycle("now")  # type: ignore[attr-defined]
    assert git(local, "show", "HEAD:a.ipynb") == notebook("v2")


async def test_a_short_index_lock_is_waited_out(world: World) -> None:
    _recorder, engine = await _synced_repo(world)
    lock = world.local / ".git" / "index.lock"
    lock.write_text("")
    threading.Timer(1.0, lock.unlink).start()
    world.remote.write("a.ipynb", notebook("v2"))
    await engine.cycle()  # type: ignore[attr-defined]
    assert git(world.local, "show", "HEAD:a.ipynb") == notebook("v2")


async def test_a_lasting_index_lock_is_caught_up_later(world: World) -> None:
    recorder, engine = await _synced_repo(world)
    lock = world.local / ".git" / "index.lock"
    lock.write_text("")
    world.remote.write("a.ipynb", notebook("v2"))
    started = time.monotonic()
    await engine.cycle()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 30
    assert "index.lock" in said(recorder)
    lock.unlink()
    world.remote.write("b.ipynb", notebook("b2"))
    await engine.cycle()  # type: ignore[attr-defined]
    assert git(world.local, "status", "--porcelain") == ""
    assert git(world.local, "show", "HEAD:a.ipynb") == notebook("v2")
    commits = [e for e in recorder.of(Committed) if isinstance(e, Committed)]
    assert "a.ipynb" in commits[-1].files


async def test_pathspec_magic_in_a_name_is_a_plain_name(world: World) -> None:
    _recorder, engine = await _synced_repo(world)
    (world.local / "untracked.ipynb").write_text(notebook("the user's own, untracked"))
    world.remote.write(":(glob)*.ipynb", notebook("hostile name"))
    await engine.cycle()  # type: ignore[attr-defined]
    assert "untracked.ipynb" in git(world.local, "status", "--porcelain")
    assert "untracked.ipynb" not in git(world.local, "ls-files")
