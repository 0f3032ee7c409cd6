"""Bring what is staged home, losing nothing: promotion reconciles, it does not replay.

rsync pulls into nbterm's private staging mirror (so its delta transfer keeps working and the
user's folder never sees a partial file). Every cycle then compares the whole staging mirror with
nbterm's record (the manifest) and the user's folder, and places whatever is staged, valid and
not home yet. Whatever interrupted an earlier cycle (a kill, a full disk, a lost manifest), the
next one heals it.

What it guarantees for the user's folder:
- it never deletes a file and never writes outside the folder, into ``.git`` or into nbterm's
  own ``.nbterm-*`` names;
- a local file that differs from what nbterm last placed is kept in a backup folder of its own
  (one per cycle, never shared) before it is replaced; the backup is a hard link to the very
  file the user had, so an editor that is still writing to it writes into the backup;
- a replacement is a rename of a whole, fsynced file; a local file that changes while it is being
  replaced, or a notebook that is half-written locally, is left for the next cycle;
- a problem with one file is that file's problem: reported with its reason, never the cycle's.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import stat as stat_module
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nbterm.services.sync.events import BackupReason
from nbterm.services.sync.folding import EXACT, Folding, Twin, plan
from nbterm.services.sync.manifest import Manifest, Record, Stat
from nbterm.services.sync.notebooks import problem_with

BACKUP_DIR = ".nbterm-backups"
PARTIAL_DIR = ".nbterm-partial"
TEMP_SUFFIX = ".nbterm-tmp"
ASIDE_SUFFIX = ".nbterm-old"
STILL_REJECTED = "not a valid notebook on the remote (mid-save?)"
"""Why a notebook already rejected (and said so) still waits."""
LOCAL_SETTLE_SECONDS = 10.0
"""A local notebook that is not valid JSON and was written this recently is being saved: it is
not replaced until it settles (an older broken one is backed up and replaced)."""


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def refused(rel: str) -> str | None:
    """Why nbterm never writes ``rel`` into a user's folder, or None."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return "not a plain relative path"
    if any(part.lower() == ".git" for part in parts):
        return "a name inside .git is never written by nbterm"
    if any(part.startswith(".nbterm-") for part in parts):
        return "a name of nbterm's own (.nbterm-*) is never taken from a remote"
    return None


def _stat(info: os.stat_result) -> Stat:
    return (info.st_size, info.st_mtime_ns)


@dataclass(frozen=True)
class Placed:
    path: str
    size: int
    new: bool
    restored: bool


