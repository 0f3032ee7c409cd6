"""One ``[[sync]]`` rule, kept in step: rsync cycles on a timer, on demand and on remote changes.

Each cycle pulls with a real rsync over OpenSSH (nbterm's generated config, one reused
connection) into nbterm's private staging mirror, then reconciles the mirror with the user's
folder (see :mod:`promote`): never deleting, backing up local edits, refusing half-written
notebooks, healing whatever an interrupted cycle left. Everything it does is reported as events;
a failure is said once while it lasts, retried with back-off, and never ends the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nbterm.config.schema import SyncRule
from nbterm.locations import Paths, ensure_private_dir
from nbterm.services.sync import folding, git
from nbterm.services.sync.committer import Committer
from nbterm.services.sync.events import (
    ConflictKept,
    CycleDone,
    CycleStarted,
    FileFailed,
    FileReceived,
    FileWaiting,
    NotebookRejected,
    Progress,
    RemoteDeleted,
    SyncEvent,
    SyncFailed,
    SyncRecovered,
    SyncWarning,
    Trigger,
)
from nbterm.services.sync.manifest import Manifest
from nbterm.services.sync.promote import (
    PARTIAL_DIR,
    STILL_REJECTED,
    Promoter,
    PromoteResult,
    Staged,
    clean_leftovers,
    folder_marks,
    staged_files,
)
from nbterm.services.sync.rsync_output import ProgressLine, exit_message, is_mid_transfer_drop
from nbterm.services.sync.rsync_run import RsyncRun, run_rsync
from nbterm.services.sync.rsync_version import local_rsync_problem
from nbterm.services.sync.rule_lock import RuleLock
from nbterm.services.tasks import cancel_and_wait

FINAL_SYNC_SECONDS = 120.0
"""The bound of a final sync (before a tunnel closes or an instance stops), for every face."""

ALWAYS_EXCLUDED = (".~*", ".ipynb_checkpoints/")
DEBOUNCE_QUIET = 0.2
DEBOUNCE_MAX = 1.0
DELETION_SCAN_EVERY = 10
"""Timer cycles look for remote deletions (rsync --delete into staging, about 10% of an idle
cycle's cost) one time in this many; every other trigger, including the watcher's, always does."""

MAX_REWRITTEN = 10_000
"""At most this many written files wait to be compared by content (a flood is bounded)."""

SyncSink = Callable[[SyncEvent], None]


def _write_list(path: Path, names: list[str]) -> None:
    ensure_private_dir(path.parent)
    path.write_bytes(b"".join(os.fsencode(name) + b"\0" for name in names))
    path.chmod(0o600)


def rule_label(rule: SyncRule) -> str:
    return f"{rule.host}:{rule.remote}"


def remote_path(remote: str) -> str:
    """rsync over ssh starts in the remote home: ``~/nb`` is ``nb``. Always a trailing slash."""
    path = remote[2:] if remote.startswith("~/") else ("" if remote == "~" else remote)
    return path.rstrip("/") + "/" if path else "./"


def rsync_quote(word: str) -> str:
    """One word of rsync's ``-e`` command: rsync splits it on spaces and honours single quotes
    (a doubled one stands for itself), so a path with spaces (macOS's "Application Support")
    stays one argument."""
    return "'" + word.replace("'", "''") + "'"


def anchored(path: str) -> str:
    """An rsync filter pattern that matches exactly ``path`` (relative to the transfer's top):
    rsync honours a backslash only in a pattern that has a wildcard, so a name with ``*?[``
    has those and its backslashes escaped, and any other name is taken literally."""
    if any(char in path for char in "*?["):
        path = re.sub(r"([*?\[\\])", r"\\\1", path)
    return "/" + path


def filter_args(rule: SyncRule, apart: list[str] | None = None) -> list[str]:
    """rsync filters: nbterm's exclusions (with ``apart``: twins pulled by another run), the
    rule's, recursion, the rule's includes, no more."""
    args = [f"--exclude={anchored(path)}" for path in apart or ()]
    args += [f"--exclude={pattern}" for pattern in (*ALWAYS_EXCLUDED, *rule.exclude)]
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


RULE_WAIT_BACKGROUND = 2.0
"""How long a timer's or a watcher's cycle waits for another process's cycle of the rule."""
RULE_WAIT_ASKED = 120.0
"""How long an asked-for cycle (sync now, a final sync) waits for it (callers bound it too)."""
RETRY_FIRST = 2.0
RETRY_MAX = 60.0

_DEATH_SIGNAL = (
    ["setpriv", "--pdeathsig", "TERM", "--"]
    if sys.platform.startswith("linux") and shutil.which("setpriv")
    else []
)
"""On Linux, rsync is told to end when nbterm does, even after a SIGKILL (elsewhere it ends at
its next write to the closed pipe, or at its I/O timeout)."""


def backoff(failures: int) -> float:
    """2, 4, 8 ... seconds, at most a minute."""
    return float(min(RETRY_FIRST * 2.0 ** max(0, failures - 1), RETRY_MAX))


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
        retries: bool = True,
    ) -> None:
        self.rule = rule
        self.label = rule_label(rule)
        self.places = SyncPlaces.for_rule(rule, paths)
        self.ssh_config = ssh_config
        self.on_event = on_event
        self.io_timeout = io_timeout
        self.bwlimit_kib = bwlimit_kib
        self.retries = retries
        """False for one-shot sync: nothing will try again, so nothing promises to."""
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._pending: Trigger | None = None
        self.last_cycle: CycleDone | None = None
        self._timer_cycles = 0
        self.next_cycle_at: float | None = None
        self._started = False
        self._failure: tuple[int | None, str] | None = None
        self.failed_cycles = 0
        """Cycles in a row that failed as a whole (0: the rule works)."""
        self._file_failures: dict[str, tuple[str, int, float]] = {}
        """path -> (reason, failures in a row, when to try again)"""
        self.committer = Committer(
            rule, self.places.local, self.label, self._emit, self._mark_committed
        )
        self._uncommitted: list[str] = []
        """Placed files that wait for a git commit (kept in the manifest across runs)."""
        self._rule_lock = RuleLock(self.places.manifest.with_name("lock"))
        """One process at a time in the mirror and the record (the cockpit, --watch, sync)."""
        self._held_by: str | None = None
        self._said_waiting: dict[str, str] = {}
        """path -> reason of each file said to be waiting (said again only when it changes)."""
        self._settling: dict[str, tuple[tuple[int, int, int], float]] = {}
        """Local notebooks from the future (the clock stepped back), as first seen: Promoter."""
        self._committing: asyncio.Task[None] | None = None
        """The git commit running beside the cycles (one at a time)."""
        self._manifest: Manifest | None = None
        """nbterm's record of the folder, kept between cycles (read again when it changed)."""
        self._rsync_problem: str | None = None
        """Why the local rsync will not do ("" once checked and fine; None: not yet checked)."""
        self._oversized: set[str] = set()
        """Files rsync left out for max_file_mb (said when first seen)."""
        self._rewritten: set[str] = set()
        """Files the watcher saw written since the last cycle began: compared by content,
        since rsync's quick check cannot see a rewrite of the same size and time."""
        self._marks: dict[str, tuple[int, int] | None] | None = None
        """Local folder marks after the last complete pass (None: none yet, or it left files
        pending): see ``_nothing_to_do``."""
        self._folding: tuple[folding.Folding, folding.Folding] | None = None
        """How the local folder and the staging mirror compare names (probed at the start)."""
        self._units: dict[str, str] = {}
        """Remote twins pulled apart in a staging mirror that folds names: path -> the folder
        (under ``twins/``) it is pulled into (:func:`folding.units`)."""
        self._unit_files: set[str] = set()
        """Files the twins' own runs listed last cycle (the main run does not see them)."""
        self._names: dict[str, str] = {}
        """In a staging mirror that folds names: each remote file's key -> its remote name, as
        the main run listed it (a stored name may be spelled as an earlier version was)."""
        self._said_twins: set[tuple[str, str | None]] = set()

    def _emit(self, event: SyncEvent) -> None:
        self.on_event(event)

    def rsync_command(
        self,
        *,
        find_deletions: bool = True,
        files_from: Path | None = None,
        by_content: bool = True,
        into: Path | None = None,
        apart: list[str] | None = None,
        listing: bool = False,
    ) -> list[str]:
        """``files_from``: only the files (or folders) named there (NUL-separated); with
        ``by_content`` each is sent whatever its size and time say (``--ignore-times``); a
        name gone since is no error. ``into``: another folder than the staging mirror.
        ``apart``: paths left out (twins another run pulls). ``listing``: every file is
        itemized, sent or not (``--info=name2``), so the run lists what the remote has."""
        command = [
            *_DEATH_SIGNAL,
            "rsync", "-rt", "-m", "--no-h",
            f"--partial-dir={PARTIAL_DIR}",
            # compare nanoseconds: by default rsync sees two saves of the same size within one
            # second as unchanged, and the second one would never arrive
            "--modify-window=-1",
            f"--timeout={self.io_timeout}",
            "--out-format=%i %l %n",
            "--info=progress2,skip1" + (",name2" if listing else ""),
            f"--max-size={self.rule.max_file_mb}M",
            "-e", f"ssh -F {rsync_quote(str(self.ssh_config))}",
        ]  # fmt: skip
        if files_from is not None:
            command += [f"--files-from={files_from}", "--from0", "--ignore-missing-args"]
            if by_content:
                command.append("--ignore-times")
        elif find_deletions:  # into nbterm's staging mirror only: the user's folder loses nothing
            command.append("--delete")
        if self.bwlimit_kib:
            command.append(f"--bwlimit={self.bwlimit_kib}")
        command += filter_args(self.rule, apart)
        destination = self.places.staging if into is None else into
        command += [f"{self.rule.host}:{remote_path(self.rule.remote)}", f"{destination}/"]
        return command

    # --- one cycle ------------------------------------------------------------------------------

    async def cycle(self, trigger: Trigger = "now", *, settle: bool = True) -> CycleDone:
        """One cycle. Its git commit runs beside it (a hook may hang: sync never waits on it);
        with ``settle`` (a one-shot sync, a test) the commit is waited for before returning."""
        async with self._lock:
            wait = RULE_WAIT_ASKED if trigger in ("now", "final") else RULE_WAIT_BACKGROUND
            if await self._rule_lock.acquire(wait):
                try:
                    self._held_by = None
                    done = await self._cycle(trigger)
                finally:
                    self._rule_lock.release()
            else:
                done = self._held_elsewhere(trigger)
        if settle:
            await self.committed()
        return done

    def _held_elsewhere(self, trigger: Trigger) -> CycleDone:
        """Another nbterm process is in this rule's mirror and record: leave them to it (said
        once for each holder); its cycle brings the files home."""
        holder = self._rule_lock.holder()
        if holder != self._held_by:
            self._held_by = holder
            self._emit(SyncWarning(
                self.label,
                f"another nbterm is syncing this rule ({holder}): this one leaves it to that "
                "one and looks again at its next cycle",
            ))  # fmt: skip
        return CycleDone(self.label, trigger, (), 0, 0.0, False)

    def _commit_beside(self, *, placed: bool, trigger: Trigger) -> None:
        """Start a commit of what waits, unless one still runs (what it did not take waits in
        the record for the next)."""
        if self._committing is not None and not self._committing.done():
            return
        waiting = list(self._uncommitted)
        self._committing = asyncio.create_task(
            self.committer.commit(waiting, placed=placed, trigger=trigger),
            name=f"git commit {self.label}",
        )

    async def committed(self, timeout: float | None = None) -> None:
        """Wait (bounded: git's own timeout and a little) for the commit running beside the
        cycles, if there is one."""
        timeout = git.GIT_TIMEOUT + 10 if timeout is None else timeout
        task = self._committing
        if task is None or task.done():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout)

    async def _cycle(self, trigger: Trigger) -> CycleDone:
        started = time.monotonic()
        self._emit(CycleStarted(self.label, trigger))
        try:
            ensure_private_dir(self.places.staging)
            self._check_local_folder()
        except OSError as exc:
            return self._cycle_failed(trigger, started, None, _local_problem(exc, self.places))
        if self._folding is None:  # asked once: a folder's rules do not change under a rule
            local, staging = self.places.local, self.places.staging
            self._folding = await asyncio.to_thread(
                lambda: (folding.probe(local), folding.probe(staging))
            )
        if self._rsync_problem is None:  # checked once (an rsync does not change under us)
            self._rsync_problem = await asyncio.to_thread(local_rsync_problem) or ""
        if self._rsync_problem:
            return self._cycle_failed(trigger, started, None, self._rsync_problem)
        find_deletions = True
        if trigger == "timer":
            find_deletions = self._timer_cycles % DELETION_SCAN_EVERY == 0
            self._timer_cycles += 1
        synced_before = _has_entries(self.places.staging)
        rewritten, self._rewritten = self._rewritten, set()  # saves from now on: next cycle
        folds = self._folding[1].folds
        command = self.rsync_command(
            find_deletions=find_deletions, listing=folds, apart=self._apart_from("")
        )
        run = await run_rsync(command, self._progress)
        if is_mid_transfer_drop(run.code, run.stderr):  # the shared connection died
            run = await run_rsync(command, self._progress)  # ... and is opened again: once more
        if folds and run.code in (0, 24):
            run = await self._pull_twins(run, find_deletions=find_deletions)
        recheck = rewritten - {item.path for item in run.received}
        if recheck and run.code in (0, 24):
            run = await self._by_content(run, recheck)
        code = run.code
        try:
            kept: list[tuple[str, str]] = []
            if self._nothing_to_do(trigger, run):
                result, damaged = PromoteResult(), None
            else:
                result, damaged, kept = await asyncio.to_thread(
                    self._reconcile, trigger, synced_before, recheck
                )
        except OSError as exc:
            return self._cycle_failed(trigger, started, None, _local_problem(exc, self.places))
        if damaged is not None:
            self._emit(
                SyncWarning(
                    self.label,
                    f"nbterm's record of {self.places.local} could not be used "
                    f"({damaged}): rebuilt from the folder; local files it cannot vouch "
                    "for are backed up before anything replaces them",
                )
            )
        for path, backup in kept:
            self._emit(ConflictKept(self.label, path, backup, "interrupted"))
        for path in run.oversized:  # the rule's own cap: said once, not a failure
            if path not in self._oversized:
                cap = self.rule.max_file_mb
                self._emit(SyncWarning(self.label, f"{path}: larger than max_file_mb ({cap} MB): "
                                                   "not pulled"))  # fmt: skip
        self._oversized = set(run.oversized)
        self._report_files(result)
        self._say_twins(result)
        for path in run.deleted:
            place = self._place_of(path)
            if (self.places.local / place).is_file():
                self._emit(RemoteDeleted(self.label, place))
        rsync_ok = code in (0, 24)
        if code == 24:
            self._emit(SyncWarning(self.label, exit_message(24)))
        placed = [item.path for item in result.placed]
        if self.rule.git_commit:
            self._commit_beside(placed=bool(placed), trigger=trigger)
        if not rsync_ok:
            detail = _last_lines(run.stderr)
            message = exit_message(code, run.stderr) + (f": {detail}" if detail else "")
            return self._cycle_failed(trigger, started, code, message, result)
        self._recovered()
        return self._done(trigger, started, result, ok=not result.failed and not result.waiting)

    def _done(
        self, trigger: Trigger, started: float, result: PromoteResult, *, ok: bool
    ) -> CycleDone:
        """Every cycle ends here, with one CycleDone (reported last)."""
        self._say_waiting(result)
        done = CycleDone(
            self.label,
            trigger,
            tuple(item.path for item in result.placed),
            sum(item.size for item in result.placed),
            time.monotonic() - started,
            ok,
            tuple(sorted(result.pending.items())),
        )
        self.last_cycle = done
        self._emit(done)
        return done

    def _say_waiting(self, result: PromoteResult) -> None:
        """Each file that waits is said once per reason (a background cycle that brings
        nothing is otherwise silent); one that failed or was rejected is said by its own
        event (FileFailed, NotebookRejected) instead."""
        said_elsewhere = (  # failed now, in a failure's back-off, or rejected as broken
            set(result.failed) | set(result.waiting) | {path for path, _ in result.rejected}
        )
        waiting = {
            path: why
            for path, why in result.pending.items()
            if path not in said_elsewhere and why != STILL_REJECTED
        }
        for path, why in sorted(waiting.items()):
            if self._said_waiting.get(path) != why:
                self._emit(FileWaiting(self.label, path, why))
        self._said_waiting = waiting

    def _check_local_folder(self) -> None:
        local = self.places.local
        if local.exists() and not local.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(local))
        local.mkdir(parents=True, exist_ok=True)

    async def _by_content(self, run: RsyncRun, paths: set[str]) -> RsyncRun:
        """The files the watcher saw written that rsync's quick check passed over (same size,
        same time): sent again whatever their stat says; the promoter compares content. (A
        twin pulled apart is sent into its own folder.)"""
        listing = self.places.staging.parent / "rewritten.list"
        by_folder: dict[str, list[str]] = {}
        for path in paths:
            by_folder.setdefault(self._unit_folder(path), []).append(path)
        for unit_folder, names in sorted(by_folder.items()):
            await asyncio.to_thread(_write_list, listing, sorted(names))
            into = self._twins_dir(unit_folder) if unit_folder else None
            again = await run_rsync(
                self.rsync_command(files_from=listing, into=into), self._progress
            )
            _add_run(run, again)
        return run

    # --- twins, where the staging mirror folds names ------------------------------------------

    def _twins_dir(self, unit_folder: str) -> Path:
        return self.places.staging.parent / "twins" / unit_folder

    def _unit_folder(self, path: str) -> str:
        """The folder ``path`` is pulled into: its nearest enclosing twin's ("": the mirror)."""
        parts = path.split("/")
        for depth in range(len(parts), 0, -1):
            found = self._units.get("/".join(parts[:depth]))
            if found is not None:
                return found
        return ""

    def _apart_from(self, unit_folder: str) -> list[str]:
        """The twins that leave ``unit_folder``'s run ("": the main run) for a folder of their
        own: those whose parent is pulled by that run."""
        return sorted(
            path
            for path in self._units
            if self._unit_folder(path.rpartition("/")[0]) == unit_folder
        )

    async def _pull_twins(self, run: RsyncRun, *, find_deletions: bool) -> RsyncRun:
        """The staging mirror folds names: twins (names the mirror would merge) are pulled by
        runs of their own into folders of their own. New twins are found in the main run's
        listing: their merged copy leaves the mirror and the main run is repeated without
        them (once: a new pair is rare)."""
        fold = self._folding[1] if self._folding else folding.EXACT
        units = folding.units(set(run.listed) | self._unit_files, fold)
        fresh = [path for path in units if path not in self._units]
        self._units = units
        if fresh:
            await asyncio.to_thread(_remove_merged, self.places.staging, fresh)
            again = await run_rsync(
                self.rsync_command(
                    find_deletions=find_deletions, listing=True, apart=self._apart_from("")
                ),
                self._progress,
            )
            run.listed = []
            _add_run(run, again)
        self._names = {fold.key(path): path for path in run.listed}
        listed: set[str] = set()
        folders = sorted(set(units.values()))
        for unit_folder in folders:
            members = sorted(path for path, folder in units.items() if folder == unit_folder)
            listing = self.places.staging.parent / "twins.list"
            into = self._twins_dir(unit_folder)
            await asyncio.to_thread(_write_list, listing, members)
            await asyncio.to_thread(ensure_private_dir, into)
            pulled = await run_rsync(
                self.rsync_command(
                    files_from=listing, by_content=False, into=into, listing=True,
                    apart=self._apart_from(unit_folder),
                ),
                self._progress,
            )  # fmt: skip
            listed.update(pulled.listed)
            if pulled.code in (0, 24):
                run.deleted += await asyncio.to_thread(_prune, into, set(pulled.listed))
            _add_run(run, pulled)
        self._unit_files = listed
        await asyncio.to_thread(_remove_unused, self._twins_dir(""), set(folders))
        return run

    def _staged(self) -> list[Staged] | None:
        """Every staged file with its remote name, when twins are pulled apart (None: the
        staging mirror is the one folder, and its names are the remote's)."""
        if self._folding is None or not self._folding[1].folds:
            return None
        fold = self._folding[1]
        found: dict[str, Staged] = {}
        for stored, info in staged_files(self.places.staging):
            rel = self._names.get(fold.key(stored), stored)
            if self._unit_folder(rel) == "":  # (a twin's merged copy is never used)
                found[rel] = (rel, self.places.staging / stored, info)
        for unit_folder in sorted(set(self._units.values())):
            into = self._twins_dir(unit_folder)
            for rel, info in staged_files(into):
                if self._unit_folder(rel) == unit_folder:
                    found[rel] = (rel, into / rel, info)
        return list(found.values())

    def _place_of(self, path: str) -> str:
        record = self._manifest.files.get(path) if self._manifest is not None else None
        return path if record is None else record.where(path)

    def _say_twins(self, result: PromoteResult) -> None:
        """Each pair of twins is said once, with both remote names and where each went."""
        words = self._folding[0].words() if self._folding else ""
        for twin in result.twins:
            said = (twin.path, twin.place)
            if said in self._said_twins:
                continue
            self._said_twins.add(said)
            where = (
                f"it is placed as {twin.place}"
                if twin.place is not None
                else "it is not placed (its alternative name is taken too)"
            )
            self._emit(SyncWarning(
                self.label,
                f"{twin.path} and {twin.other} are one name in {self.places.local} ({words}): "
                f"{twin.other} keeps the name; {where}",
            ))  # fmt: skip

    def _reconcile(
        self, trigger: Trigger, synced_before: bool, recheck: set[str] | None = None
    ) -> tuple[PromoteResult, str | None, list[tuple[str, str]]]:
        """Runs in a thread (so it reports nothing itself): compare staging, the record and the
        local folder; place what is missing. The record is saved whatever happened to single
        files. Returns the result, why the record could not be used, and leftovers kept."""
        manifest = self._manifest
        if manifest is None or manifest.stale():  # kept between cycles; read when it changed
            manifest = self._manifest = Manifest(self.places.manifest, expected=synced_before)
        damaged = manifest.damaged
        kept: list[tuple[str, str]] = []
        if not self._started:
            self._started = True
            kept = clean_leftovers(self.places.local, manifest)
        now = time.monotonic()
        explicit = trigger in ("now", "final", "start")
        skip = {
            path: reason
            for path, (reason, _count, retry_at) in self._file_failures.items()
            if retry_at > now and not explicit
        }
        promoter = Promoter(
            self.places.staging,
            self.places.local,
            manifest,
            restore_deleted=self.rule.restore_deleted,
            skip=skip,
            max_bytes=self.rule.max_file_mb << 20,  # rsync's M: 2**20 bytes
            recheck=recheck or set(),
            settling=self._settling,
            staged=self._staged(),
            folding=self._folding[0] if self._folding else folding.EXACT,
        )
        self._marks = None
        try:
            result = promoter.run()
            if not result.pending:
                self._marks = folder_marks(self.places.local, result.folders)
        finally:
            if self.rule.git_commit and promoter.result.placed:
                manifest.uncommitted.update(item.path for item in promoter.result.placed)
                manifest.dirty = True
            elif not self.rule.git_commit and manifest.uncommitted:
                manifest.uncommitted.clear()
                manifest.dirty = True
            manifest.save()
            self._uncommitted = sorted(manifest.uncommitted)
        return result, damaged, kept

    def _nothing_to_do(self, trigger: Trigger, run: RsyncRun) -> bool:
        """An idle timer cycle skips the full comparison when it cannot find anything: the
        last one left nothing pending, rsync completed and brought nothing, nbterm's record is
        as it left it, and no local folder lost or gained a file (their marks are unchanged)."""
        if (
            trigger != "timer"
            or self._marks is None
            or run.code not in (0, 24)
            or run.received
            or run.deleted
            or self._manifest is None
            or self._manifest.stale()
        ):
            return False
        return folder_marks(self.places.local, set(self._marks)) == self._marks

    def _report_files(self, result: PromoteResult) -> None:
        for item in result.placed:
            self._emit(FileReceived(self.label, item.path, item.size, item.new, item.restored))
        for path, backup, why in result.conflicts:
            self._emit(ConflictKept(self.label, path, backup, why))
        for path, reason in result.rejected:
            self._emit(NotebookRejected(self.label, path, reason))
        now = time.monotonic()
        for path, reason in result.failed.items():
            previous = self._file_failures.get(path)
            count = previous[1] + 1 if previous else 1
            self._file_failures[path] = (reason, count, now + backoff(count))
            if previous is None or previous[0] != reason:
                self._emit(FileFailed(self.label, path, reason))
        for path in list(self._file_failures):
            if path not in result.pending:
                del self._file_failures[path]

    def _cycle_failed(
        self,
        trigger: Trigger,
        started: float,
        code: int | None,
        message: str,
        result: PromoteResult | None = None,
    ) -> CycleDone:
        self.failed_cycles += 1
        retry_in = backoff(self.failed_cycles) if self.retries and trigger != "final" else None
        # said once while it lasts: the same rsync exit again (its details vary with the file
        # names, as exit 23 does in a burst of saves) is the same failure
        key = (code, message if code is None else "")
        if self._failure != key:
            self._failure = key
            self._emit(SyncFailed(self.label, code, message, retry_in))
        return self._done(trigger, started, result or PromoteResult(), ok=False)

    def _recovered(self) -> None:
        if self.failed_cycles:
            self._emit(SyncRecovered(self.label, self.failed_cycles))
        self.failed_cycles = 0
        self._failure = None

    def _progress(self, line: ProgressLine) -> None:
        self._emit(Progress(self.label, line.bytes, line.percent, line.rate))

    async def _mark_committed(self, files: list[str]) -> None:
        async with self._lock:  # the commit runs beside the cycles: one writer of the record
            if not await self._rule_lock.acquire(RULE_WAIT_ASKED):
                return  # (the files stay marked as waiting: committing them again is a no-op)
            try:
                await asyncio.to_thread(self._take_out_of_waiting, files)
            finally:
                self._rule_lock.release()

    def _take_out_of_waiting(self, files: list[str]) -> None:
        manifest = self._manifest
        if manifest is None or manifest.stale():
            manifest = self._manifest = Manifest(self.places.manifest)
        manifest.uncommitted.difference_update(files)
        manifest.dirty = True
        manifest.save()
        self._uncommitted = sorted(manifest.uncommitted)

    # --- final sync -------------------------------------------------------------------------------

    async def final_sync(self, timeout: float = FINAL_SYNC_SECONDS) -> CycleDone:
        """One last cycle before teardown, bounded: the result says whether it completed."""
        started = time.monotonic()
        try:
            done = await asyncio.wait_for(self.cycle("final", settle=False), timeout)
        except TimeoutError:
            message = f"the final sync did not finish within {timeout:g}s"
            self._emit(SyncFailed(self.label, 30, message))
            done = CycleDone(self.label, "final", (), 0, time.monotonic() - started, False)
            self._emit(done)
            return done
        # the files are home: their commit may use what is left of the time, never more, and
        # never changes whether the final sync counts as done
        await self.committed(max(0.0, timeout - (time.monotonic() - started)))
        return done

    # --- triggers ---------------------------------------------------------------------------------

    def request(self, trigger: Trigger = "now") -> None:
        """Ask for a cycle soon ("sync now", or a remote change seen by a watcher)."""
        if self._pending != "now":
            self._pending = trigger
        self._wake.set()

    def remote_changed(self) -> None:
        self.request("remote change")

    def remote_rewritten(self, path: str) -> None:
        """The watcher saw ``path`` (relative to the remote folder) written: the next cycle
        compares it by content. A name that could leave the folder is ignored (the remote is
        untrusted; rsync's own quick check still covers it)."""
        parts = path.split("/")
        if not path or path.startswith("/") or "\0" in path or ".." in parts or "" in parts:
            return
        if len(self._rewritten) < MAX_REWRITTEN:
            self._rewritten.add(path)

    async def _next_trigger(self) -> Trigger:
        wait = float(self.rule.interval)
        if self.failed_cycles:  # a failing rule tries again sooner, backing off
            wait = min(wait, backoff(self.failed_cycles))
        self.next_cycle_at = time.time() + wait
        try:
            await asyncio.wait_for(self._wake.wait(), wait)
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
            if self._pending == "now":  # "sync now" pressed while a burst settled: say so
                trigger = "now"
        self._wake.clear()
        self._pending = None
        return trigger

    async def run(self) -> None:
        """Cycle now, then on every trigger, until cancelled. A cycle that raises (a bug) is
        reported and retried: the engine itself never ends on its own."""
        trigger: Trigger = "start"
        try:
            while True:
                try:
                    await self.cycle(trigger, settle=False)
                except Exception as exc:  # noqa: BLE001 - said, then retried with back-off
                    self.failed_cycles += 1
                    message = f"internal error in nbterm's sync ({exc.__class__.__name__}: {exc})"
                    self._failure = (None, message)
                    self._emit(SyncFailed(self.label, None, message, backoff(self.failed_cycles)))
                trigger = await self._next_trigger()
        finally:
            await cancel_and_wait(self._committing)  # (its git, and any hook, killed with it)


def _add_run(run: RsyncRun, other: RsyncRun) -> None:
    """Fold ``other`` (a further run of the same cycle) into ``run``."""
    run.received += other.received
    run.listed += other.listed
    run.deleted += [path for path in other.deleted if path not in run.deleted]
    run.oversized += [path for path in other.oversized if path not in run.oversized]
    if other.code not in (0, 24) or (other.code == 24 and run.code == 0):
        run.code, run.stderr = other.code, other.stderr


def _remove_merged(staging: Path, paths: list[str]) -> None:
    """Take out of nbterm's staging mirror whatever a run merged there for new twins (the
    mirror folds names, so a twin's path finds the one file or folder both went into)."""
    for path in paths:
        target = staging / path
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()


def _prune(folder: Path, listed: set[str]) -> list[str]:
    """Remove from a twins' folder (nbterm's own) the files its run no longer lists: they are
    gone on the remote. Returns their paths."""
    gone = [rel for rel, _ in staged_files(folder) if rel not in listed]
    for rel in gone:
        with contextlib.suppress(OSError):
            (folder / rel).unlink()
    return gone


def _remove_unused(root: Path, used: set[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(root):
            if entry.name not in used and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)


def _has_entries(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def _local_problem(exc: OSError, places: SyncPlaces) -> str:
    where = exc.filename or places.local
    if isinstance(exc, NotADirectoryError) or exc.errno == errno.ENOTDIR:
        return f"the local folder {where} is not a folder (a file is there): fix the rule's local"
    return f"the local folder {where} cannot be used: {exc.strerror or exc}"


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])
