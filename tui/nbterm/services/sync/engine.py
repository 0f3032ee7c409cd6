"""One ``[[sync]]`` rule, kept in step: rsync cycles on a timer, on demand and on remote changes.

Each cycle pulls with a real rsync over OpenSSH (nbterm's generated config, one reused
connection) into nbterm's private staging mirror, then promotes what arrived into the user's
folder (see :mod:`promote`): never deleting, backing up local edits, refusing half-written
notebooks. Everything it does is reported as events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nbterm.config.schema import SyncRule
from nbterm.locations import Paths, ensure_private_dir
from nbterm.services.sync import git
from nbterm.services.sync.events import (
    Committed,
    ConflictKept,
    CycleDone,
    CycleStarted,
    FileReceived,
    NotebookRejected,
    Progress,
    RemoteDeleted,
    SyncEvent,
    SyncFailed,
    SyncWarning,
    Trigger,
)
from nbterm.services.sync.promote import Manifest, PromoteResult, promote
from nbterm.services.sync.rsync_output import (
    Item,
    ProgressLine,
    exit_message,
    parse_line,
    split_segments,
)

ALWAYS_EXCLUDED = (".~*", ".ipynb_checkpoints/")
PARTIAL_DIR = ".nbterm-partial"
DEBOUNCE_QUIET = 0.2
DEBOUNCE_MAX = 1.0
PROGRESS_EVERY = 0.1
DELETION_SCAN_EVERY = 10
"""Timer cycles look for remote deletions (rsync --delete into staging, about 10% of an idle
cycle's cost) one time in this many; every other trigger, including the watcher's, always does."""

SyncSink = Callable[[SyncEvent], None]


def rule_label(rule: SyncRule) -> str:
    return f"{rule.host}:{rule.remote}"


def remote_path(remote: str) -> str:
    """rsync over ssh starts in the remote home: ``~/nb`` is ``nb``. Always a trailing slash."""
    path = remote[2:] if remote.startswith("~/") else ("" if remote == "~" else remote)
    return path.rstrip("/") + "/" if path else "./"


def filter_args(rule: SyncRule) -> list[str]:
    """rsync filters: nbterm's exclusions, the rule's, recursion, the rule's includes, no more."""
    args = [f"--exclude={pattern}" for pattern in (*ALWAYS_EXCLUDED, *rule.exclude)]
    args.append("--include=*/")
    args += [f"--include={pattern}" for pattern in rule.include]
    args.append("--exclude=*")
    return args


@dataclass(frozen=True)
class SyncPlaces:
    """Where a rule's files live."""

    local: Path
    staging: Path
    manifest: Path

    @classmethod
    def for_rule(cls, rule: SyncRule, paths: Paths) -> SyncPlaces:
        local = Path(os.path.expanduser(rule.local))
        key = hashlib.sha256(f"{rule.host}\0{rule.remote}\0{local}".encode()).hexdigest()[:12]
        base = paths.state_dir / "sync" / f"{re.sub(r'[^A-Za-z0-9._-]', '_', rule.host)}-{key}"
        return cls(local=local, staging=base / "staging", manifest=base / "manifest.json")


class SyncEngine:
    def __init__(
        self,
        rule: SyncRule,
        paths: Paths,
        ssh_config: Path,
        on_event: SyncSink,
        *,
        io_timeout: int = 30,
        bwlimit_kib: int | None = None,
    ) -> None:
        self.rule = rule
        self.label = rule_label(rule)
        self.places = SyncPlaces.for_rule(rule, paths)
        self.ssh_config = ssh_config
        self.on_event = on_event
        self.io_timeout = io_timeout
        self.bwlimit_kib = bwlimit_kib
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._pending: Trigger | None = None
        self.last_cycle: CycleDone | None = None
        self._timer_cycles = 0
        self.next_cycle_at: float | None = None

    def _emit(self, event: SyncEvent) -> None:
        self.on_event(event)

    def rsync_command(self, *, find_deletions: bool = True) -> list[str]:
        command = [
            "rsync", "-rt", "-m", "--no-h",
            f"--partial-dir={PARTIAL_DIR}",
            # compare nanoseconds: by default rsync sees two saves of the same size within one
            # second as unchanged, and the second one would never arrive
            "--modify-window=-1",
            f"--timeout={self.io_timeout}",
            "--out-format=%i %l %n",
            "--info=progress2",
            "-e", f"ssh -F {self.ssh_config}",
        ]  # fmt: skip
        if find_deletions:  # into nbterm's staging mirror only: the user's folder loses nothing
            command.append("--delete")
        if self.bwlimit_kib:
            command.append(f"--bwlimit={self.bwlimit_kib}")
        command += filter_args(self.rule)
        command += [f"{self.rule.host}:{remote_path(self.rule.remote)}", f"{self.places.staging}/"]
        return command

    # --- one cycle ------------------------------------------------------------------------------

    async def cycle(self, trigger: Trigger = "now") -> CycleDone:
        async with self._lock:
            return await self._cycle(trigger)

    async def _cycle(self, trigger: Trigger) -> CycleDone:
        started = time.monotonic()
        self._emit(CycleStarted(self.label, trigger))
        ensure_private_dir(self.places.staging)
        self.places.local.mkdir(parents=True, exist_ok=True)
        received: list[Item] = []
        deleted: list[str] = []
        find_deletions = True
        if trigger == "timer":
            find_deletions = self._timer_cycles % DELETION_SCAN_EVERY == 0
            self._timer_cycles += 1
        code, stderr = await self._run_rsync(received, deleted, find_deletions)
        manifest = Manifest(self.places.manifest)
        paths = [item.path for item in received] + sorted(manifest.rejected)
        result = PromoteResult()
        if paths:  # an idle cycle has nothing to place and nothing to save
            result = await asyncio.to_thread(
                promote, self.places.staging, self.places.local, paths, manifest
            )
            await asyncio.to_thread(manifest.save)
        sizes = {item.path: item.size for item in received}
        new = {item.path for item in received if item.new}
        for path in result.placed:
            self._emit(FileReceived(self.label, path, sizes.get(path, 0), path in new))
        for path, backup in result.conflicts:
            self._emit(ConflictKept(self.label, path, backup))
        for path, reason in result.rejected:
            self._emit(NotebookRejected(self.label, path, reason))
        for path in deleted:
            if (self.places.local / path).is_file():
                self._emit(RemoteDeleted(self.label, path))
        ok = code in (0, 24)
        if code == 24:
            self._emit(SyncWarning(self.label, exit_message(24)))
        elif code != 0:
            detail = _last_lines(stderr)
            self._emit(
                SyncFailed(self.label, code, exit_message(code) + (f": {detail}" if detail else ""))
            )
        if result.placed and self.rule.git_commit:
            await self._commit(result.placed)
        done = CycleDone(
            self.label,
            trigger,
            tuple(result.placed),
            sum(sizes.get(path, 0) for path in result.placed),
            time.monotonic() - started,
            ok,
        )
        self.last_cycle = done
        self._emit(done)
        return done

    async def _run_rsync(
        self, received: list[Item], deleted: list[str], find_deletions: bool
    ) -> tuple[int, str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.rsync_command(find_deletions=find_deletions),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
            )
        except FileNotFoundError:
            return 127, "rsync is not installed on this machine"
        assert proc.stdout is not None
        assert proc.stderr is not None
        stderr_task = asyncio.create_task(proc.stderr.read())
        buffer = b""
        last_progress = 0.0
        try:
            while chunk := await proc.stdout.read(65536):
                segments, buffer = split_segments(buffer + chunk)
                for segment in segments:
                    parsed = parse_line(segment)
                    if isinstance(parsed, Item):
                        if parsed.received:
                            received.append(parsed)
                        elif parsed.deleted:
                            deleted.append(parsed.path)
                    elif isinstance(parsed, ProgressLine):
                        now = time.monotonic()
                        if now - last_progress >= PROGRESS_EVERY:
                            last_progress = now
                            self._emit(
                                Progress(self.label, parsed.bytes, parsed.percent, parsed.rate)
                            )
            code = await proc.wait()
            stderr = (await stderr_task).decode(errors="replace")
            return code, stderr
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 3)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            stderr_task.cancel()

    async def _commit(self, files: list[str]) -> None:
        folder = self.places.local
        try:
            if not await git.ensure_repo(folder, init=self.rule.git_init):
                self._emit(
                    SyncWarning(
                        self.label,
                        f"git_commit is on but {folder} is not a git repository "
                        "(create one, or set git_init = true)",
                    )
                )
                return
            lines = "\n".join(f"- {path}" for path in files)
            message = f"nbterm: {len(files)} file(s) from {self.rule.host}\n\n{lines}\n"
            commit = await git.commit(folder, files, message)
        except (git.GitError, OSError, TimeoutError) as exc:
            self._emit(SyncWarning(self.label, f"git: {exc}"))
            return
        if commit:
            self._emit(Committed(self.label, commit, tuple(files)))

    # --- final sync -------------------------------------------------------------------------------

    async def final_sync(self, timeout: float = 120.0) -> CycleDone:
        """One last cycle before teardown, bounded: the result says whether it completed."""
        started = time.monotonic()
        try:
            return await asyncio.wait_for(self.cycle("final"), timeout)
        except TimeoutError:
            message = f"the final sync did not finish within {timeout:g}s"
            self._emit(SyncFailed(self.label, 30, message))
            done = CycleDone(self.label, "final", (), 0, time.monotonic() - started, False)
            self._emit(done)
            return done

    # --- triggers ---------------------------------------------------------------------------------

    def request(self, trigger: Trigger = "now") -> None:
        """Ask for a cycle soon ("sync now", or a remote change seen by a watcher)."""
        if self._pending != "now":
            self._pending = trigger
        self._wake.set()

    def remote_changed(self) -> None:
        self.request("remote change")

    async def _next_trigger(self) -> Trigger:
        self.next_cycle_at = time.time() + self.rule.interval
        try:
            await asyncio.wait_for(self._wake.wait(), self.rule.interval)
        except TimeoutError:
            return "timer"
        trigger = self._pending or "now"
        if trigger == "remote change":  # let a burst of writes settle
            deadline = time.monotonic() + DEBOUNCE_MAX
            while time.monotonic() < deadline:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), DEBOUNCE_QUIET)
                except TimeoutError:
                    break
            if self._pending == "now":  # "sync now" pressed while the burst settled: say so
                trigger = "now"
        self._wake.clear()
        self._pending = None
        return trigger

    async def run(self) -> None:
        """Cycle now, then on every trigger, until cancelled."""
        await self.cycle("start")
        while True:
            trigger = await self._next_trigger()
            await self.cycle(trigger)


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])