@dataclass
class PromoteResult:
    placed: list[Placed] = field(default_factory=list)
    conflicts: list[tuple[str, str, BackupReason]] = field(default_factory=list)
    """(path, backup path, why)"""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason): staged notebooks that are not valid, newly judged this cycle."""
    failed: dict[str, str] = field(default_factory=dict)
    """path -> reason: files that could not be brought home this cycle."""
    waiting: dict[str, str] = field(default_factory=dict)
    """path -> reason: files that failed before and wait out their back-off (still failing)."""
    pending: dict[str, str] = field(default_factory=dict)
    """path -> why: every staged file that is not home after this cycle."""
    folders: set[str] = field(default_factory=lambda: {""})
    """Local folders (relative) that hold staged files: see :func:`folder_marks`."""
    twins: list[Twin] = field(default_factory=list)
    """Remote names that the local folder would merge, and where each went instead."""


def folder_marks(local: Path, folders: set[str]) -> dict[str, tuple[int, int] | None]:
    """(inode, mtime) of each local folder: a file added, removed or renamed in a folder changes
    its mtime, so unchanged marks after a complete pass mean nothing came or went locally."""
    marks: dict[str, tuple[int, int] | None] = {}
    base = os.fspath(local)
    for folder in folders:
        try:
            info = os.lstat(os.path.join(base, folder) if folder else base)
        except OSError:
            marks[folder] = None
            continue
        marks[folder] = (info.st_ino, info.st_mtime_ns)
    return marks


def staged_files(staging: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every regular file in the staging mirror (rsync's partial folder left out)."""
    stack = [(staging, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name != PARTIAL_DIR:
                    stack.append((Path(entry.path), rel + "/"))
            elif entry.is_file(follow_symlinks=False):
                yield rel, entry.stat(follow_symlinks=False)


class Backups:
    """The backup folder of one cycle, made when first needed; never shared with another."""

    def __init__(self, local: Path) -> None:
        self.local = local
        self.folder: Path | None = None

    def path_for(self, rel: str) -> Path:
        if self.folder is None:
            root = self.local / BACKUP_DIR
            root.mkdir(exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for attempt in range(1, 1000):
                candidate = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
                try:
                    candidate.mkdir()
                except FileExistsError:
                    continue
                self.folder = candidate
                break
            else:
                raise OSError(errno.EEXIST, "no free backup folder name")
        assert self.folder is not None
        path = self.folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


Staged = tuple[str, Path, os.stat_result]
"""(remote path, the staged file, its stat)"""


class _Busy(Exception):
    """The local file changed while nbterm was replacing it: try again next cycle."""


def _stem(name: str) -> str:
    """The start of ``name`` for a name nbterm makes beside it: a remote name may already be
    as long as a name can be (255 bytes), so ".NAME.XXXXXXXX.nbterm-tmp" must not grow from it
    (40 characters are at most 160 bytes)."""
    return name[:40]


def _write_temp(source: Path, folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{_stem(name)}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        info = source.stat()
        os.utime(tmp, ns=(info.st_atime_ns, info.st_mtime_ns))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


class Promoter:
    """One cycle's reconciliation of a rule's staging mirror with its local folder."""

    def __init__(
        self,
        staging: Path,
        local: Path,
        manifest: Manifest,
        *,
        restore_deleted: bool = True,
        skip: dict[str, str] | None = None,
        max_bytes: int | None = None,
        recheck: set[str] | None = None,
        settling: dict[str, tuple[tuple[int, int, int], float]] | None = None,
        staged: list[Staged] | None = None,
        folding: Folding = EXACT,
    ) -> None:
        self.staged = staged
        """The staged files, when the staging mirror is more than one folder (twins pulled
        apart: :func:`folding.units`); None: every file in ``staging``."""
        self.folding = folding
        """How the local folder compares names: twins are placed apart (:func:`folding.plan`)."""
        self.settling = {} if settling is None else settling
        """path -> (its identity, the monotonic time it was first seen so): local notebooks
        whose time is in the future (the clock stepped back), judged by what was seen; the
        engine keeps it across cycles."""
        self.recheck = recheck or set()
        """Files compared by content even when their staged size and time are as recorded
        (the watcher saw them written: a same-size, same-time rewrite)."""
        self.staging = staging
        self.local = local
        self.manifest = manifest
        self.restore_deleted = restore_deleted
        self.max_bytes = max_bytes
        """Larger staged files are never read (rsync's --max-size keeps them out already; a
        file can still grow in staging between two checks)."""
        self.skip = skip or {}
        """path -> reason: files whose earlier failure is in its back-off (left alone)."""
        self.result = PromoteResult()
        self.backups = Backups(local)
        self._local = os.fspath(local)

    def run(self) -> PromoteResult:
        seen: set[str] = set()
        staged = self.staged
        if staged is None:
            staged = [(rel, self.staging / rel, info) for rel, info in staged_files(self.staging)]
        places = None
        if self.folding.folds:
            recorded = {rel: record.where(rel) for rel, record in self.manifest.files.items()}
            places = plan([rel for rel, _, _ in staged], self.folding, recorded)
            self.result.twins = places.twins
        for rel, source, info in staged:
            seen.add(rel)
            place = rel if places is None else places.place(rel)
            if place is None:
                self.result.pending[rel] = (
                    "not placed: its name is another remote file's in the local folder "
                    f"({self.folding.words()}), and so is its alternative name"
                )
                continue
            self.result.folders.add(place.rpartition("/")[0])
            if rel in self.skip:
                self.result.waiting[rel] = self.result.pending[rel] = self.skip[rel]
                continue
            try:
                self._one(rel, info, source, place)
            except _Busy:
                self.result.pending[rel] = "being written locally: next cycle"
            except OSError as exc:
                self._failed(rel, _reason(exc))
            except Exception as exc:  # noqa: BLE001 - a bug on one file must not end the cycle
                self._failed(rel, f"internal error ({exc.__class__.__name__}: {exc})")
        for rel in set(self.manifest.rejected) - seen:  # gone from the remote meanwhile
            del self.manifest.rejected[rel]
            self.manifest.dirty = True
        return self.result

    def _failed(self, rel: str, reason: str) -> None:
        self.result.failed[rel] = reason
        self.result.pending[rel] = reason

    def _one(self, rel: str, info: os.stat_result, source: Path, place: str) -> None:
        """Bring the remote file ``rel``, staged at ``source``, home to ``place`` (``rel``
        itself but for a twin in a folder that folds names)."""
        staged = _stat(info)
        record = self.manifest.files.get(rel)  # (only names that passed ``refused`` have one)
        if record is not None and record.where(rel) != place:
            record = None  # placed elsewhere before: whatever is at ``place`` is not nbterm's
        if record is None:
            why = refused(rel)
            if why is not None:
                self._failed(rel, f"refused: {why}")
                return
        current = _lstat(os.path.join(self._local, place))  # (str paths: the every-cycle path)
        if record is not None and record.staged == staged and rel not in self.recheck:
            if current is not None and record.local == _stat(current):
                return  # home, as nbterm left it (the cheap path of every idle cycle)
            if current is None and not self.restore_deleted:
                return  # deleted on purpose, and the rule says so
            if current is not None:
                return  # edited locally since; the remote has nothing newer: theirs stays
        if record is not None:  # a record from before version 2 may name anything
            why = refused(rel)
            if why is not None:
                self._failed(rel, f"refused: {why}")
                return
        if self.manifest.rejected.get(rel) == staged:
            self.result.pending[rel] = STILL_REJECTED
            return
        target = self.local / place
        kept_at = None if place == rel else place
        self.manifest.dirty = True
        if self.max_bytes is not None and info.st_size > self.max_bytes:
            self._failed(rel, f"larger than the rule's max_file_mb ({info.st_size} bytes)")
            return
        problem = problem_with(source)
        if problem is not None:
            self.manifest.rejected[rel] = staged
            self.result.rejected.append((rel, problem))
            self.result.pending[rel] = problem
            return
        self.manifest.rejected.pop(rel, None)
        new_sha = digest(source)
        if current is None:
            self._place_new(rel, source, target, new_sha, staged, record, kept_at)
            return
        if stat_module.S_ISDIR(current.st_mode):
            raise OSError(errno.EISDIR, "a folder is in the way locally", str(target))
        if not stat_module.S_ISREG(current.st_mode):
            raise OSError(errno.EEXIST, "something that is not a file is in the way locally")
        known = record is not None and record.local == _stat(current)
        local_sha = record.sha if known and record is not None else digest(target)
        if local_sha == new_sha:
            self.manifest.files[rel] = Record(new_sha, staged, _stat(current), kept_at)
            return
        reason: BackupReason | None = None
        if record is None:
            reason = "unknown" if self.manifest.damaged is not None else "already there"
        elif record.sha != local_sha:
            reason = "edited"
        if target.suffix == ".ipynb" and (
            self._being_written(place, current) and problem_with(target) is not None
        ):
            raise _Busy
        self._replace(place, source, target, current, local_sha, reason)
        after = target.lstat()
        self.manifest.files[rel] = Record(new_sha, staged, _stat(after), kept_at)
        self.result.placed.append(Placed(place, after.st_size, False, False))

    def _being_written(self, rel: str, current: os.stat_result) -> bool:
        """Whether a local notebook changed so recently that it may be mid-save. The wall clock
        decides while its answer is sane (written 0 to 10 s ago); a time in the future (the
        clock stepped back: NTP, a VM resumed) is never "recent" by itself: the file counts as
        being written until it has been seen unchanged for 10 s on a clock that cannot step."""
        age = time.time() - current.st_mtime_ns / 1e9
        if age >= 0:
            self.settling.pop(rel, None)
            return age < LOCAL_SETTLE_SECONDS
        identity = (current.st_ino, current.st_size, current.st_mtime_ns)
        now = time.monotonic()
        seen = self.settling.get(rel)
        if seen is None or seen[0] != identity:
            self.settling[rel] = (identity, now)
            return True
        return now - seen[1] < LOCAL_SETTLE_SECONDS

    def _place_new(
        self,
        rel: str,
        source: Path,
        target: Path,
        sha: str,
        staged: Stat,
        record: Record | None,
        kept_at: str | None,
    ) -> None:
        _make_parents(self.local, target.parent)
        tmp = _write_temp(source, target.parent, target.name)
        try:
            os.link(tmp, target)  # fails if something appeared there meanwhile: never clobbered
        except FileExistsError:
            tmp.unlink()
            raise _Busy from None
        except OSError:  # a filesystem without hard links: rename, checking first
            if os.path.lexists(target):
                tmp.unlink()
                raise _Busy from None
            os.replace(tmp, target)
        else:
            tmp.unlink()
        after = target.lstat()
        self.manifest.files[rel] = Record(sha, staged, _stat(after), kept_at)
        place = kept_at or rel
        self.result.placed.append(Placed(place, after.st_size, record is None, record is not None))

    def _replace(
        self,
        rel: str,
        source: Path,
        target: Path,
        before: os.stat_result,
        local_sha: str,
        reason: BackupReason | None,
    ) -> None:
        tmp = _write_temp(source, target.parent, target.name)
        aside: Path | None = None
        backup: Path | None = None
        try:
            if reason is not None:
                backup = self.backups.path_for(rel)
                aside = _keep(target, backup, local_sha)
            else:
                aside = target.with_name(
                    f".{_stem(target.name)}.{uuid.uuid4().hex[:8]}{ASIDE_SUFFIX}"
                )
                try:
                    os.link(target, aside)
                except OSError:
                    aside = None  # no hard links here: the stat check below is all there is
            if not _same_file(before, target.lstat()):
                raise _Busy
            try:
                swapped = exchange(tmp, target)
            except FileNotFoundError:  # deleted locally this instant: the next cycle decides
                raise _Busy from None
            if not swapped:  # (no atomic exchange here: the check above is all there is)
                os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            if aside is not None and backup is None:
                aside.unlink(missing_ok=True)
            if backup is not None and os.path.lexists(target):
                with contextlib.suppress(OSError):  # the user's file is still in place
                    if os.path.samefile(backup, target):
                        backup.unlink()
            raise
        if swapped:
            # ``tmp`` now holds what was at ``target`` at the very moment of the swap: the file
            # checked above, or one the user's editor saved since (a rename onto ``target``
            # between the check and the swap, which a plain rename would have destroyed).
            displaced = tmp.lstat()
            if _same_file(before, displaced):
                tmp.unlink()  # (``aside`` or ``backup`` holds that file, or it was nbterm's)
            else:
                newer = self.backups.path_for(rel)
                if os.path.lexists(newer):  # (the older one's backup is there)
                    newer = newer.with_name(f"{newer.stem} (saved meanwhile){newer.suffix}")
                os.replace(tmp, newer)
                self.result.conflicts.append((rel, str(newer), "being written"))
        if backup is not None:
            self.result.conflicts.append((rel, str(backup), reason or "edited"))
            return
        if aside is None:
            return
        # An editor that opened the old file before the rename writes into ``aside`` now:
        # whatever it wrote before this check shows as a change, and is kept.
        written = aside.lstat()
        if _same_file(before, written) and digest(aside) == local_sha:
            aside.unlink()
            return
        backup = self.backups.path_for(rel)
        os.replace(aside, backup)
        self.result.conflicts.append((rel, str(backup), "being written"))


_RENAME_EXCHANGE = 2
"""renameat2's flag (Linux 3.15); macOS's renamex_np calls it RENAME_SWAP, with the same value."""
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}


def _libc_rename() -> tuple[str, Callable[..., int]] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    for name in ("renameat2", "renamex_np"):
        function = getattr(libc, name, None)
        if function is not None:
            return name, function
    return None


_LIBC_RENAME = _libc_rename()


def exchange(a: Path, b: Path) -> bool:
    """Swap the files at ``a`` and ``b`` in one atomic step; False (nothing done) where the
    system or the filesystem cannot. An error of the paths themselves is raised."""
    if _LIBC_RENAME is None:
        return False
    name, function = _LIBC_RENAME
    old, new = os.fsencode(a), os.fsencode(b)
    if name == "renameat2":
        done = function(-100, old, -100, new, _RENAME_EXCHANGE)  # (AT_FDCWD: relative to cwd)
    else:
        done = function(old, new, _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


def _keep(target: Path, backup: Path, sha: str) -> Path:
    """Keep the user's ``target`` at ``backup``: a hard link (the same file, so it is complete
    by construction), or a copy that is checked against ``sha`` before anything replaces it."""
    try:
        os.link(target, backup)
        return backup
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
    shutil.copy2(target, backup)
    if digest(backup) != sha:
        backup.unlink()
        raise _Busy
    return backup


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise OSError(
            errno.ENOTDIR, "a file is in the way locally (a folder was expected)"
        ) from None


def _make_parents(local: Path, folder: Path) -> None:
    """Create ``folder`` below ``local``; a file or a symlink in the way is an error, never
    followed out of the user's folder."""
    rel = folder.relative_to(local)
    current = local
    for part in rel.parts:
        current = current / part
        try:
            info = current.lstat()
        except FileNotFoundError:
            current.mkdir()
            continue
        if not stat_module.S_ISDIR(info.st_mode):
            raise OSError(
                errno.ENOTDIR, f"{current.relative_to(local)} is in the way locally (not a folder)"
            )


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the local disk is full (No space left on device)"
    if exc.errno == errno.EROFS:
        return "the local folder is on a read-only filesystem"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied writing in the local folder"
    return exc.strerror or str(exc)


def clean_leftovers(local: Path, manifest: Manifest) -> list[tuple[str, str]]:
    """Remove nbterm's temporary files that an interrupted cycle left in ``local``.

    A file set aside for a replacement (``.NAME.xxxx.nbterm-old``) is removed only when it is the
    file in place or holds the content nbterm recorded; otherwise it may hold an edit, and it is
    moved to a backup folder. Returns (path, backup) for each one kept.
    """
    kept: list[tuple[str, str]] = []
    backups = Backups(local)
    by_place = {record.where(rel): record for rel, record in manifest.files.items()}
    for root, dirs, names in os.walk(local):
        dirs[:] = [d for d in dirs if d not in (".git", BACKUP_DIR)]
        for name in names:
            if not name.startswith("."):
                continue
            path = Path(root) / name
            if name.endswith(TEMP_SUFFIX):
                path.unlink(missing_ok=True)
            elif name.endswith(ASIDE_SUFFIX):
                original = name[1:].rsplit(".", 2)[0]
                target = Path(root) / original
                rel = str(target.relative_to(local))
                record = by_place.get(rel)
                with contextlib.suppress(OSError):
                    if (target.exists() and os.path.samefile(path, target)) or (
                        record is not None and digest(path) == record.sha
                    ):
                        path.unlink()
                        continue
                    backup = backups.path_for(rel)
                    os.replace(path, backup)
                    kept.append((rel, str(backup)))
    return kept
