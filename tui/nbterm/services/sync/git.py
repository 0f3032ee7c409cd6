"""Optional git commit of the local copy after a sync that changed something."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nbterm.services.sync.promote import BACKUP_DIR

NBTERM_IDENTITY = ["-c", "user.name=nbterm", "-c", "user.email=nbterm@localhost"]


class GitError(Exception):
    pass


async def _git(repo: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "git", "-C", str(repo), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace").strip()


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


async def _exclude_backups(folder: Path) -> None:
    code, out = await _git(folder, "rev-parse", "--git-path", "info/exclude")
    if code != 0:
        return
    exclude = Path(out) if Path(out).is_absolute() else folder / out
    wanted = f"{BACKUP_DIR}/"  # at any depth: the folder may be inside a larger repository
    current = exclude.read_text() if exclude.exists() else ""
    if wanted not in current.splitlines():
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text(
            current + ("" if current.endswith("\n") or not current else "\n") + wanted + "\n"
        )


async def commit(folder: Path, files: list[str], message: str) -> str | None:
    """Commit exactly ``files`` (nothing else the user has staged); return the commit id."""
    if not files:
        return None
    code, out = await _git(folder, "add", "--", *files)
    if code != 0:
        raise GitError(f"git add failed: {out}")
    code, _ = await _git(folder, "diff", "--cached", "--quiet", "--", *files)
    if code == 0:
        return None  # the files are already committed as they are
    identity: list[str] = []
    code, _ = await _git(folder, "config", "user.email")
    if code != 0:
        identity = NBTERM_IDENTITY
    code, out = await _git(folder, *identity, "commit", "-q", "-m", message, "--", *files)
    if code != 0:
        raise GitError(f"git commit failed: {out}")
    code, out = await _git(folder, "rev-parse", "--short", "HEAD")
    return out if code == 0 else None
