"""The git side of a rule with ``git_commit``: commit what sync placed, when git allows it.

Files wait in nbterm's record until a commit takes them, so a commit that git refused (a merge,
a rebase, a detached HEAD, a lasting ``index.lock``) is caught up later. Each refusal is said
once while it lasts; a refused commit is tried again after GIT_RETRY_EVERY seconds, or at once
when a new file arrives or a person asks for a sync.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from nbterm.config.schema import SyncRule
from nbterm.safe_text import shown
from nbterm.services.sync import git
from nbterm.services.sync.events import Committed, SyncEvent, SyncWarning, Trigger

GIT_RETRY_EVERY = 60.0


class Committer:
    def __init__(
        self,
        rule: SyncRule,
        folder: Path,
        label: str,
        emit: Callable[[SyncEvent], None],
        mark_committed: Callable[[list[str]], Awaitable[None]],
    ) -> None:
        self.rule = rule
        self.folder = folder
        self.label = label
        self.emit = emit
        self.mark_committed = mark_committed
        """Takes committed files out of nbterm's record of what still waits."""
        self._problem: str | None = None
        self._next_try = 0.0

    async def commit(self, waiting: list[str], *, placed: bool, trigger: Trigger) -> None:
        """Commit ``waiting`` (this cycle's files and any an earlier refused commit left)."""
        if not waiting:
            return
        if not placed and trigger not in ("now", "final") and time.monotonic() < self._next_try:
            return
        self._next_try = time.monotonic() + GIT_RETRY_EVERY
        try:
            if not await git.ensure_repo(self.folder, init=self.rule.git_init):
                self._says(
                    f"git_commit is on but {self.folder} is not a git repository "
                    "(create one, or set git_init = true)"
                )
                return
            # the message is read later by `git log` in a terminal: names made inert here
            lines = "\n".join(f"- {shown(path)}" for path in waiting)
            message = f"nbterm: {len(waiting)} file(s) from {self.rule.host}\n\n{lines}\n"
            commit, conflicted = await git.commit(self.folder, waiting, message)
        except git.GitRefused as exc:
            self._says(str(exc))
            return
        except (git.GitError, OSError, TimeoutError) as exc:
            self._says(f"git: {exc}")
            return
        done = [path for path in waiting if path not in conflicted]
        await self.mark_committed(done)
        if conflicted:
            self._says(
                "not committing " + ", ".join(conflicted)
                + ": git has an unresolved merge conflict there (resolve it first)"
            )  # fmt: skip
        else:
            self._problem = None
        if commit:
            self.emit(Committed(self.label, commit, tuple(done)))

    def _says(self, message: str) -> None:
        if message != self._problem:
            self._problem = message
            self.emit(SyncWarning(self.label, message))
