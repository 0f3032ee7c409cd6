"""A git hook that hangs never stops sync (issue 21, item 3).

Before: the commit ran inside the cycle and git's 60 s timeout killed git but waited for the
hook holding its pipe: a 75 s hook made a 75 s cycle, a save made meanwhile arrived 72.6 s late,
the warning read "git: " (empty), and the killed git's .git/index.lock refused every commit after,
for good.

Invariants (3 hangs in a row, each with a save made during it): the save is home in under 5 s
while the hook hangs; the hook is killed at git's timeout (3 s here) with its process group; no
index.lock is left; the warning names the command, the time and the hook; once the hook is gone
the waiting files are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time

import pytest

from nbterm.services.sync import git
from nbterm.services.sync.events import SyncWarning
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World

HANG = 200  # seconds the hook would sleep if nothing ended it
TIMEOUT = 3.0
RUNS = 3


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def eventually(check: object, within: float) -> float:
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < within, f"not within {within:g}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def git_log(folder: os.PathLike[str]) -> str:
    return subprocess.run(["git", "-C", str(folder), "log", "--name-only", "--format=%s"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


async def test_a_hanging_pre_commit_hook_never_stops_sync(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git, "GIT_TIMEOUT", TIMEOUT)
    world.remote.write("a.ipynb", notebook("a1"))
    recorder = Recorder()
    engine = world.engine(recorder, git_commit=True, git_init=True, interval=3600)
    assert (await engine.cycle()).ok
    local = world.local
    assert "a.ipynb" in git_log(local)
    hook = local / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\necho $$ >> hook-pids\nexec sleep {HANG}\n")
    hook.chmod(0o755)
    pids_file = local / "hook-pids"
    running = asyncio.create_task(engine.run())
    arrivals: list[float] = []
    try:
        for run in range(RUNS):
            world.remote.write(f"b{run}.ipynb", notebook(f"first {run}"))
            engine.request("now")
            await eventually(lambda r=run: (local / f"b{r}.ipynb").exists(), 10)
            # a commit is hanging in its hook now; a save made meanwhile comes home
            await eventually(lambda r=run: pids_file.exists() and
                             len(pids_file.read_text().split()) > r, 5)  # fmt: skip
            hook_pid = int(pids_file.read_text().split()[-1])
            assert alive(hook_pid)
            world.remote.write(f"b{run}.ipynb", notebook(f"saved during the hang {run}"))
            engine.request("remote change")
            arrivals.append(await eventually(
                lambda r=run: (local / f"b{r}.ipynb").read_text()
                == notebook(f"saved during the hang {r}"), 5,
            ))  # fmt: skip
            # at git's timeout the hook goes with git, and no lock stays behind
            await eventually(lambda p=hook_pid: not alive(p), TIMEOUT + 5)
            await eventually(lambda: not (local / ".git" / "index.lock").exists(), 2)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        for pid in pids_file.read_text().split() if pids_file.exists() else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
    warnings = [e.message for e in recorder.of(SyncWarning)]  # type: ignore[attr-defined]
    timeouts = [w for w in warnings if "did not finish" in w]
    assert timeouts, warnings
    assert timeouts[0] == (
        f"git: git commit did not finish within {TIMEOUT:g}s (it runs the hook "
        ".git/hooks/pre-commit); it was stopped and the index.lock it left removed: "
        "committing again later"
    ), timeouts
    assert "git: " not in [w.strip() for w in warnings]
    assert max(arrivals) < 5, arrivals
    print(f"saves during the hang home in {', '.join(f'{a:.2f}' for a in arrivals)} s")
    # the hook gone, what waited is committed
    hook.unlink()
    pids_file.unlink()
    assert (await engine.cycle()).ok
    log = git_log(local)
    assert all(f"b{run}.ipynb" in log for run in range(RUNS)), log
