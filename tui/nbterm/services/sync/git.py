"""Optional git commit of the local copy after a sync that changed something.

The repository is the user's: nbterm commits only the files it placed, and only when git is in
a plain state. It never stages a path with a merge conflict, never commits during a merge,
rebase, cherry-pick, revert or bisect, nor on a detached HEAD (it says why instead); it waits out
a short ``index.lock``. Paths are literal (``--literal-pathspecs``): a remote file named
``:(glob)**`` is a name, not a pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

from nbterm.services.sync.promote import BACKUP_DIR

NBTERM_IDENTITY = ["-c", "user.name=nbterm", "-c", "user.email=nbterm@localhost"]
LOCK_WAIT_SECONDS = 5.0
IN_PROGRESS = {
    "MERGE_HEAD": "a merge is in progress",
    "rebase-merge": "a rebase is in progress",
    "rebase-apply": "a rebase or am is in progress",
    "CHERRY_PICK_HEAD": "a cherry-pick is in progress",
    "REVERT_HEAD": "a revert is in progress",
    "BISECT_LOG": "a bisect is in progress",
}


class GitError(Exception):
    pass


class GitRefused(GitError):
    """git is in a state where nbterm must not commit; the files wait for a later commit."""


GIT_TIMEOUT = 60.0
"""How long one git command may take, its hooks included."""
_LOCKING = {"add", "commit"}
"""The commands nbterm runs that take .git/index.lock."""


class GitTimeout(GitError):
    """A git command (or a hook it ran) did not finish in time: it was killed, hooks and all."""


async def _git(repo: Path, *args: str, timeout: float | None = None) -> tuple[int, str]:
    """Run git in ``repo``, in a process group of its own: at the timeout the whole group is
    killed (a hook holding git's pipe too, which a kill of git alone would wait for), and an
    index.lock that this git left behind is removed."""
    timeout = GIT_TIMEOUT if timeout is None else timeout
    started = time.time()
    proc = await asyncio.create_subprocess_exec(
        "git", "--literal-pathspecs", "-C", str(repo), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        await _end_group(proc)
        command = _subcommand(args)
        removed = await _remove_own_lock(repo, started) if command in _LOCKING else False
        hook = _hook_words(repo, command)
        raise GitTimeout(
            f"git {command} did not finish within {timeout:g}s{hook}; it was stopped"
            + (" and the index.lock it left removed" if removed else "")
            + ": committing again later"
        ) from None
    finally:
        if proc.returncode is None:
            await _end_group(proc)
    return proc.returncode or 0, out.decode(errors="surrogateescape").strip()


def _subcommand(args: tuple[str, ...]) -> str:
    """``commit`` of ``-c user.name=x commit -q ...``."""
    rest = list(args)
    while rest and rest[0] == "-c":
        rest = rest[2:]
    return rest[0] if rest else ""


async def _end_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own group (start_new_session): git and hooks
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


async def _remove_own_lock(repo: Path, started: float) -> bool:
    """Remove .git/index.lock if the git nbterm just killed made it (made after it started)."""
    lock = await _git_path(repo, "index.lock")
    try:
        if lock is None or lock.stat().st_mtime < started - 1:
            return False
        lock.unlink()
    except OSError:
        return False
    return True


def _hook_words(repo: Path, command: str) -> str:
    """ " (its pre-commit hook ran)" when a hook of that command exists, for the words."""
    hooks = {"commit": ("pre-commit", "commit-msg", "prepare-commit-msg", "post-commit")}
    found = [name for name in hooks.get(command, ()) if (repo / ".git" / "hooks" / name).is_file()]
    return f" (it runs the hook .git/hooks/{found[0]})" if found else ""


async def is_repo(folder: Path) -> bool:
    """True if ``folder`` is inside a git work tree (its own repository or an enclosing one)."""
    code, out = await _git(folder, "rev-parse", "--is-inside-work-tree")
    return code == 0 and out == "true"


async def ensure_repo(folder: Path, *, init: bool) -> bool:
    """True if ``folder`` is in a git repository (one is created there when ``init``)."""
    if await is_repo(folder):
        await _exclude_backups(folder)
        return True
    if not init:
        return False
    code, out = await _git(folder, "init", "-q")
    if code != 0:
        raise GitError(f"git init failed: {out}")
    await _exclude_backups(folder)
    return True


async def _git_path(folder: Path, name: str) -> Path | None:
    code, out = await _git(folder, "rev-parse", "--git-path", name)
    if code != 0:
        return None
    return Path(out) if Path(out).is_absolute() else folder / out


async def _exclude_backups(folder: Path) -> None:
    exclude = await _git_path(folder, "info/exclude")
    if exclude is None:
        return
    wanted = f"{BACKUP_DIR}/"  # at any depth: the folder may be inside a larger repository
    current = exclude.read_text() if exclude.exists() else ""
    if wanted not in current.splitlines():
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text(
            current + ("" if current.endswith("\n") or not current else "\n") + wanted + "\n"
        )


async def _check_state(folder: Path) -> None:
    for name, what in IN_PROGRESS.items():
        path = await _git_path(folder, name)
        if path is not None and path.exists():
            raise GitRefused(f"{what} in {folder}: not committing until it is finished")
    code, out = await _git(folder, "symbolic-ref", "-q", "HEAD")
    if code == 1:  # (-q: 1 means "not a symbolic ref", nothing else)
        raise GitRefused(f"HEAD is detached in {folder}: not committing until a branch is out")
    if code != 0:  # a corrupt branch ref or HEAD: git's own words say which
        said = out.splitlines()[-1] if out else f"git exit {code}"
        raise GitRefused(
            f"git cannot read HEAD in {folder} ({said}): not committing until it is repaired"
        )


async def _wait_for_lock(folder: Path) -> None:
    lock = await _git_path(folder, "index.lock")
    if lock is None:
        return
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while lock.exists():
        if time.monotonic() > deadline:
            raise GitRefused(
                f"{lock} has existed for over {LOCK_WAIT_SECONDS:g}s (another git command "
                "running, or one that crashed): committing later"
            )
        await asyncio.sleep(0.1)


async def commit(folder: Path, files: list[str], message: str) -> tuple[str | None, list[str]]:
    """Commit exactly ``files`` (nothing else the user has staged).

    Returns the commit id (None when there was nothing to commit) and the files left out
    because they have an unresolved merge conflict. Raises :class:`GitRefused` when git is in a
    state where nbterm must not commit.
    """
    files = [path for path in files if (folder / path).is_file()]
    if not files:
        return None, []
    await _check_state(folder)
    await _wait_for_lock(folder)
    code, out = await _git(folder, "ls-files", "-u", "-z", "--", *files)
    conflicted = sorted({entry.split("\t", 1)[1] for entry in out.split("\0") if "\t" in entry})
    files = [path for path in files if path not in conflicted]
    if not files:
        return None, conflicted
    code, out = await _git(folder, "add", "--", *files)
    if code != 0:
        raise GitError(f"git add failed: {out}")
    code, _ = await _git(folder, "diff", "--cached", "--quiet", "--", *files)
    if code == 0:
        return None, conflicted  # the files are already committed as they are
    identity: list[str] = []
    code, _ = await _git(folder, "config", "user.email")
    if code != 0:
        identity = NBTERM_IDENTITY
    code, out = await _git(folder, *identity, "commit", "-q", "-m", message, "--", *files)
    if code != 0:
        raise GitError(f"git commit failed: {out}")
    code, out = await _git(folder, "rev-parse", "--short", "HEAD")
    return (out if code == 0 else None), conflicted
